"""Errors that include the choice of model: the fit's estimates beside those of the model families that extend it.

A galaxy is never exactly the model. A thick disc fitted as a thin one is seen at too low an inclination, and its
rotation too fast; a ring fitted as an exponential disc rotates too slowly. Such a fit can describe the data almost
as well as the model with the feature, so its errors, which measure only how well the data pin the model's own
parameters, leave the truth many sigma away: on the error calibration's 100 mismatched mocks 10% of the
inclinations and 18% of the rotation velocities were over 3 sigma off, side errors included (3% and 9% with
these). Fitting both models and keeping only the better one does not help when the data barely tell them apart.

Model averaging does (Burnham & Anderson 2002, section 4.3.2; Buckland et al. 1997): each family that extends the
fit's by one feature (radial or bisymmetric flows, a thick disc, a linear warp, a dispersion gradient, a lopsided
disc, the surface brightness from the data) is maximised from the fit's best point; then, as a forward search, the
best of them gains each other feature, and so on (:func:`family_differences`), because a galaxy with a ring and an
inflow is best described by the ring first, yet only the inflow moves its position angle; and a feature may help only
once another is modelled (on a calibration mock with an inflow and a falling dispersion, the radial flow alone raised
the AIC by 1.2 and lowered it beside the dispersion gradient: its PA pull went from 5.5 to 3.0).
Each model ``k``, the fit's own included, gets the Akaike weight ``w_k ~ exp(-AIC_k / 2)``, with
``AIC = chi2 / c + 2 p``: ``c`` the data's noise-correlation volume (:func:`kinms_core.fit.noise_volume`, so that
correlated voxels count once) and ``p`` the free parameters, a map from the data counting its independent beams
(:func:`kinms_core.surface.map_parameters`). The errors gain ``sqrt(sum_k w_k (theta_k - theta_fit)^2)`` in
quadrature: the between-model part of the model-averaged variance. A family that fits no better than the fit's own
weighs ``exp(-1)`` per extra parameter, so an undetectable feature that moves the estimates widens the errors; a
family that fits much worse weighs nothing. The within-model part,
``sum_k w_k sigma_k^2``, uses each family's sandwich width at its maximum (:func:`within_spread`): a radial flow
frees the turn of the kinematic axis, so where it weighs, the position angle's error is that family's, not the
narrower one of the fit's model. On the error calibration's 100 mocks this part took the PA's pull standard
deviation from 1.75 to 1.57 and its 68% coverage from 65% to 70%, at a median error of 5.0 deg instead of 4.0.
The two parts counted one thing twice: where a family's feature is absent, its shift from the fit is noise whose
variance is the one its extra freedom adds, ``sigma_k^2 - sigma_fit^2`` (Hausman 1978, Econometrica 46, 1251), which
the within-model part already holds. So each squared shift counts only beyond it (:func:`model_spread`,
:func:`family_terms`): on the same 100 mocks the PA's 68% coverage went from 78% to 73% (pull std 1.11 to 1.21),
vsys's from 86% to 84%, the other parameters' pulls moved by 0.05 or less.

A family's posterior can itself have more than one mode about as high, found from different starts
(:mod:`kinms_core.starts`): a lopsided disc centred on its light or on its kinematic centre, with systemic velocities
that differ by the rotation across the offset. Each distinct maximum (:func:`_modes`) then weighs by its own AIC, as
the Laplace approximation of each mode's mass would with equal widths (:func:`weighted_maxima`).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from typing import Any

import numpy as np

from .errors import SettingsError
from .likelihood import FitData, LogPosterior, maximisation_posterior, widths_at
from .optimise import refined_maxima
from .settings import FitSettings, load_settings
from .starts import LOPSIDED_PHASES, RADIAL_ANGLES, start_vectors
from .workers import process_context

__all__ = [
    "ALTERNATIVES",
    "SEARCH",
    "aic",
    "akaike_weights",
    "bic_criteria",
    "combined_start",
    "family_differences",
    "weighted_maxima",
    "excess_variances",
    "family_terms",
    "model_spread",
    "within_spread",
]

log = logging.getLogger(__name__)

#: The families that extend a fit by one feature (``model:`` settings), in the order they are fitted.
ALTERNATIVES: dict[str, dict[str, str]] = {
    "radial": {"motions": "radial"},
    "bisymmetric": {"motions": "bisymmetric"},
    "thick": {"thickness": "exponential"},
    "warp": {"warp": "linear"},
    "sigma_linear": {"dispersion": "linear"},
    "lopsided": {"asymmetry": "lopsided"},
    "data": {"surface_brightness": "data"},
}

#: Model-spec defaults: an alternative only changes a feature that the fit leaves at its default (None: any
#: parametric surface brightness may give way to the data's).
_PLAIN = {
    "motions": "none",
    "thickness": "thin",
    "warp": "none",
    "dispersion": "constant",
    "asymmetry": "none",
    "surface_brightness": None,
}

#: Rounds of the forward search (:func:`family_differences`): the mismatched mocks of the error calibration have up
#: to three features.
MAX_ROUNDS = 3

#: The starts of a family whose Nelder-Mead maximum lies within this much AIC of the best one's are refined before
#: the best is chosen (:func:`kinms_core.optimise.maximise_refined`); a maximum lower by more stays lower.
REFINE_MARGIN_AIC = 10.0

#: A family's other refined maxima (:func:`_modes`) within this much AIC of its best count as modes of its
#: posterior; lower ones would weigh under exp(-5) of it.
MODE_MARGIN_AIC = 10.0

#: Two maxima are distinct modes when some parameter differs by more than this many of the best one's sandwich widths.
MODE_SEPARATION = 3.0

#: How the families were searched; families recorded by another search are searched again.
SEARCH = (
    f"forward over every feature, up to {MAX_ROUNDS} rounds from the sum of the features' shifts; radial flows also "
    f"from disc-plane angles {RADIAL_ANGLES} deg, lopsided discs from m = 1 phases {LOPSIDED_PHASES} deg with the "
    f"light's centroid kept, in every round; features {', '.join(ALTERNATIVES)}; "
    f"each family's sandwich width; each start's maximum within {REFINE_MARGIN_AIC} in AIC of the best refined by "
    f"Levenberg-Marquardt; distinct maxima within {MODE_MARGIN_AIC} in AIC weighed as modes"
)


def _alternative_settings(settings: FitSettings, fit_data: FitData) -> dict[str, FitSettings]:
    """The settings of every family that adds one feature to ``settings``' model, with its other settings (those of
    parameters it has; no walker count, as it is only maximised); a combination the model cannot make (a warped or
    thick disc with the surface brightness from the data) is left out."""
    out, extent = {}, fit_data.emission_extent
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
            out[name] = load_settings(raw).for_data(fit_data.guesses, extent)
        except (SettingsError, ValueError) as error:
            log.debug("%s: no %s family: %s", fit_data.galaxy, name, error)
    return out


def akaike_weights(criteria: Mapping[str, float]) -> dict[str, float]:
    """Akaike weights ``exp(-AIC_k / 2)``, normalised, of models with criteria ``AIC_k``."""
    lowest = min(criteria.values())
    raw = {name: math.exp(-0.5 * (value - lowest)) for name, value in criteria.items()}
    total = sum(raw.values())
    return {name: value / total for name, value in raw.items()}


def bic_criteria(families: Mapping[str, Any], n_effective: float) -> dict[str, float]:
    """The BIC of each model of a family search's record (``aic``, ``n_parameters``), ``AIC + k (ln N_eff - 2)``
    with ``k`` the parameters it counts and ``N_eff`` the independent noise samples of the data
    (:func:`kinms_core.fit.bic`): Schwarz's penalty instead of Akaike's. Empty for a record without parameter counts
    or without a positive ``n_effective``."""
    criteria, counted = families.get("aic") or {}, families.get("n_parameters") or {}
    if not criteria or not set(criteria) <= set(counted) or not n_effective > 0:
        return {}
    penalty = math.log(n_effective) - 2.0
    return {model: value + counted[model] * penalty for model, value in criteria.items()}


def aic(chi2: float, n_parameters: float, volume: float) -> float:
    """``AIC = chi2 / c + 2 p`` of a model at its maximum: ``c`` the data's noise-correlation volume, ``p`` its free
    parameters (a map from the data counting its independent beams)."""
    return chi2 / volume + 2.0 * n_parameters


def _n_parameters(posterior: LogPosterior) -> float:
    """The parameters an information criterion counts: the free ones and a map from the data's independent beams."""
    return len(posterior.free) + posterior.map_parameters


