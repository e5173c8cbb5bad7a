"""Start points for the optimiser where a model family's best point can lie far from the first guesses.

A thick disc looks rounder than a thin one and each line of sight through it mixes radii, so the inclination that
the moment-0 shape or a thin disc gives lies well below a thick disc's, and the optimiser does not walk the long
curved valley of constant ``v sin i`` to it while also growing the scale height. On a mismatched mock (KinMS thick
disc, inc 47.8, scale height 0.85 scale lengths) the thick family started from the thin disc's best point stayed at
inc 22-28 with a thin scale height; started higher up the valley with a thicker disc it found inc 49.3 and a scale
height within 3% of the truth, its BIC 196 lower. So a thick family also starts from :data:`THICK_LADDER`.

A radial flow turns the kinematic major axis: rotation ``vrot cos(theta)`` plus inflow ``vrad sin(theta)`` peaks at
the disc azimuth ``atan(vrad / vrot)``, so a disc without the flow fits the position angle off by about
``atan(vrad cos(i) / vrot)`` (more where the beam smears the centre), and the radial family, started from
that fit with no flow, can stay there: on 7 of 14 of the error calibration's mocks with radial flows it kept
``|vrad| < 1`` km/s and the flowless disc's position angle (3-19 deg from the truth). So a radial family also starts
from :data:`RADIAL_ANGLES`, each with the position angle turned back by the twist that flow gives. With them the
radial family reached a higher maximum on 6 of those 14 mocks (its AIC 0.3-6 lower) and the same on the others;
where the inclination is low a flow and a turned axis remain one signal, and the maximum may lie further from the
truth (4 of the 6), which the family errors then count.

A lopsided disc's light is heavier on one side, so a symmetric disc fits its centre at the light's centroid, off
the kinematic centre, and its systemic velocity off by the rotation across that offset. The lopsided family started
from that fit with no m = 1 mode stays there: at the symmetric disc's centre any m = 1 mode only moves the light
away from where it is seen. On a mismatched mock (amplitude 0.49, thick) the lopsided thick family so kept the
symmetric disc's vsys, 8.5 km/s (10 of its sigma) from the truth; started with an m = 1 mode of 0.3 and the centre
moved back by the centroid shift that mode makes, it reached the true centre within 0.02 arcsec and the true vsys
within 0.5 km/s, its AIC 0.4 lower than from the symmetric start. So a lopsided family also starts from
:data:`LOPSIDED_PHASES` at :data:`LOPSIDED_AMPLITUDE`, each with the centre moved so that the light's centroid stays
(:func:`_lopsided_starts`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from .likelihood import LogPosterior
from .parametric import ModelSpec, rotation_curve

__all__ = ["LOPSIDED_AMPLITUDE", "LOPSIDED_PHASES", "RADIAL_ANGLES", "THICK_LADDER", "start_values", "start_vectors"]

#: Extra starts of a thick disc: (inclination step in degrees, scale height in scale lengths of the emission).
THICK_LADDER = ((15.0, 0.5), (30.0, 1.0))

#: Extra starts of a radial flow: the disc-plane angle ``atan(vrad / vflat)`` in degrees, an inflow and an outflow
#: as large as the 5-20 km/s flows of discs rotating at 100-200 km/s.
RADIAL_ANGLES = (-8.0, 8.0)

#: Extra starts of a lopsided disc: the m = 1 mode's amplitude (lopsided HI discs have 0.1-0.5, Richter & Sancisi
#: 1994) and its phases in the disc plane, degrees from the model's azimuth 0 (the approaching line of nodes).
LOPSIDED_AMPLITUDE = 0.3
LOPSIDED_PHASES = (0.0, 90.0, 180.0, 270.0)


def start_values(
    spec: ModelSpec,
    values: Mapping[str, float],
    bounds: Mapping[str, tuple[float, float]],
    length: float | None,
    only: str | None = None,
) -> list[dict[str, float]]:
    """The optimiser's start points: ``values`` first, then, for a thick disc with a free inclination, the
    :data:`THICK_LADDER` steps up in inclination (within its bounds) at the same ``v sin i`` (every rotation speed
    scaled by ``sin i / sin i'``) with the scale height ``z0`` set to the step's multiple of ``length`` (arcsec, the
    emission's scale length; None: the start's ``scalerad``, else ``z0`` is left as it is); for radial flows with a
    free ``vrad`` and position angle, the flows of :data:`RADIAL_ANGLES` (:func:`_radial_starts`); for a lopsided
    disc with a free centre and a length scale, the m = 1 modes of :data:`LOPSIDED_PHASES` (:func:`_lopsided_starts`).

    ``bounds`` holds the free parameters' bounds; a parameter without bounds is fixed and left as it is. ``only``
    names the one model-spec feature (``"thickness"``, ``"motions"``, ``"asymmetry"``) whose starts are wanted: a
    model family that adds that feature to a fitted model starts from where the fit's other features already are.
    """
    starts = [dict(values)]
    if only in (None, "thickness") and spec.thickness != "thin" and "inc" in bounds:
        starts += _thick_starts(values, bounds, length)
    if only in (None, "motions") and spec.motions == "radial" and {"vrad", "pa"} <= set(bounds) and "vflat" in values:
        starts += _radial_starts(values, bounds)
    scale = length if length is not None else values.get("scalerad")
    lopsided = spec.asymmetry == "lopsided" and {"m1_cos", "m1_sin", "xc", "yc"} <= set(bounds)
    if only in (None, "asymmetry") and lopsided and scale:
        starts += _lopsided_starts(spec, values, bounds, 2.0 * scale)
    return starts


def _thick_starts(
    values: Mapping[str, float], bounds: Mapping[str, tuple[float, float]], length: float | None
) -> list[dict[str, float]]:
    starts = []
    speeds = [name for name in bounds if name == "vflat" or name.startswith("vrot_")]
    inc_low, inc_high = bounds["inc"]
    for step, height in THICK_LADDER:
        inc = min(max(values["inc"] + step, inc_low), inc_high)
        start = dict(values, inc=inc)
        scale = math.sin(math.radians(values["inc"])) / max(math.sin(math.radians(inc)), 1e-6)
        for name in speeds:
            start[name] = _within(values[name] * scale, bounds[name])
        scale = length if length is not None else values.get("scalerad")
        if "z0" in bounds and scale is not None:
            start["z0"] = _within(height * scale, bounds["z0"])
        starts.append(start)
    return starts


def _radial_starts(values: Mapping[str, float], bounds: Mapping[str, tuple[float, float]]) -> list[dict[str, float]]:
    """The flow's starts: for a disc-plane angle ``phi``, ``vrad = vflat tan(phi)`` and the position angle moved by
    ``sign(vrad) atan(tan|phi| cos i)``, towards the disc's own from the kinematic one a flowless disc fits (the sign
    is that of :class:`kinms_core.parametric.GalaxyModel`'s flows: ``vrad > 0`` turns the kinematic axis to a smaller
    position angle)."""
    starts = []
    cos_inc = math.cos(math.radians(values["inc"]))
    for angle in RADIAL_ANGLES:
        phi = math.radians(angle)
        twist = math.degrees(math.atan(math.tan(phi) * cos_inc))
        vrad = _within(values["vflat"] * math.tan(phi), bounds["vrad"])
        starts.append(dict(values, vrad=vrad, pa=_within(values["pa"] + twist, bounds["pa"])))
    return starts


def _lopsided_starts(
    spec: ModelSpec, values: Mapping[str, float], bounds: Mapping[str, tuple[float, float]], mean_radius: float
) -> list[dict[str, float]]:
    """The m = 1 modes' starts: amplitudes ``A (cos phi, sin phi)``; the centre moved back by the shift of the
    light's centroid that the mode makes, ``A <r> / 2`` along ``phi`` in the disc plane (``<r>``: ``mean_radius``, the
    light's mean radius, twice the scale length of an exponential disc), projected on the sky with the start's
    inclination and position angle as :meth:`kinms_core.model.CubeModel.cloudlets` projects a cloudlet; and the
    systemic velocity moved by the line-of-sight velocity that the new centre's disc has at the old one, where a
    symmetric fit matched the velocity it sees (the disc azimuth 0 approaches, as the model's cloudlets do)."""
    cos_inc, sin_inc = math.cos(math.radians(values["inc"])), math.sin(math.radians(values["inc"]))
    sin_pa, cos_pa = math.sin(math.radians(values["pa"])), math.cos(math.radians(values["pa"]))
    starts = []
    for phase in LOPSIDED_PHASES:
        a_cos = LOPSIDED_AMPLITUDE * math.cos(math.radians(phase))
        a_sin = LOPSIDED_AMPLITUDE * math.sin(math.radians(phase))
        x_disc, y_disc = 0.5 * mean_radius * a_cos, 0.5 * mean_radius * a_sin
        shift_x = sin_pa * x_disc + cos_pa * y_disc * cos_inc
        shift_y = sin_pa * y_disc * cos_inc - cos_pa * x_disc
        start = dict(values, m1_cos=_within(a_cos, bounds["m1_cos"]), m1_sin=_within(a_sin, bounds["m1_sin"]))
        start["xc"] = _within(values["xc"] - shift_x, bounds["xc"])
        start["yc"] = _within(values["yc"] - shift_y, bounds["yc"])
        if "vsys" in bounds:
            radius = math.hypot(x_disc, y_disc)
            speed = float(rotation_curve(spec, values, np.array([radius]))[0]) if radius > 0 else 0.0
            start["vsys"] = _within(values["vsys"] + speed * sin_inc * x_disc / max(radius, 1e-12), bounds["vsys"])
        starts.append(start)
    return starts


def _within(value: float, bound: tuple[float, float]) -> float:
    return min(max(value, bound[0]), bound[1])


def start_vectors(
    posterior: LogPosterior, guess: np.ndarray, length: float | None, only: str | None = None
) -> list[np.ndarray]:
    """:func:`start_values` from the free-parameter vector ``guess``, as free-parameter vectors of ``posterior``."""
    bounds = dict(zip(posterior.free_names, zip(posterior.low, posterior.high, strict=True), strict=True))
    starts = start_values(posterior.model.spec, posterior.values(guess), bounds, length, only)
    return [np.array([values[name] for name in posterior.free_names]) for values in starts]
