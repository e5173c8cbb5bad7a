"""Preparing a cube for fitting: read, noise, mask, trim, first guesses, and the files of one galaxy.

:func:`prepare_cube` writes into ``outdir``:

- ``cube.fits``: the trimmed cube (Jy/beam, float32, radio-velocity WCS);
- ``mask.fits``: the signal mask on the same grid (uint8, 1 = detected);
- ``obspars.json``: the trimmed cube's :class:`~kinms_core.obspars.ObsPars`;
- ``noise.fits``: the noise per voxel on the same grid, when it varies across the cube (a primary-beam corrected
  cube; :func:`~kinms_core.noise.noise_model`);
- ``prepare.json``: rms, how the noise was modelled, number of detected voxels, guesses, bounds, trim information,
  beam spread, warnings and
  the input path, all plain JSON.

:func:`load_prepared` reads such a folder back.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

from .errors import CorruptFileError, MissingInputError
from .fitsio import write_cube
from .guesses import data_bounds, first_guesses
from .ingest import DEFAULT_MAX_VOXELS, Cube, read_cube
from .noise import NoiseModel, noise_model, separate_sources, signal_mask
from .obspars import ObsPars
from .safe_files import atomic_path, read_json_object, refuse_overwrite, write_text_atomic
from .sanity import check_cube_values, check_detected_fraction, check_guesses
from .trim import trim_cube

__all__ = ["PREPARED_FILES", "Prepared", "load_prepared", "prepare_cube"]

log = logging.getLogger(__name__)

#: The files :func:`prepare_cube` always writes (and ``noise.fits`` when the noise varies).
PREPARED_FILES = ("cube.fits", "mask.fits", "obspars.json", "prepare.json")
NOISE_FILE = "noise.fits"
#: Every file a prepared folder may hold: the stage's status too.
_OUTPUTS = (*PREPARED_FILES, NOISE_FILE, "status.json")


def _plain(value: Any) -> Any:
    """Numpy scalars and arrays, tuples and paths as plain JSON types (NaN/inf as None)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer, int)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, Path):
        return str(value)
    return value


def prepare_cube(
    path: str | Path,
    outdir: str | Path,
    *,
    restfreq: float | None = None,
    beam: tuple[float, float, float] | None = None,
    max_voxels: float = DEFAULT_MAX_VOXELS,
    velocity_convention: str = "auto",
    n_sigma: float = 4.0,
    pad_beams: float = 2.0,
    pad_channels: int = 3,
) -> dict[str, Any]:
    """Read a cube, find its emission, trim it, guess the disc parameters and write the galaxy's files.

    Parameters
    ----------
    path
        The input FITS cube.
    outdir
        Folder for ``cube.fits``, ``mask.fits``, ``obspars.json`` and ``prepare.json`` (made if needed).
    restfreq, beam, max_voxels, velocity_convention
        As for :func:`~kinms_core.ingest.read_cube` (Hz; arcsec, arcsec, deg; voxels; auto, radio or optical).
    n_sigma
        Detection threshold of the mask (:func:`~kinms_core.noise.signal_mask`).
    pad_beams, pad_channels
        Padding of the trimmed cube around the emission (:func:`~kinms_core.trim.trim_cube`).

    Returns
    -------
    dict
        The content of ``prepare.json``: ``input``, ``rms`` (Jy/beam), ``n_detected``, ``n_sigma``, ``guesses``,
        ``bounds`` (name -> [min, max]), ``trim``, ``beam``, ``beam_spread``, ``warnings``, ``original_obspars``
        and ``files``.
    """
    path = Path(path)
    outdir = Path(outdir)
    refuse_overwrite([path], [outdir / name for name in _OUTPUTS])
    cube = read_cube(path, restfreq=restfreq, beam=beam, max_voxels=max_voxels, velocity_convention=velocity_convention)
    noise, mask = noise_and_mask(cube.data, cube.obspars, n_sigma=n_sigma, source=str(path))
    check_cube_values(cube.data, noise.rms, mask, source=str(path))
    mask, others = _other_sources(cube, mask, noise)
    n_detected = int(mask.sum())
    original = cube.obspars
    trimmed, info = trim_cube(cube, mask, pad_beams=pad_beams, pad_channels=pad_channels)
    del cube, mask
    noise = noise.window(*info.slices)
    guesses = first_guesses(trimmed, trimmed.mask, noise.rms)
    check_guesses(guesses, source=str(path))
    bounds = data_bounds(trimmed, guesses)
    return _write_prepared(
        outdir, path, trimmed, info.to_dict(), original, noise, n_detected, n_sigma, guesses, bounds, others
    )


