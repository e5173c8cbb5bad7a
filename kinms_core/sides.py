"""The approaching and the receding side of a galaxy fitted apart: what the model's symmetry costs.

A galaxy that the model describes gives two sides that agree within their noise; a lopsided disc, a one-sided warp or
an asymmetric flow does not, and no error estimate from the residuals of one symmetric fit contains that difference.
FAT (Kamphuis et al. 2015) and TiRiFiC users quote half the difference between fits of the two sides beside the formal
errors; a robust fit adds it in quadrature (``fit.side_errors``, :func:`kinms_core.fit.fit_galaxy`).

A side is the set of sky pixels where the best model's mean velocity is above (receding) or below (approaching) the
systemic velocity. Each side is fitted with the kinematic centre held at the whole fit's (one side alone does not
locate it) and every other free parameter free, from the whole fit's best point, by the fit's own optimiser.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace

import numpy as np

from .likelihood import FitData, maximisation_posterior
from .moments import moment1
from .optimise import maximise, refine
from .parametric import ModelSpec
from .settings import Parameter
from .workers import process_context

__all__ = ["SIDE_FIXED", "side_differences", "side_masks", "widen_samples"]

log = logging.getLogger(__name__)

#: Held at the whole fit's values when one side is fitted.
SIDE_FIXED = ("xc", "yc")


def side_masks(model: np.ndarray, velocities: np.ndarray, vsys: float) -> tuple[np.ndarray, np.ndarray]:
    """Sky masks ``(ny, nx)`` of the receding and the approaching side: where the model cube's intensity-weighted
    mean velocity is above, or below, ``vsys`` (pixels without model emission are on neither side)."""
    velocity = moment1(model, velocities)
    with np.errstate(invalid="ignore"):
        return velocity > vsys, velocity < vsys


def _side_parameters(parameters: Sequence[Parameter], best: Mapping[str, float]) -> list[Parameter]:
    """The fit's parameters started at ``best``, with the centre (and whatever the fit fixed) fixed there."""
    out = []
    for p in parameters:
        if p.fixed or p.name in SIDE_FIXED:
            value = best.get(p.name, p.guess)
            out.append(Parameter(p.name, value, value, value, True, p.prior))
        else:
            out.append(replace(p, guess=float(np.clip(best[p.name], p.min, p.max))))
    return out


def _side_best(
    data: FitData,
    parameters: Sequence[Parameter],
    spec: ModelSpec,
    n_clouds: int,
    seed: int,
    surface: np.ndarray | None,
    max_evaluations: int,
) -> dict[str, float]:
    """One side's best free values, from the whole fit's best point."""
    one_side = maximisation_posterior(data, parameters, spec, n_clouds=n_clouds, seed=seed, surface=surface)
    theta, _ = maximise(one_side, one_side.guess, one_side.low, one_side.high, max_evaluations)
    theta, _ = refine(one_side, theta, data.obspars.beam_area_pixels)
    return dict(zip(one_side.free_names, theta.tolist(), strict=True))


def side_differences(
    fit_data: FitData,
    parameters: Sequence[Parameter],
    spec: ModelSpec,
    best: Mapping[str, float],
    *,
    n_clouds: int,
    seed: int,
    max_evaluations: int,
    processes: int = 1,
) -> dict[str, dict[str, float]]:
    """Each side's best values (``receding``, ``approaching``) and half their difference (``half_difference``), per
    free parameter of the fit but the centre; the two sides are fitted on two worker processes when ``processes``
    allows."""
    side_parameters = _side_parameters(parameters, best)
    whole = maximisation_posterior(fit_data, side_parameters, spec, n_clouds=n_clouds, seed=seed)
    receding, approaching = side_masks(whole.model_cube(whole.guess), fit_data.obspars.velocities, best["vsys"])
    halves = {}
    for label, side in (("receding", receding), ("approaching", approaching)):
        if not side.any():
            log.warning("%s: the best model has no %s side: no side errors", fit_data.galaxy, label)
            return {}
        halves[label] = replace(fit_data, data=np.where(side[None, :, :], fit_data.data, np.nan))
    # the whole galaxy's gas: a data surface brightness made from one side's map would hold no gas on the other,
    # whose beam-smeared emission near the minor axis pins vsys (without it vsys moved 37 km/s on NGC 4047)
    arguments = (side_parameters, spec, n_clouds, seed, whole.surface, max_evaluations)
    if processes > 1:
        with ProcessPoolExecutor(2, mp_context=process_context()) as pool:
            futures = {label: pool.submit(_side_best, half, *arguments) for label, half in halves.items()}
            out = {label: future.result() for label, future in futures.items()}
    else:
        out = {label: _side_best(half, *arguments) for label, half in halves.items()}
    out["half_difference"] = {
        name: 0.5 * abs(out["receding"][name] - out["approaching"][name]) for name in out["receding"]
    }
    return out


def widen_samples(
    samples: np.ndarray,
    centre: np.ndarray,
    names: Sequence[str],
    extra_sd: Mapping[str, float],
    low: np.ndarray,
    high: np.ndarray,
) -> np.ndarray:
    """Samples stretched about ``centre``, per parameter, from their standard deviation ``s`` (half the 16th-84th
    percentile range) to ``sqrt(s^2 + extra^2)``: the marginal errors gain the extra term in quadrature and the
    correlations are kept. Clipped to the bounds."""
    samples = np.array(samples, dtype=float)
    for k, name in enumerate(names):
        extra = float(extra_sd.get(name, 0.0))
        if not extra > 0:
            continue
        p16, p84 = np.percentile(samples[:, k], [16.0, 84.0])
        sd = 0.5 * (p84 - p16)
        if not sd > 0:
            continue
        samples[:, k] = centre[k] + (samples[:, k] - centre[k]) * np.hypot(sd, extra) / sd
    return np.clip(samples, low, high)
