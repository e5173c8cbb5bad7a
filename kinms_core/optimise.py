"""The optimiser that finds a fit's starting point (and the best point of a side or a model family)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy.optimize import minimize

__all__ = ["maximise", "maximise_from"]


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
