"""Sanity checks that stop garbage from passing as science: values no line cube holds, emission detected nearly
everywhere, first guesses no galaxy has, and a fit whose reduced chi-square says the model and noise do not describe
the data.

The data checks raise :class:`~kinms_core.errors.ImplausibleDataError` (an input error: the galaxy becomes a
``failed`` row with the message); the chi-square check is a flag, since a poor fit is still a result.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from .constants import C_KMS
from .errors import ImplausibleDataError

__all__ = [
    "CHI2_REDUCED_RANGE",
    "MAX_DETECTED_FRACTION",
    "MAX_FLUX",
    "OUTLIER_SNR",
    "check_cube_values",
    "check_detected_fraction",
    "check_guesses",
    "chi2_is_extreme",
]

#: Voxels further than this many times the noise from zero are not emission. The brightest line sources stay orders
#: of magnitude below it; blank sentinels written as numbers (1e30, -999 in a cube of mJy noise) and corrupted
#: voxels do not.
OUTLIER_SNR = 1e5
#: Above this fraction of the finite voxels detected, the "emission" is not a line: continuum left in the cube, or an
#: offset baseline, lifts every channel at once. A line cube needs line-free channels to measure its noise.
MAX_DETECTED_FRACTION = 0.5
#: Integrated flux (Jy km/s) beyond that of any galaxy in the sky, the Magellanic Clouds' HI included.
MAX_FLUX = 1e8
#: A fit whose reduced chi-square (with the raw noise) lies outside this range is flagged: beyond it the model or the
#: noise estimate misdescribes the data by more than an order of magnitude in variance.
CHI2_REDUCED_RANGE = (0.1, 10.0)
#: Fastest plausible systemic velocity (km/s): the speed of light.
_MAX_VELOCITY = C_KMS


def check_cube_values(data: np.ndarray, rms: float, mask: np.ndarray, *, source: str = "cube") -> None:
    """Refuse a cube holding voxels far beyond any emission, or whose detected emission fills it.

    Parameters
    ----------
    data
        The cube ``(nv, ny, nx)`` (NaN where blank).
    rms
        Its noise (same unit).
    mask
        The signal mask on the same grid.
    source
        The cube's name (a path) for the message.

    Raises
    ------
    ImplausibleDataError
        Naming the voxels or the fraction and what to do.
    """
    data = np.asarray(data)
    if math.isfinite(rms) and rms > 0:
        limit = OUTLIER_SNR * rms
        n_extreme, worst, where = 0, 0.0, (0, 0, 0)
        for channel, plane in enumerate(data):  # a channel at a time: no copy of a large cube
            magnitude = np.abs(plane)
            over = magnitude > limit  # NaN compares False
            count = int(np.count_nonzero(over))
            if count:
                n_extreme += count
                index = int(np.argmax(np.where(over, magnitude, 0.0)))
                if magnitude.flat[index] > abs(worst):
                    worst = float(plane.flat[index])
                    where = (channel, *np.unravel_index(index, plane.shape))
        if n_extreme:
            raise ImplausibleDataError(
                f"{source}: {n_extreme} voxel(s) lie beyond {OUTLIER_SNR:.0e} times the noise ({rms:.3g}), e.g. "
                f"{worst:.3g} at channel {where[0]}, pixel x {where[2]} y {where[1]} (0-based): no emission line is "
                "that bright; these look like blank values written as numbers (an old sentinel such as 1e30 or -999) "
                "or corrupted data: set them to NaN and run again"
            )
    check_detected_fraction(data, mask, source=source)


def check_detected_fraction(data: np.ndarray, mask: np.ndarray, *, source: str = "cube") -> None:
    """Refuse a cube whose detected emission fills more than :data:`MAX_DETECTED_FRACTION` of its finite voxels
    (continuum left in, or an offset baseline), as an :class:`~kinms_core.errors.ImplausibleDataError`."""
    finite = int(np.count_nonzero(np.isfinite(data)))
    detected = int(np.count_nonzero(np.asarray(mask) & np.isfinite(data)))
    if finite and detected > MAX_DETECTED_FRACTION * finite:
        raise ImplausibleDataError(
            f"{source}: emission detected in {100.0 * detected / finite:.0f}% of the cube's voxels: a line cube has "
            "line-free channels and sky; this looks like continuum left in the cube (or an offset baseline): subtract "
            "the continuum (e.g. CASA uvcontsub or imcontsub) and run again"
        )


def check_guesses(guesses: Mapping[str, float], *, source: str = "cube") -> None:
    """Refuse first guesses that no galaxy could have (they mean the data are not what they seem).

    Raises
    ------
    ImplausibleDataError
        Naming the guess, its value and the limit.
    """
    bad = sorted(name for name, value in guesses.items() if not math.isfinite(float(value)))
    if bad:
        raise ImplausibleDataError(
            f"{source}: the first guesses of {bad} are not finite numbers: the detected emission is not a disc "
            "(check the cube's data and mask, or give the guesses in the settings)"
        )
    flux = guesses.get("flux")
    if flux is not None and not 0.0 < flux <= MAX_FLUX:
        raise ImplausibleDataError(
            f"{source}: the detected emission sums to {flux:.3g} Jy km/s, outside (0, {MAX_FLUX:.0e}]: no galaxy "
            "has that integrated flux; check the cube's unit (BUNIT), its blank values and its continuum"
        )
    vsys = guesses.get("vsys")
    if vsys is not None and abs(vsys) >= _MAX_VELOCITY:
        raise ImplausibleDataError(
            f"{source}: the emission's velocity {vsys:.6g} km/s is faster than light: check the spectral axis "
            "(CTYPE3, CUNIT3) and the rest frequency"
        )


def chi2_is_extreme(chi2_reduced: float) -> bool:
    """Whether a fit's reduced chi-square (raw noise) lies outside :data:`CHI2_REDUCED_RANGE` (or is not finite)."""
    low, high = CHI2_REDUCED_RANGE
    return not (math.isfinite(chi2_reduced) and low <= chi2_reduced <= high)
