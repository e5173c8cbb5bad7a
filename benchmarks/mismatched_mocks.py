"""Mismatched mock cubes: galaxies that our fit model cannot describe exactly, made by KinMS's own code.

Each mock is a KinMS 3.0.x cloudlet model (``kinms.KinMS(...).model_cube``, never ``kinms_core.model``) of a disc
with an arctan rotation curve and one to three "mismatch" features, plus beam-correlated Gaussian noise or real
noise cut from an emission-free part of an observed cube in ``../shared/real`` (turned or mirrored, the beam's
position angle with it). About 10% are null mocks (exponential disc, arctan curve, correlated noise: exactly our
model) as a control. They calibrate whether fitted errors are honest: pull widths ``(fit - truth) / sigma`` and 68%
coverage.

Features (names as in :attr:`MockSpec.features`; at most one surface-brightness feature per mock):

- surface brightness: ``ring`` (Gaussian ring), ``hole`` (exponential with a central hole), ``core`` (exponential
  plus a compact Gaussian core), ``clumps`` (exponential plus Gaussian clumps), ``bar`` (exponential plus an
  elongated Gaussian in the disc plane), ``spiral`` (two-armed logarithmic density wave), ``lopsided`` (m = 1
  modulation); the last four are cloudlets placed here and given to KinMS as ``inClouds`` (``flux_clouds`` for the
  weighted ones);
- kinematics: ``radial_flow`` (``kinms.radial_motion.pure_radial``, +-5-20 km/s; the sign is KinMS's, and inflow and
  outflow differ only in which side is near), ``bisymmetric`` (``radial_motion.bisymmetric_flow``, v2t and v2r
  5-20 km/s; aligned with the bar when both are present), ``sigma_gradient`` (dispersion falling linearly from
  18-30 to 4-8 km/s at the emission radius), ``thick`` (exponential scale height 8-20% of the emission radius),
  ``warp`` (PA and inclination each changing by 3-10 deg over the outer disc).

The truth is expressed in the parameters of :mod:`kinms_core.parametric`, with kinms_core's conventions, so that a
fit of the written file is compared with it directly:

- ``flux``: the total flux (Jy km/s) of the cube: KinMS's ``intFlux`` (cloudlets falling outside the cube are
  dropped and the rest scaled to it, as in kinms_core); ``vflat`` and ``rturn`` (km/s, arcsec): those of the arctan
  curve KinMS was given (every mock has one; the mismatch is in everything else);
- ``xc, yc``: the kinematic centre (KinMS's ``phaseCent``, the centre of rotation), in arcsec from the reference
  pixel (the cube's ``ceil(n / 2)``) along +x and +y; for a lopsided disc the light's centroid is elsewhere;
- ``vsys``: the absolute radio velocity (km/s) of the centre of rotation;
- ``pa`` (receding side, north through east) and ``inc``: KinMS's; for a warp, the flux-weighted means of ``pa(r)``
  and ``inc(r)`` over the cloudlets (the disc plane's, not the thick disc's apparent flattening);
- ``sigma``: the constant dispersion, or the flux-weighted mean of the profile for ``sigma_gradient`` (its
  flux-weighted RMS is ``extras["sigma_rms"]``);
- ``scalerad``: the exponential component's scale radius when there is one (absent for ``ring``).

``MockSpec.ambiguous`` lists, per mock, the truths that are conventions rather than exact values of a model our fit
could match (warp: pa, inc; sigma_gradient: sigma; any surface feature: scalerad): a calibration may exclude them.

Grid and beam conventions are kinms_core's: the header is :func:`kinms_core.fitsio.obspars_header` with the reference
pixel at the model's centre ``ceil(n / 2)`` (KinMS's own FITS writer is one pixel off on odd axes), ``vsys`` sits
within a few channels of the central channel coordinate ``nv / 2``. KinMS draws its beam mirrored and, off the axes,
distorted, so its clean cube (``cleanOut=True``) is convolved here with the exact elliptical Gaussian of the header's
beam (FITS BPA), centred like KinMS's at ``n / 2`` (half a pixel on from the binning centre on odd axes), and scaled
as KinMS does (``sum(cube) dv / sum(psf) = flux``). ``tests/test_mismatched_mocks.py`` proves the mapping: a null
mock equals ``kinms_core.model_cube`` of its truth within Monte-Carlo noise.

Usage::

    python benchmarks/mismatched_mocks.py -n 120 --seed 1 -o benchmarks/out/mismatched [--montage]
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import logging
import math
import os
import sys
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from astropy.io import fits
from scipy import ndimage, signal

from kinms_core.constants import FWHM_TO_SIGMA
from kinms_core.fitsio import obspars_header
from kinms_core.obspars import ObsPars
from kinms_core.simulate import beam_correlated_noise

__all__ = [
    "DESCRIBES",
    "FEATURES",
    "KINEMATIC_FEATURES",
    "REAL_SOURCES",
    "SURFACE_FEATURES",
    "TRUTH_PARAMETERS",
    "MockSpec",
    "draw_design",
    "draw_spec",
    "emission_mask",
    "main",
    "make_montage",
    "noise_cube",
    "noise_is_clean",
    "noise_symmetry",
    "noiseless_cube",
    "real_cutout",
    "truth_table",
    "turn_beam",
    "turn_square",
    "write_mock",
]

log = logging.getLogger("mismatched_mocks")

SURFACE_FEATURES = ("ring", "hole", "core", "clumps", "bar", "spiral", "lopsided")
KINEMATIC_FEATURES = ("radial_flow", "bisymmetric", "sigma_gradient", "thick", "warp")
FEATURES = SURFACE_FEATURES + KINEMATIC_FEATURES
#: Surface features made of cloudlets placed here (``inClouds``) rather than KinMS sampling ``sbProf``.
CLOUD_FEATURES = ("clumps", "bar", "spiral", "lopsided")
TRUTH_PARAMETERS = ("flux", "pa", "inc", "xc", "yc", "vsys", "sigma", "vflat", "rturn", "scalerad")
#: The library's model families (:data:`kinms_core.family_errors.ALTERNATIVES`) and the features of these mocks each
#: describes: the surface brightness from the data describes every surface feature, lopsidedness included.
DESCRIBES = {
    "radial": ("radial_flow",),
    "bisymmetric": ("bisymmetric",),
    "thick": ("thick",),
    "warp": ("warp",),
    "sigma_linear": ("sigma_gradient",),
    "lopsided": ("lopsided",),
    "data": SURFACE_FEATURES,
}

#: Cloudlets per mock: enough that the model's Monte-Carlo noise stays well below the thermal noise at S/N 50.
N_CLOUDS = 2**22
#: Radius enclosing 95% of an exponential disc's flux, in scale radii (solves 1 - (1 + x) exp(-x) = 0.95); the
#: "emission radius" of a mock.
EXP_R95 = 4.743864518

# Which mocks are nulls and which have real noise: fixed slots of (index + seed), so that a set of any size has
# 10% nulls and 25% real-noise mocks, cycling over the three observed cubes.
_NULL_EVERY = 10
_REAL_EVERY, _REAL_SLOT = 4, 3
_FEATURE_COUNTS, _FEATURE_COUNT_P = (1, 2, 3), (0.35, 0.4, 0.25)

# Line-free channels kept on each side of the line, at least.
_MIN_FREE_CHANNELS = 3
_MIN_SIDE, _MAX_SIDE = 32, 64
_MIN_CHANNELS, _MAX_CHANNELS = 20, 40


@dataclass(frozen=True)
class RealSource:
    """An observed cube whose emission-free voxels give real noise.

    ``bins`` are the channel binnings allowed (HI cubes of 3.3 km/s channels are binned towards our 5-20 km/s).
    ``edge_mask`` is a signal mask file beside the cube, added to the emission found here. ``kinds`` are the kinds
    of channel runs a cutout may take: ``window`` (consecutive channels, the box avoiding the emission in all of
    them) and ``line_free`` (channels free of emission over the whole field, in order).
    """

    folder: str
    filename: str
    bins: tuple[int, ...] = (1,)
    edge_mask: str | None = None
    kinds: tuple[str, ...] = ("window", "line_free")


REAL_SOURCES = {
    "ngc4324_co_carma": RealSource("ngc4324_co_carma", "NGC4324.fits"),
    # In NGC 4047's line channels the field around the disc holds interferometric bowls and faint blobs of both
    # signs up to 7 sigma (smoothed): only its line-free channels are used, over the whole field.
    "ngc4047_co_carma": RealSource(
        "ngc4047_co_carma",
        "NGC4047.co.smo7msk.K.fits.gz",
        edge_mask="NGC4047.co.smo7_dil.mask.fits.gz",
        kinds=("line_free",),
    ),
    "eso121g6_hi_atca": RealSource("eso121g6_hi_atca", "eso121-g6.fits", bins=(1, 2, 3)),
}
_REAL_ORDER = tuple(REAL_SOURCES)


def real_data_root() -> Path:
    """Folder of the observed cubes: ``$KINMS_REAL_DATA``, else ``../shared/real`` beside the checkout."""
    if os.environ.get("KINMS_REAL_DATA"):
        return Path(os.environ["KINMS_REAL_DATA"])
    return Path(__file__).resolve().parents[2] / "shared" / "real"


# ---------------------------------------------------------------------------------------------------- the spec
@dataclass
class MockSpec:
    """Everything that defines one mock; every field is plain JSON (see :meth:`to_dict`).

    ``truth`` holds the parameters of :data:`TRUTH_PARAMETERS` (``scalerad`` only when the disc has an exponential
    component). ``surface`` is the surface-brightness model (``profile`` and its parameters, arcsec), ``kinematics``
    the parameters of each kinematic feature, ``cutout`` the recipe of a real-noise mock (source folder, channel
    binning, channels, corner, flips), ``extras`` derived descriptors (emission radius in beams, noise checks, ...).
    """

    name: str
    seed: int
    features: list[str]
    nx: int
    ny: int
    nv: int
    cellsize: float
    dv: float
    beam: tuple[float, float, float]
    truth: dict[str, float]
    snr: float
    noise: str
    rms: float
    v_start: float
    r_emission: float
    ra: float = 150.0
    dec: float = 30.0
    n_clouds: int = N_CLOUDS
    surface: dict[str, Any] = field(default_factory=dict)
    kinematics: dict[str, dict[str, float]] = field(default_factory=dict)
    cutout: dict[str, Any] | None = None
    ambiguous: list[str] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def obspars(self) -> ObsPars:
        """The grid: reference pixel at the model centre ``ceil(n / 2)``, channel 0 at ``v_start``."""
        return ObsPars(
            nx=self.nx,
            ny=self.ny,
            nv=self.nv,
            cellsize=self.cellsize,
            dv=self.dv,
            beam=tuple(self.beam),
            ra=self.ra,
            dec=self.dec,
            v_start=self.v_start,
        )

    @property
    def is_real_noise(self) -> bool:
        return self.cutout is not None

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["beam"] = list(self.beam)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MockSpec:
        values = dict(data)
        values["beam"] = tuple(values["beam"])
        return cls(**values)


# ---------------------------------------------------------------------------------------------- random design
def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(math.exp(rng.uniform(math.log(low), math.log(high))))


def _draw_features(rng: np.random.Generator) -> list[str]:
    """One to three features, at most one of them a surface-brightness feature, in a fixed order."""
    count = int(rng.choice(_FEATURE_COUNTS, p=_FEATURE_COUNT_P))
    while True:
        chosen = set(rng.choice(FEATURES, size=count, replace=False).tolist())
        if len(chosen & set(SURFACE_FEATURES)) <= 1:
            return [f for f in FEATURES if f in chosen]


def _draw_kinematics(rng: np.random.Generator, features: Sequence[str]) -> dict[str, Any]:
    """Geometry and velocities (radii as fractions of the emission radius or in beams), and the line's half-width
    ``half_width`` (km/s) that the band must hold."""
    kin: dict[str, Any] = {
        "inc": rng.uniform(20.0, 85.0),
        "pa": rng.uniform(0.0, 360.0),
        "sigma": rng.uniform(5.0, 20.0),
        "vflat": rng.uniform(80.0, 300.0),
        "rturn_beams": rng.uniform(0.5, 3.0),
    }
    extra_speed, sigma_max, inc_max = 0.0, kin["sigma"], kin["inc"]
    if "radial_flow" in features:
        kin["radial_flow"] = {"v_radial": float(rng.choice([-1.0, 1.0]) * rng.uniform(5.0, 20.0))}
        extra_speed += abs(kin["radial_flow"]["v_radial"])
    if "bisymmetric" in features:
        kin["bisymmetric"] = {
            "v2t": rng.uniform(5.0, 20.0),
            "v2r": rng.uniform(5.0, 20.0),
            "phib": rng.uniform(0.0, 180.0),
            "r_bar_frac": rng.uniform(0.3, 0.6),
        }
        extra_speed += kin["bisymmetric"]["v2t"] + kin["bisymmetric"]["v2r"]
    if "sigma_gradient" in features:
        kin["sigma_gradient"] = {"sigma_centre": rng.uniform(18.0, 30.0), "sigma_outer": rng.uniform(4.0, 8.0)}
        sigma_max = kin["sigma_gradient"]["sigma_centre"]
    if "thick" in features:
        kin["thick"] = {"scale_height_frac": rng.uniform(0.08, 0.2)}
    if "warp" in features:
        d_inc = float(rng.choice([-1.0, 1.0]) * rng.uniform(3.0, 10.0))
        if not 10.0 <= kin["inc"] + d_inc <= 89.0:
            d_inc = -d_inc
        kin["warp"] = {
            "d_pa": float(rng.choice([-1.0, 1.0]) * rng.uniform(3.0, 10.0)),
            "d_inc": d_inc,
            "r_start_frac": rng.uniform(0.4, 0.6),
        }
        inc_max = max(inc_max, kin["inc"] + d_inc)
    # The whole arctan curve (vflat) rather than its value at the emission radius: faint outer cloudlets reach it.
    kin["half_width"] = math.sin(math.radians(inc_max)) * (kin["vflat"] + extra_speed) + 3.0 * sigma_max
    return kin


def _velocity_axis(rng: np.random.Generator, dv: float, nv: int, v_offset_channels: float) -> tuple[float, float]:
    """``(vsys, v_start)``: a systemic velocity and the first channel's velocity putting it ``v_offset_channels``
    from the central channel coordinate ``nv / 2``."""
    vsys = round(rng.uniform(300.0, 8000.0), 3)
    return vsys, vsys - v_offset_channels * dv - dv * nv / 2.0


def _centre_offset(rng: np.random.Generator, radius: float) -> tuple[float, float]:
    """Uniform in a disc of ``radius`` (arcsec)."""
    r = radius * math.sqrt(rng.uniform())
    phi = rng.uniform(0.0, 2.0 * math.pi)
    return r * math.cos(phi), r * math.sin(phi)


def _synthetic_layout(rng: np.random.Generator, kin: Mapping[str, Any]) -> dict[str, Any] | None:
    """Grid, beam, centre and band of a mock with synthetic noise (None when the line cannot fit 40 channels)."""
    beam_px = rng.uniform(3.0, 5.0)
    cellsize = float(f"{_log_uniform(rng, 0.1, 2.0):.3g}")
    bmaj = beam_px * cellsize
    bmin = bmaj * rng.uniform(0.6, 1.0)
    bpa = rng.uniform(-90.0, 90.0)
    beam_g = math.sqrt(bmaj * bmin)
    # The emission radius leaves a beam (margin for the beam's smearing) plus a beam (centre offset) to the edge.
    r_max_beams = (_MAX_SIDE / 2 - 2.0 * beam_px) * cellsize / beam_g
    r_emission = rng.uniform(3.0, min(8.0, r_max_beams)) * beam_g
    xc, yc = _centre_offset(rng, bmaj)
    sides = []
    for offset in (xc, yc):
        need = math.ceil(2.0 * (r_emission + bmaj + abs(offset)) / cellsize) + int(rng.integers(0, 6))
        sides.append(int(np.clip(need, _MIN_SIDE, _MAX_SIDE)))
    n_free = int(rng.integers(_MIN_FREE_CHANNELS, 6))
    v_off = rng.uniform(-2.5, 2.5)
    spare = _MAX_CHANNELS - 2.0 * (abs(v_off) + n_free)
    dv_low = max(5.0, 2.0 * kin["half_width"] / spare)
    if dv_low > 20.0:
        return None
    dv = round(_log_uniform(rng, dv_low, 20.0), 3)
    need = math.ceil(2.0 * kin["half_width"] / dv + 2.0 * (abs(v_off) + n_free)) + int(rng.integers(0, 3))
    nv = int(np.clip(need, _MIN_CHANNELS, _MAX_CHANNELS))
    vsys, v_start = _velocity_axis(rng, dv, nv, v_off)
    return {
        "nx": sides[0],
        "ny": sides[1],
        "nv": nv,
        "cellsize": cellsize,
        "dv": dv,
        "beam": (bmaj, bmin, bpa),
        "r_emission": r_emission,
        "xc": xc,
        "yc": yc,
        "vsys": vsys,
        "v_start": v_start,
        "noise": "correlated",
        "cutout": None,
    }


# ------------------------------------------------------------------------------------------------- real noise
def emission_mask(data: np.ndarray, obspars: ObsPars) -> np.ndarray:
    """Conservative 3-D mask of the emission of an observed cube (True: emission or near it).

    The cube is smoothed by the beam spatially and a channel spectrally and divided by a local noise map (the
    robust scatter over channels, median-filtered over a few beams: primary-beam corrected cubes have noise rising
    to the field's edge); regions above 3.5 sigma larger than two beams by two channels are kept and grown into
    their 2 sigma surroundings; the result is dilated by a beam FWHM spatially and two channels spectrally.
    """
    finite = np.isfinite(data)
    bmaj_px = obspars.beam[0] / obspars.cellsize
    sig = bmaj_px * FWHM_TO_SIGMA
    weight = ndimage.gaussian_filter(finite.astype(float), (1.0, sig, sig))
    smooth = ndimage.gaussian_filter(np.where(finite, data, 0.0), (1.0, sig, sig))
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pixels outside an observed field
        smooth = np.where(weight > 0.5, smooth / weight, np.nan)
        local = 1.4826 * np.nanmedian(np.abs(smooth), axis=0)
    local = np.where(np.isfinite(local), local, np.nanmax(local))
    local = ndimage.median_filter(local, size=int(4 * bmaj_px) | 1)
    snr = np.nan_to_num(smooth / local)
    labels, count = ndimage.label(snr > 2.0)
    strong = np.unique(labels[snr > 3.5])
    strong = strong[strong > 0]
    min_voxels = 2 * 2 * obspars.beam_area_pixels
    sizes = ndimage.sum_labels(snr > 3.5, labels, index=strong)
    mask = np.isin(labels, strong[sizes >= min_voxels])
    radius = int(math.ceil(bmaj_px))
    yy, xx = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    mask = ndimage.binary_dilation(mask, structure=(np.hypot(xx, yy) <= bmaj_px)[None])
    return ndimage.binary_dilation(mask, structure=np.ones((5, 1, 1), bool))


def _bin_channels(cube: np.ndarray, k: int, reduce: str = "mean") -> np.ndarray:
    nb = cube.shape[0] // k
    blocks = cube[: nb * k].reshape(nb, k, *cube.shape[1:])
    return blocks.mean(axis=1) if reduce == "mean" else blocks.any(axis=1)


@dataclass
class _RealNoise:
    """An observed cube read once: data (Jy/beam, NaN outside the field), its emission mask, the cutout options."""

    source: RealSource
    data: np.ndarray
    obspars: ObsPars
    emission: np.ndarray
    options: list[dict[str, Any]] = field(default_factory=list)
    _binned: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    def binned(self, k: int) -> np.ndarray:
        """Data averaged over runs of ``k`` channels."""
        return self._binned_pair(k)[0]

    def binned_emission(self, k: int) -> np.ndarray:
        """Emission mask of :meth:`binned` (a binned channel has emission if any of its channels has)."""
        return self._binned_pair(k)[1]

    def nan_distance(self, k: int) -> np.ndarray:
        """Distance (pixels) from each pixel to the nearest pixel that is blank in some channel."""
        blank = ~np.isfinite(self.binned(k)).all(axis=0)
        if not blank.any():
            return np.full(blank.shape, np.inf)
        return ndimage.distance_transform_edt(~blank)

    def _binned_pair(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        if k not in self._binned:
            self._binned[k] = (_bin_channels(self.data, k), _bin_channels(self.emission, k, "any"))
        return self._binned[k]


def _box_sums(image: np.ndarray, n: int) -> np.ndarray:
    """Sum of ``image`` in every n x n box, indexed by the box's lower corner ``(y0, x0)``."""
    table = np.zeros((image.shape[0] + 1, image.shape[1] + 1))
    table[1:, 1:] = np.cumsum(np.cumsum(image, axis=0), axis=1)
    return table[n:, n:] - table[:-n, n:] - table[n:, :-n] + table[:-n, :-n]


def _allowed_corners(footprint: np.ndarray, nan_distance: np.ndarray, n: int) -> np.ndarray:
    """Lower corners of n x n boxes with no emission whose inscribed circle holds no NaN (the galaxy's region)."""
    if n > min(footprint.shape):
        return np.zeros((0, 0), bool)
    empty = _box_sums(footprint.astype(float), n) == 0
    centre = nan_distance[n // 2 : n // 2 + empty.shape[0], n // 2 : n // 2 + empty.shape[1]]
    return empty & (centre >= n / 2.0 + 1.0)


def _largest_box(footprint: np.ndarray, nan_distance: np.ndarray) -> int:
    """Largest allowed box side in [_MIN_SIDE, _MAX_SIDE], 0 if none (boxes that fit nest, so bisect)."""
    if not _allowed_corners(footprint, nan_distance, _MIN_SIDE).any():
        return 0
    low, high = _MIN_SIDE, _MAX_SIDE
    while low < high:
        mid = (low + high + 1) // 2
        if _allowed_corners(footprint, nan_distance, mid).any():
            low = mid
        else:
            high = mid - 1
    return low


def _cutout_options(real: _RealNoise) -> list[dict[str, Any]]:
    """Every channel run usable as a mock's band: for each binning, runs of 20-40 consecutive channels, and runs of
    as many line-free channels (a channel free of emission everywhere) taken in order, with the largest box."""
    options = []
    for k in real.source.bins:
        emission = real.binned_emission(k)
        nan_distance = real.nan_distance(k)
        line_free = np.flatnonzero(~emission.any(axis=(1, 2)))
        runs = {"window": np.arange(emission.shape[0]), "line_free": line_free}
        for kind in real.source.kinds:
            channels = runs[kind]
            counts = np.concatenate([np.zeros((1, *emission.shape[1:])), np.cumsum(emission[channels], axis=0)])
            for length in range(_MIN_CHANNELS, min(_MAX_CHANNELS, len(channels)) + 1):
                for start in range(len(channels) - length + 1):
                    footprint = (counts[start + length] - counts[start]) > 0
                    side = _largest_box(footprint, nan_distance)
                    if side:
                        chans = channels[start : start + length]
                        options.append({"kind": kind, "bin": k, "channels": chans.tolist(), "max_side": side})
    return options


@functools.lru_cache(maxsize=4)
def _real_noise(folder: str) -> _RealNoise:
    from kinms_core.ingest import read_cube

    source = REAL_SOURCES[folder]
    root = real_data_root() / folder
    cube = read_cube(root / source.filename)
    emission = emission_mask(cube.data, cube.obspars)
    if source.edge_mask:
        edge = np.nan_to_num(read_cube(root / source.edge_mask).data) > 0
        emission |= ndimage.binary_dilation(edge, structure=np.ones((5, 3, 3), bool))
    real = _RealNoise(source=source, data=cube.data, obspars=cube.obspars, emission=emission)
    real.options = _cutout_options(real)
    log.info("%s: %d cutout options", folder, len(real.options))
    return real


def turn_square(cube: np.ndarray, cutout: Mapping[str, Any]) -> np.ndarray:
    """Apply a cutout's turns to a ``(nv, n, n)`` cube, in this order: ``transpose`` (swap x and y), ``mirror``
    (reverse x), ``rotate180``, ``reverse_channels``. The eight turns and mirrors of the square let the few
    emission-free boxes of an observed cube put different noise over each mock's galaxy."""
    if cutout["transpose"]:
        cube = np.swapaxes(cube, 1, 2)
    if cutout["mirror"]:
        cube = cube[:, :, ::-1]
    if cutout["rotate180"]:
        cube = cube[:, ::-1, ::-1]
    if cutout["reverse_channels"]:
        cube = cube[::-1]
    return cube


def turn_beam(beam: tuple[float, float, float], cutout: Mapping[str, Any]) -> tuple[float, float, float]:
    """The beam of noise turned by :func:`turn_square`: its major axis ``(-sin bpa, cos bpa)`` in ``(x, y)`` becomes
    ``(cos bpa, -sin bpa)`` when x and y swap (``bpa -> 90 - bpa``) and ``(sin bpa, cos bpa)`` when x reverses
    (``bpa -> -bpa``); a half turn leaves a Gaussian as it is. The angle is returned in (-90, 90]."""
    bmaj, bmin, bpa = beam
    if cutout["transpose"]:
        bpa = 90.0 - bpa
    if cutout["mirror"]:
        bpa = -bpa
    return bmaj, bmin, 90.0 - (90.0 - bpa) % 180.0


def real_cutout(cutout: Mapping[str, Any]) -> np.ndarray:
    """The real noise ``(nv, n, n)`` in Jy/beam (NaN outside the observed field) of a cutout recipe."""
    real = _real_noise(cutout["folder"])
    data = real.binned(cutout["bin"])
    y0, x0, n = cutout["y0"], cutout["x0"], cutout["side"]
    noise = data[np.asarray(cutout["channels"]), y0 : y0 + n, x0 : x0 + n]
    return np.ascontiguousarray(turn_square(noise, cutout), dtype=float)


def noise_symmetry(noise: np.ndarray, obspars: ObsPars) -> dict[str, float]:
    """Statistics in which emission in a noise cube would show, on the cube smoothed by the beam and three channels
    and scaled to unit scatter: skewness; the raw mean over its standard error (``mean_z``, a beam by three channels
    counted as one independent sample); the numbers of connected regions above +3.5 and below -3.5 (``n_pos``,
    ``n_neg``) and the extreme values (``peak_pos``, ``peak_neg``, both positive)."""
    finite = np.isfinite(noise)
    sig = obspars.beam[0] / obspars.cellsize * FWHM_TO_SIGMA
    smooth = ndimage.gaussian_filter(np.where(finite, noise, 0.0), (1.0, sig, sig))
    weight = ndimage.gaussian_filter(finite.astype(float), (1.0, sig, sig))
    good = weight > 0.9
    values = np.where(good, smooth / np.maximum(weight, 1e-12), 0.0)
    values /= values[good].std()
    raw = noise[finite]
    independent = max(raw.size / (obspars.beam_area_pixels * 3.0), 1.0)
    return {
        "skewness": float(np.mean(values[good] ** 3)),
        "mean_z": float(raw.mean() / raw.std() * math.sqrt(independent)),
        "n_pos": int(ndimage.label(values > 3.5)[1]),
        "n_neg": int(ndimage.label(values < -3.5)[1]),
        "peak_pos": float(values.max()),
        "peak_neg": float(-values.min()),
    }


def noise_is_clean(stats: Mapping[str, float]) -> bool:
    """Whether :func:`noise_symmetry`'s statistics look like noise alone: total flux consistent with zero, positive
    and negative tails alike. Lenient enough for interferometric noise's heavy tails (NGC 4324's line-free boxes
    have a skewness near 0.3), strict enough to refuse a faint galaxy's edge."""
    tail_excess = stats["n_pos"] - stats["n_neg"] - 2.0 * math.sqrt(stats["n_neg"] + 1.0) - 2.0
    return (
        abs(stats["mean_z"]) < 3.0
        and abs(stats["skewness"]) < 0.5
        and tail_excess <= 0
        and stats["peak_pos"] <= stats["peak_neg"] + 1.5
    )


def _noise_spread(noise: np.ndarray, obspars: ObsPars) -> float:
    """How much the noise level varies over the field: the 95th over the 5th percentile of the RMS map averaged
    over boxes two beams wide (an RMS from a few channels alone scatters too much)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pixels outside an observed field
        variance = np.nanmean(noise**2, axis=0)
    finite = np.isfinite(variance)
    width = max(int(round(2.0 * obspars.beam[0] / obspars.cellsize)), 1)
    cover = ndimage.uniform_filter(finite.astype(float), width)
    smooth = ndimage.uniform_filter(np.where(finite, variance, 0.0), width) / np.maximum(cover, 1e-12)
    rms_map = np.sqrt(smooth[finite & (cover > 0.99)])
    return float(np.percentile(rms_map, 95) / np.percentile(rms_map, 5))


def _real_layout(rng: np.random.Generator, folder: str, kin: Mapping[str, Any]) -> dict[str, Any] | None:
    """Grid, beam, centre, band and noise cutout of a real-noise mock (None when no cutout holds the line)."""
    real = _real_noise(folder)
    cellsize = real.obspars.cellsize
    bmaj, bmin, bpa = real.obspars.beam
    bmaj_px, beam_g = bmaj / cellsize, math.sqrt(bmaj * bmin)
    # Emission radius at least two beams, a beam of margin and half a beam of centre offset.
    min_side = max(_MIN_SIDE, math.ceil(2.0 * (2.0 * beam_g / cellsize + 1.5 * bmaj_px)))
    v_off = rng.uniform(-1.5, 1.5)
    usable = []
    for option in real.options:
        dv = real.obspars.dv * option["bin"]
        band_ok = len(option["channels"]) >= 2.0 * (kin["half_width"] / dv + abs(v_off) + _MIN_FREE_CHANNELS)
        if band_ok and option["max_side"] >= min_side:
            usable.append(option)
    if not usable:
        return None
    option = usable[int(rng.integers(len(usable)))]
    k, channels = option["bin"], option["channels"]
    side = int(rng.integers(min_side, option["max_side"] + 1))
    emission = real.binned_emission(k)[channels].any(axis=0)
    nan_distance = real.nan_distance(k)
    corners = np.argwhere(_allowed_corners(emission, nan_distance, side))
    y0, x0 = (int(c) for c in corners[int(rng.integers(len(corners)))])
    cutout = {
        "folder": folder,
        "bin": k,
        "kind": option["kind"],
        "channels": channels,
        "y0": y0,
        "x0": x0,
        "side": side,
        "transpose": bool(rng.integers(2)),
        "mirror": bool(rng.integers(2)),
        "rotate180": bool(rng.integers(2)),
        "reverse_channels": bool(rng.integers(2)),
    }
    bmaj, bmin, bpa = turn_beam((bmaj, bmin, bpa), cutout)
    noise = real_cutout(cutout)
    dv = float(real.obspars.dv * k)
    nv = len(channels)
    grid = ObsPars(nx=side, ny=side, nv=nv, cellsize=cellsize, dv=dv, beam=(bmaj, bmin, bpa))
    stats = noise_symmetry(noise, grid)
    if not noise_is_clean(stats):
        log.warning("%s cutout %s failed the emission check %s; drawing another", folder, cutout, stats)
        return None
    xc, yc = _centre_offset(rng, 0.5 * bmaj)
    r_max_beams = (side / 2.0 - 1.5 * bmaj_px) * cellsize / beam_g
    r_emission = rng.uniform(min(3.0, r_max_beams), min(8.0, r_max_beams)) * beam_g
    vsys, v_start = _velocity_axis(rng, dv, nv, v_off)
    finite = np.isfinite(noise)
    spread = _noise_spread(noise, grid)
    edge = (not finite.all()) or spread > 1.3
    centre = np.hypot(*np.meshgrid(np.arange(side) - side // 2, np.arange(side) - side // 2))
    galaxy_region = np.broadcast_to(centre <= (r_emission + bmaj) / cellsize, noise.shape)
    return {
        "nx": side,
        "ny": side,
        "nv": nv,
        "cellsize": cellsize,
        "dv": dv,
        "beam": (bmaj, bmin, bpa),
        "r_emission": r_emission,
        "xc": xc,
        "yc": yc,
        "vsys": vsys,
        "v_start": v_start,
        "noise": f"real:{folder}" + (":edge" if edge else ""),
        "cutout": cutout,
        "rms": float(np.nanstd(noise)),
        "noise_check": {
            **stats,
            "nan_fraction": float(1.0 - finite.mean()),
            "noise_spread_p95_p5": spread,
            "rms_galaxy_region": float(np.std(noise[galaxy_region])),
        },
    }


# ---------------------------------------------------------------------------------------- surface brightness
def _draw_surface(rng: np.random.Generator, features: Sequence[str], r_em: float, beam_g: float) -> dict[str, Any]:
    """The surface-brightness model (arcsec): an exponential disc unless a surface feature replaces or adds to it."""
    scalerad = r_em / EXP_R95
    surface: dict[str, Any] = {"profile": "exponential", "scalerad": scalerad}
    if "ring" in features:
        return {
            "profile": "ring",
            "ring_radius": rng.uniform(0.45, 0.7) * r_em,
            "ring_width": rng.uniform(0.1, 0.15) * r_em,
        }
    if "hole" in features:
        surface.update(profile="hole", hole_radius=rng.uniform(0.25, 0.4) * r_em)
    elif "core" in features:
        surface.update(profile="core", core_fraction=rng.uniform(0.1, 0.3), core_sigma=rng.uniform(0.25, 0.4) * beam_g)
    elif "clumps" in features:
        count = int(rng.integers(3, 9))
        fractions = rng.dirichlet(np.ones(count)) * rng.uniform(0.15, 0.4)
        surface.update(
            profile="clumps",
            clump_radius=(rng.uniform(0.2, 0.85, count) * r_em).tolist(),
            clump_phase=rng.uniform(0.0, 360.0, count).tolist(),
            clump_sigma=(rng.uniform(0.2, 0.4, count) * beam_g).tolist(),
            clump_fraction=fractions.tolist(),
        )
    elif "bar" in features:
        surface.update(
            profile="bar",
            bar_sigma=rng.uniform(0.2, 0.35) * r_em,
            bar_axis_ratio=rng.uniform(0.2, 0.35),
            bar_angle=rng.uniform(0.0, 180.0),
            bar_fraction=rng.uniform(0.2, 0.4),
        )
    elif "spiral" in features:
        surface.update(
            profile="spiral",
            arm_amplitude=rng.uniform(0.4, 0.8),
            pitch=rng.uniform(12.0, 25.0),
            arm_phase=rng.uniform(0.0, 360.0),
            arm_fade_radius=0.2 * r_em,
        )
    elif "lopsided" in features:
        surface.update(profile="lopsided", m1_amplitude=rng.uniform(0.2, 0.5), m1_phase=rng.uniform(0.0, 360.0))
    return surface


def _radius_grid(spec: MockSpec) -> np.ndarray:
    """Profiles' radius grid (arcsec): a third of a pixel apart, out past the cube's corners (kinms_core's grid)."""
    step = spec.cellsize / 3.0
    r_max = 0.5 * math.hypot(spec.nx, spec.ny) * spec.cellsize + math.hypot(spec.truth["xc"], spec.truth["yc"])
    return np.arange(0.0, r_max + 2.0 * step, step)


def _sb_profile(surface: Mapping[str, Any], r: np.ndarray) -> np.ndarray:
    """Axisymmetric surface brightness (arbitrary scale); for cloudlet features, that of their exponential part."""
    if surface["profile"] == "ring":
        return np.exp(-0.5 * ((r - surface["ring_radius"]) / surface["ring_width"]) ** 2)
    sb = np.exp(-r / surface["scalerad"])
    if surface["profile"] == "hole":
        sb = np.where(r >= surface["hole_radius"], sb, 0.0)
    elif surface["profile"] == "core":
        # Amplitude from the flux fraction: an exponential holds 2 pi h^2, a Gaussian 2 pi s^2 (per unit peak).
        f, s, h = surface["core_fraction"], surface["core_sigma"], surface["scalerad"]
        sb = sb + f / (1.0 - f) * (h / s) ** 2 * np.exp(-0.5 * (r / s) ** 2)
    return sb


def _sample_radii(rng: np.random.Generator, r: np.ndarray, sb: np.ndarray, n: int) -> np.ndarray:
    """Radii following ``sb`` as KinMS samples them: inverse of the normalised trapezoid integral of 2 pi r sb."""
    from scipy.integrate import cumulative_trapezoid

    cdf = cumulative_trapezoid(sb * 2.0 * np.pi * r, r, initial=0.0)
    return np.interp(rng.uniform(size=n), cdf / cdf[-1], r)


def _extra_components(surface: Mapping[str, Any], n: int, rng: np.random.Generator) -> list[np.ndarray]:
    """In-plane positions ``(k, 2)`` (arcsec) of the cloudlets of clumps or a bar, ``n`` cloudlets in all."""
    if surface["profile"] == "clumps":
        parts = []
        counts = np.floor(np.asarray(surface["clump_fraction"]) * n).astype(int)
        for count, radius, phase, sigma in zip(
            counts, surface["clump_radius"], surface["clump_phase"], surface["clump_sigma"], strict=True
        ):
            centre = radius * np.array([math.cos(math.radians(phase)), math.sin(math.radians(phase))])
            parts.append(centre + rng.normal(0.0, sigma, (count, 2)))
        return parts
    if surface["profile"] == "bar":
        count = int(surface["bar_fraction"] * n)
        along = rng.normal(0.0, surface["bar_sigma"], count)
        across = rng.normal(0.0, surface["bar_sigma"] * surface["bar_axis_ratio"], count)
        c, s = math.cos(math.radians(surface["bar_angle"])), math.sin(math.radians(surface["bar_angle"]))
        return [np.column_stack([along * c - across * s, along * s + across * c])]
    return []


def _azimuthal_weights(spec: MockSpec, xy: np.ndarray) -> np.ndarray | None:
    """Relative cloudlet fluxes of a spiral or lopsided disc (None: equal)."""
    surface = spec.surface
    r, phi = np.hypot(xy[:, 0], xy[:, 1]), np.arctan2(xy[:, 1], xy[:, 0])
    if surface["profile"] == "spiral":
        # A logarithmic two-armed wave, faded out at the centre where its winding diverges.
        fade = 1.0 - np.exp(-((r / surface["arm_fade_radius"]) ** 2))
        winding = 2.0 * np.log(np.maximum(r, 1e-6) / (0.5 * spec.r_emission)) / math.tan(math.radians(surface["pitch"]))
        phase = 2.0 * (phi - math.radians(surface["arm_phase"])) - winding
        return 1.0 + surface["arm_amplitude"] * fade * np.cos(phase)
    if surface["profile"] == "lopsided":
        growth = np.minimum(r / (0.5 * spec.r_emission), 1.0)
        return 1.0 + surface["m1_amplitude"] * growth * np.cos(phi - math.radians(surface["m1_phase"]))
    return None


def _disc_cloudlets(spec: MockSpec, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray | None]:
    """Cloudlets ``(n, 3)`` of a cloudlet feature (x along the line of nodes, y, z in the disc's frame, arcsec, as
    KinMS's ``inClouds``) and their relative fluxes (None: equal): the exponential disc, sampled as KinMS samples a
    profile, plus any clumps or bar, weighted by any azimuthal pattern, thickened as KinMS thickens a disc."""
    extra = _extra_components(spec.surface, n, rng)
    n_disc = n - sum(len(part) for part in extra)
    r_grid = _radius_grid(spec)
    radius = _sample_radii(rng, r_grid, _sb_profile(spec.surface, r_grid), n_disc)
    phi = rng.uniform(0.0, 2.0 * np.pi, n_disc)
    xy = np.concatenate([np.column_stack([radius * np.cos(phi), radius * np.sin(phi)]), *extra])
    z = np.zeros(len(xy))
    if "thick" in spec.kinematics:
        height = spec.kinematics["thick"]["scale_height"]
        z = height * rng.exponential(1.0, len(xy)) * rng.choice([-1.0, 1.0], len(xy))
    return np.column_stack([xy, z]), _azimuthal_weights(spec, xy)


def _flux_radii(spec: MockSpec) -> tuple[np.ndarray, np.ndarray]:
    """Radii (arcsec) and weights describing how the flux is spread in radius, for flux-weighted means."""
    if spec.surface["profile"] in CLOUD_FEATURES:
        clouds, weights = _disc_cloudlets(spec, 2**18, np.random.default_rng([spec.seed, 3]))
        r = np.hypot(clouds[:, 0], clouds[:, 1])
        return r, np.ones_like(r) if weights is None else weights
    r = _radius_grid(spec)
    return r, _sb_profile(spec.surface, r) * r


# --------------------------------------------------------------------------------------------- radial profiles
def _ramp(r: np.ndarray, start: float, end: float) -> np.ndarray:
    return np.clip((r - start) / max(end - start, 1e-9), 0.0, 1.0)


def _warp_profiles(spec: MockSpec, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inclination and PA (deg) at radii ``r``: inner values ``inc0, pa0`` turning linearly over the outer disc."""
    warp = spec.kinematics["warp"]
    ramp = _ramp(r, warp["r_start"], spec.r_emission)
    return warp["inc0"] + warp["d_inc"] * ramp, warp["pa0"] + warp["d_pa"] * ramp


def _sigma_profile(spec: MockSpec, r: np.ndarray) -> np.ndarray:
    grad = spec.kinematics["sigma_gradient"]
    return grad["sigma_centre"] + (grad["sigma_outer"] - grad["sigma_centre"]) * _ramp(r, 0.0, spec.r_emission)


def _weighted_mean(values: np.ndarray, weights: np.ndarray) -> float:
    return float(np.sum(values * weights) / np.sum(weights))


# ---------------------------------------------------------------------------------------------------- design
def draw_design(index: int, seed: int = 0) -> MockSpec:
    """The mock ``index`` of set ``seed`` with everything drawn but the flux scale: fast (no model cube is made).

    Synthetic-noise mocks have their ``flux`` drawn and ``rms`` NaN; real-noise mocks their ``rms`` measured and
    ``flux`` NaN. :func:`draw_spec` fills the other from the S/N and the model's peak.
    """
    key = index + seed
    spec_seed = int(np.random.SeedSequence([seed, index]).generate_state(1)[0])
    rng = np.random.default_rng([spec_seed, 0])
    null = key % _NULL_EVERY == 0
    folder = (
        _REAL_ORDER[(key // _REAL_EVERY) % len(_REAL_ORDER)] if (not null and key % _REAL_EVERY == _REAL_SLOT) else None
    )
    features = [] if null else _draw_features(rng)
    for attempt in range(500):
        if attempt % 100 == 99 and not null:
            # A line too wide for every cutout of this cube (e.g. a steep dispersion profile in ESO 121-G6's narrow
            # bands): other features.
            features = _draw_features(rng)
        kin = _draw_kinematics(rng, features)
        layout = _real_layout(rng, folder, kin) if folder else _synthetic_layout(rng, kin)
        if layout is not None:
            break
    else:
        raise RuntimeError(f"mock {index} (seed {seed}): no grid holds the line after 500 draws")
    bmaj, bmin, _ = layout["beam"]
    beam_g = math.sqrt(bmaj * bmin)
    r_em = layout["r_emission"]
    truth = {
        "flux": float("nan") if folder else round(_log_uniform(rng, 2.0, 200.0), 4),
        "pa": kin["pa"],
        "inc": kin["inc"],
        "xc": layout["xc"],
        "yc": layout["yc"],
        "vsys": layout["vsys"],
        "sigma": kin["sigma"],
        "vflat": kin["vflat"],
        "rturn": kin["rturn_beams"] * beam_g,
    }
    surface = _draw_surface(rng, features, r_em, beam_g)
    kinematics = _kinematic_parameters(kin, features, surface, r_em, truth)
    if "scalerad" in surface:
        truth["scalerad"] = surface["scalerad"]
    spec = MockSpec(
        name=f"mm{index:04d}",
        seed=spec_seed,
        features=list(features),
        nx=layout["nx"],
        ny=layout["ny"],
        nv=layout["nv"],
        cellsize=layout["cellsize"],
        dv=layout["dv"],
        beam=tuple(float(b) for b in layout["beam"]),
        truth=truth,
        snr=round(_log_uniform(rng, 5.0, 50.0), 3),
        noise=layout["noise"],
        rms=layout.get("rms", float("nan")),
        v_start=layout["v_start"],
        r_emission=r_em,
        ra=round(rng.uniform(0.0, 360.0), 6),
        dec=round(rng.uniform(-80.0, 80.0), 6),
        surface=surface,
        kinematics=kinematics,
        cutout=layout["cutout"],
    )
    _set_mean_truths(spec)
    spec.extras["r_emission_beams"] = r_em / beam_g
    spec.extras["line_half_width"] = kin["half_width"]
    if "noise_check" in layout:
        spec.extras["noise_check"] = layout["noise_check"]
    spec.truth = {k: float(v) for k, v in spec.truth.items()}
    return spec


def _kinematic_parameters(
    kin: Mapping[str, Any], features: Sequence[str], surface: Mapping[str, Any], r_em: float, truth: Mapping[str, float]
) -> dict[str, dict[str, float]]:
    """Each kinematic feature's parameters, radii in arcsec."""
    out: dict[str, dict[str, float]] = {}
    if "radial_flow" in features:
        out["radial_flow"] = {"v_radial": kin["radial_flow"]["v_radial"], "r_ramp": truth["rturn"]}
    if "bisymmetric" in features:
        bis = dict(kin["bisymmetric"])
        r_bar = bis.pop("r_bar_frac") * r_em
        if surface["profile"] == "bar":
            # The flow follows the bar's potential: same angle in the disc plane, out to the bar's end.
            bis["phib"] = surface["bar_angle"]
            r_bar = 2.0 * surface["bar_sigma"]
        out["bisymmetric"] = {**bis, "r_bar": r_bar}
    if "sigma_gradient" in features:
        out["sigma_gradient"] = dict(kin["sigma_gradient"])
    if "thick" in features:
        out["thick"] = {"scale_height": kin["thick"]["scale_height_frac"] * r_em}
    if "warp" in features:
        warp = kin["warp"]
        out["warp"] = {
            "inc0": kin["inc"],
            "pa0": kin["pa"],
            "d_inc": warp["d_inc"],
            "d_pa": warp["d_pa"],
            "r_start": warp["r_start_frac"] * r_em,
        }
    return {name: {k: float(v) for k, v in params.items()} for name, params in out.items()}


def _set_mean_truths(spec: MockSpec) -> None:
    """Flux-weighted means for radially varying pa, inc and sigma, and the list of conventional truths."""
    ambiguous = []
    if "warp" in spec.kinematics or "sigma_gradient" in spec.kinematics:
        r, w = _flux_radii(spec)
        if "warp" in spec.kinematics:
            inc, pa = _warp_profiles(spec, r)
            spec.truth["inc"] = _weighted_mean(inc, w)
            spec.truth["pa"] = _weighted_mean(pa, w) % 360.0
            ambiguous += ["pa", "inc"]
        if "sigma_gradient" in spec.kinematics:
            sigma = _sigma_profile(spec, r)
            spec.truth["sigma"] = _weighted_mean(sigma, w)
            spec.extras["sigma_rms"] = math.sqrt(_weighted_mean(sigma**2, w))
            ambiguous.append("sigma")
    if "scalerad" in spec.surface and spec.surface["profile"] != "exponential":
        ambiguous.append("scalerad")
    spec.ambiguous = ambiguous


# ----------------------------------------------------------------------------------------------- model cubes
class _SummedFlows:
    """KinMS takes one radial-motion callable: this one adds several."""

    def __init__(self, flows: Sequence[Any]) -> None:
        self.flows = list(flows)

    def __call__(self, r_flat: np.ndarray, theta: np.ndarray, inc: np.ndarray) -> np.ndarray:
        return sum(flow(r_flat, theta, inc) for flow in self.flows)


def _kinms():
    """The KinMS package, imported without letting it silence every warning of the process (it calls
    ``warnings.filterwarnings("ignore")`` on import)."""
    with warnings.catch_warnings():
        import kinms
        from kinms.radial_motion import radial_motion
    return kinms, radial_motion


def _kinms_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("kinms")
    except PackageNotFoundError:
        return "(unknown version)"


def _flows(spec: MockSpec, r: np.ndarray):
    _, radial_motion = _kinms()
    flows = []
    if "radial_flow" in spec.kinematics:
        p = spec.kinematics["radial_flow"]
        flows.append(radial_motion.pure_radial(r, p["v_radial"] * _ramp(r, 0.0, p["r_ramp"])))
    if "bisymmetric" in spec.kinematics:
        p = spec.kinematics["bisymmetric"]
        rb = p["r_bar"]
        shape = np.interp(r, [0.0, 0.5 * rb, rb, 1.5 * rb], [0.0, 1.0, 1.0, 0.0])
        flows.append(radial_motion.bisymmetric_flow(r, p["v2t"] * shape, p["v2r"] * shape, p["phib"]))
    return _SummedFlows(flows) if flows else None


def _kinms_clean_cube(spec: MockSpec, n_clouds: int) -> np.ndarray:
    """KinMS's unconvolved cube ``(nv, ny, nx)`` of the mock, scaled to a total flux of 1 Jy km/s."""
    kinms, _ = _kinms()
    r = _radius_grid(spec)
    op = spec.obspars
    kwargs: dict[str, Any] = {
        "inc": spec.truth["inc"],
        "posAng": spec.truth["pa"],
        "gasSigma": spec.truth["sigma"],
        "sbProf": _sb_profile(spec.surface, r),
        "sbRad": r,
        "velRad": r,
        "velProf": spec.truth["vflat"] * 2.0 / np.pi * np.arctan(r / spec.truth["rturn"]),
        "intFlux": 1.0,
        # The reference pixel is the model centre, so KinMS's phase centre is the truth's offset as it is.
        "phaseCent": [spec.truth["xc"], spec.truth["yc"]],
        "vOffset": spec.truth["vsys"] - op.centre_velocity,
        "radial_motion_func": _flows(spec, r),
    }
    if "warp" in spec.kinematics:
        kwargs["inc"], kwargs["posAng"] = _warp_profiles(spec, r)
    if "sigma_gradient" in spec.kinematics:
        kwargs["gasSigma"] = _sigma_profile(spec, r)
    if "thick" in spec.kinematics:
        kwargs["diskThick"] = spec.kinematics["thick"]["scale_height"]
    if spec.surface["profile"] in CLOUD_FEATURES:
        clouds, weights = _disc_cloudlets(spec, n_clouds, np.random.default_rng([spec.seed, 1]))
        kwargs["inClouds"] = clouds
        kwargs["flux_clouds"] = weights
        n_clouds = len(clouds)
    # KinMS seeds four RandomStates with seed * (100, 101, 102, 103): keep it positive (0 would seed them alike).
    model = kinms.KinMS(
        spec.nx * spec.cellsize,
        spec.ny * spec.cellsize,
        spec.nv * spec.dv,
        spec.cellsize,
        spec.dv,
        list(spec.beam),
        nSamps=n_clouds,
        seed=1 + spec.seed % 1_000_000,
        cleanOut=True,
    )
    cube = model.model_cube(**kwargs)
    return np.ascontiguousarray(cube.T)


def _psf(spec: MockSpec) -> np.ndarray:
    """The header's beam: elliptical Gaussian, major axis at BPA from north (+y) through east (-x), peak 1 when
    centred, centred half a pixel on along odd axes (KinMS's beam is centred at ``n / 2``)."""
    bmaj, bmin, bpa = spec.beam
    s_maj = bmaj * FWHM_TO_SIGMA / spec.cellsize
    s_min = bmin * FWHM_TO_SIGMA / spec.cellsize
    half = int(math.ceil(6.0 * s_maj)) + 1
    offsets = np.arange(-half, half + 1, dtype=float)
    dy, dx = np.meshgrid(offsets - 0.5 * (spec.ny % 2), offsets - 0.5 * (spec.nx % 2), indexing="ij")
    theta = math.radians(bpa)
    major = (-math.sin(theta), math.cos(theta))
    along = major[0] * dx + major[1] * dy
    across = major[1] * dx - major[0] * dy
    return np.exp(-0.5 * ((along / s_maj) ** 2 + (across / s_min) ** 2))


_UNIT_CACHE: dict[str, np.ndarray] = {}


def _unit_cube(spec: MockSpec) -> np.ndarray:
    """Beam-convolved noiseless cube of the mock at 1 Jy km/s (Jy/beam); the last two are kept, since
    :func:`draw_spec` and :func:`write_mock` ask for the same one in turn."""
    model = {k: v for k, v in spec.to_dict().items() if k not in ("snr", "rms", "noise", "extras")}
    model["truth"] = {k: v for k, v in spec.truth.items() if k != "flux"}
    key = json.dumps(model, sort_keys=True, default=float)
    if key not in _UNIT_CACHE:
        clean = _kinms_clean_cube(spec, spec.n_clouds)
        psf = _psf(spec)
        cube = signal.fftconvolve(clean, psf[np.newaxis], mode="same", axes=(1, 2))
        # As KinMS: sum(cube) * dv / sum(psf) is the flux, whatever the convolution lost at the edges.
        cube *= psf.sum() / (cube.sum() * spec.dv)
        while len(_UNIT_CACHE) >= 2:
            _UNIT_CACHE.pop(next(iter(_UNIT_CACHE)))
        _UNIT_CACHE[key] = cube
    return _UNIT_CACHE[key]


def noiseless_cube(spec: MockSpec) -> np.ndarray:
    """The mock's true cube ``(nv, ny, nx)`` in Jy/beam (KinMS's cloudlets, the header's beam)."""
    return _unit_cube(spec) * spec.truth["flux"]


def noise_cube(spec: MockSpec) -> np.ndarray:
    """The mock's noise ``(nv, ny, nx)`` in Jy/beam: beam-correlated Gaussian or the real cutout (NaN outside its
    field)."""
    if spec.cutout is not None:
        return real_cutout(spec.cutout)
    return beam_correlated_noise(spec.obspars, spec.rms, np.random.default_rng([spec.seed, 2]))


def draw_spec(index: int, seed: int = 0, *, n_clouds: int = N_CLOUDS) -> MockSpec:
    """Mock ``index`` of set ``seed`` (deterministic in both), with the flux scale set by its peak S/N: synthetic
    noise gets ``rms = peak / snr``, real noise (whose rms is measured) ``flux = snr * rms / peak per Jy km/s``.
    Fewer ``n_clouds`` make quick, noisier models (tests)."""
    spec = dataclasses.replace(draw_design(index, seed), n_clouds=int(n_clouds))
    peak = float(_unit_cube(spec).max())
    if spec.is_real_noise:
        spec.truth["flux"] = spec.snr * spec.rms / peak
    else:
        spec.rms = spec.truth["flux"] * peak / spec.snr
    return spec


def write_mock(spec: MockSpec, path: str | Path) -> Path:
    """Write the mock's FITS cube ``(nv, ny, nx)`` float32: kinms_core's header (RA---SIN/DEC--SIN, VRAD in m/s,
    BUNIT Jy/beam, BMAJ/BMIN/BPA), the truth in HISTORY cards ``true <param> = <value>``."""
    cube = noiseless_cube(spec) + noise_cube(spec)
    header = obspars_header(spec.obspars)
    header["OBJECT"] = spec.name
    header["ORIGIN"] = "benchmarks/mismatched_mocks.py"
    header["HISTORY"] = f"mismatched mock {spec.name}: KinMS {_kinms_version()} cloudlets, seed {spec.seed}"
    header["HISTORY"] = f"features: {', '.join(spec.features) or 'none (null mock)'}"
    header["HISTORY"] = f"noise: {spec.noise}, rms {spec.rms:.6g} Jy/beam, peak S/N {spec.snr:.4g}"
    for name in TRUTH_PARAMETERS:
        if name in spec.truth:
            header["HISTORY"] = f"true {name} = {spec.truth[name]!r}"
    if spec.ambiguous:
        header["HISTORY"] = f"conventional truths: {', '.join(spec.ambiguous)}"
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fits.PrimaryHDU(data=cube.astype(np.float32), header=header).writeto(path, overwrite=True, output_verify="fix")
    return path


def truth_table(specs: Iterable[MockSpec]) -> pd.DataFrame:
    """One row per mock: name, features, grid, ``<param>_true`` for every truth, snr, noise, and a boolean column
    per feature."""
    rows = []
    for spec in specs:
        bmaj, bmin, bpa = spec.beam
        row: dict[str, Any] = {
            "name": spec.name,
            "features": ";".join(spec.features) or "none",
            "n_features": len(spec.features),
            "noise": spec.noise,
            "snr": spec.snr,
            "rms": spec.rms,
            "nx": spec.nx,
            "ny": spec.ny,
            "nv": spec.nv,
            "cellsize": spec.cellsize,
            "dv": spec.dv,
            "bmaj": bmaj,
            "bmin": bmin,
            "bpa": bpa,
            "v_start": spec.v_start,
            "r_emission": spec.r_emission,
        }
        for name in TRUTH_PARAMETERS:
            row[f"{name}_true"] = spec.truth.get(name, float("nan"))
        row["ambiguous"] = ";".join(spec.ambiguous)
        row["seed"] = spec.seed
        for feature in FEATURES:
            row[f"has_{feature}"] = feature in spec.features
        rows.append(row)
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------------- montage
def make_montage(specs: Sequence[MockSpec], folder: Path, out: Path) -> Path:
    """Moment-0 and moment-1 maps of the written mocks (as the pipeline reads and masks them), with the true centre
    and an arrow from it to the receding side along the true PA, for eyeballing."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from kinms_core.errors import NoEmissionError
    from kinms_core.ingest import read_cube
    from kinms_core.moments import major_axis_direction, moment0, moment1
    from kinms_core.noise import estimate_rms, signal_mask

    per_row = 4
    rows = math.ceil(len(specs) / per_row)
    fig, axes = plt.subplots(rows, 2 * per_row, figsize=(4.2 * per_row, 2.3 * rows), squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for i, spec in enumerate(specs):
        cube = read_cube(folder / f"{spec.name}.fits")
        data, op = cube.data, cube.obspars
        try:
            mask = signal_mask(data, estimate_rms(data), op)
        except NoEmissionError:
            mask = None
        mom0 = moment0(data, op.dv, mask)
        mom1 = moment1(data, cube.velocities, mask) - spec.truth["vsys"]
        vlim = spec.truth["vflat"] * math.sin(math.radians(spec.truth["inc"]))
        x0, y0 = op.reference_pixel
        xc, yc = x0 + spec.truth["xc"] / op.cellsize, y0 + spec.truth["yc"] / op.cellsize
        dx, dy = major_axis_direction(spec.truth["pa"])
        arrow = spec.r_emission / op.cellsize
        ax0, ax1 = axes[i // per_row, 2 * (i % per_row)], axes[i // per_row, 2 * (i % per_row) + 1]
        ax0.imshow(mom0, origin="lower", cmap="magma")
        ax1.imshow(mom1, origin="lower", cmap="RdBu_r", vmin=-vlim, vmax=vlim)
        for ax in (ax0, ax1):
            ax.plot([xc], [yc], "+", color="lime", ms=8)
            ax.annotate(
                "", (xc + arrow * dx, yc + arrow * dy), (xc, yc), arrowprops={"arrowstyle": "->", "color": "lime"}
            )
        noise = spec.noise.replace("real:", "").replace("_co_carma", "").replace("_hi_atca", "")
        ax0.set_title(f"{spec.name} S/N {spec.snr:.0f} {noise}", fontsize=7)
        ax1.set_title(", ".join(spec.features) or "null", fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    plt.close(fig)
    return out


# -------------------------------------------------------------------------------------------------------- CLI
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=120, help="number of mocks (default 120)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the set (default 1)")
    parser.add_argument("-o", "--out", type=Path, default=Path("benchmarks/out/mismatched"), help="output folder")
    parser.add_argument("--montage", action="store_true", help="also write montage.png of the first mocks")
    parser.add_argument("--montage-count", type=int, default=24, help="mocks in the montage (default 24)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    specs = []
    for index in range(args.n):
        spec = draw_spec(index, args.seed)
        write_mock(spec, args.out / f"{spec.name}.fits")
        specs.append(spec)
        log.info(
            "%s %s %s S/N %.1f (%d x %d x %d)",
            spec.name,
            spec.features,
            spec.noise,
            spec.snr,
            spec.nx,
            spec.ny,
            spec.nv,
        )
    truth_table(specs).to_csv(args.out / "truth.csv", index=False)
    (args.out / "specs.json").write_text(json.dumps([s.to_dict() for s in specs], indent=1) + "\n")
    log.info("wrote %d mocks to %s in %.0f s", len(specs), args.out, time.perf_counter() - start)
    if args.montage:
        path = make_montage(specs[: args.montage_count], args.out, args.out / "montage.png")
        log.info("montage: %s", path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