def _aic(posterior: LogPosterior, theta: np.ndarray, volume: float) -> float:
    return aic(posterior.chi2(theta), _n_parameters(posterior), volume)


def _difference(name: str, value: float, reference: float) -> float:
    """``value - reference``; for a position angle, by the shortest arc."""
    difference = value - reference
    return (difference + 180.0) % 360.0 - 180.0 if name == "pa" else difference


def combined_start(
    fit_values: Mapping[str, float], base: Mapping[str, float], feature: Mapping[str, float]
) -> dict[str, float]:
    """The start of a model that adds a feature's family to ``base``: ``base``'s values, each moved by the shift the
    feature's family made from the fit (``feature - fit_values``), and the feature's own parameters, which ``base``
    lacks. Two small perturbations (a ring's surface brightness, an inflow's turn of the kinematic axis) add, so
    that the start keeps both; position angles are shifted by their shortest arc."""
    start = {**feature, **base}
    for name, value in base.items():
        if name in feature and name in fit_values:
            start[name] = value + _difference(name, feature[name], fit_values[name])
    return start


def model_spread(
    fit_values: Mapping[str, float],
    family_values: Mapping[str, Mapping[str, float]],
    weights: Mapping[str, float],
    excess_variance: Mapping[str, Mapping[str, float]] | None = None,
) -> dict[str, float]:
    """Per parameter of the fit, ``sqrt(sum_k w_k (theta_k - theta_fit)^2)`` over the families that have it (the fit
    itself, under any name in ``weights`` missing from ``family_values``, adds nothing); position angles by their
    shortest arc.

    With ``excess_variance`` (per family and parameter, what its extra freedom adds to the fit's variance,
    :func:`excess_variances`), each squared shift counts only beyond it: ``max(0, (theta_k - theta_fit)^2 -
    excess)``. Where a family's feature is absent, its shift from the fit is noise of that variance (Hausman 1978:
    the difference between an estimator that is efficient without the feature and one that is consistent with it),
    which the within-model part (:func:`within_spread`) already adds; what is left estimates the fit's squared bias."""
    out = {}
    for name, value in fit_values.items():
        total = 0.0
        for family, values in family_values.items():
            if name not in values:
                continue
            shift = _difference(name, values[name], value) ** 2
            if excess_variance is not None:
                shift = max(shift - excess_variance.get(family, {}).get(name, 0.0), 0.0)
            total += weights[family] * shift
        out[name] = math.sqrt(total)
    return out


