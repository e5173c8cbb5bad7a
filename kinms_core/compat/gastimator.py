"""Drop-in for the seed tutorial's GAStimator calls, backed by emcee (GAStimator does not run on numpy 2).

```python
mcmc = gastimator(make_model, obspars, rad)
mcmc.labels, mcmc.min, mcmc.max, mcmc.fixed, mcmc.precision, mcmc.guesses = ...
outputvalue, outputll = mcmc.run(fdata, error, 3000)
```

``run`` spends about ``niters`` model evaluations: a third in a Nelder-Mead search from the guesses, the rest in an
emcee ensemble (differential-evolution moves) started around the best point found. It returns GAStimator's shapes:
samples ``(nparams, nsamples)`` after discarding the first half of the chain, and their log-likelihoods
``(nsamples,)``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from pathlib import Path

import emcee
import numpy as np

from ..optimise import maximise
from ..posterior_plots import plot_corner

__all__ = ["corner_plot", "gastimator"]

log = logging.getLogger(__name__)


class gastimator:  # noqa: N801 - the tutorial's class name
    """GAStimator's interface: set ``labels, min, max, fixed, precision, guesses``, then :meth:`run`.

    Parameters
    ----------
    model
        ``model(params, *args, **kwargs)`` returning a cube of the data's shape.
    *args, **kwargs
        Passed on to ``model``.
    """

    def __init__(self, model: Callable[..., np.ndarray], *args: object, **kwargs: object) -> None:
        self.model = model
        self.args = args
        self.kwargs = kwargs
        self.labels: Sequence[str] | None = None
        self.min: Sequence[float] | None = None
        self.max: Sequence[float] | None = None
        self.fixed: Sequence[bool] | None = None
        self.precision: Sequence[float] | None = None
        self.guesses: Sequence[float] | None = None
        self.seed = 1
        self.silent = False

    def _arrays(self) -> tuple[np.ndarray, ...]:
        names = ("labels", "min", "max", "fixed", "precision", "guesses")
        missing = [n for n in names if getattr(self, n) is None]
        if missing:
            raise ValueError(f"set mcmc.{', mcmc.'.join(missing)} before run()")
        labels = np.asarray(self.labels)
        low, high = np.asarray(self.min, float), np.asarray(self.max, float)
        fixed, precision = np.asarray(self.fixed, bool), np.asarray(self.precision, float)
        guesses = np.asarray(self.guesses, float)
        sizes = {n: a.size for n, a in zip(names, (labels, low, high, fixed, precision, guesses), strict=True)}
        if len(set(sizes.values())) != 1:
            raise ValueError(f"mcmc.labels/min/max/fixed/precision/guesses must have equal lengths, got {sizes}")
        for i, label in enumerate(labels):
            if not fixed[i] and not low[i] < high[i]:
                raise ValueError(f"parameter {label}: min ({low[i]}) must be below max ({high[i]})")
            if not low[i] <= guesses[i] <= high[i] and not fixed[i]:
                raise ValueError(f"parameter {label}: guess {guesses[i]} lies outside [{low[i]}, {high[i]}]")
        if fixed.all():
            raise ValueError("every parameter is fixed: free at least one (mcmc.fixed)")
        return labels, low, high, fixed, precision, guesses

    def run(
        self, fdata: np.ndarray, error: float | np.ndarray, niters: int, plot: bool = False, **_ignored: object
    ) -> tuple[np.ndarray, np.ndarray]:
        """Sample the posterior with about ``niters`` model evaluations; return ``(samples, loglikelihoods)``.

        ``error`` is the RMS per voxel (scalar or of the data's shape); NaN voxels of ``fdata`` are ignored.
        ``plot=True`` writes a corner plot to ``gastimator_corner.png``.
        """
        labels, low, high, fixed, precision, guesses = self._arrays()
        data = np.asarray(fdata, dtype=float)
        error = np.asarray(error, dtype=float)
        if not np.all(np.isfinite(error)) or np.any(error <= 0):
            raise ValueError("error (the RMS) must be positive and finite")
        finite = np.isfinite(data)
        free = ~fixed
        ndim = int(free.sum())
        nwalkers = max(2 * ndim + 2, 16)

        def log_prob(theta: np.ndarray) -> float:
            if np.any(theta < low[free]) or np.any(theta > high[free]):
                return -math.inf
            params = guesses.copy()
            params[free] = theta
            residual = (data - self.model(params, *self.args, **self.kwargs)) / error
            return -0.5 * float(np.sum(np.square(residual[finite])))

        # As GAStimator's first chains do, find the best region before sampling: a third of the budget.
        best, calls = maximise(log_prob, guesses[free], low[free], high[free], niters // 3)
        nsteps = max(int(math.ceil((niters - calls) / nwalkers)), 20)
        rng = np.random.default_rng(self.seed)
        start = best + 0.1 * precision[free] * rng.standard_normal((nwalkers, ndim))
        start = np.clip(start, low[free], high[free])
        moves = [(emcee.moves.DEMove(), 0.8), (emcee.moves.DESnookerMove(), 0.2)]
        sampler = emcee.EnsembleSampler(nwalkers, ndim, log_prob, moves=moves)
        sampler.random_state = np.random.RandomState(self.seed).get_state()
        sampler.run_mcmc(start, nsteps, progress=not self.silent)
        discard = nsteps // 2
        chain = sampler.get_chain(discard=discard, flat=True)
        loglike = sampler.get_log_prob(discard=discard, flat=True)
        samples = np.repeat(guesses[:, None], chain.shape[0], axis=1)
        samples[free] = chain.T
        for i, label in enumerate(labels):
            if fixed[i]:
                log.info("%s: %g (fixed)", label, guesses[i])
            else:
                lo, med, hi = np.percentile(samples[i], [16, 50, 84])
                log.info("%s: %g +%g -%g", label, med, hi - med, med - lo)
        log.info(
            "acceptance fraction %.2f over %d steps of %d walkers",
            np.mean(sampler.acceptance_fraction),
            nsteps,
            nwalkers,
        )
        if plot:
            corner_plot(samples, labels=labels, path="gastimator_corner.png")
        return samples, loglike


def corner_plot(
    outputvalue: np.ndarray,
    labels: Sequence[str] | None = None,
    path: str | Path = "gastimator_corner.png",
    truths: Sequence[float] | None = None,
    **_ignored: object,
) -> Path:
    """Corner plot of ``run``'s samples ``(nparams, nsamples)``; constant (fixed) rows are left out."""
    samples = np.asarray(outputvalue, dtype=float)
    keep = [i for i in range(samples.shape[0]) if np.ptp(samples[i]) > 0]
    names = [str(labels[i]) if labels is not None else f"p{i}" for i in keep]
    truth = [truths[i] for i in keep] if truths is not None else None
    return plot_corner(samples[keep].T, names, path, truths=truth)