def _other_sources(cube: Cube, mask: np.ndarray, noise: NoiseModel) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """The galaxy's part of the mask; other sources (:func:`~kinms_core.noise.separate_sources`) are blanked in the
    cube (NaN: the fit ignores them) and reported."""
    snr = np.array(cube.data, dtype=np.float32)
    noise.divide(snr)
    galaxy, others, records = separate_sources(mask, snr)
    del snr
    if records:
        cube.data[others] = np.nan
        message = (
            f"{cube.name}: {len(records)} faint detection(s) apart from the galaxy (companions or artefacts, e.g. at "
            f"a primary-beam corrected field's noisy edge) are blanked and not fitted: "
            + "; ".join(f"{r['voxels']} voxels at x {r['x']}, y {r['y']}, channels {r['channels']}" for r in records)
        )
        log.warning("%s", message)
        cube.warnings.append(message)
    return galaxy, records


def noise_and_mask(
    data: np.ndarray, obspars: ObsPars, *, n_sigma: float = 4.0, source: str = "cube"
) -> tuple[NoiseModel, np.ndarray]:
    """The cube's noise model and signal mask, each measured knowing the other: the noise first with statistics
    that resist the emission, the mask with that noise, then the noise again without the masked emission and the
    mask with the final noise (:func:`~kinms_core.noise.noise_model`, :func:`~kinms_core.noise.signal_mask`)."""
    noise = noise_model(data, obspars)
    mask = signal_mask(data, noise.rms, obspars, n_sigma=n_sigma, source=source, noise=noise)
    # a cube that is all "emission" (continuum left in) leaves no voxels to measure the noise without it
    check_detected_fraction(data, mask, source=source)
    noise = noise_model(data, obspars, emission=mask)
    mask = signal_mask(data, noise.rms, obspars, n_sigma=n_sigma, source=source, noise=noise)
    return noise, mask


def _write_prepared(
    outdir: Path,
    path: Path,
    trimmed: Cube,
    trim: dict[str, Any],
    original: ObsPars,
    noise: NoiseModel,
    n_detected: int,
    n_sigma: float,
    guesses: dict[str, float],
    bounds: dict[str, tuple[float, float]],
    others: list[dict[str, Any]],
) -> dict[str, Any]:
    outdir.mkdir(parents=True, exist_ok=True)
    write_cube(outdir / "cube.fits", trimmed.data, header=trimmed.header)
    mask_header = trimmed.header.copy()
    mask_header["BUNIT"] = ""
    mask_header["BTYPE"] = "Mask"
    with atomic_path(outdir / "mask.fits") as tmp:
        fits.PrimaryHDU(data=trimmed.mask.astype(np.uint8), header=mask_header).writeto(tmp, output_verify="fix")
    noise_path = outdir / NOISE_FILE
    if noise.kind == "map":
        noise_header = trimmed.header.copy()
        noise_header["BTYPE"] = "Noise"
        write_cube(noise_path, noise.cube(trimmed.data.shape), header=noise_header)
    elif noise_path.exists():
        noise_path.unlink()  # a uniform noise now: an old map must not be read with the new cube
    trimmed.obspars.to_json(outdir / "obspars.json")
    summary = _plain(
        {
            "input": str(path),
            "rms": noise.rms,
            "rms_unit": "Jy/beam",
            "noise": noise.describe(),
            "other_sources": others,
            "n_detected": n_detected,
            "n_sigma": n_sigma,
            "guesses": guesses,
            "bounds": {name: list(pair) for name, pair in bounds.items()},
            "trim": trim,
            "beam": list(trimmed.obspars.beam),
            "beam_spread": trimmed.obspars.provenance.beam_spread,
            "warnings": list(trimmed.warnings),
            "original_obspars": original.to_dict(),
            "files": list(PREPARED_FILES) + ([NOISE_FILE] if noise.kind == "map" else []),
        }
    )
    write_text_atomic(outdir / "prepare.json", json.dumps(summary, indent=2, sort_keys=True) + "\n")
    log.info(
        "%s: prepared in %s (%s noise, rms %.3g Jy/beam, %d voxels detected)",
        path,
        outdir,
        noise.kind,
        noise.rms,
        n_detected,
    )
    return summary


