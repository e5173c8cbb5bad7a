"""Radial profiles of a fit with their errors: the rotation curve and, where the model lets them vary, the position
angle, inclination and dispersion along the radius (one panel each, medians and 16th-84th percentile bands of the
posterior samples)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from .parametric import ModelSpec, dispersion_profile, geometry_profile, rotation_curve
from .plots import save_figure

__all__ = ["plot_profiles", "profile_band", "profile_samples"]

# Posterior samples drawn for the bands: enough for stable percentiles, few enough to stay quick.
_BAND_SAMPLES = 400


def profile_samples(samples: Mapping[str, np.ndarray], spec: ModelSpec, radius: np.ndarray) -> dict[str, np.ndarray]:
    """Per posterior sample, the rotation velocity and (when they vary) PA, inclination and dispersion at ``radius``:
    ``name -> (n_samples, n_radii)``."""
    n = len(next(iter(samples.values())))
    pick = np.linspace(0, n - 1, min(n, _BAND_SAMPLES)).astype(int)
    rows = [{name: float(values[k]) for name, values in samples.items()} for k in pick]
    out = {"rotation": np.array([rotation_curve(spec, p, radius) for p in rows])}
    if spec.warp != "none":
        geometry = [geometry_profile(spec, p, radius) for p in rows]
        out["pa"] = np.array([g[0] for g in geometry])
        out["inc"] = np.array([g[1] for g in geometry])
    if spec.dispersion != "constant":
        out["sigma"] = np.array([dispersion_profile(spec, p, radius) for p in rows])
    return out


def profile_band(
    values: np.ndarray, radius: np.ndarray, band: Mapping[str, Sequence[float]] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The 16th, 50th and 84th percentiles of a profile's samples ``(n_samples, n_radii)`` at ``radius``, or, given
    a ``band`` computed at the fit (``radius``, ``p16``, ``median``, ``p84``), that band interpolated to ``radius``."""
    if band:
        return tuple(np.interp(radius, band["radius"], band[key]) for key in ("p16", "median", "p84"))
    low, median, high = np.percentile(values, [16.0, 50.0, 84.0], axis=0)
    return low, median, high


_LABELS = {
    "rotation": "rotation velocity (km/s)",
    "pa": "position angle (deg)",
    "inc": "inclination (deg)",
    "sigma": "dispersion (km/s)",
}


def _knots(spec: ModelSpec, profile: str) -> tuple[float, ...]:
    """The radii of a profile's rings (a ``rings`` rotation curve, a ring-wise warp), marked on its panel."""
    if profile == "rotation" and spec.rotation_curve == "rings":
        return spec.ring_radii
    if profile in ("pa", "inc") and spec.warp == "rings":
        return spec.warp_radii or ()
    return ()


def plot_profiles(
    samples: Mapping[str, np.ndarray],
    spec: ModelSpec,
    radius: np.ndarray,
    path: str | Path,
    *,
    title: str = "",
    beam: float | None = None,
    outer: Mapping[str, Any] | None = None,
    band: Mapping[str, Sequence[float]] | None = None,
) -> Path:
    """Write the radial profiles of a fit (:func:`profile_samples`) to ``path``: a panel per profile, the median and
    the 16th-84th percentile band; the beam's FWHM is marked, inside which the curve is not resolved, and, given the
    summary's ``outer`` rotation (:mod:`kinms_core.outer_rotation`), the velocity at the emission's radius with its
    own error. ``band`` (the summary's ``rotation_curve``, :func:`kinms_core.outer_rotation.rotation_band`: the
    velocity's own errors at each radius) replaces the rotation panel's percentiles of ``samples``, whose parameters
    were each widened apart, losing the correlations that pin the velocity where the emission is."""
    profiles = profile_samples(samples, spec, radius)
    fig = Figure(figsize=(4.2 * len(profiles), 3.6))
    axes = fig.subplots(1, len(profiles), squeeze=False)
    for ax, (name, values) in zip(axes[0], profiles.items(), strict=True):
        low, median, high = profile_band(values, radius, band if name == "rotation" else None)
        ax.fill_between(radius, low, high, color="tab:blue", alpha=0.3, lw=0, label="16th-84th percentile")
        ax.plot(radius, median, color="tab:blue", lw=1.5, label="median")
        knots = _knots(spec, name)
        if knots:
            ax.plot(knots, np.interp(knots, radius, median), "o", color="tab:blue", ms=4)
        if beam:
            ax.axvspan(0.0, beam, color="0.85", lw=0, label="beam FWHM")
        if name == "rotation" and outer:
            v = outer["v"]
            error = [[v["median"] - v["p16"]], [v["p84"] - v["median"]]]
            label = f'v at r_out = {outer["radius"]:.1f}" ({100 * outer["share"]:.0f}% of the flux)'
            ax.errorbar([outer["radius"]], [v["median"]], yerr=error, fmt="s", color="tab:red", ms=5, label=label)
        ax.set_xlabel("radius (arcsec)")
        ax.set_ylabel(_LABELS[name])
        ax.set_xlim(0.0, float(radius[-1]))
    axes[0][0].legend(fontsize=8, loc="lower right")
    fig.suptitle(f"{title} ({spec.label} model)" if title else f"{spec.label} model")
    fig.tight_layout()
    return save_figure(fig, path)