def _variance_difference(widths: Mapping[str, float], name: str, own: float) -> float:
    """``sigma_k^2 - sigma_fit^2`` of one family and parameter: 0 where the family lacks the parameter or has no
    finite, positive width there, or the fit's own width is not finite (its width then stands for the family's)."""
    width = widths.get(name, own)
    usable = math.isfinite(width) and width > 0 and math.isfinite(own)
    return width**2 - own**2 if usable else 0.0


def excess_variances(
    fit_widths: Mapping[str, float], family_widths: Mapping[str, Mapping[str, float]]
) -> dict[str, dict[str, float]]:
    """Per family and parameter of the fit, ``max(0, sigma_k^2 - sigma_fit^2)``: the variance its extra freedom adds
    to the fit's (0 where the family lacks the parameter or has no finite, positive width there)."""
    return {
        family: {name: max(_variance_difference(widths, name, own), 0.0) for name, own in fit_widths.items()}
        for family, widths in family_widths.items()
    }


def family_terms(
    families: Mapping[str, Any], fit_values: Mapping[str, float], fit_widths: Mapping[str, float]
) -> dict[str, dict[str, float]]:
    """The errors' two model-choice terms of a family search's record (``best``, ``aic``, ``modes``, ``widths``), per
    free parameter of the fit whose best values are ``fit_values`` and sandwich widths ``fit_widths``: ``spread``
    between the models' maxima and modes (:func:`model_spread` over :func:`weighted_maxima`, each shift beyond what
    its family's own width explains) and ``within`` them (:func:`within_spread`, a mode with its family's widths)."""
    every, weights = weighted_maxima(families)
    family_widths = families.get("widths", {})
    every_widths = {key: family_widths.get(key.partition("#")[0], {}) for key in every}
    excess = excess_variances(fit_widths, every_widths)
    return {
        "spread": model_spread(fit_values, every, weights, excess),
        "within": within_spread(fit_widths, every_widths, weights),
    }