@dataclass
class Prepared:
    """A folder written by :func:`prepare_cube`, read back.

    Attributes
    ----------
    data : numpy.ndarray
        float64 ``(nv, ny, nx)`` trimmed cube (Jy/beam, NaN where blank).
    obspars : ObsPars
        Its obspars.
    mask : numpy.ndarray
        bool signal mask on the same grid.
    rms : float
        Typical noise (Jy/beam).
    noise : numpy.ndarray or None
        Noise per voxel (Jy/beam) when it varies across the cube (``noise.fits``), else None.
    n_detected : int
        Number of detected voxels (of the untrimmed mask; trimming never cuts any).
    guesses : dict
        First guesses (:func:`~kinms_core.guesses.first_guesses`).
    bounds : dict
        ``name -> (min, max)`` data-derived bounds.
    header : astropy.io.fits.Header
        Header of ``cube.fits``.
    info : dict
        The whole of ``prepare.json``.
    outdir : pathlib.Path
        The folder.
    """

    data: np.ndarray
    obspars: ObsPars
    mask: np.ndarray
    rms: float
    n_detected: int
    guesses: dict[str, float]
    bounds: dict[str, tuple[float, float]]
    header: fits.Header
    info: dict[str, Any]
    outdir: Path
    noise: np.ndarray | None = None

    @property
    def cube(self) -> Cube:
        """The trimmed cube as a :class:`~kinms_core.ingest.Cube` (with its mask)."""
        return Cube(
            data=self.data,
            obspars=self.obspars,
            velocities=self.obspars.velocities,
            header=self.header,
            wcs=WCS(self.header).celestial,
            path=self.outdir / "cube.fits",
            warnings=list(self.info.get("warnings", [])),
            mask=self.mask,
        )


def load_prepared(outdir: str | Path) -> Prepared:
    """Read a folder written by :func:`prepare_cube`.

    Raises
    ------
    MissingInputError
        A file is missing (the message says which and how to make it).
    CorruptFileError
        The files disagree with each other or are not what :func:`prepare_cube` writes.
    """
    outdir = Path(outdir)
    missing = [name for name in PREPARED_FILES if not (outdir / name).exists()]
    if missing:
        raise MissingInputError(
            f"{outdir}: no prepared cube (missing {', '.join(missing)}): run `kinms-core prepare CUBE -o {outdir}` "
            "(or kinms_core.prepare.prepare_cube) first"
        )
    info = read_json_object(outdir / "prepare.json", remedy="prepare the cube again")
    lacking = [key for key in ("rms", "n_detected", "guesses", "bounds") if key not in info]
    if lacking:
        raise CorruptFileError(f"{outdir / 'prepare.json'} lacks {lacking}: prepare the cube again")
    obspars = ObsPars.from_json(outdir / "obspars.json")
    with fits.open(outdir / "cube.fits") as hdul:
        header = hdul[0].header.copy()
        data = np.array(hdul[0].data, dtype=np.float64)
    with fits.open(outdir / "mask.fits") as hdul:
        mask = np.array(hdul[0].data) > 0
    if data.shape != obspars.shape or mask.shape != obspars.shape:
        raise CorruptFileError(
            f"{outdir}: cube.fits {data.shape}, mask.fits {mask.shape} and obspars.json {obspars.shape} disagree: "
            "prepare the cube again"
        )
    noise = None
    if (outdir / NOISE_FILE).exists():
        with fits.open(outdir / NOISE_FILE) as hdul:
            noise = np.array(hdul[0].data, dtype=np.float64)
        if noise.shape != data.shape:
            raise ValueError(f"{outdir}: noise.fits {noise.shape} and cube.fits {data.shape} disagree: prepare again")
    bounds = {name: (float(pair[0]), float(pair[1])) for name, pair in info["bounds"].items()}
    return Prepared(
        data=data,
        obspars=obspars,
        mask=mask,
        rms=float(info["rms"]),
        n_detected=int(info["n_detected"]),
        guesses={k: float(v) for k, v in info["guesses"].items()},
        bounds=bounds,
        header=header,
        info=info,
        outdir=outdir,
        noise=noise,
    )
