"""Noise estimate and signal mask of a cube.

:func:`estimate_rms` is a robust RMS (1.4826 x median absolute deviation after iteratively clipping emission) of a
sample of the cube's finite voxels. :func:`signal_mask` finds the emission: it smooths the cube spatially with a
beam-sized Gaussian and spectrally with a boxcar of a few channels, and measures the smoothed cube's own noise; it
labels the connected regions above ``grow_sigma`` that peak above ``n_sigma`` and hold at least a couple of
resolution elements; it keeps those whose summed S/N beats both a floor and twice the strongest negative region
found the same way in the inverted cube (noise makes as many negative regions as positive ones, so this is a
reliability test that scales with the cube's size); and it dilates what is left by a beam spatially and a channel
spectrally. Work arrays are float32, per-region statistics use only the labelled voxels, and the dilation works in
the detections' bounding box, so a 512 x 512 x 256 cube takes about 5 s and well under 1 GB beyond its data.

Limitations: a real negative signal (absorption) raises the bar for emission; an unresolved source narrower than a
few channels may fall below the floor (the pipeline fits resolved discs).
"""

from __future__ import annotations

import logging
import math

import numpy as np
from scipy import ndimage

from .errors import NoEmissionError
from .obspars import ObsPars

__all__ = ["NoEmissionError", "estimate_rms", "signal_mask"]

log = logging.getLogger(__name__)

_MAD_TO_SIGMA = 1.482602218505602
_FWHM_TO_SIGMA = 1.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))


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


def _smooth(data: np.ndarray, sigma_xy: tuple[float, float], channels: int) -> np.ndarray:
    """float32 copy of ``data`` (NaN -> 0) smoothed by a Gaussian along y, x and a boxcar along v, in place."""
    work = np.array(data, dtype=np.float32)
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
    sigma = math.sqrt(bmaj * bmin) * _FWHM_TO_SIGMA / obspars.cellsize
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
    smooth = _smooth(data, _beam_sigmas(obspars), int(smooth_channels))
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
