"""Figures of the survey catalogue: parameter recovery, pulls and distributions.

The catalogue is a :class:`pandas.DataFrame` with columns ``galaxy``, ``status`` (``'ok'`` or ``'failed'``) and,
for every parameter ``p``: ``p`` (posterior median), ``p_lo`` and ``p_hi`` (the 16th and 84th percentile values)
and, for mock galaxies, ``p_true``. Only ``'ok'`` rows are plotted. A figure that has nothing to show (no ok rows,
no true values) says so instead of failing.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .plots import save_figure

__all__ = ["SURVEY_PLOT_FILES", "plot_distributions", "plot_pulls", "plot_recovery", "pulls"]

#: The files ``kinms-core survey-plots`` writes (:func:`plot_recovery`, :func:`plot_pulls`, :func:`plot_distributions`).
SURVEY_PLOT_FILES = ("recovery.png", "pulls.png", "distributions.png")

log = logging.getLogger(__name__)

NO_OK_ROWS = "No galaxy was fitted successfully (no rows with status 'ok')."

PULL_COLUMNS = ["galaxy", "param", "value", "true", "sigma", "pull"]


def _ok(cat: pd.DataFrame) -> pd.DataFrame:
    if "status" not in cat.columns:
        raise ValueError("the catalogue has no 'status' column")
    return cat[cat["status"].astype(str).str.strip().str.lower() == "ok"]


def _numeric(frame: pd.DataFrame, column: str) -> np.ndarray:
    if column not in frame.columns:
        return np.full(len(frame), np.nan)
    return pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)


def _with_truth(cat: pd.DataFrame, params: Sequence[str]) -> list[str]:
    """Parameters that have a value column and a ``_true`` column with at least one finite value."""
    return [p for p in params if p in cat.columns and np.isfinite(_numeric(cat, f"{p}_true")).any()]


def _message_figure(path: str | Path, title: str, message: str) -> Path:
    fig = Figure(figsize=(6.0, 3.5), layout="constrained")
    ax = fig.add_subplot()
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=12, wrap=True, transform=ax.transAxes)
    fig.suptitle(title)
    log.warning("%s: %s", title, message)
    return save_figure(fig, path)


def _grid(n: int, max_cols: int = 3) -> tuple[int, int]:
    ncols = min(n, max_cols)
    return math.ceil(n / ncols), ncols


def pulls(cat: pd.DataFrame, params: Sequence[str]) -> pd.DataFrame:
    """Pulls of the fitted parameters against the true values, over the ok galaxies.

    The pull of a parameter is ``(fit - true) / sigma``, where ``sigma`` is the error on the side of the truth:
    ``p_hi - p`` when the fit is below the truth, ``p - p_lo`` otherwise. For honest errors the pulls follow a
    unit Gaussian.

    Parameters
    ----------
    cat
        Survey catalogue.
    params
        Parameter names; those without a ``p_true`` column are skipped.

    Returns
    -------
    pandas.DataFrame
        One row per ok galaxy and parameter with a finite true value, columns ``galaxy``, ``param``, ``value``
        (the median), ``true``, ``sigma`` and ``pull``; ``pull`` is NaN where ``sigma`` is not positive or a value
        is missing.
    """
    ok = _ok(cat)
    frames = []
    for p in _with_truth(ok, params):
        value = _numeric(ok, p)
        true = _numeric(ok, f"{p}_true")
        lo = _numeric(ok, f"{p}_lo")
        hi = _numeric(ok, f"{p}_hi")
        sigma = np.where(value < true, hi - value, value - lo)
        with np.errstate(invalid="ignore", divide="ignore"):
            pull = np.where(sigma > 0, (value - true) / sigma, np.nan)
        has_truth = np.isfinite(true)
        frames.append(
            pd.DataFrame(
                {
                    "galaxy": ok["galaxy"].to_numpy()[has_truth],
                    "param": p,
                    "value": value[has_truth],
                    "true": true[has_truth],
                    "sigma": sigma[has_truth],
                    "pull": pull[has_truth],
                }
            )
        )
    if not frames:
        return pd.DataFrame(
            {c: pd.Series(dtype=float if c not in ("galaxy", "param") else object) for c in PULL_COLUMNS}
        )
    return pd.concat(frames, ignore_index=True)


def plot_recovery(cat: pd.DataFrame, params: Sequence[str], path: str | Path) -> Path:
    """Recovered against true value for every parameter with a ``p_true`` column.

    Each parameter has a main panel (median with asymmetric 16-84 % error bars against the truth, and the 1:1
    line) and, below it, the residual ``fit - true`` with the same error bars.

    Parameters
    ----------
    cat
        Survey catalogue.
    params
        Parameter names.
    path
        Output file.

    Returns
    -------
    Path
        The written file.
    """
    ok = _ok(cat)
    title = "Parameter recovery"
    if ok.empty:
        return _message_figure(path, title, NO_OK_ROWS)
    with_truth = _with_truth(ok, params)
    if not with_truth:
        return _message_figure(path, title, "The catalogue holds no true values (no '<param>_true' columns).")
    nrows, ncols = _grid(len(with_truth))
    fig = Figure(figsize=(4.6 * ncols, 5.2 * nrows), layout="constrained")
    outer = fig.add_gridspec(nrows, ncols)
    for k, p in enumerate(with_truth):
        inner = outer[k // ncols, k % ncols].subgridspec(2, 1, height_ratios=(3, 1), hspace=0.0)
        ax = fig.add_subplot(inner[0])
        ax_res = fig.add_subplot(inner[1], sharex=ax)
        value, true = _numeric(ok, p), _numeric(ok, f"{p}_true")
        lo, hi = _numeric(ok, f"{p}_lo"), _numeric(ok, f"{p}_hi")
        good = np.isfinite(value) & np.isfinite(true)
        value, true, lo, hi = value[good], true[good], lo[good], hi[good]
        yerr = np.vstack([np.nan_to_num(value - lo, nan=0.0), np.nan_to_num(hi - value, nan=0.0)]).clip(min=0)
        style = {"fmt": "o", "ms": 4, "color": "C0", "ecolor": "C0", "elinewidth": 1.0, "capsize": 2}
        ax.errorbar(true, value, yerr=yerr, **style)
        ax_res.errorbar(true, value - true, yerr=yerr, **style)
        if true.size:
            span = np.concatenate([true, value - yerr[0], value + yerr[1]])
            lo_lim, hi_lim = float(np.min(span)), float(np.max(span))
            pad = 0.05 * (hi_lim - lo_lim) or 0.05 * max(abs(hi_lim), 1.0)
            line = np.array([lo_lim - pad, hi_lim + pad])
            ax.plot(line, line, color="0.4", ls="--", lw=1.0, label="1:1")
            ax.set_xlim(*line)
            ax.set_ylim(*line)
        ax_res.axhline(0.0, color="0.4", ls="--", lw=1.0)
        ax.set_title(f"{p} (N = {int(good.sum())})")
        ax.set_ylabel(f"{p} recovered")
        ax_res.set_ylabel("fit - true")
        ax_res.set_xlabel(f"{p} true")
        ax.tick_params(direction="in", top=True, right=True, labelbottom=False)
        ax_res.tick_params(direction="in", top=True, right=True)
        ax.legend(loc="upper left", frameon=False, fontsize="small")
    fig.suptitle(f"{title}: {len(ok)} ok galaxies of {len(cat)}")
    return save_figure(fig, path)


def plot_pulls(cat: pd.DataFrame, params: Sequence[str], path: str | Path) -> Path:
    """Histogram of the pulls of all parameters pooled (stacked by parameter), with a unit Gaussian.

    The pooled mean, standard deviation and count are written on the figure, and each parameter's standard
    deviation in the legend. Pulls beyond +-5 are counted in the edge bins.

    Parameters
    ----------
    cat
        Survey catalogue.
    params
        Parameter names (those with a ``p_true`` column are used).
    path
        Output file.

    Returns
    -------
    Path
        The written file.
    """
    ok = _ok(cat)
    title = "Pulls (fit - true) / sigma"
    if ok.empty:
        return _message_figure(path, title, NO_OK_ROWS)
    table = pulls(cat, params)
    table = table[np.isfinite(table["pull"].to_numpy(dtype=float))]
    if table.empty:
        return _message_figure(path, title, "No pulls to show: the catalogue holds no true values with errors.")
    edges = np.linspace(-5.0, 5.0, 21)
    groups = [(p, table.loc[table["param"] == p, "pull"].to_numpy(dtype=float)) for p in table["param"].unique()]
    values = [np.clip(v, edges[0] + 1e-9, edges[-1] - 1e-9) for _, v in groups]
    labels = [f"{p} (σ = {np.std(v):.2f}, N = {v.size})" for p, v in groups]
    fig = Figure(figsize=(7.5, 5.0), layout="constrained")
    ax = fig.add_subplot()
    ax.hist(values, bins=edges, stacked=True, density=True, label=labels, alpha=0.85, edgecolor="white", lw=0.5)
    grid = np.linspace(edges[0], edges[-1], 400)
    ax.plot(grid, np.exp(-0.5 * grid**2) / math.sqrt(2 * math.pi), color="black", lw=1.5, label="unit Gaussian")
    pooled = table["pull"].to_numpy(dtype=float)
    outside = int(np.sum(np.abs(pooled) > edges[-1]))
    text = f"all: mean = {np.mean(pooled):+.2f}\nstd = {np.std(pooled):.2f}\nN = {pooled.size}"
    if outside:
        text += f"\n{outside} beyond ±5 (in edge bins)"
    ax.text(0.03, 0.97, text, transform=ax.transAxes, ha="left", va="top", fontsize=11)
    ax.set_xlim(edges[0], edges[-1])
    ax.set_xlabel("Pull")
    ax.set_ylabel("Density")
    ax.legend(loc="upper right", fontsize="small", frameon=False)
    ax.tick_params(direction="in", top=True, right=True)
    fig.suptitle(title)
    return save_figure(fig, path)


def plot_distributions(cat: pd.DataFrame, params: Sequence[str], path: str | Path) -> Path:
    """Histogram of every fitted parameter over the ok galaxies (true values as a step histogram when known).

    Parameters
    ----------
    cat
        Survey catalogue.
    params
        Parameter names; those absent from the catalogue are skipped.
    path
        Output file.

    Returns
    -------
    Path
        The written file.
    """
    ok = _ok(cat)
    title = "Fitted parameters"
    if ok.empty:
        return _message_figure(path, title, NO_OK_ROWS)
    present = [p for p in params if p in ok.columns and np.isfinite(_numeric(ok, p)).any()]
    missing = [p for p in params if p not in present]
    if missing:
        log.warning("no fitted values for %s in the catalogue; not plotted", missing)
    if not present:
        return _message_figure(path, title, "The catalogue holds no fitted values for the requested parameters.")
    nrows, ncols = _grid(len(present))
    fig = Figure(figsize=(4.2 * ncols, 3.4 * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, p in zip(axes, present, strict=False):
        value = _numeric(ok, p)
        value = value[np.isfinite(value)]
        true = _numeric(ok, f"{p}_true")
        true = true[np.isfinite(true)]
        both = np.concatenate([value, true])
        lo, hi = float(np.min(both)), float(np.max(both))
        if hi <= lo:
            lo, hi = lo - 0.5 * max(abs(lo), 1.0) * 0.1, hi + 0.5 * max(abs(hi), 1.0) * 0.1
        bins = np.linspace(lo, hi, int(np.clip(np.sqrt(value.size) * 2, 5, 30)) + 1)
        ax.hist(value, bins=bins, color="C0", alpha=0.8, edgecolor="white", lw=0.5, label="fitted (median)")
        if true.size:
            ax.hist(true, bins=bins, histtype="step", color="black", lw=1.3, label="true")
        ax.axvline(float(np.median(value)), color="C3", ls="--", lw=1.0, label=f"median {np.median(value):.3g}")
        ax.set_xlabel(p)
        ax.set_ylabel("Galaxies")
        ax.set_title(f"{p} (N = {value.size})")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylim(0, ax.get_ylim()[1] * 1.3)  # room for the legend
        ax.legend(loc="upper right", fontsize="x-small", frameon=False)
        ax.tick_params(direction="in", top=True, right=True)
    for ax in axes[len(present) :]:
        ax.axis("off")
    fig.suptitle(f"{title}: {len(ok)} ok galaxies of {len(cat)}")
    return save_figure(fig, path)
