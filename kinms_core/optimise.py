"""The optimiser that finds a fit's starting point (and the best point of a side or a model family): Nelder-Mead,
which needs no derivatives and crosses rough ground from first guesses that may be far off, then Levenberg-Marquardt
(:func:`refine`), which finds the maximum that Nelder-Mead stalls short of in ten or more dimensions."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Protocol

import numpy as np
from scipy.optimize import least_squares, minimize

from .errors import ModelOutsideCubeError
from .sandwich import first_steps, jacobian, width_steps

__all__ = ["maximise", "maximise_from", "maximise_refined", "refine", "refined_maxima"]

#: Levenberg-Marquardt iterations of :func:`refine`: each costs a model and a Jacobian (two models per parameter).
REFINE_ITERATIONS = 20


class LeastSquaresPosterior(Protocol):
    """What :func:`refine` needs of a posterior (:class:`kinms_core.likelihood.LogPosterior` has it)."""

    low: np.ndarray
    high: np.ndarray

    def residuals(self, theta: np.ndarray) -> np.ndarray: ...

    def __call__(self, theta: np.ndarray) -> float: ...


def maximise(
    log_prob: Callable[[np.ndarray], float],
    guess: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
    max_evaluations: int,
) -> tuple[np.ndarray, int]:
    """Nelder-Mead from ``guess`` towards the maximum of ``log_prob`` inside ``[low, high]``, in coordinates scaled
    by the bounds, restarted with a fresh simplex from its last best point while a restart still gains more than
    0.01 in ``log_prob`` (a simplex that has collapsed in some direction stalls short of the maximum); returns the
    best point and the number of evaluations (the guess when nothing better is found)."""
    span = high - low
    if max_evaluations == 0:
        return guess.copy(), 0
    calls = 0

    def negative(u: np.ndarray) -> float:
        nonlocal calls
        calls += 1
        value = log_prob(low + np.clip(u, 0.0, 1.0) * span)
        return 1e300 if not math.isfinite(value) else -value

    best_u = (guess - low) / span
    best_value = negative(best_u)
    while calls < max_evaluations:
        result = minimize(
            negative,
            best_u,
            method="Nelder-Mead",
            options={
                "maxfev": max_evaluations - calls,
                "xatol": 1e-4,
                "fatol": 1e-3,
                "adaptive": best_u.size > 3,
            },
        )
        gain = best_value - float(result.fun)
        if gain > 0:
            best_u, best_value = np.clip(result.x, 0.0, 1.0), float(result.fun)
        if gain < 0.01:
            break
    if not math.isfinite(-best_value) or best_value >= 1e300:
        return guess.copy(), calls
    return low + best_u * span, calls


def maximise_from(
    log_prob: Callable[[np.ndarray], float],
    starts: list[np.ndarray],
    low: np.ndarray,
    high: np.ndarray,
    max_evaluations: int,
) -> tuple[np.ndarray, int, int]:
    """:func:`maximise` from each start (each with ``max_evaluations``); returns the best point of all, the
    evaluations of all and the index of the start that led to it."""
    if len(starts) == 1:  # nothing to compare: no extra evaluation
        theta, calls = maximise(log_prob, starts[0], low, high, max_evaluations)
        return theta, calls, 0
    best, best_value, best_index, calls = starts[0].copy(), -math.inf, 0, 0
    for index, start in enumerate(starts):
        theta, used = maximise(log_prob, start, low, high, max_evaluations)
        value = log_prob(theta)
        calls += used + 1
        if math.isfinite(value) and value > best_value:
            best, best_value, best_index = theta, value, index
    return best, calls, best_index


def refine(
    posterior: LeastSquaresPosterior, theta: np.ndarray, correlation: float, max_iterations: int = REFINE_ITERATIONS
) -> tuple[np.ndarray, int]:
    """Levenberg-Marquardt (a trust region inside the bounds, scipy's ``least_squares``) from ``theta`` on the
    posterior's residuals, with its Jacobian by central differences about the posterior's width
    (:func:`kinms_core.sandwich.width_steps`, ``correlation`` the noise's correlation volume in voxels).

    Nelder-Mead in ten or more dimensions stalls far short of the maximum of a cloudlet model's likelihood, which is
    rough on small scales (on NGC 4324 by hundreds in log-likelihood after 2000 evaluations); differences over the
    posterior's width see its smooth shape and a Gauss-Newton step crosses a long valley at once. Returns the better
    of ``theta`` and the refined point, and the evaluations.
    """
    low, high = posterior.low, posterior.high
    theta = np.clip(np.asarray(theta, dtype=float), low, high)
    calls = 0

    def residuals(x: np.ndarray) -> np.ndarray:
        nonlocal calls
        calls += 1
        return posterior.residuals(x)

    try:
        start = residuals(theta)
        ones = np.ones(start.size)
        first = jacobian(residuals, theta, first_steps(high - low), low, high, ones)
        steps = width_steps(first @ first.T, high - low, correlation)
        # in units of the steps, where the tolerances mean the same for every parameter
        result = least_squares(
            lambda z: residuals(theta + z * steps),
            np.zeros(theta.size),
            jac=lambda z: jacobian(residuals, theta + z * steps, steps, low, high, ones).T * steps,
            bounds=((low - theta) / steps, (high - theta) / steps),
            method="trf",
            max_nfev=max_iterations,
            xtol=1e-4,
            ftol=1e-9,
        )
    except ModelOutsideCubeError:
        return theta, calls
    # least_squares's cost is half the sum of squares: minus the log posterior inside the bounds, up to a constant
    better = result.cost < 0.5 * float(start @ start)
    return (np.clip(theta + result.x * steps, low, high), calls) if better else (theta, calls)


def refined_maxima(
    posterior: LeastSquaresPosterior,
    starts: list[np.ndarray],
    max_evaluations: int,
    correlation: float,
    margin: float = math.inf,
) -> tuple[list[tuple[np.ndarray, float, int]], int]:
    """:func:`maximise` from each start, then :func:`refine` of each maximum within ``margin`` (in log posterior) of
    the highest; returns the refined maxima ``(theta, log posterior, index of its start)``, highest first, and the
    evaluations of all.

    The maxima are refined before they are compared: Nelder-Mead stops short of a maximum by different amounts from
    different starts, and two basins can be as high (on a lopsided mock the start at the true centre ended 1.3 in
    AIC below the symmetric one after Nelder-Mead, and 0.02 above it once both were refined)."""
    maxima, calls = [], 0
    for start in starts:
        theta, used = maximise(posterior, start, posterior.low, posterior.high, max_evaluations)
        maxima.append((theta, posterior(theta)))
        calls += used + 1
    highest = max(value for _, value in maxima)
    refined = []
    for index, (theta, value) in enumerate(maxima):
        if not value >= highest - margin:
            continue
        theta, refine_calls = refine(posterior, theta, correlation)
        value = posterior(theta)
        calls += refine_calls + 1
        if math.isfinite(value):
            refined.append((theta, value, index))
    if not refined:
        return [(starts[0].copy(), posterior(starts[0]), 0)], calls
    return sorted(refined, key=lambda entry: -entry[1]), calls


def maximise_refined(
    posterior: LeastSquaresPosterior,
    starts: list[np.ndarray],
    max_evaluations: int,
    correlation: float,
    margin: float = math.inf,
) -> tuple[np.ndarray, int, int]:
    """The highest of :func:`refined_maxima`: the best refined point, the evaluations of all and the index of the start
    that led to it."""
    maxima, calls = refined_maxima(posterior, starts, max_evaluations, correlation, margin)
    theta, _, index = maxima[0]
    return theta, calls, index
