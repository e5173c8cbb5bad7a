"""Errors that include the choice of model: the fit's estimates beside those of the model families that extend it.

A galaxy is never exactly the model. A thick disc fitted as a thin one is seen at too low an inclination, and its
rotation too fast; a ring fitted as an exponential disc rotates too slowly. Such a fit can describe the data almost
as well as the model with the feature, so its errors, which measure only how well the data pin the model's own
parameters, leave the truth many sigma away: on the error calibration's 100 mismatched mocks 10% of the
inclinations and 18% of the rotation velocities were over 3 sigma off, side errors included (3% and 9% with
these). Fitting both models and keeping only the better one does not help when the data barely tell them apart.

Model averaging does (Burnham & Anderson 2002, section 4.3.2; Buckland et al. 1997): each family that extends the
fit's by one feature (radial or bisymmetric flows, a thick disc, a linear warp, a dispersion gradient, the surface
brightness from the data) is maximised from the fit's best point, and each model ``k``, the fit's own included, gets
the Akaike weight ``w_k ~ exp(-AIC_k / 2)``, with ``AIC = chi2 / c + 2 p``: ``c`` the data's noise-correlation
volume (:func:`kinms_core.fit.noise_volume`, so that correlated voxels count once) and ``p`` the free parameters,
a map from the data counting its independent beams (:func:`kinms_core.surface.map_parameters`). The errors gain
``sqrt(sum_k w_k (theta_k - theta_fit)^2)`` in quadrature: the between-model part of the model-averaged variance.
A family that fits no better than the fit's own weighs ``exp(-1)`` per extra parameter, so an undetectable feature
that moves the estimates widens the errors; a family that fits much worse weighs nothing.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from typing import Any

import numpy as np

from .errors import SettingsError
from .likelihood import FitData, LogPosterior
from .optimise import maximise_from
from .settings import FitSettings, load_settings
from .starts import start_vectors
from .workers import process_context

__all__ = ["ALTERNATIVES", "akaike_weights", "family_differences", "model_spread"]

log = logging.getLogger(__name__)

#: The families that extend a fit by one feature (``model:`` settings), in the order they are fitted.
ALTERNATIVES: dict[str, dict[str, str]] = {
    "radial": {"motions": "radial"},
    "bisymmetric": {"motions": "bisymmetric"},
    "thick": {"thickness": "exponential"},
    "warp": {"warp": "linear"},
    "sigma_linear": {"dispersion": "linear"},
    "data": {"surface_brightness": "data"},
}

#: Model-spec defaults: an alternative only changes a feature that the fit leaves at its default (None: any
#: parametric surface brightness may give way to the data's).
_PLAIN = {"motions": "none", "thickness": "thin", "warp": "none", "dispersion": "constant", "surface_brightness": None}


def _alternative_settings(settings: FitSettings, fit_data: FitData) -> dict[str, FitSettings]:
    """The settings of every family that adds one feature to ``settings``' model, with its other settings (those of
    parameters it has; no walker count, as it is only maximised); a combination the model cannot make (a warped or
    thick disc with the surface brightness from the data) is left out."""
    out = {}
    for name, change in ALTERNATIVES.items():
        key, value = next(iter(change.items()))
        current = getattr(settings.spec, key)
        if current == value or (_PLAIN[key] is not None and current != _PLAIN[key]):
            continue
        try:
            names = set(replace(settings.spec, **change).parameter_names)
            raw = {
                **settings.raw,
                "model": {**settings.raw.get("model", {}), **change},
                "parameters": {k: v for k, v in settings.raw.get("parameters", {}).items() if k in names},
                "fit": {k: v for k, v in settings.raw.get("fit", {}).items() if k != "nwalkers"},
            }
            out[name] = load_settings(raw).for_data(fit_data.guesses)
        except (SettingsError, ValueError) as error:
            log.debug("%s: no %s family: %s", fit_data.galaxy, name, error)
    return out


def akaike_weights(criteria: Mapping[str, float]) -> dict[str, float]:
    """Akaike weights ``exp(-AIC_k / 2)``, normalised, of models with criteria ``AIC_k``."""
    lowest = min(criteria.values())
    raw = {name: math.exp(-0.5 * (value - lowest)) for name, value in criteria.items()}
    total = sum(raw.values())
    return {name: value / total for name, value in raw.items()}


def _aic(posterior: LogPosterior, theta: np.ndarray, volume: float) -> float:
    return posterior.chi2(theta) / volume + 2.0 * (len(posterior.free) + posterior.map_parameters)


def model_spread(
    fit_values: Mapping[str, float], family_values: Mapping[str, Mapping[str, float]], weights: Mapping[str, float]
) -> dict[str, float]:
    """Per parameter of the fit, ``sqrt(sum_k w_k (theta_k - theta_fit)^2)`` over the families that have it (the fit
    itself, under any name in ``weights`` missing from ``family_values``, adds nothing); position angles by their
    shortest arc."""
    out = {}
    for name, value in fit_values.items():
        total = 0.0
        for family, values in family_values.items():
            if name not in values:
                continue
            difference = values[name] - value
            if name == "pa":
                difference = (difference + 180.0) % 360.0 - 180.0
            total += weights[family] * difference**2
        out[name] = math.sqrt(total)
    return out


def _maximised(
    fit_data: FitData,
    alternative: FitSettings,
    fit_values: Mapping[str, float],
    n_clouds: int,
    volume: float,
    evaluations: int,
) -> tuple[dict[str, float], float]:
    """One family's best free values, maximised from ``fit_values`` (its own parameters at their guesses; a thick disc
    also from :func:`kinms_core.starts.start_values`'s starts), and its AIC there."""
    start = replace(fit_data, guesses={**fit_data.guesses, **fit_values})
    posterior = LogPosterior(
        fit_data,
        alternative.resolved(start.guesses, start.bounds),
        alternative.spec,
        correction="none",
        noise_correlation="none",
        n_clouds=n_clouds,
        seed=alternative.options.seed,
    )
    guess = np.clip(posterior.guess, posterior.low, posterior.high)
    vectors = start_vectors(posterior, guess, fit_data.guesses.get("scalerad"))
    theta, _, _ = maximise_from(posterior, vectors, posterior.low, posterior.high, evaluations)
    return dict(zip(posterior.free_names, theta.tolist(), strict=True)), _aic(posterior, theta, volume)


