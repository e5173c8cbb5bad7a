"""Gaussian beam (PSF) and linear per-channel convolution with planned pyFFTW transforms."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import math
import os
import platform
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyfftw

from .constants import FWHM_TO_SIGMA

__all__ = ["BeamConvolver", "beam_axes", "fast_fft_size", "fftw_wisdom_path", "gaussian_psf", "shared_fftw_wisdom"]

log = logging.getLogger(__name__)

# The PSF is cut where it falls below this fraction of its peak: the flux it drops is below 1e-6 of the total.
PSF_CUTOFF = 1e-7


def fast_fft_size(n: int) -> int:
    """Smallest size >= ``n`` of the form 2^a, 3 * 2^a or 5 * 2^a, sizes FFTW transforms fastest (measured: a 25x80x80
    real transform takes two thirds of the time of 25x75x75)."""
    best = 1
    while best < n:
        best *= 2
    for odd in (3, 5):
        size = odd
        while size < n:
            size *= 2
        best = min(best, size)
    return best


WISDOM_ENV = "KINMS_CORE_FFTW_WISDOM"


def fftw_wisdom_path() -> Path | None:
    """The file in which this machine's FFT plans are kept: ``$KINMS_CORE_FFTW_WISDOM`` if set (empty: none), else
    ``~/.cache/kinms_core/fftw_wisdom_<cpu>.json`` (``$XDG_CACHE_HOME`` if set), one file per CPU model and FFTW."""
    if WISDOM_ENV in os.environ:
        return Path(os.environ[WISDOM_ENV]) if os.environ[WISDOM_ENV] else None
    cpu = platform.machine() + platform.processor()
    with contextlib.suppress(OSError):
        info = Path("/proc/cpuinfo").read_text()
        cpu += "".join(sorted({line for line in info.splitlines() if line.startswith(("model name", "flags"))}))
    key = hashlib.sha256(f"{cpu} pyfftw {pyfftw.__version__}".encode()).hexdigest()[:16]
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "kinms_core" / f"fftw_wisdom_{key}.json"


@contextlib.contextmanager
def shared_fftw_wisdom(path: Path | None) -> Iterator[None]:
    """Plan FFTs inside this block with the plans kept in ``path``, and keep any new ones there.

    ``FFTW_MEASURE`` chooses among algorithms by timing them, so two processes may choose differently, and their
    cubes then differ in the last bits: a rerun, or a fit resumed after a kill, would not reproduce its first run.
    Planning with the wisdom of the first process to plan a shape on this machine makes every later one choose the
    same. The file is locked while in use, so that concurrent jobs neither race to plan nor lose each other's plans.
    A file that cannot be used is logged and skipped: planning then proceeds as usual.
    """
    if path is None:
        yield
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = open(path.with_suffix(".lock"), "a")  # held open (and locked) for the block
    except OSError as err:
        log.warning("FFTW wisdom not shared (%s): results may differ in the last bits between runs", err)
        yield
        return
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        known: list[set[str]] = []
        if path.exists():
            try:
                parts = json.loads(path.read_text())
                pyfftw.import_wisdom(tuple(part.encode("ascii") for part in parts))
                known = [set(part.splitlines()) for part in parts]
            except (ValueError, TypeError) as err:
                log.warning("ignoring unreadable FFTW wisdom %s (%s)", path, err)
        yield
        wisdom = [part.decode("ascii") for part in pyfftw.export_wisdom()]
        # FFTW exports its entries in hash order: compare them as sets, and rewrite only when some are new
        if len(known) != len(wisdom) or any(
            set(new.splitlines()) - old for new, old in zip(wisdom, known, strict=True)
        ):
            # written whole and renamed, so that a reader never sees half a file
            partial = path.with_suffix(f".{os.getpid()}.tmp")
            try:
                partial.write_text(json.dumps(wisdom))
                os.replace(partial, path)
            except OSError as err:
                log.warning("FFTW wisdom not saved to %s (%s): later runs may differ in the last bits", path, err)


def beam_axes(bpa: float) -> tuple[tuple[float, float], tuple[float, float]]:
    """Unit vectors ``(x, y)`` in pixels of the major and the minor axis of a beam at position angle ``bpa``
    (degrees from north, +y, through east, -x, as RA decreases along x)."""
    theta = math.radians(bpa)
    return (-math.sin(theta), math.cos(theta)), (math.cos(theta), math.sin(theta))


def gaussian_psf(
    beam: tuple[float, float, float], cellsize: float, shift: tuple[float, float] = (0.0, 0.0)
) -> np.ndarray:
    """Elliptical Gaussian sampled at pixel centres, ``(ky, kx)``, odd-sized, peak 1 when unshifted.

    ``beam = (bmaj, bmin, bpa)``: FWHM in arcsec and position angle in degrees from north (+y) through east
    (-x, as RA decreases along x). ``shift = (sx, sy)`` moves the Gaussian's peak by that many pixels from the
    kernel's central pixel.
    """
    bmaj, bmin, bpa = beam
    sig_maj, sig_min = bmaj / cellsize * FWHM_TO_SIGMA, bmin / cellsize * FWHM_TO_SIGMA
    half = int(math.ceil(sig_maj * math.sqrt(2.0 * math.log(1.0 / PSF_CUTOFF)))) + 1
    offsets = np.arange(-half, half + 1, dtype=float)
    dy, dx = np.meshgrid(offsets - shift[1], offsets - shift[0], indexing="ij")
    (ux, uy), (vx, vy) = beam_axes(bpa)
    along, across = ux * dx + uy * dy, vx * dx + vy * dy
    psf = np.exp(-0.5 * ((along / sig_maj) ** 2 + (across / sig_min) ** 2))
    psf[psf < PSF_CUTOFF] = 0.0
    return psf


class BeamConvolver:
    """Convolve every channel of a ``(nv, ny, nx)`` cube with a fixed PSF, linearly (zero padding, no wrap).

    The forward and inverse real FFT plans, their aligned buffers and the PSF's transform are made once; each
    call then costs two FFTs of the padded cube and one complex multiply.

    Parameters
    ----------
    shape
        Cube shape ``(nv, ny, nx)``.
    psf
        Odd-sized, centred kernel ``(ky, kx)``; it is normalised to unit sum for the convolution.
    threads
        FFTW threads.
    planner_effort
        FFTW planner flag ('FFTW_ESTIMATE', 'FFTW_MEASURE', ...).
    """

    def __init__(
        self,
        shape: tuple[int, int, int],
        psf: np.ndarray,
        *,
        threads: int = 1,
        planner_effort: str = "FFTW_MEASURE",
    ) -> None:
        nv, ny, nx = shape
        ky, kx = psf.shape
        if ky % 2 == 0 or kx % 2 == 0:
            raise ValueError(f"psf must have odd sizes, got {psf.shape}")
        half_y, half_x = ky // 2, kx // 2
        self.shape = (nv, ny, nx)
        self.padded = (nv, fast_fft_size(ny + half_y), fast_fft_size(nx + half_x))
        _, py, px = self.padded
        self._real = pyfftw.empty_aligned(self.padded, dtype="float64")
        self._spec = pyfftw.empty_aligned((nv, py, px // 2 + 1), dtype="complex128")
        flags = (planner_effort,)
        # FFTW_ESTIMATE chooses without timing, the same every time; the others use the machine's shared wisdom.
        wisdom = None if planner_effort == "FFTW_ESTIMATE" else fftw_wisdom_path()
        with shared_fftw_wisdom(wisdom):
            self._forward = pyfftw.FFTW(self._real, self._spec, axes=(1, 2), flags=flags, threads=threads)
            # The inverse is left unnormalised (saving a pass over the cube): 1 / (py * px) is folded into the PSF.
            self._inverse = pyfftw.FFTW(
                self._spec,
                self._real,
                axes=(1, 2),
                direction="FFTW_BACKWARD",
                flags=(*flags, "FFTW_DESTROY_INPUT"),
                threads=threads,
                normalise_idft=False,
            )
        # Kernel with its centre at pixel (0, 0), negative offsets wrapped to the far end.
        kernel = np.zeros((py, px))
        norm = psf / psf.sum()
        for j in range(ky):
            kernel[(j - half_y) % py, [(i - half_x) % px for i in range(kx)]] = norm[j]
        self._psf_ft = np.fft.rfft2(kernel) / (py * px)
        self._real[:] = 0.0

    def __call__(self, cube: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Return the convolved cube (written into ``out`` when given)."""
        nv, ny, nx = self.shape
        if cube.shape != self.shape:
            raise ValueError(f"cube shape {cube.shape} differs from the planned shape {self.shape}")
        real = self._real
        real[:, :ny, :nx] = cube
        real[:, ny:, :] = 0.0
        real[:, :ny, nx:] = 0.0
        self._forward()
        self._spec *= self._psf_ft
        self._inverse(normalise_idft=False)
        if out is None:
            out = np.empty(self.shape)
        out[...] = real[:, :ny, :nx]
        return out
