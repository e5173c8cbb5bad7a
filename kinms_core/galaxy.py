"""One galaxy end to end, from files to files: prepared folder -> fit folder -> plots (what the CLI and rules call)."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import emcee
import numpy as np
from astropy.io import fits

from .fit import CHAIN_FILE, MODEL_FILE, POSTERIOR_FILE, SUMMARY_FILE, fit_galaxy
from .likelihood import FitData, sampling_to_parameters
from .plots import plot_corner, plot_diagnostics, plot_failure, plot_traces
from .prepare import load_prepared
from .settings import apply_overrides, load_settings
from .status import read_status

__all__ = ["PLOT_FILES", "fit_prepared", "load_fit_data", "plot_galaxy"]

log = logging.getLogger(__name__)

PLOT_FILES = ("diagnostics.png", "corner.png", "traces.png")


def load_fit_data(prepared_dir: str | Path, galaxy: str | None = None) -> FitData:
    """The :class:`FitData` of a folder written by :func:`kinms_core.prepare.prepare_cube`."""
    prepared = load_prepared(prepared_dir)
    return FitData(
        data=prepared.data,
        obspars=prepared.obspars,
        rms=prepared.rms,
        n_detected=prepared.n_detected,
        guesses=dict(prepared.guesses),
        bounds={k: tuple(v) for k, v in prepared.bounds.items()},
        galaxy=galaxy or Path(prepared_dir).resolve().parent.name,
        header=prepared.header,
        mask=prepared.mask,
        noise=prepared.noise,
    )


def fit_prepared(
    prepared_dir: str | Path,
    settings: str | Path | Mapping[str, Any] | None,
    outdir: str | Path,
    *,
    galaxy: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    processes: int = 1,
    progress: bool = True,
) -> dict[str, Any]:
    """Fit the galaxy of a prepared folder with ``settings`` (YAML path or mapping) and per-galaxy ``overrides``
    (``<param>_<guess|min|max|fixed>``); writes the fit folder and returns the summary.

    Raises
    ------
    ValueError
        When the prepare stage recorded a failure (its message is passed on), or on bad settings.
    """
    status = read_status(prepared_dir)
    if status["status"] != "ok":
        raise ValueError(status["error"] or f"{prepared_dir}: the prepare stage failed")
    if isinstance(settings, (str, Path)):
        raw = load_settings(settings).raw
    else:
        raw = dict(settings or {})
    if overrides:
        raw = apply_overrides(raw, overrides)
    fit_settings = load_settings(raw)
    fit_data = load_fit_data(prepared_dir, galaxy)
    return fit_galaxy(fit_data, fit_settings, outdir, processes=processes, progress=progress)


def plot_galaxy(
    fit_dir: str | Path,
    prepared_dir: str | Path,
    outdir: str | Path,
    *,
    galaxy: str,
    truths: Mapping[str, float] | None = None,
) -> list[Path]:
    """Diagnostic, corner and trace plots of a fitted galaxy; placeholder figures stating the failure otherwise."""
    outdir = Path(outdir)
    for stage, folder in (("prepare", prepared_dir), ("fit", fit_dir)):
        status = read_status(folder)
        if status["status"] != "ok":
            return [
                plot_failure(outdir / name, galaxy, status.get("stage") or stage, status["error"])
                for name in PLOT_FILES
            ]
    fit_dir = Path(fit_dir)
    summary = json.loads((fit_dir / SUMMARY_FILE).read_text())
    values = {name: entry["median"] for name, entry in summary["parameters"].items()}
    fit_data = load_fit_data(prepared_dir, galaxy)
    with fits.open(fit_dir / MODEL_FILE) as hdul:
        model = np.array(hdul[0].data, dtype=float)
    op = fit_data.obspars
    x_ref, y_ref = op.reference_pixel
    centre = (x_ref + values.get("xc", 0.0) / op.cellsize, y_ref + values.get("yc", 0.0) / op.cellsize)
    paths = [
        plot_diagnostics(
            fit_data.data,
            model,
            op,
            pa=values["pa"],
            centre=centre,
            galaxy=galaxy,
            path=outdir / "diagnostics.png",
            rms=fit_data.rms,
            mask=fit_data.mask,
            vsys=values.get("vsys"),
        )
    ]
    free = summary["free_parameters"]
    truth_list = [None if truths is None else truths.get(name) for name in free]
    samples = np.loadtxt(fit_dir / POSTERIOR_FILE, delimiter=",", skiprows=1, ndmin=2)
    paths.append(plot_corner(samples, free, outdir / "corner.png", truths=truth_list, title=galaxy))
    chain = emcee.backends.HDFBackend(str(fit_dir / CHAIN_FILE), read_only=True).get_chain()
    chain = sampling_to_parameters(chain, free)
    paths.append(
        plot_traces(chain, free, outdir / "traces.png", burn_in=summary["burn_in"], truths=truth_list, title=galaxy)
    )
    return paths
