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
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from .likelihood import LogPosterior
from .parametric import ModelSpec

__all__ = ["RADIAL_ANGLES", "THICK_LADDER", "start_values", "start_vectors"]

#: Extra starts of a thick disc: (inclination step in degrees, scale height in scale lengths of the emission).
THICK_LADDER = ((15.0, 0.5), (30.0, 1.0))

#: Extra starts of a radial flow: the disc-plane angle ``atan(vrad / vflat)`` in degrees, an inflow and an outflow
#: as large as the 5-20 km/s flows of discs rotating at 100-200 km/s.
RADIAL_ANGLES = (-8.0, 8.0)


def start_values(
    spec: ModelSpec,
    values: Mapping[str, float],
    bounds: Mapping[str, tuple[float, float]],
    length: float | None,
) -> list[dict[str, float]]:
    """The optimiser's start points: ``values`` first, then, for a thick disc with a free inclination, the
    :data:`THICK_LADDER` steps up in inclination (within its bounds) at the same ``v sin i`` (every rotation speed
    scaled by ``sin i / sin i'``) with the scale height ``z0`` set to the step's multiple of ``length`` (arcsec, the
    emission's scale length; None: the start's ``scalerad``, else ``z0`` is left as it is); for radial flows with a
    free ``vrad`` and position angle, the flows of :data:`RADIAL_ANGLES` (:func:`_radial_starts`).

    ``bounds`` holds the free parameters' bounds; a parameter without bounds is fixed and left as it is.
    """
    starts = [dict(values)]
    if spec.thickness != "thin" and "inc" in bounds:
        starts += _thick_starts(values, bounds, length)
    if spec.motions == "radial" and {"vrad", "pa"} <= set(bounds) and "vflat" in values:
        starts += _radial_starts(values, bounds)
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


def _within(value: float, bound: tuple[float, float]) -> float:
    return min(max(value, bound[0]), bound[1])


def start_vectors(posterior: LogPosterior, guess: np.ndarray, length: float | None) -> list[np.ndarray]:
    """:func:`start_values` from the free-parameter vector ``guess``, as free-parameter vectors of ``posterior``."""
    bounds = dict(zip(posterior.free_names, zip(posterior.low, posterior.high, strict=True), strict=True))
    starts = start_values(posterior.model.spec, posterior.values(guess), bounds, length)
    return [np.array([values[name] for name in posterior.free_names]) for values in starts]
