"""Figures of a fit's posterior: the corner plot of the samples and the walkers' traces.

Made with the object API (:class:`matplotlib.figure.Figure`), never pyplot, as :mod:`kinms_core.plots`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from .plots import save_figure

__all__ = ["plot_corner", "plot_traces"]


def plot_corner(
    samples: np.ndarray,
    labels: Sequence[str],
    path: str | Path,
    *,
    truths: Sequence[float | None] | None = None,
    title: str | None = None,
) -> Path:
    """Corner plot of posterior samples with 16/50/84 % quantiles and ``median +- errors`` titles.

    Parameters
    ----------
    samples
        Samples ``(nsamples, ndim)`` (a chain ``(nsteps, nwalkers, ndim)`` is flattened); rows with non-finite
        values are dropped.
    labels
        One label per parameter.
    path
        Output file.
    truths
        True values to mark (``None`` entries are not marked).
    title
        Figure title.

    Returns
    -------
    Path
        The written file.
    """
    import corner

    samples = np.asarray(samples, dtype=float)
    if samples.ndim == 3:
        samples = samples.reshape(-1, samples.shape[-1])
    if samples.ndim != 2 or samples.shape[1] != len(labels):
        raise ValueError(f"samples must be (nsamples, {len(labels)}) for {len(labels)} labels, got {samples.shape}")
    samples = samples[np.all(np.isfinite(samples), axis=1)]
    if samples.shape[0] < 2:
        raise ValueError("plot_corner needs at least two finite samples")
    ndim = samples.shape[1]
    ranges = []
    for lo, hi in zip(samples.min(axis=0), samples.max(axis=0), strict=True):
        pad = max(abs(lo) * 1e-3, 1e-3) if hi <= lo else 0.0
        ranges.append((float(lo - pad), float(hi + pad)))
    if truths is not None:
        if len(truths) != ndim:
            raise ValueError(f"truths has {len(truths)} entries for {ndim} parameters")
        truths = [None if t is None or not np.isfinite(t) else float(t) for t in truths]
        if all(t is None for t in truths):
            truths = None
    size = max(2.0 * ndim, 4.0)
    fig = Figure(figsize=(size, size))
    corner.corner(
        samples,
        labels=list(labels),
        range=ranges,
        quantiles=[0.16, 0.5, 0.84],
        show_titles=False,
        truths=truths,
        truth_color="C3",
        fig=fig,
        label_kwargs={"fontsize": 11},
    )
    diagonal = np.array(fig.axes).reshape(ndim, ndim).diagonal()
    for ax, name, column in zip(diagonal, labels, samples.T, strict=True):
        ax.set_title(_quantile_title(name, column), fontsize=10)
    if title:
        fig.suptitle(title, fontsize=14)
    return save_figure(fig, path, bbox_inches="tight")


def _quantile_title(label: str, values: np.ndarray) -> str:
    """``label = median^{+err}_{-err}`` with the errors rounded to two significant figures."""
    q16, q50, q84 = np.percentile(values, [16, 50, 84])
    lower, upper = q50 - q16, q84 - q50
    smallest = min((e for e in (lower, upper) if e > 0), default=abs(q50) or 1.0)
    decimals = max(0, 1 - math.floor(math.log10(smallest)))
    return rf"{label} = ${q50:.{decimals}f}^{{+{upper:.{decimals}f}}}_{{-{lower:.{decimals}f}}}$"


def plot_traces(
    chain: np.ndarray,
    labels: Sequence[str],
    path: str | Path,
    *,
    burn_in: int = 0,
    truths: Sequence[float | None] | None = None,
    title: str | None = None,
) -> Path:
    """Walker traces of an ensemble MCMC chain, one row per parameter.

    Parameters
    ----------
    chain
        Chain ``(nsteps, nwalkers, ndim)`` as returned by emcee's ``get_chain()``.
    labels
        One label per parameter.
    path
        Output file.
    burn_in
        Number of initial steps discarded as burn-in (shaded).
    truths
        True values drawn as dashed lines (``None`` entries skipped).
    title
        Figure title.

    Returns
    -------
    Path
        The written file.
    """
    chain = np.asarray(chain, dtype=float)
    if chain.ndim != 3 or chain.shape[2] != len(labels):
        raise ValueError(f"chain must be (nsteps, nwalkers, {len(labels)}), got shape {chain.shape}")
    if truths is not None and len(truths) != len(labels):
        raise ValueError(f"truths has {len(truths)} entries for {len(labels)} parameters")
    nsteps, nwalkers, ndim = chain.shape
    burn_in = int(min(max(burn_in, 0), nsteps))
    steps = np.arange(nsteps)
    alpha = float(np.clip(10.0 / max(nwalkers, 1), 0.08, 0.6))
    fig = Figure(figsize=(10.0, 1.5 * ndim + 1.0), layout="constrained")
    axes = fig.subplots(ndim, 1, sharex=True, squeeze=False)[:, 0]
    for i, ax in enumerate(axes):
        ax.plot(steps, chain[:, :, i], color="black", lw=0.5, alpha=alpha)
        if burn_in > 0:
            ax.axvspan(-0.5, burn_in - 0.5, color="0.85", zorder=0, label="burn-in" if i == 0 else None)
        kept = chain[burn_in:, :, i]
        kept = kept[np.isfinite(kept)]
        if kept.size:
            ax.axhline(float(np.median(kept)), color="C0", lw=1.2, label="median (after burn-in)" if i == 0 else None)
        if truths is not None and truths[i] is not None and np.isfinite(truths[i]):
            ax.axhline(float(truths[i]), color="C3", ls="--", lw=1.5, label="truth" if i == 0 else None)
        ax.set_ylabel(labels[i])
        ax.set_xlim(0, max(nsteps - 1, 1))
        ax.tick_params(direction="in", top=True, right=True)
    axes[-1].set_xlabel("Step")
    handles, _ = axes[0].get_legend_handles_labels()
    if handles:
        axes[0].legend(loc="upper right", fontsize="small", ncols=3, framealpha=0.8)
    heading = f"{title}: " if title else ""
    fig.suptitle(f"{heading}{nwalkers} walkers, {nsteps} steps, burn-in {burn_in}")
    return save_figure(fig, path)
