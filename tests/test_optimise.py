"""The optimiser: Levenberg-Marquardt finds the maximum that Nelder-Mead stalls short of in a long valley in many
dimensions, stays inside the bounds and keeps its start where it cannot do better. (On the cloudlet model's rough
likelihood the gap is far larger: benchmarks/optimiser.py measures it on the observed cubes.)"""

from __future__ import annotations

import numpy as np
import pytest

from kinms_core.errors import ModelOutsideCubeError
from kinms_core.optimise import maximise, maximise_from, maximise_refined, refine


class _Valley:
    """A linear least-squares posterior in 12 parameters that all share one direction (a long, narrow valley, as
    inclination, rotation velocity and flux make in a disc's likelihood)."""

    def __init__(self, ndim: int = 12, n: int = 600, seed: int = 4) -> None:
        rng = np.random.default_rng(seed)
        base = rng.standard_normal((n, ndim))
        self.design = base + 10.0 * base[:, :1]
        self.truth = rng.uniform(-1.0, 1.0, ndim)
        self.data = self.design @ self.truth + rng.standard_normal(n)
        self.low, self.high = np.full(ndim, -5.0), np.full(ndim, 5.0)
        self.exact = np.linalg.lstsq(self.design, self.data, rcond=None)[0]

    def residuals(self, theta: np.ndarray) -> np.ndarray:
        return self.design @ theta - self.data

    def __call__(self, theta: np.ndarray) -> float:
        if np.any(theta < self.low) or np.any(theta > self.high):
            return -np.inf
        return -0.5 * float(np.sum(self.residuals(theta) ** 2))


@pytest.mark.parametrize("seed", [4, 5, 6])
def test_refine_finds_the_maximum_that_nelder_mead_stalls_short_of(seed):
    valley = _Valley(seed=seed)
    simplex, calls = maximise(valley, np.zeros(valley.truth.size), valley.low, valley.high, 1000)
    refined, refine_calls = refine(valley, simplex, correlation=1.0)
    widths = np.sqrt(np.diag(np.linalg.inv(valley.design.T @ valley.design)))
    assert np.max(np.abs(simplex - valley.exact) / widths) > 0.2  # where Nelder-Mead stopped, its budget spent
    assert np.max(np.abs(refined - valley.exact) / widths) < 0.01
    assert valley(refined) > valley(simplex) and refine_calls < calls / 4


def test_refine_stays_inside_the_bounds():
    valley = _Valley()
    valley.high = valley.exact - 0.2  # the maximum lies beyond every upper bound
    refined, _ = refine(valley, valley.low + 0.5, correlation=1.0)
    assert np.all(refined <= valley.high) and np.all(refined >= valley.low)
    assert np.isfinite(valley(refined)) and valley(refined) > valley(valley.low + 0.5)


def test_refine_keeps_its_start_when_it_cannot_do_better():
    valley = _Valley()
    refined, _ = refine(valley, valley.exact, correlation=1.0)
    assert refined == pytest.approx(valley.exact, abs=1e-6)

    class _Outside(_Valley):
        def residuals(self, theta: np.ndarray) -> np.ndarray:
            raise ModelOutsideCubeError("every cloudlet left the cube")

    outside = _Outside()
    start = np.full(outside.truth.size, 0.3)
    assert np.array_equal(refine(outside, start, correlation=1.0)[0], start)


class _TwoBasins:
    """One parameter with two basins: the maximum at 0.2 (log posterior 0) and a lower one at 0.8 (-0.045)."""

    low, high = np.array([0.0]), np.array([1.0])

    def residuals(self, theta: np.ndarray) -> np.ndarray:
        x = float(theta[0])
        return np.array([10.0 * (x - 0.2) * (x - 0.8), 0.5 * (x - 0.2)])

    def __call__(self, theta: np.ndarray) -> float:
        if np.any(theta < self.low) or np.any(theta > self.high):
            return -np.inf
        return -0.5 * float(np.sum(self.residuals(theta) ** 2))


def test_the_maxima_of_several_starts_are_refined_before_the_best_is_chosen():
    """From a start in the higher basin that Nelder-Mead leaves short of its maximum, and one at the lower basin's
    maximum: compared as Nelder-Mead leaves them, the lower basin wins; refined first, the higher one does, unless
    it lies further below than the margin."""
    basins = _TwoBasins()
    starts = [np.array([0.32]), np.array([0.79])]
    stalled, _, stalled_index = maximise_from(basins, starts, basins.low, basins.high, 1)
    assert stalled_index == 1 and stalled[0] == pytest.approx(0.79)
    best, calls, index = maximise_refined(basins, starts, 1, correlation=1.0)
    assert index == 0 and best[0] == pytest.approx(0.2, abs=1e-3) and calls > 4
    # with a margin smaller than the stalled start's shortfall it is not refined, and the lower basin stays best
    shortfall = basins(np.array([0.79])) - basins(np.array([0.32]))
    best, _, index = maximise_refined(basins, starts, 1, correlation=1.0, margin=0.5 * shortfall)
    assert index == 1 and best[0] == pytest.approx(0.8, abs=1e-2)