def family_differences(
    fit_data: FitData,
    settings: FitSettings,
    fit_posterior: LogPosterior,
    best: np.ndarray,
    volume: float,
    *,
    max_evaluations: int,
    families: Sequence[str] | None = None,
    processes: int = 1,
) -> dict[str, Any]:
    """Each alternative family's best values and AIC, every model's Akaike weight (the fit's as ``fit``) and the
    errors' extra term ``spread`` per free parameter of the fit (:func:`model_spread`), from the fit's best point
    ``best`` of ``fit_posterior``; each family is maximised with ``max_evaluations`` per start, on up to ``processes``
    worker processes. ``families`` limits them to those names."""
    fit_values = fit_posterior.values(best)
    alternatives = {
        name: alternative
        for name, alternative in _alternative_settings(settings, fit_data).items()
        if families is None or name in families
    }
    arguments = (fit_values, fit_posterior.model.cube_model.n_clouds, volume, max_evaluations)
    if processes > 1 and len(alternatives) > 1:
        with ProcessPoolExecutor(min(processes, len(alternatives)), mp_context=process_context()) as pool:
            futures = {name: pool.submit(_maximised, fit_data, alt, *arguments) for name, alt in alternatives.items()}
            results = {name: future.result() for name, future in futures.items()}
    else:
        results = {name: _maximised(fit_data, alt, *arguments) for name, alt in alternatives.items()}
    criteria = {"fit": _aic(fit_posterior, best, volume)} | {name: aic for name, (_, aic) in results.items()}
    found = {name: values for name, (values, _) in results.items()}
    weights = akaike_weights(criteria)
    free_values = dict(zip(fit_posterior.free_names, best.tolist(), strict=True))
    return {"weights": weights, "aic": criteria, "best": found, "spread": model_spread(free_values, found, weights)}
