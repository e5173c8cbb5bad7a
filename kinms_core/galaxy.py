"""One galaxy end to end, from files to files: prepared folder -> fit folder -> plots (what the CLI and rules call)."""

from __future__ import annotations

import errno
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import emcee
import numpy as np
from astropy.io import fits

from .errors import CorruptFileError, StageFailedError
from .fit import CHAIN_FILE, MAP_FILE, MODEL_FILE, POSTERIOR_FILE, RESIDUAL_FILE, SUMMARY_FILE, fit_galaxy
from .likelihood import FitData, sampling_to_parameters
from .parametric import ModelSpec, kinematic_centre
from .plots import plot_diagnostics, plot_failure
from .posterior_plots import plot_corner, plot_traces
from .prepare import PREPARED_FILES, load_prepared
from .profile_plots import plot_profiles
from .safe_files import read_json_object, refuse_overwrite
from .settings import apply_overrides, load_settings
from .status import STATUS_FILE, read_status

__all__ = ["FIT_FILES", "PLOT_FILES", "fit_prepared", "load_fit_data", "plot_galaxy"]

log = logging.getLogger(__name__)

PLOT_FILES = ("diagnostics.png", "corner.png", "traces.png", "rotation.png")
#: The files a fit folder holds (plots aside).
FIT_FILES = (SUMMARY_FILE, CHAIN_FILE, MAP_FILE, MODEL_FILE, RESIDUAL_FILE, POSTERIOR_FILE, STATUS_FILE)


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
    StageFailedError
        When the prepare stage recorded a failure (its message is passed on).
    SettingsError
        On bad settings.
    OverwriteError
        When ``outdir`` would receive a fit file over an input (the prepared files or the settings file).
    """
    fit_outputs = [Path(outdir) / name for name in FIT_FILES]
    refuse_overwrite([Path(prepared_dir) / name for name in PREPARED_FILES], fit_outputs)
    if isinstance(settings, (str, Path)):
        refuse_overwrite([settings], fit_outputs)
    status = read_status(prepared_dir)
    if status["status"] != "ok":
        raise StageFailedError(status["error"] or f"{prepared_dir}: the prepare stage failed")
    if isinstance(settings, (str, Path)):
        raw = load_settings(settings).raw
    else:
        raw = dict(settings or {})
    if overrides:
        raw = apply_overrides(raw, overrides)
    fit_settings = load_settings(raw)
    fit_data = load_fit_data(prepared_dir, galaxy)
    return fit_galaxy(fit_data, fit_settings, outdir, processes=processes, progress=progress)


def _read_chain(path: Path) -> np.ndarray:
    """The stored chain ``(steps, walkers, ndim)`` of a fit.

    Raises
    ------
    CorruptFileError
        The file is not an emcee HDF5 chain (truncated, or not written by a fit).
    """
    if not path.exists():
        raise CorruptFileError(f"{path} is missing: fit the galaxy again")
    try:
        return emcee.backends.HDFBackend(str(path), read_only=True).get_chain()
    except (OSError, KeyError, AttributeError) as exc:
        if isinstance(exc, OSError) and (exc.errno in (errno.EAGAIN, errno.EACCES) or "lock" in str(exc)):
            raise  # held by a running fit or not readable by us: nothing wrong with the file itself
        raise CorruptFileError(f"{path} cannot be read as a fit's chain ({exc}): fit the galaxy again") from exc


def plot_galaxy(
    fit_dir: str | Path,
    prepared_dir: str | Path,
    outdir: str | Path,
    *,
    galaxy: str,
    truths: Mapping[str, float] | None = None,
) -> list[Path]:
    """Diagnostic, corner, trace and rotation-curve plots of a fitted galaxy; placeholder figures stating the failure
    otherwise."""
    outdir = Path(outdir)
    for stage, folder in (("prepare", prepared_dir), ("fit", fit_dir)):
        status = read_status(folder)
        if status["status"] != "ok":
            return [
                plot_failure(outdir / name, galaxy, status.get("stage") or stage, status["error"])
                for name in PLOT_FILES
            ]
    fit_dir = Path(fit_dir)
    summary = read_json_object(fit_dir / SUMMARY_FILE, remedy="fit the galaxy again")
    values = {name: entry["median"] for name, entry in summary["parameters"].items()}
    fit_data = load_fit_data(prepared_dir, galaxy)
    with fits.open(fit_dir / MODEL_FILE) as hdul:
        model = np.array(hdul[0].data, dtype=float)
    op = fit_data.obspars
    centre = kinematic_centre(op, values)
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
    chain = _read_chain(fit_dir / CHAIN_FILE)
    chain = sampling_to_parameters(chain, free)
    paths.append(
        plot_traces(chain, free, outdir / "traces.png", burn_in=summary["burn_in"], truths=truth_list, title=galaxy)
    )
    spec = ModelSpec.from_record(summary.get("spec", {}))
    every = {name: np.full(samples.shape[0], entry["median"]) for name, entry in summary["parameters"].items()}
    every.update({name: samples[:, k] for k, name in enumerate(free)})
    radius = np.linspace(0.0, 0.5 * max(op.nx, op.ny) * op.cellsize, 200)
    outer = summary.get("outer_rotation")
    paths.append(
        plot_profiles(
            every,
            spec,
            radius,
            outdir / "rotation.png",
            title=galaxy,
            beam=op.beam[0],
            outer=outer,
            band=summary.get("rotation_curve"),
        )
    )
    return paths
