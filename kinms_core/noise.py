"""Noise estimate, noise map and signal mask of a cube.

:func:`noise_model` measures how the noise varies across the field and along the band: a robust standard deviation
per pixel over its emission-free channels, smoothed over a few beams (primary-beam corrected cubes, the norm for
ALMA, NOEMA, CARMA, VLA and MeerKAT products, have noise rising towards the field's edge), times a factor per
channel (noisy band edges, atmospheric lines). When neither varies by more than :data:`MAP_VARIATION` the noise is
one number.

:func:`estimate_rms` is a robust RMS (1.4826 x median absolute deviation after iteratively clipping emission) of a
sample of the cube's finite voxels. :func:`signal_mask` finds the emission: it divides the cube by the noise (when
it varies), smooths it spatially with a beam-sized Gaussian and spectrally with a boxcar of a few channels, and
measures the smoothed cube's own noise; it labels the connected regions above ``grow_sigma`` that peak above
``n_sigma`` and hold at least a couple of resolution elements; it keeps those whose summed S/N beats both a floor and
twice the strongest negative region found the same way in the inverted cube (noise makes as many negative regions as
positive ones, so this is a reliability test that scales with the cube's size); and it dilates what is left by a
beam spatially and a channel spectrally. Work arrays are float32, per-region statistics use only the labelled
voxels, and the dilation works in the detections' bounding box, so a 512 x 512 x 256 cube takes about 5 s and well
under 1 GB beyond its data.

Limitations: a real negative signal (absorption) raises the bar for emission; an unresolved source narrower than a
few channels may fall below the floor (the pipeline fits resolved discs).
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage, signal

from .constants import FWHM_TO_SIGMA
from .errors import NoEmissionError
from .obspars import ObsPars

__all__ = [
    "MAP_VARIATION",
    "NoEmissionError",
    "NoiseModel",
    "estimate_rms",
    "noise_model",
    "separate_sources",
    "signal_mask",
]

log = logging.getLogger(__name__)

_MAD_TO_SIGMA = 1.482602218505602


def _sample(data: np.ndarray, max_samples: int) -> np.ndarray:
    """Finite values of a regular subsample of at most about ``max_samples`` voxels (float64)."""
    flat = data.reshape(-1)
    step = max(1, flat.size // max_samples)
    # An odd, non-power-of-two stride avoids sampling the same pixel column in every channel.
    if step > 1 and step % 2 == 0:
        step += 1
    sample = np.asarray(flat[::step], dtype=np.float64)
    return sample[np.isfinite(sample)]


def estimate_rms(
    data: np.ndarray,
    *,
    clip: float = 4.0,
    max_iter: int = 10,
    max_samples: int = 4_000_000,
) -> float:
    """Robust RMS of the noise in ``data``.

    The estimate is 1.4826 times the median absolute deviation from the median, recomputed after dropping values
    more than ``clip`` estimates from the median until it converges (emission is clipped away); on cubes larger
    than ``max_samples`` voxels it uses a regular subsample.

    Parameters
    ----------
    data
        Cube (any shape); NaNs are ignored.
    clip
        Clipping threshold in units of the current estimate.
    max_iter
        Most clipping iterations.
    max_samples
        Largest number of voxels used.

    Returns
    -------
    float
        The RMS in the data's unit (0 when the data are constant; NaN when there are no finite values).
    """
    values = _sample(np.asarray(data), max_samples)
    if values.size == 0:
        return float("nan")
    sigma = float("inf")
    for _ in range(max_iter):
        median = float(np.median(values))
        new_sigma = _MAD_TO_SIGMA * float(np.median(np.abs(values - median)))
        if new_sigma == 0.0:
            return 0.0
        kept = values[np.abs(values - median) < clip * new_sigma]
        converged = abs(new_sigma - sigma) <= 1e-4 * new_sigma or kept.size == values.size
        sigma, values = new_sigma, kept
        if converged or values.size < 16:
            break
    return float(sigma)


#: The noise is a map when it varies across the field or between channels by more than this rms (in log, measured
#: as what independent halves of the data share, :func:`noise_model`): smaller variations matter little to a fit.
MAP_VARIATION = 0.1
#: Smoothing of the per-pixel noise, Gaussian FWHM in beams (a local plane, so a wide window costs no bias).
MAP_SMOOTH_BEAMS = 3.0
# Fewest emission-free channels for a pixel's own noise estimate, and pixels for a channel's.
_MIN_CHANNELS = 5
_MIN_PIXELS = 100


@dataclass
class NoiseModel:
    """The noise of a cube: ``rms`` everywhere, or ``rms * spatial[y, x] * spectral[v]``.

    Attributes
    ----------
    kind
        ``uniform`` or ``map``.
    rms
        The typical noise (cube units): the robust RMS of the emission-free voxels (divided by the map's shape).
    spatial
        ``(ny, nx)`` relative noise (median 1; NaN where there are no data), or None when uniform.
    spectral
        ``(nv,)`` relative noise per channel (median 1), or None when uniform.
    spread
        ``{"spatial": ..., "spectral": ...}``: the rms variation (in log) across the field and between channels that
        independent halves of the data agree on (also for a uniform model: it says why the map was not used).
    """

    kind: str
    rms: float
    spatial: np.ndarray | None = None
    spectral: np.ndarray | None = None
    spread: dict[str, float] = field(default_factory=dict)

    def cube(self, shape: tuple[int, int, int]) -> np.ndarray:
        """Noise per voxel, ``(nv, ny, nx)`` float64 (``rms`` everywhere when uniform)."""
        if self.kind == "uniform" or self.spatial is None or self.spectral is None:
            return np.full(shape, self.rms)
        return self.rms * self.spectral[:, None, None] * self.spatial[None, :, :]

    def divide(self, work: np.ndarray) -> None:
        """Divide a ``(nv, ny, nx)`` array by the noise in place (no full-size temporary)."""
        work /= np.float32(self.rms) if work.dtype == np.float32 else self.rms
        if self.kind == "map" and self.spatial is not None and self.spectral is not None:
            work /= self.spectral[:, None, None].astype(work.dtype)
            work /= self.spatial[None, :, :].astype(work.dtype)

    def window(self, v: slice, y: slice, x: slice) -> NoiseModel:
        """The noise of a sub-cube ``[v, y, x]`` (e.g. the trimmed cube)."""
        if self.kind != "map" or self.spatial is None or self.spectral is None:
            return self
        return NoiseModel(self.kind, self.rms, self.spatial[y, x].copy(), self.spectral[v].copy(), dict(self.spread))

    def describe(self) -> dict[str, object]:
        """What prepare.json records."""
        out: dict[str, object] = {"model": self.kind, "rms": self.rms, "spread": dict(self.spread)}
        if self.kind == "map":
            out["spatial_range"] = [float(np.nanmin(self.spatial)), float(np.nanmax(self.spatial))]
            out["spectral_range"] = [float(np.min(self.spectral)), float(np.max(self.spectral))]
        return out


def _local_linear(values: np.ndarray, weights: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian-weighted local linear regression of a 2-D map at every pixel (missing values have weight 0).

    Unlike a weighted average, a local plane follows a gradient without bias, also at the edge of the data: a
    primary-beam corrected cube's noise rises steeply towards the field's edge, where an average of the inner,
    quieter pixels would underestimate it and the edge's noise would pass for emission.
    """
    half = int(math.ceil(3.0 * sigma))
    offsets = np.arange(-half, half + 1, dtype=float)
    dy, dx = np.meshgrid(offsets, offsets, indexing="ij")
    kernel = np.exp(-0.5 * (dx * dx + dy * dy) / sigma**2)
    weighted = np.where(weights > 0, values * weights, 0.0)

    def smooth(field: np.ndarray, factor: np.ndarray) -> np.ndarray:
        # fftconvolve sums field(q) k(p - q): the kernel's offsets are p - q, hence the minus signs below.
        return signal.fftconvolve(field, kernel * factor, mode="same")

    one = np.ones_like(dx)
    s0, sx, sy = smooth(weights, one), smooth(weights, -dx), smooth(weights, -dy)
    sxx, sxy, syy = smooth(weights, dx * dx), smooth(weights, dx * dy), smooth(weights, dy * dy)
    t0, tx, ty = smooth(weighted, one), smooth(weighted, -dx), smooth(weighted, -dy)
    normal = np.stack([np.stack([s0, sx, sy], -1), np.stack([sx, sxx, sxy], -1), np.stack([sy, sxy, syy], -1)], -2)
    rhs = np.stack([t0, tx, ty], -1)
    out = np.full(values.shape, np.nan)
    enough = s0 > 1e-3 * s0.max()
    scaled = normal[enough] / s0[enough][:, None, None]
    # a window with data along a line only cannot fit a plane: its weighted mean instead
    plane = np.linalg.det(scaled) > 1e-6 * sigma**4
    fitted = np.where(enough)
    plane_at = tuple(axis[plane] for axis in fitted)
    mean_at = tuple(axis[~plane] for axis in fitted)
    out[plane_at] = np.linalg.solve(normal[plane_at], rhs[plane_at][..., None])[..., 0, 0]
    out[mean_at] = t0[mean_at] / s0[mean_at]
    return out


def _log_shape(work: np.ndarray, obspars: ObsPars, smooth_beams: float) -> np.ndarray:
    """The log of the noise's spatial shape (up to a constant): each pixel's robust standard deviation over its
    channels, smoothed by a local plane (:func:`_local_linear`); NaN where there are no data."""
    counts = np.isfinite(work).sum(axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pixels (outside a primary-beam cut) give NaN
        centre = np.nanmedian(work, axis=0)
        per_pixel = _MAD_TO_SIGMA * np.nanmedian(np.abs(work - centre), axis=0)
    usable = (counts >= _MIN_CHANNELS) & np.isfinite(per_pixel) & (per_pixel > 0)
    sigma_pixels = smooth_beams * obspars.beam[0] * FWHM_TO_SIGMA / obspars.cellsize
    # In log space a primary beam's Gaussian fall-off is a smooth quadratic, and the map stays positive.
    log_map = _local_linear(
        np.where(usable, np.log(np.where(usable, per_pixel, 1.0)), 0.0),
        np.where(usable, counts, 0).astype(float),
        sigma_pixels,
    )
    log_map[~np.isfinite(work).any(axis=0)] = np.nan
    return log_map


def _log_channels(work: np.ndarray, pixels: np.ndarray | None = None) -> np.ndarray:
    """The log of each channel's robust noise over ``pixels`` (bool ``(ny, nx)``, default all); NaN where a channel
    has fewer than ``_MIN_PIXELS`` values."""
    out = np.full(work.shape[0], np.nan)
    for v in range(work.shape[0]):
        values = work[v] if pixels is None else work[v][pixels]
        values = values[np.isfinite(values)]
        if values.size >= _MIN_PIXELS:
            out[v] = math.log(max(estimate_rms(values), 1e-300))
    return out


def _common_variation(first: np.ndarray, second: np.ndarray) -> float:
    """RMS of what two independent estimates of the same log-profile share: ``sqrt(cov(first, second))``, 0 when
    they do not co-vary (their differences are then estimation noise)."""
    both = np.isfinite(first) & np.isfinite(second)
    if both.sum() < 3:
        return 0.0
    a, b = first[both] - first[both].mean(), second[both] - second[both].mean()
    return math.sqrt(max(float(np.mean(a * b)), 0.0))


def noise_model(
    data: np.ndarray,
    obspars: ObsPars,
    *,
    emission: np.ndarray | None = None,
    smooth_beams: float = MAP_SMOOTH_BEAMS,
    threshold: float = MAP_VARIATION,
) -> NoiseModel:
    """Measure the noise of a cube, as one number or as a map times channel factors.

    Whether the noise varies is decided on independent halves of the data, so that small cubes, whose maps scatter
    by estimation alone, are not given a map: the spatial shape measured on the first and on the second half of the
    channels, and the channel factors measured on two interleaved halves of the field, vary together only as much
    as the noise really varies. A map is used when that common variation (an rms in log) exceeds ``threshold``.

    Parameters
    ----------
    data
        Cube ``(nv, ny, nx)``; NaN voxels are ignored.
    obspars
        Its grid and beam (the smoothing scale).
    emission
        bool mask of voxels to leave out (the emission, dilated), or None: the robust statistics then resist a
        line that covers a minority of each pixel's channels.
    smooth_beams
        FWHM of the map's smoothing, in beam FWHM.
    threshold
        Use the map when the spatial or the spectral common variation exceeds this rms (in log: 0.1 is 10%).

    Returns
    -------
    NoiseModel
    """
    data = np.asarray(data)
    work = np.array(data, dtype=np.float32)
    if emission is not None:
        work[np.asarray(emission, dtype=bool)] = np.nan
    rms = estimate_rms(work)
    if not (np.isfinite(rms) and rms > 0):
        return NoiseModel("uniform", rms)
    nv = work.shape[0]
    log_spatial = _log_shape(work, obspars, smooth_beams)
    spatial_variation = 0.0
    if nv >= 2 * _MIN_CHANNELS:
        halves = (
            _log_shape(work[: nv // 2], obspars, smooth_beams),
            _log_shape(work[nv // 2 :], obspars, smooth_beams),
        )
        spatial_variation = _common_variation(*halves)
    spatial = np.exp(log_spatial - np.nanmedian(log_spatial))
    whitened = work / spatial[None, :, :]
    # Interleaved blocks of a few beams each: the two halves cover the same parts of the field.
    block = max(1, int(round(2.0 * obspars.beam[0] / obspars.cellsize)))
    yy, xx = np.indices(work.shape[1:])
    checker = ((yy // block + xx // block) % 2).astype(bool)
    spectral_variation = _common_variation(_log_channels(whitened, checker), _log_channels(whitened, ~checker))
    log_spectral = _log_channels(whitened)
    log_spectral = np.where(np.isfinite(log_spectral), log_spectral, np.nanmedian(log_spectral))
    spectral = np.exp(log_spectral - np.median(log_spectral))
    spread = {"spatial": spatial_variation, "spectral": spectral_variation}
    if spatial_variation <= threshold and spectral_variation <= threshold:
        return NoiseModel("uniform", rms, spread=spread)
    if spatial_variation <= threshold:
        spatial = np.where(np.isfinite(spatial), 1.0, np.nan)
    if spectral_variation <= threshold:
        spectral = np.ones(nv)
    spatial = np.where(np.isfinite(spatial), spatial, np.nanmax(spatial))
    # The level: the robust RMS of the cube whitened by the shapes (the log's bias stays out of it).
    whitened = work / spatial[None, :, :]
    whitened /= spectral[:, None, None].astype(np.float32)
    typical = estimate_rms(whitened)
    log.info(
        "noise varies across the cube (rms %.0f%% across the field, %.0f%% between channels): using a noise map",
        100 * spatial_variation,
        100 * spectral_variation,
    )
    return NoiseModel("map", typical, spatial, spectral, spread)


def _smooth(
    data: np.ndarray, sigma_xy: tuple[float, float], channels: int, noise: NoiseModel | None = None
) -> np.ndarray:
    """float32 copy of ``data`` (divided by ``noise`` when given; NaN -> 0) smoothed by a Gaussian along y, x and a
    boxcar along v, in place."""
    work = np.array(data, dtype=np.float32)
    if noise is not None:
        noise.divide(work)
    np.nan_to_num(work, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
    sy, sx = sigma_xy
    if sy > 0:
        ndimage.gaussian_filter1d(work, sy, axis=1, output=work, mode="constant", truncate=3.0)
    if sx > 0:
        ndimage.gaussian_filter1d(work, sx, axis=2, output=work, mode="constant", truncate=3.0)
    if channels > 1:
        ndimage.uniform_filter1d(work, channels, axis=0, output=work, mode="constant")
    return work


def _beam_sigmas(obspars: ObsPars) -> tuple[float, float]:
    """Gaussian sigmas (pixels) along y and x of the beam's circularised size."""
    bmaj, bmin, _ = obspars.beam
    sigma = math.sqrt(bmaj * bmin) * FWHM_TO_SIGMA / obspars.cellsize
    return sigma, sigma


def _regions(snr: np.ndarray, seed: float, grow: float, min_size: float) -> tuple[np.ndarray, np.ndarray]:
    """Labels of the connected regions above ``grow`` that peak above ``seed`` and hold ``min_size`` voxels, and
    each label's summed S/N (index 0 and rejected regions score 0).

    The per-region statistics are taken over the labelled voxels only (a small fraction of the cube), with
    ``bincount`` and ``maximum.at``: ``scipy.ndimage.maximum`` over tens of thousands of labels is far slower.
    """
    labels, nlabels = ndimage.label(snr > grow)
    if nlabels == 0:
        return labels, np.zeros(1)
    flat = labels.reshape(-1)
    where = np.flatnonzero(flat)
    region = flat[where]
    values = snr.reshape(-1)[where].astype(np.float64)
    del where
    sizes = np.bincount(region, minlength=nlabels + 1)
    sums = np.bincount(region, weights=values, minlength=nlabels + 1)
    peaks = np.full(nlabels + 1, -np.inf)
    np.maximum.at(peaks, region, values)
    scores = np.where((peaks > seed) & (sizes >= min_size), sums, 0.0)
    scores[0] = 0.0
    return labels, scores


def _disc(radius: float) -> np.ndarray:
    r = max(0, int(math.floor(radius)))
    yy, xx = np.mgrid[-r : r + 1, -r : r + 1]
    return (xx * xx + yy * yy) <= radius * radius + 1e-9


def signal_mask(
    data: np.ndarray,
    rms: float,
    obspars: ObsPars,
    *,
    n_sigma: float = 4.0,
    grow_sigma: float = 2.5,
    smooth_channels: int = 3,
    min_beams: float = 2.0,
    reliability: float = 2.0,
    min_score: float = 15.0,
    dilate_beams: float = 1.0,
    dilate_channels: int = 1,
    source: str = "cube",
    noise: NoiseModel | None = None,
) -> np.ndarray:
    """Boolean mask of the emission in ``data``.

    Parameters
    ----------
    data
        Cube ``(nv, ny, nx)``; NaNs count as no signal.
    rms
        Noise of ``data`` (for the message, and to refuse a noiseless cube); the threshold uses the smoothed cube's
        own noise.
    obspars
        Grid and beam of the cube.
    n_sigma
        Detection threshold in units of the smoothed cube's noise: a region is kept only if it peaks above it.
    grow_sigma
        Regions are grown down to this level around their peaks (``<= n_sigma``).
    smooth_channels
        Width in channels of the spectral boxcar smoothing (1: none).
    min_beams
        Smallest region kept, in resolution elements (``beam_area_pixels * smooth_channels`` voxels).
    reliability
        A region is kept only if its summed S/N (of the smoothed cube, over its voxels) exceeds ``reliability``
        times that of the strongest negative region found the same way in the inverted cube (noise makes both).
    min_score
        ... and exceeds ``min_score`` per resolution element (a floor for cubes with few negative regions).
    dilate_beams
        Spatial dilation of the kept regions, in beam FWHM (diameter of the disc).
    dilate_channels
        Spectral dilation in channels on each side.
    source
        Name of the cube (a path) for the error message.
    noise
        The cube's :class:`NoiseModel`, or None for uniform noise: the cube is divided by it before smoothing, so
        that a primary-beam corrected cube's noisy edge is not taken for emission.

    Returns
    -------
    numpy.ndarray
        bool ``(nv, ny, nx)``; ``mask.sum()`` is the number of detected voxels.

    Raises
    ------
    NoEmissionError
        (a ValueError) when nothing is detected.
    """
    data = np.asarray(data)
    if data.ndim != 3 or data.shape != obspars.shape:
        raise ValueError(f"{source}: data shape {data.shape} does not match obspars shape {obspars.shape}")
    if not (np.isfinite(rms) and rms > 0):
        raise NoEmissionError(
            f"{source}: the noise is {rms!r} (constant or blank data), so no emission can be detected: check that "
            "the cube holds observed data"
        )
    grow_sigma = min(grow_sigma, n_sigma)
    smooth = _smooth(data, _beam_sigmas(obspars), int(smooth_channels), noise)
    blank = ~np.isfinite(data)
    if blank.any():
        smooth[blank] = np.nan  # blank voxels stay out of the noise estimate and the mask
    del blank
    smooth_rms = estimate_rms(smooth)
    if not (np.isfinite(smooth_rms) and smooth_rms > 0):
        raise NoEmissionError(f"{source}: the smoothed cube has no noise ({smooth_rms!r}): check the data")
    smooth /= smooth_rms  # now in units of the smoothed cube's noise
    resel = obspars.beam_area_pixels * max(1, int(smooth_channels))
    min_size = min_beams * resel

    # Noise makes as many negative regions as positive ones: the strongest negative region measures how strong a
    # positive region must be to be believed.
    np.negative(smooth, out=smooth)
    _, neg_scores = _regions(smooth, n_sigma, grow_sigma, min_size)
    np.negative(smooth, out=smooth)
    labels, scores = _regions(smooth, n_sigma, grow_sigma, min_size)
    del smooth
    noise_score = float(neg_scores.max()) if neg_scores.size else 0.0
    threshold = max(reliability * noise_score, min_score * resel)
    keep = scores > threshold
    keep[0] = False
    if not keep.any():
        best = float(scores.max()) if scores.size > 1 else 0.0
        raise NoEmissionError(
            f"{source}: no emission above {n_sigma:g} sigma (rms {rms:.3g} Jy/beam; {smooth_rms:.3g} after "
            f"smoothing) in a region stronger than noise (strongest region {best:.0f}, needed {threshold:.0f} "
            f"summed S/N; strongest negative region {noise_score:.0f}): check that the line lies within the cube "
            "(rest frequency, velocity range), or lower n_sigma / min_score"
        )
    mask = keep[labels]
    del labels
    log.debug(
        "%s: kept %d of %d regions (summed S/N threshold %.0f, strongest negative %.0f)",
        source,
        int(keep.sum()),
        scores.size - 1,
        threshold,
        noise_score,
    )
    return _dilate(mask, obspars, dilate_beams, int(dilate_channels))


def _dilate(mask: np.ndarray, obspars: ObsPars, beams: float, channels: int) -> np.ndarray:
    """Dilate by a disc of ``beams`` FWHM diameter and ``channels`` channels each side, within a bounding box."""
    radius = 0.5 * beams * obspars.beam[0] / obspars.cellsize
    r = int(math.floor(radius))
    if r < 1 and channels < 1:
        return mask
    nv, ny, nx = mask.shape
    planes = np.flatnonzero(mask.any(axis=(1, 2)))
    rows = np.flatnonzero(mask.any(axis=(0, 2)))
    cols = np.flatnonzero(mask.any(axis=(0, 1)))
    v0, v1 = max(0, planes[0] - channels), min(nv, planes[-1] + channels + 1)
    y0, y1 = max(0, rows[0] - r), min(ny, rows[-1] + r + 1)
    x0, x1 = max(0, cols[0] - r), min(nx, cols[-1] + r + 1)
    box = mask[v0:v1, y0:y1, x0:x1]
    if r >= 1:
        box = ndimage.binary_dilation(box, structure=_disc(radius)[None, :, :])
    if channels >= 1:
        box = ndimage.maximum_filter1d(box.view(np.uint8), 2 * channels + 1, axis=0, mode="constant").view(bool)
    out = np.zeros_like(mask)
    out[v0:v1, y0:y1, x0:x1] = box
    return out


#: A detection apart from the brightest one is another source (a companion, an artefact at a noisy field edge)
#: when its summed S/N is below this fraction of the brightest one's ...
SECONDARY_FRACTION = 0.25
#: ... and its centre lies further from the brightest one's centre than this many times that one's radius.
SECONDARY_DISTANCE = 1.25


def separate_sources(mask: np.ndarray, snr: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[dict[str, object]]]:
    """Split a signal mask into the galaxy and other sources.

    The galaxy is the connected region with the largest summed S/N, together with every other region that is
    either bright (at least :data:`SECONDARY_FRACTION` of it) or close (its centre within
    :data:`SECONDARY_DISTANCE` times the galaxy region's radius of the galaxy's centre): clumps and arcs of one disc
    stay together. What is left is faint and apart, which one disc model cannot describe.

    Parameters
    ----------
    mask
        bool ``(nv, ny, nx)`` signal mask.
    snr
        The cube in units of its noise (NaN allowed).

    Returns
    -------
    galaxy, others, records
        Two bool masks and, per other source, ``{"voxels", "snr_fraction", "channels", "x", "y"}`` (0-based, stops
        exclusive).
    """
    labels, count = ndimage.label(mask)
    if count <= 1:
        return mask, np.zeros_like(mask), []
    weights = np.clip(np.nan_to_num(snr), 0.0, None)
    scores = ndimage.sum_labels(weights, labels, index=np.arange(1, count + 1))
    main = int(np.argmax(scores)) + 1
    plane_weights = [np.where(labels == k, weights, 0.0).sum(axis=0) for k in range(1, count + 1)]
    yy, xx = np.indices(mask.shape[1:], dtype=float)

    def centre(plane: np.ndarray) -> tuple[float, float]:
        total = float(plane.sum()) or 1.0
        return float((plane * xx).sum() / total), float((plane * yy).sum() / total)

    cx, cy = centre(plane_weights[main - 1])
    footprint = (labels == main).any(axis=0)
    radius = float(np.max(np.hypot(xx[footprint] - cx, yy[footprint] - cy)))
    others = np.zeros_like(mask)
    records: list[dict[str, object]] = []
    for k in range(1, count + 1):
        if k == main:
            continue
        x, y = centre(plane_weights[k - 1])
        faint = scores[k - 1] < SECONDARY_FRACTION * scores[main - 1]
        apart = math.hypot(x - cx, y - cy) > SECONDARY_DISTANCE * radius
        if faint and apart:
            region = labels == k
            others |= region
            vv, yy_k, xx_k = np.nonzero(region)
            records.append(
                {
                    "voxels": int(region.sum()),
                    "snr_fraction": float(scores[k - 1] / scores[main - 1]),
                    "channels": [int(vv.min()), int(vv.max()) + 1],
                    "x": [int(xx_k.min()), int(xx_k.max()) + 1],
                    "y": [int(yy_k.min()), int(yy_k.max()) + 1],
                }
            )
    return mask & ~others, others, records