def within_spread(
    fit_widths: Mapping[str, float], family_widths: Mapping[str, Mapping[str, float]], weights: Mapping[str, float]
) -> dict[str, float]:
    """Per parameter of the fit, what the model-averaged variance's within-model part ``sum_k w_k sigma_k^2`` adds
    to the fit's own ``sigma_fit^2``: ``sqrt(max(0, sum_k w_k (sigma_k^2 - sigma_fit^2)))``, with ``sigma_k`` each
    family's width (the fit's own where a family lacks the parameter or has no finite, positive width there). A
    family that frees a degenerate direction (an inflow's turn of the kinematic axis at low inclination) is wider
    than the fit; when the narrower families weigh more, the errors stay the fit's."""
    out = {}
    for name, own in fit_widths.items():
        total = sum(
            weights.get(family, 0.0) * _variance_difference(widths, name, own)
            for family, widths in family_widths.items()
        )
        out[name] = math.sqrt(max(total, 0.0))
    return out


def _maximised(
    fit_data: FitData,
    alternative: FitSettings,
    start_values: Mapping[str, float],
    n_clouds: int,
    volume: float,
    evaluations: int,
    feature: str,
) -> tuple[dict[str, float], float, dict[str, float], float, list[dict[str, Any]]]:
    """One family's best free values, maximised from ``start_values`` (a parameter they lack at its guess) and from
    :func:`kinms_core.starts.start_values`'s starts of the model-spec ``feature`` it adds, each refined
    (:func:`kinms_core.optimise.refined_maxima`), its AIC, its sandwich widths
    (:func:`kinms_core.likelihood.widths_at`) there, the parameters its AIC counts and its other modes
    (:func:`_modes`)."""
    start = replace(fit_data, guesses={**fit_data.guesses, **start_values})
    posterior = maximisation_posterior(
        fit_data,
        alternative.resolved(start.guesses, start.bounds),
        alternative.spec,
        n_clouds=n_clouds,
        seed=alternative.options.seed,
    )
    guess = np.clip(posterior.guess, posterior.low, posterior.high)
    vectors = start_vectors(posterior, guess, fit_data.guesses.get("scalerad"), only=feature)
    margin = 0.5 * volume * REFINE_MARGIN_AIC  # in the untempered log-likelihood of independent noise
    maxima, _ = refined_maxima(posterior, vectors, evaluations, fit_data.obspars.beam_area_pixels, margin)
    theta = maxima[0][0]
    widths = widths_at(fit_data, posterior, theta)
    criterion = _aic(posterior, theta, volume)
    modes = _modes(posterior, [m[0] for m in maxima], widths, volume, criterion)
    values = dict(zip(posterior.free_names, theta.tolist(), strict=True))
    return values, criterion, widths, _n_parameters(posterior), modes


