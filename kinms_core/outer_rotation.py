"""The rotation the data measure: the circular velocity, and its projection v sin i, at a radius the emission reaches.

A parametric curve's ``vflat`` is the asymptote of an arctan; where the emission ends before the curve turns over,
the data constrain the curve only out to that radius, and ``vflat`` is an extrapolation whose error no noise model
makes honest. On the error calibration's mismatched mocks (40 of them, posterior samples at the generator's
emission radius) ``vflat`` had a median relative error of 41% and covered its truth in 52% of the 68% intervals;
the velocity at the emission's radius had 29% and 60%, and its projection ``v sin i`` 16% and 72%. That is what a
survey catalogue should carry beside ``vflat``, as 3D-Barolo's and TiRiFiC's users quote the rotation of their
outermost ring rather than an asymptote.

The radius (:func:`emission_radius`) is measured on the data: the distance along the fitted kinematic major axis
within which a fixed share of the detected flux lies. Along the major axis it does not depend on the uncertain
inclination, and emission reaches it on every side of the centre.

The errors (:func:`outer_rotation`) are those of the quantity itself: its posterior samples (before the fit's
systematic terms are added parameter by parameter), then, in quadrature, half the difference of the quantity between
the two sides' fits and its spread over the model families' maxima (Akaike weights), each computed for the quantity
from the fits' values. Adding the parameters' own terms would not do: a thick disc seen as a thin one is less
inclined and faster, with ``v sin i`` about the same, so the families widen ``inc`` and ``vflat`` apart while their
``v sin i`` agrees. The families' within-model widths are kept per parameter only (no covariances), so that part of
the model-averaged variance is not included here.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from .family_errors import model_spread, weighted_maxima
from .moments import major_axis_direction
from .obspars import ObsPars
from .parametric import ModelSpec, geometry_profile, kinematic_centre, rotation_curve
from .sides import widen_samples

__all__ = ["FLUX_SHARE", "emission_radius", "outer_rotation", "quantities", "rotation_band"]

#: The share of the detected flux within the radius along the major axis where the rotation is quoted.
FLUX_SHARE = 0.9


def emission_radius(
    data: np.ndarray,
    mask: np.ndarray | None,
    obspars: ObsPars,
    values: Mapping[str, float],
    share: float = FLUX_SHARE,
) -> float:
    """The distance (arcsec) along the kinematic major axis, from the fitted centre, within which ``share`` of the
    detected flux lies.

    Parameters
    ----------
    data
        Cube ``(nv, ny, nx)``; NaN voxels count as empty.
    mask
        Detected-signal mask of the same shape (None: every positive voxel).
    obspars
        The cube's grid.
    values
        The fit's ``pa`` (degrees, north through east to the receding side) and ``xc``, ``yc`` (arcsec from the
        reference pixel).
    share
        Fraction of the flux, in (0, 1].

    Returns
    -------
    float
        The radius in arcsec, or NaN when the mask holds no positive flux.
    """
    cube = np.nan_to_num(np.asarray(data, dtype=float))
    if mask is not None:
        cube = np.where(np.asarray(mask, dtype=bool), cube, 0.0)
    image = np.clip(cube, 0.0, None).sum(axis=0)
    total = image.sum()
    if not total > 0:
        return float("nan")
    x0, y0 = kinematic_centre(obspars, values)
    dx, dy = major_axis_direction(values["pa"])
    yy, xx = np.mgrid[0 : image.shape[0], 0 : image.shape[1]].astype(float)
    along = np.abs((xx - x0) * dx + (yy - y0) * dy).ravel()
    order = np.argsort(along)
    growth = np.cumsum(image.ravel()[order])
    index = min(int(np.searchsorted(growth, share * total)), growth.size - 1)
    return float(along[order][index] * obspars.cellsize)


def quantities(spec: ModelSpec, values: Mapping[str, float], radius: float) -> tuple[float, float]:
    """The circular velocity (km/s) at ``radius`` (arcsec) of the model ``spec`` with parameter ``values``, and its
    projection ``v sin i`` with the inclination at that radius."""
    at = np.array([radius])
    velocity = float(rotation_curve(spec, values, at)[0])
    inc = float(geometry_profile(spec, values, at)[1][0])
    return velocity, velocity * math.sin(math.radians(inc))


def _sample_quantities(
    spec: ModelSpec, samples: np.ndarray, names: Sequence[str], fixed: Mapping[str, float], radius: float
) -> np.ndarray:
    """``(n, 2)``: :func:`quantities` of each sample row (``names`` its columns, ``fixed`` the other parameters)."""
    out = np.empty((samples.shape[0], 2))
    for k, row in enumerate(samples):
        out[k] = quantities(spec, {**fixed, **dict(zip(names, row.tolist(), strict=True))}, radius)
    return out


def _shared_quantities(
    spec: ModelSpec, values: Mapping[str, float], base: Mapping[str, float], radius: float
) -> tuple[float, float]:
    """:func:`quantities` of another fit's ``values`` (a side or a family), the parameters it lacks at ``base``'s,
    on the fit's own rotation curve and inclination (a family's own warp or thickness is not modelled here)."""
    plain = ModelSpec(rotation_curve=spec.rotation_curve, ring_radii=spec.ring_radii)
    return quantities(plain, {**base, **values}, radius)


def _with_terms(
    drawn: np.ndarray,
    keys: Sequence[str],
    shared: Callable[[Mapping[str, float]], dict[str, float]],
    sides: Mapping[str, Any] | None,
    families: Mapping[str, Any] | None,
) -> tuple[np.ndarray, dict[str, float], dict[str, float]]:
    """Samples ``drawn`` ``(n, len(keys))`` of some quantities stretched about their median by, in quadrature, half
    the two sides' difference and the families' Akaike-weighted spread of each (``shared(values)``: the quantities of
    a side's or a family's values, ``shared({})`` the fit's own); returns them and the two terms."""
    at_best = shared({})
    side_term = dict.fromkeys(keys, 0.0)
    if sides and "receding" in sides and "approaching" in sides:
        receding, approaching = shared(sides["receding"]), shared(sides["approaching"])
        side_term = {key: 0.5 * abs(receding[key] - approaching[key]) for key in keys}
    family_term = dict.fromkeys(keys, 0.0)
    if families and families.get("best"):
        every, weights = weighted_maxima(families)
        family_term = model_spread(at_best, {key: shared(values) for key, values in every.items()}, weights)
    centre = np.median(drawn, axis=0)
    extra = {key: math.hypot(side_term[key], family_term[key]) for key in keys}
    unbounded = np.full(len(keys), np.inf)
    return widen_samples(drawn, centre, keys, extra, -unbounded, unbounded), side_term, family_term


def outer_rotation(
    spec: ModelSpec,
    samples: np.ndarray,
    names: Sequence[str],
    fixed: Mapping[str, float],
    radius: float,
    *,
    best: Mapping[str, float],
    sides: Mapping[str, Any] | None = None,
    families: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The circular velocity ``v`` and ``vsini`` at ``radius``: median, 16th and 84th percentiles, and the terms
    added to each in quadrature.

    Parameters
    ----------
    spec
        The fit's model.
    samples
        Posterior samples ``(n, len(names))`` in the parameters' units, before any systematic term is added.
    names
        Their free parameters.
    fixed
        The fixed parameters' values.
    radius
        Arcsec (:func:`emission_radius`).
    best
        The fit's maximum (all its parameters), from which the sides and the families were fitted.
    sides
        ``{"receding": values, "approaching": values}`` (:func:`kinms_core.sides.side_differences`), or None.
    families
        ``{"best": {family: values}, "aic": {model: AIC}, "modes": {family: [{"values", "aic"}]}}``
        (:func:`kinms_core.family_errors.family_differences`; the weights are made from the AICs,
        :func:`kinms_core.family_errors.weighted_maxima`), or None.

    Returns
    -------
    dict
        ``radius``, ``share`` (of the flux within it), ``v`` and ``vsini`` (``median``, ``p16``, ``p84``, and
        ``sides`` and ``families``: the terms added).
    """
    base = {**fixed, **best}
    drawn = _sample_quantities(spec, np.asarray(samples, dtype=float), names, fixed, radius)
    keys = ("v", "vsini")

    def shared(values: Mapping[str, float]) -> dict[str, float]:
        return dict(zip(keys, _shared_quantities(spec, values, base, radius), strict=True))

    widened, side_term, family_term = _with_terms(drawn, keys, shared, sides, families)
    out: dict[str, Any] = {"radius": float(radius), "share": FLUX_SHARE}
    for k, key in enumerate(keys):
        p16, median, p84 = np.percentile(widened[:, k], [16.0, 50.0, 84.0])
        out[key] = {
            "median": float(median),
            "p16": float(p16),
            "p84": float(p84),
            "sides": float(side_term[key]),
            "families": float(family_term[key]),
        }
    return out


def rotation_band(
    spec: ModelSpec,
    samples: np.ndarray,
    names: Sequence[str],
    fixed: Mapping[str, float],
    radii: np.ndarray,
    *,
    best: Mapping[str, float],
    sides: Mapping[str, Any] | None = None,
    families: Mapping[str, Any] | None = None,
) -> dict[str, list[float]]:
    """The rotation curve's median and 16th-84th percentile band at ``radii`` (arcsec), with the errors of the
    velocity at each radius made as :func:`outer_rotation` makes them (arguments as there): the samples before the
    parameters' own systematic terms, then the sides' and the families' terms of that velocity. A curve whose
    ``vflat`` the data leave free beyond the emission has a wide band only there.

    Returns
    -------
    dict
        ``radius``, ``median``, ``p16`` and ``p84``: lists of floats.
    """
    radii = np.asarray(radii, dtype=float)
    samples = np.asarray(samples, dtype=float)
    drawn = np.array([rotation_curve(spec, {**fixed, **dict(zip(names, row, strict=True))}, radii) for row in samples])
    keys = [str(k) for k in range(radii.size)]
    base = {**fixed, **best}
    plain = ModelSpec(rotation_curve=spec.rotation_curve, ring_radii=spec.ring_radii)

    def shared(values: Mapping[str, float]) -> dict[str, float]:
        return dict(zip(keys, rotation_curve(plain, {**base, **values}, radii).tolist(), strict=True))

    widened, _, _ = _with_terms(drawn, keys, shared, sides, families)
    p16, median, p84 = np.percentile(widened, [16.0, 50.0, 84.0], axis=0)
    return {"radius": radii.tolist(), "median": median.tolist(), "p16": p16.tolist(), "p84": p84.tolist()}
