"""The survey catalogue: one row per galaxy with its fitted parameters and errors, or its failure reason.

Columns, in order: ``galaxy``, ``status`` (``ok`` or ``failed``), ``error`` (empty when ok, else ``<stage>:
<message>``); for every model parameter ``p``: ``p`` (posterior median), ``p_lo`` and ``p_hi`` (16th and 84th
percentiles); the rotation the data measure (:mod:`kinms_core.outer_rotation`): ``r_out`` (arcsec along the major axis
within which 90% of the detected flux lies), the circular velocity there ``v_out`` and its projection ``vsini_out``
(km/s, each with ``_lo`` and ``_hi``); the diagnostics ``chi2_reduced``, ``n_detected``, ``rms``, ``acceptance``,
``tau_max``, ``converged``, ``runtime_s``, ``ra``, ``dec`` (the fitted centre, deg); the model and how to compare it
with another fit of the same cube: ``model`` (the families that differ from the default, :attr:`ModelSpec.label`),
``warp_radius`` (arcsec, where a warped fit's ``pa`` and ``inc`` hold: a linear warp's pivot, where a ring-wise warp
starts; empty without a warp), ``n_free`` and ``bic`` (lower is better; a surface brightness from the data also pays for
its map's independent beams, :func:`kinms_core.surface.map_parameters`), ``preferred_family`` and ``preferred_weight``
(with family errors: the model the data prefer among the fit's and those that extend it, e.g. ``data+radial``, and its
Akaike weight, so that a survey can find the galaxies its model does not describe), ``preferred_family_bic`` (the model
of that search with the lowest BIC: Schwarz's penalty, which adds a feature more rarely); how the errors and the noise
were modelled: ``errors`` (``robust`` or ``scaled``), ``noise_model`` (``uniform`` or ``map``), ``error_inflation``
(robust errors: how much larger the errors are than for independent, exactly modelled noise, the geometric mean over
parameters), ``residual_excess`` (residual variance in the galaxy's region over the noise's); the quality flags:
``flags`` (the raised ones, ``;``-separated), ``at_bound_parameters`` (the parameters that raise ``at_bound``,
``;``-separated) and a boolean ``flag_<name>`` column per flag of :data:`kinms_core.quality.FLAGS`; and ``p_true`` for
every parameter with a true value for some galaxy (mocks). A failed galaxy has empty (NaN) values and its message.

Position angles are periodic: a fitted ``pa`` (with its percentiles) is reported in [0, 360), or, where a true value
is known, as the equivalent value nearest to it, so that differences and pulls measure the shortest arc.

The CSV is for people and spreadsheets (missing values are empty cells); the FITS table carries a unit per column,
NaN for missing floats, a null (TNULL) for a missing ``n_detected`` and False for ``converged`` of a failed row.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from astropy.table import MaskedColumn, Table

from .errors import CorruptFileError
from .family_errors import bic_criteria
from .parametric import unit_of
from .quality import FLAGS, bounded_parameters, raised
from .safe_files import atomic_path, read_json_object, refuse_overwrite

__all__ = [
    "DIAGNOSTICS",
    "FLAG_COLUMNS",
    "MODELLING",
    "OUTER_ROTATION",
    "build_catalogue",
    "catalogue_units",
    "collect_entry",
    "make_catalogue",
    "make_catalogue_after_failure",
    "parameter_columns",
    "write_catalogue",
]

log = logging.getLogger(__name__)

#: How the errors and the noise were modelled, after the diagnostics.
MODELLING = (
    "model",
    "warp_radius",
    "n_free",
    "bic",
    "preferred_family",
    "preferred_weight",
    "preferred_family_bic",
    "errors",
    "noise_model",
    "error_inflation",
    "residual_excess",
)
#: The quality-flag columns.
FLAG_COLUMNS = tuple(f"flag_{name}" for name in FLAGS)
#: The quality columns before the flags': the raised flags' names and the parameters at a bound.
QUALITY = ("flags", "at_bound_parameters")

#: The rotation at the emission's radius (after the parameters), with their units.
OUTER_ROTATION = {
    "r_out": "arcsec",
    "v_out": "km/s",
    "v_out_lo": "km/s",
    "v_out_hi": "km/s",
    "vsini_out": "km/s",
    "vsini_out_lo": "km/s",
    "vsini_out_hi": "km/s",
}

#: Diagnostic columns after the parameters, with their FITS units.
DIAGNOSTICS = {
    "chi2_reduced": "",
    "n_detected": "",
    "rms": "Jy/beam",
    "acceptance": "",
    "tau_max": "",
    "converged": "",
    "runtime_s": "s",
    "ra": "deg",
    "dec": "deg",
}


def _read_json(path: Path, log_file: str) -> dict[str, Any] | None:
    """A stage's JSON file, None when it does not exist.

    Raises
    ------
    CorruptFileError
        It cannot be read, or is not a JSON object (the message names the stage's log).
    """
    if not path.is_file():
        return None
    try:
        return read_json_object(path, remedy=f"see {log_file} and run the galaxy's stage again")
    except OSError as exc:
        raise CorruptFileError(f"{path} cannot be read ({exc}): see {log_file} and run the stage again") from exc


def _failed(galaxy: str, error: str) -> dict[str, Any]:
    return {"galaxy": galaxy, "status": "failed", "error": error, "summary": None}


def family_folder(family: str) -> str:
    """Where a galaxy's fit with an extra model family lives, relative to its results folder."""
    return f"families/{family}"


def collect_entry(galaxy: str, results_dir: str | Path, fit_folder: str = "fit") -> dict[str, Any]:
    """What the catalogue needs of one galaxy's fit, read from ``results_dir/<galaxy>/prepare`` and
    ``results_dir/<galaxy>/<fit_folder>`` (``fit``, or :func:`family_folder` for an extra model family).

    Whatever is missing or unreadable (a job that crashed or was killed, a file cut short) makes the galaxy a
    ``failed`` entry whose error names the file and the stage's log, so one galaxy never stops the catalogue.

    Returns
    -------
    dict
        ``galaxy``, ``status`` (``ok``/``failed``), ``error`` (``"<stage>: <message>"`` or ``""``) and ``summary``
        (the fit's ``summary.json``, or None when it failed).
    """
    base = Path(results_dir) / galaxy
    fit_log = "logs/fit" if fit_folder == "fit" else f"logs/{fit_folder}"
    for stage, folder, log_dir in (("prepare", "prepare", "logs/prepare"), ("fit", fit_folder, fit_log)):
        log_file = f"{log_dir}/{galaxy}.log"
        try:
            status = _read_json(base / folder / "status.json", log_file)
        except CorruptFileError as exc:
            return _failed(galaxy, f"{stage}: {exc}")
        if status is None:
            return _failed(
                galaxy,
                f"{stage}: no {base / folder / 'status.json'}: the stage did not run or crashed (see {log_file})",
            )
        if status.get("status") != "ok":
            message = status.get("error") or "failed without a message"
            return _failed(galaxy, f"{stage}: {message}")
    summary_path = base / fit_folder / "summary.json"
    try:
        summary = _read_json(summary_path, f"{fit_log}/{galaxy}.log")
    except CorruptFileError as exc:
        return _failed(galaxy, f"fit: {exc}")
    if summary is None:
        return _failed(galaxy, f"fit: status ok but {summary_path} is missing: run the fit again")
    if not isinstance(summary.get("parameters"), dict):
        return _failed(galaxy, f"fit: {summary_path} holds no parameters: run the fit again")
    try:
        prepared = _read_json(base / "prepare" / "prepare.json", f"logs/prepare/{galaxy}.log") or {}
    except CorruptFileError:
        prepared = {}
    summary.setdefault("flags", {})["other_sources"] = bool(prepared.get("other_sources"))
    return {"galaxy": galaxy, "status": "ok", "error": "", "summary": summary}


def parameter_columns(params: Sequence[str]) -> list[str]:
    """``p, p_lo, p_hi`` for each parameter, in order."""
    return [c for p in params for c in (p, f"{p}_lo", f"{p}_hi")]


def _float(value: Any) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return math.nan
    return out


def _wrap_pa(median: float, lo: float, hi: float, truth: float | None) -> tuple[float, float, float]:
    """Shift a PA and its percentiles together by a multiple of 360 deg: into [0, 360), or nearest the truth."""
    if not math.isfinite(median):
        return median, lo, hi
    if truth is not None and math.isfinite(truth):
        shift = 360.0 * round((truth - median) / 360.0)
    else:
        shift = -360.0 * math.floor(median / 360.0)
    return median + shift, lo + shift, hi + shift


def build_catalogue(
    entries: Sequence[Mapping[str, Any]],
    *,
    params: Sequence[str],
    truths: Mapping[str, Mapping[str, float]] | None = None,
) -> pd.DataFrame:
    """One row per entry (see :func:`collect_entry`), columns as the module's docstring says.

    Parameters
    ----------
    entries
        ``{"galaxy", "status", "error", "summary"}`` per galaxy, in the catalogue's order.
    params
        The model's parameter names (the order of the columns).
    truths
        ``galaxy -> {param: true value}``; a ``p_true`` column is made for each parameter that has one.

    Returns
    -------
    pandas.DataFrame
        ``n_detected`` is a nullable integer and ``converged`` a nullable boolean column (empty for failed rows).
    """
    truths = truths or {}
    truth_params = [p for p in params if any(p in t for t in truths.values())]
    rows = []
    for entry in entries:
        galaxy = str(entry["galaxy"])
        ok = entry.get("status") == "ok" and entry.get("summary") is not None
        row: dict[str, Any] = {"galaxy": galaxy, "status": "ok" if ok else "failed"}
        row["error"] = "" if ok else str(entry.get("error") or "failed")
        summary = entry.get("summary") or {}
        fitted = summary.get("parameters", {}) if ok else {}
        galaxy_truths = truths.get(galaxy, {})
        for p in params:
            values = fitted.get(p, {})
            median, lo, hi = (_float(values.get(k)) for k in ("median", "p16", "p84"))
            if p == "pa":
                median, lo, hi = _wrap_pa(median, lo, hi, galaxy_truths.get("pa"))
            row[p], row[f"{p}_lo"], row[f"{p}_hi"] = median, lo, hi
        row.update(_outer_rotation(summary if ok else {}))
        for name in DIAGNOSTICS:
            value = summary.get(name) if ok else None
            if name == "converged":
                row[name] = None if value is None else bool(value)
            elif name == "n_detected":
                row[name] = None if value is None else int(value)
            else:
                row[name] = _float(value)
        row.update(_modelling(summary) if ok else dict.fromkeys((*MODELLING, *QUALITY, *FLAG_COLUMNS)))
        if entry.get("model"):  # the family's name, also for a failed fit
            row["model"] = str(entry["model"])
        for p in truth_params:
            row[f"{p}_true"] = _float(galaxy_truths.get(p))
        rows.append(row)
    columns = [
        "galaxy",
        "status",
        "error",
        *parameter_columns(params),
        *OUTER_ROTATION,
        *DIAGNOSTICS,
        *MODELLING,
        *QUALITY,
        *FLAG_COLUMNS,
        *(f"{p}_true" for p in truth_params),
    ]
    frame = pd.DataFrame(rows, columns=columns)
    frame["n_detected"] = frame["n_detected"].astype("Int64")
    for column in ("converged", *FLAG_COLUMNS):
        frame[column] = frame[column].astype("boolean")
    for column in columns:
        if column not in ("galaxy", "status", "error", "n_detected", "converged", *_TEXT_COLUMNS, *FLAG_COLUMNS):
            frame[column] = frame[column].astype(float)
    return frame


_TEXT_COLUMNS = (
    "model",
    "preferred_family",
    "preferred_family_bic",
    "errors",
    "noise_model",
    "flags",
    "at_bound_parameters",
)


def _modelling(summary: Mapping[str, Any]) -> dict[str, Any]:
    """The error and noise modelling columns and the quality flags of an ok row."""
    likelihood = summary.get("likelihood") or {}
    inflation = likelihood.get("inflation")
    residual, noise = likelihood.get("residual_variance"), likelihood.get("noise_variance")
    flags = summary.get("flags") or {}
    return {
        "model": str(summary.get("model", "default")),
        "warp_radius": _warp_radius(summary.get("spec") or {}),
        "n_free": _float(summary.get("n_free")),
        "bic": _float(summary.get("bic")),
        **_preferred(summary),
        "errors": str(summary.get("errors", "")),
        "noise_model": str(summary.get("noise_model", "")),
        "error_inflation": math.sqrt(inflation) if inflation else math.nan,
        "residual_excess": residual / noise if residual is not None and noise else math.nan,
        "flags": ";".join(raised(flags)),
        "at_bound_parameters": ";".join(bounded_parameters(summary.get("parameters") or {})),
        **{f"flag_{name}": bool(flags.get(name)) for name in FLAGS},
    }


def _outer_rotation(summary: Mapping[str, Any]) -> dict[str, float]:
    """The :data:`OUTER_ROTATION` columns of a summary (NaN where the fit has none)."""
    outer = summary.get("outer_rotation") or {}
    row = {"r_out": _float(outer.get("radius"))}
    for key in ("v", "vsini"):
        values = outer.get(key) or {}
        row[f"{key}_out"] = _float(values.get("median"))
        row[f"{key}_out_lo"] = _float(values.get("p16"))
        row[f"{key}_out_hi"] = _float(values.get("p84"))
    return row


def _preferred(summary: Mapping[str, Any]) -> dict[str, Any]:
    """The model of the family errors' search (:mod:`kinms_core.family_errors`) with the largest Akaike weight, named
    by the features it adds to the fit's (the fit's own: its ``model``), and that weight; and the model with the
    lowest BIC (:func:`~kinms_core.family_errors.bic_criteria`), named the same way; empty without family errors."""
    families = (summary.get("likelihood") or {}).get("families") or {}
    weights = families.get("weights") or {}
    if not weights:
        return {"preferred_family": "", "preferred_weight": math.nan, "preferred_family_bic": ""}

    def named(model: str) -> str:
        return str(summary.get("model", "default")) if model == "fit" else model

    name = max(weights, key=weights.__getitem__)
    criteria = bic_criteria(families, _float(summary.get("n_effective")))
    return {
        "preferred_family": named(name),
        "preferred_weight": float(weights[name]),
        "preferred_family_bic": named(min(criteria, key=criteria.__getitem__)) if criteria else "",
    }


def _warp_radius(spec: Mapping[str, Any]) -> float:
    """Where a warped fit's ``pa`` and ``inc`` hold (arcsec): a linear warp's pivot, the radius where a ring-wise
    warp starts; NaN without a warp."""
    if spec.get("warp") == "rings":
        return _float((spec.get("warp_radii") or [None])[0])
    return _float(spec.get("warp_radius"))


def catalogue_units(columns: Sequence[str]) -> dict[str, str]:
    """The unit of each catalogue column ('' where it has none)."""
    units = {}
    for column in columns:
        if column in DIAGNOSTICS or column in OUTER_ROTATION:
            units[column] = DIAGNOSTICS[column] if column in DIAGNOSTICS else OUTER_ROTATION[column]
            continue
        base = column
        for suffix in ("_lo", "_hi", "_true"):
            if column.endswith(suffix):
                base = column[: -len(suffix)]
                break
        try:
            units[column] = unit_of(base)
        except KeyError:
            units[column] = ""
    return units


def _fits_table(df: pd.DataFrame) -> Table:
    table = Table()
    units = catalogue_units(list(df.columns))
    for column in df.columns:
        series = df[column]
        if column == "n_detected":
            mask = series.isna().to_numpy()
            data = series.fillna(-1).astype("int64").to_numpy()
            table[column] = MaskedColumn(data, mask=mask)
        elif column in ("converged", *FLAG_COLUMNS):  # FITS logicals have no null that reads back: failed rows False
            table[column] = series.fillna(False).astype(bool).to_numpy()
        elif column in ("galaxy", "status", "error", *_TEXT_COLUMNS):
            table[column] = np.array(series.fillna("").astype(str).tolist(), dtype=str)
        else:
            table[column] = series.to_numpy(dtype=float)
        if units[column]:
            table[column].unit = units[column]
    return table


def write_catalogue(df: pd.DataFrame, csv_path: str | Path, fits_path: str | Path | None = None) -> list[Path]:
    """Write the catalogue as CSV (empty cells for missing values) and, when ``fits_path`` is given, as a FITS
    binary table with units (NaN floats, a null ``n_detected`` and ``converged`` False for failed rows).

    Returns
    -------
    list of pathlib.Path
        The files written.
    """
    paths = []
    csv_path = Path(csv_path)
    with atomic_path(csv_path) as tmp:
        df.to_csv(tmp, index=False, float_format="%.10g")
    paths.append(csv_path)
    if fits_path is not None:
        fits_path = Path(fits_path)
        table = _fits_table(df)
        table.meta["EXTNAME"] = "CATALOGUE"
        with atomic_path(fits_path) as tmp:
            table.write(tmp, format="fits")
        paths.append(fits_path)
    n_ok = int((df["status"] == "ok").sum())
    log.info(
        "catalogue: %d galaxies, %d ok, %d failed -> %s", len(df), n_ok, len(df) - n_ok, ", ".join(map(str, paths))
    )
    return paths


def make_catalogue(
    sheet: str | Path,
    results_dir: str | Path,
    csv_path: str | Path,
    fits_path: str | Path | None = None,
    *,
    settings: str | Path | Mapping[str, Any] | None = None,
    mocks: str | Path | None = None,
    families: Mapping[str, str | Path | Mapping[str, Any]] | None = None,
) -> pd.DataFrame:
    """The survey catalogue from the galaxies sheet and the results folder (what ``kinms-core catalogue`` does).

    Parameters
    ----------
    sheet
        The galaxies sheet (its order is the catalogue's; its ``<param>_true`` columns give true values).
    results_dir
        Folder holding ``<galaxy>/prepare`` and ``<galaxy>/fit``.
    csv_path, fits_path
        Outputs.
    settings
        The survey's fit settings (YAML path or mapping): their model gives the parameter columns. Default: the
        default model (exponential disc, arctan rotation curve).
    mocks
        The mock table (:mod:`kinms_core.simulate`), whose values are the true values of its galaxies.
    families
        Extra model families fitted to every galaxy: name -> their settings; each adds a row per galaxy (its
        ``model`` column is the name) from ``<galaxy>/families/<name>``, and its parameters to the columns.
    """
    from .settings import load_settings
    from .simulate import read_mock_table
    from .survey import galaxy_truths, read_sheet, sheet_row

    families = dict(families or {})
    inputs = [sheet, mocks, settings, *families.values()]
    files = [p for p in inputs if isinstance(p, (str, Path))]
    refuse_overwrite(files, [p for p in (csv_path, fits_path) if p is not None])
    spec = load_settings(settings).spec
    params = list(spec.parameter_names)
    for family_settings in families.values():
        params += [name for name in load_settings(family_settings).spec.parameter_names if name not in params]
    table = read_sheet(sheet)
    mock_rows: dict[str, dict[str, Any]] = {}
    if mocks:
        mock_table = read_mock_table(mocks)
        mock_rows = {str(r["galaxy"]): r for r in mock_table.to_dict("records")}
    entries, truths = [], {}
    for galaxy in table["galaxy"].astype(str):
        entries.append({**collect_entry(galaxy, results_dir), "model": spec.label})
        for family in families:
            entries.append({**collect_entry(galaxy, results_dir, family_folder(family)), "model": family})
        truth = galaxy_truths(sheet_row(table, galaxy), mock_rows.get(galaxy), params)
        if truth:
            truths[galaxy] = truth
    frame = build_catalogue(entries, params=params, truths=truths)
    write_catalogue(frame, csv_path, fits_path)
    return frame


def make_catalogue_after_failure(
    sheet: str | Path,
    results_dir: str | Path,
    *,
    settings: str | Path | Mapping[str, Any] | None = None,
    mocks: str | Path | None = None,
    families: Mapping[str, str | Path | Mapping[str, Any]] | None = None,
) -> pd.DataFrame | None:
    """The catalogue of a survey run in which some job failed, made from whatever exists (what the workflow's
    ``onerror`` handler calls): ``results_dir/catalogue.csv`` and ``.fits``.

    A galaxy whose job crashed has no status file, so the workflow's catalogue rule cannot run; here it becomes a
    ``failed`` row naming its log. The files are dated before the sheet, so that the next run makes them again.
    Nothing is written when the catalogue exists and every galaxy has both statuses (the failure was elsewhere and
    the catalogue rule made it), nor when this fails too (that is logged): the run has failed already, and its own
    error is the one to report.

    Returns
    -------
    pandas.DataFrame or None
        The catalogue written, or None.
    """
    from .survey import read_sheet

    results_dir = Path(results_dir)
    csv_path = results_dir / "catalogue.csv"
    try:
        galaxies = list(read_sheet(sheet)["galaxy"].astype(str))
        statuses = [results_dir / g / stage / "status.json" for g in galaxies for stage in ("prepare", "fit")]
        if csv_path.exists() and all(path.exists() for path in statuses):
            return None
        frame = make_catalogue(
            sheet,
            results_dir,
            csv_path,
            results_dir / "catalogue.fits",
            settings=settings,
            mocks=mocks,
            families=families,
        )
        # Dated just before the sheet, so that the next run sees the catalogue out of date and makes it again,
        # redoing the crashed jobs on the way: Snakemake does not remake a missing intermediate file (a crashed
        # galaxy's status.json) when the file that needs it looks up to date.
        stamp = Path(sheet).stat().st_mtime - 1.0
        for path in (csv_path, results_dir / "catalogue.fits"):
            os.utime(path, (stamp, stamp))
    except Exception as exc:  # reported, not raised: the run's first error is what the user must see
        log.error("the catalogue of the finished galaxies could not be written: %s", exc)
        return None
    n_failed = int((frame["status"] != "ok").sum())
    log.error(
        "some jobs failed: catalogue of %d galaxies (%d ok, %d failed) written to %s from what exists; rerun to "
        "redo the failed jobs",
        len(frame),
        len(frame) - n_failed,
        n_failed,
        csv_path,
    )
    return frame