def _modes(
    posterior: LogPosterior, maxima: Sequence[np.ndarray], widths: Mapping[str, float], volume: float, best: float
) -> list[dict[str, Any]]:
    """The maxima after the first (the best, whose AIC is ``best`` and sandwich widths ``widths``) that are modes of
    their own: within :data:`MODE_MARGIN_AIC` of the best and, in some parameter, more than
    :data:`MODE_SEPARATION` widths from the best and from each mode kept before; each as its ``values`` and ``aic``.

    A family's posterior can have two modes about as high: a lopsided disc centred on its light or on its kinematics,
    with systemic velocities that differ by the rotation across that offset; a thick disc seen at 19 or 62 deg of
    inclination (a calibration mock: 0.9 apart in AIC). Weighing only the higher one, the errors leave out the
    other."""
    scale = np.array([widths.get(name, math.nan) for name in posterior.free_names])
    usable = np.isfinite(scale) & (scale > 0)
    if not usable.any():
        return []
    kept, modes = [maxima[0]], []
    for theta in maxima[1:]:
        criterion = _aic(posterior, theta, volume)
        if criterion - best > MODE_MARGIN_AIC:
            continue
        if all(np.max(np.abs(theta - other)[usable] / scale[usable]) > MODE_SEPARATION for other in kept):
            kept.append(theta)
            modes.append({"values": dict(zip(posterior.free_names, theta.tolist(), strict=True)), "aic": criterion})
    return modes


def weighted_maxima(families: Mapping[str, Any]) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    """Every family maximum and mode of a family search's record (``best``, ``aic``, ``modes``; the fit's own,
    ``fit``, by its AIC alone), keyed ``family`` and ``family#k``, and each one's Akaike weight: the weights of a
    family's modes add up to the family's. A record without AICs keeps its ``weights``."""
    values = dict(families.get("best", {}))
    criteria = dict(families.get("aic") or {})
    if not criteria:  # a record of weights alone
        return values, dict(families.get("weights", {}))
    for family, modes in (families.get("modes") or {}).items():
        for k, mode in enumerate(modes, start=1):
            values[f"{family}#{k}"] = mode["values"]
            criteria[f"{family}#{k}"] = mode["aic"]
    return values, akaike_weights(criteria)


def _maximise_all(
    fit_data: FitData,
    alternatives: Mapping[str, tuple[FitSettings, Mapping[str, float], str]],
    arguments: tuple[int, float, int],
    processes: int,
) -> dict[str, tuple[dict[str, float], float, dict[str, float], float]]:
    """:func:`_maximised` of each alternative (its settings, start values and the model-spec feature it adds), on up
    to ``processes`` workers."""
    if processes > 1 and len(alternatives) > 1:
        with ProcessPoolExecutor(min(processes, len(alternatives)), mp_context=process_context()) as pool:
            futures = {
                name: pool.submit(_maximised, fit_data, alternative, start, *arguments, feature)
                for name, (alternative, start, feature) in alternatives.items()
            }
            return {name: future.result() for name, future in futures.items()}
    return {
        name: _maximised(fit_data, alternative, start, *arguments, feature)
        for name, (alternative, start, feature) in alternatives.items()
    }


def family_differences(
    fit_data: FitData,
    settings: FitSettings,
    fit_posterior: LogPosterior,
    best: np.ndarray,
    volume: float,
    *,
    fit_widths: Mapping[str, float],
    max_evaluations: int,
    families: Sequence[str] | None = None,
    processes: int = 1,
    max_rounds: int = MAX_ROUNDS,
) -> dict[str, Any]:
    """Each family's best values, AIC (``n_parameters``: the parameters it counts), sandwich widths and other modes
    (``modes``: :func:`_modes`), every model's Akaike weight (the fit's as ``fit``; a family's, its modes' together)
    and the errors' extra terms per free parameter of the fit, from the fit's best point ``best`` of
    ``fit_posterior`` whose sandwich widths are ``fit_widths``: ``spread`` and ``within`` (:func:`family_terms`).

    The families are found by a forward search: the first round adds each feature of :data:`ALTERNATIVES` to the
    fit's model; each later round adds, to the round's best model (if it beats the one it extends), each other feature
    that model can take (``"data+radial"`` adds radial flows to the data's surface brightness),
    starting from both models' shifts added (:func:`combined_start`); up to ``max_rounds`` rounds. A galaxy has more
    than one feature (a ring and an inflow): a family that adds only the ring wins the first round by its surface
    brightness, yet only the inflow moves the position angle. Each family is maximised with ``max_evaluations`` per
    start, on up to ``processes`` worker processes; ``families`` limits the features to those names. ``chosen``
    lists each round's best model."""
    fit_values = fit_posterior.values(best)
    criteria = {"fit": _aic(fit_posterior, best, volume)}
    counted = {"fit": _n_parameters(fit_posterior)}
    found: dict[str, dict[str, float]] = {}
    widths: dict[str, dict[str, float]] = {}
    modes: dict[str, list[dict[str, Any]]] = {}
    base, base_settings, added = "fit", settings, {feature: "fit" for feature in ALTERNATIVES}
    candidates = [feature for feature in ALTERNATIVES if families is None or feature in families]
    chosen = []
    for _ in range(max_rounds):
        named = {}
        for feature, alternative in _alternative_settings(base_settings, fit_data).items():
            if feature in candidates:
                start = combined_start(fit_values, found.get(base, fit_values), found.get(added[feature], fit_values))
                named[feature] = (feature if base == "fit" else f"{base}+{feature}", alternative, start)
        if not named:
            break
        started = time.perf_counter()
        # Each family also starts from the ladder of the feature it adds, in every round: a lopsided disc's two
        # basins (the light's centroid or the kinematic centre) are about as high, so the first round's choice
        # between them is no guide to a later one's.
        arguments = (fit_posterior.model.cube_model.n_clouds, volume, max_evaluations)
        alternatives = {
            name: (alt, start, next(iter(ALTERNATIVES[feature]))) for feature, (name, alt, start) in named.items()
        }
        results = _maximise_all(fit_data, alternatives, arguments, processes)
        log.info(
            "%s: families %s maximised, %.0f s",
            fit_data.galaxy,
            ", ".join(name for name, _, _ in named.values()),
            time.perf_counter() - started,
        )
        for feature, (name, _, _) in named.items():
            found[name], criteria[name], widths[name], counted[name], modes[name] = results[name]
            added[feature] = name
        feature = min(named, key=lambda added_feature: criteria[named[added_feature][0]])
        leader, leader_settings, _ = named[feature]
        if criteria[leader] >= criteria[base]:
            break
        candidates.remove(feature)
        base, base_settings = leader, leader_settings
        chosen.append(leader)
    modes = {name: found_modes for name, found_modes in modes.items() if found_modes}
    _, every_weight = weighted_maxima({"best": found, "aic": criteria, "modes": modes})
    weights = dict.fromkeys(criteria, 0.0)
    for key, weight in every_weight.items():
        weights[key.partition("#")[0]] += weight
    record = {
        "search": SEARCH,
        "chosen": chosen,
        "weights": weights,
        "aic": criteria,
        "n_parameters": counted,
        "best": found,
        "modes": modes,
        "widths": widths,
    }
    free_values = dict(zip(fit_posterior.free_names, best.tolist(), strict=True))
    return record | family_terms(record, free_values, fit_widths)
