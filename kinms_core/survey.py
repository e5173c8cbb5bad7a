"""A survey's inputs: the galaxies sheet, per-galaxy overrides and true values, the fit settings and provenance.

The galaxies sheet is a CSV file (``#`` comment lines allowed), one row per galaxy:

========================  ===========================================================================================
column                    meaning
========================  ===========================================================================================
``galaxy``                unique name (also ignoring case), letters, digits, ``_`` and ``-``, starting with a
                          letter or digit, at most 64 characters (it names the galaxy's folder)
``cube``                  path of the FITS cube, relative to the working directory
``restfreq``              rest frequency in Hz (optional: overrides the header's; needed for a FREQ axis without one)
``bmaj, bmin, bpa``       beam in arcsec, arcsec, deg (optional: overrides the header's; ``bmin`` defaults to
                          ``bmaj`` and ``bpa`` to 0)
``velocity_convention``   ``auto``, ``radio`` or ``optical``: reading of a VELO-xxx axis without VELREF (optional;
                          default ``auto``: radio for a Miriad file, optical otherwise)
``<param>_<field>``       per-galaxy fit setting, ``field`` one of ``guess``, ``min``, ``max`` (a number or ``auto``)
                          and ``fixed`` (true/false), e.g. ``inc_guess``, ``vsys_min``, ``flux_fixed``
``<param>_true``          true value (mock galaxies), e.g. ``inc_true``: the catalogue's ``inc_true`` column
========================  ===========================================================================================

Empty cells mean "not given". The workflow validates the sheet against ``workflow/schemas/sheet.schema.yaml`` and
then with :func:`check_sheet`, which knows the model's parameter names.
"""

from __future__ import annotations

import json
import logging
import math
import re
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from .cells import clean_row, is_missing
from .errors import MissingInputError, SettingsError
from .safe_files import write_json_atomic, write_text_atomic
from .settings import OVERRIDE_FIELDS, load_settings
from .simulate import TRUTH_COLUMNS, mock_parameters
from .versions import SURVEY_PACKAGES, software_versions

__all__ = [
    "GALAXY_PATTERN",
    "RESERVED_NAMES",
    "SETTINGS_KEYS",
    "check_galaxy_settings",
    "check_sheet",
    "clean_row",
    "cube_arguments",
    "family_settings",
    "fit_settings",
    "galaxy_overrides",
    "galaxy_truths",
    "is_missing",
    "read_sheet",
    "sheet_row",
    "write_provenance",
    "write_settings",
]

log = logging.getLogger(__name__)

#: Galaxy names: they become folder names, Snakemake wildcards and command-line values, so they start with a letter
#: or digit (a leading '-' would read as an option, e.g. ``-h``) and are short enough for any file system.
GALAXY_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
#: Longest cube path accepted (the usual PATH_MAX), and longest part of one (NAME_MAX).
MAX_PATH_LENGTH = 4096
MAX_NAME_LENGTH = 255
#: Names of survey-level folders under the results folder, which no galaxy may take.
RESERVED_NAMES = ("mocks", "survey", "benchmarks", "logs")
#: The config keys that are fit settings (kinms_core.settings).
SETTINGS_KEYS = ("model", "parameters", "fit")
_READING_COLUMNS = ("restfreq", "bmaj", "bmin", "bpa", "velocity_convention")


def _coerce(value: Any) -> Any:
    """A sheet cell as a number where it reads as one, a lower-case word (auto, true, ...) otherwise."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text == "":
        return math.nan
    try:
        return float(text)
    except ValueError:
        return text.lower() if text.lower() in ("auto", "true", "false", "yes", "no") else text


def read_sheet(path: str | Path) -> pd.DataFrame:
    """Read the galaxies sheet: ``galaxy`` and ``cube`` as text, other cells as numbers or words.

    Raises
    ------
    MissingInputError
        The sheet does not exist.
    SettingsError
        It is empty or lacks the ``galaxy`` or ``cube`` column.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingInputError(f"galaxies sheet {path} does not exist: check `galaxies:` in the config")
    try:
        sheet = pd.read_csv(path, comment="#", skipinitialspace=True, dtype={"galaxy": str, "cube": str})
    except pd.errors.EmptyDataError as exc:
        raise SettingsError(f"galaxies sheet {path} is empty: give a header line and one row per galaxy") from exc
    sheet.columns = [str(c).strip() for c in sheet.columns]
    missing = [c for c in ("galaxy", "cube") if c not in sheet.columns]
    if missing:
        raise SettingsError(f"galaxies sheet {path} lacks the column(s) {missing}: every row needs a galaxy and a cube")
    if sheet.empty:
        raise SettingsError(f"galaxies sheet {path} has no galaxies")
    for column in sheet.columns:
        if column in ("galaxy", "cube"):
            sheet[column] = sheet[column].map(lambda v: v.strip() if isinstance(v, str) else v)
        elif not pd.api.types.is_numeric_dtype(sheet[column]):  # text (object or str dtype): numbers and words
            sheet[column] = pd.Series([_coerce(v) for v in sheet[column]], index=sheet.index, dtype=object)
    return sheet


def _column_parameter(column: str) -> tuple[str, str] | None:
    """``inc_guess`` -> ``("inc", "guess")``; ``inc_true`` -> ``("inc", "true")``; other columns -> None."""
    name, _, field_name = column.rpartition("_")
    if name and field_name in (*OVERRIDE_FIELDS, "true"):
        return name, field_name
    return None


def check_sheet(sheet: pd.DataFrame, parameters: Sequence[str], *, source: str = "galaxies sheet") -> None:
    """Check what a JSON schema cannot: names safe as folders and command-line values, unique also when case is
    ignored (as on macOS and Windows file systems), not reserved; cube paths usable on the command line; and that
    override and truth columns name parameters of the configured model.

    Raises
    ------
    SettingsError
        Naming the row, column or galaxy and what to change.
    """
    names = sheet["galaxy"].astype(str)
    bad = [n for n in names if not re.match(GALAXY_PATTERN, n)]
    if bad:
        raise SettingsError(
            f"{source}: galaxy name(s) {bad} may hold only letters, digits, '_' and '-', start with a letter or digit "
            "and have at most 64 characters"
        )
    repeated = sorted(names[names.duplicated()].unique())
    if repeated:
        raise SettingsError(
            f"{source}: galaxy name(s) {repeated} appear more than once; every galaxy needs its own name"
        )
    folded = names.str.casefold()
    clashes = sorted(names[folded.duplicated(keep=False)])
    if clashes:
        raise SettingsError(
            f"{source}: galaxy names {clashes} differ only in case, which many file systems do not tell apart; "
            "rename them"
        )
    reserved = sorted(n for n in names if n.casefold() in RESERVED_NAMES)
    if reserved:
        raise SettingsError(f"{source}: galaxy name(s) {reserved} are reserved for survey folders; rename them")
    known = set(parameters)
    for column in sheet.columns:
        if column in ("galaxy", "cube", *_READING_COLUMNS):
            continue
        parsed = _column_parameter(column)
        if parsed is None:
            raise SettingsError(
                f"{source}: unknown column {column!r}; columns are galaxy, cube, {', '.join(_READING_COLUMNS)}, "
                f"<param>_<{'|'.join(OVERRIDE_FIELDS)}|true>"
            )
        if parsed[0] not in known:
            raise SettingsError(
                f"{source}: column {column!r} names parameter {parsed[0]!r}, which the configured model does not "
                f"have; its parameters are {list(parameters)}"
            )
    if "bmaj" not in sheet.columns and any(c in sheet.columns for c in ("bmin", "bpa")):
        raise SettingsError(f"{source}: bmin/bpa columns need a bmaj column (arcsec)")
    for galaxy, cube in zip(names, sheet["cube"], strict=True):
        problem = _cube_path_problem(cube)
        if problem:
            raise SettingsError(f"{source}: galaxy {galaxy!r}: cube {cube!r} {problem}")


def _cube_path_problem(cube: Any) -> str:
    """What makes a sheet's cube path unusable, or ''."""
    if is_missing(cube):
        return "is empty: give the FITS file's path"
    text = str(cube)
    if text.startswith("-"):
        return f"starts with '-', which reads as an option: write it as ./{text}"
    if any(ord(c) < 32 for c in text):
        return "holds a control character (a line break or tab): fix the sheet"
    if len(text) > MAX_PATH_LENGTH or any(len(part) > MAX_NAME_LENGTH for part in Path(text).parts):
        return f"is too long for a file system (at most {MAX_NAME_LENGTH} characters per folder or file name)"
    return ""


def check_galaxy_settings(sheet: pd.DataFrame, settings: Mapping[str, Any], *, source: str = "galaxies sheet") -> None:
    """Check every galaxy's fit settings (the survey's, with the row's overrides) before any job runs, so that a
    bound in the wrong order, a guess outside its bounds or too few walkers is reported once, naming the galaxy,
    rather than at fit time.

    Raises
    ------
    SettingsError
        One line per galaxy whose settings are wrong.
    """
    from .settings import apply_overrides

    problems = []
    for galaxy in sheet["galaxy"].astype(str):
        try:
            load_settings(apply_overrides(settings, galaxy_overrides(sheet_row(sheet, galaxy))))
        except SettingsError as exc:
            problems.append(f"galaxy {galaxy!r}: {exc}")
    if problems:
        raise SettingsError(
            f"{source}: wrong fit settings (the config's with the row's overrides):\n  " + "\n  ".join(problems)
        )


def sheet_row(sheet: pd.DataFrame, galaxy: str) -> dict[str, Any]:
    """The sheet's row of ``galaxy`` as a dict without empty cells."""
    rows = sheet[sheet["galaxy"] == galaxy]
    if rows.empty:
        raise SettingsError(f"galaxy {galaxy!r} is not in the galaxies sheet")
    return clean_row(rows.iloc[0].to_dict())


def _number(value: Any) -> str:
    """A float as the shortest text that reads back to it (``repr``), an integral one without ``.0``."""
    value = float(value)
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


def cube_arguments(row: Mapping[str, Any]) -> list[str]:
    """``kinms-core prepare`` options from a sheet row: ``--restfreq HZ``, ``--beam BMAJ BMIN BPA`` and
    ``--velocity-convention auto|radio|optical``."""
    args: list[str] = []
    if not is_missing(row.get("restfreq")):
        args += ["--restfreq", _number(row["restfreq"])]
    if not is_missing(row.get("bmaj")):
        bmaj = float(row["bmaj"])
        bmin = bmaj if is_missing(row.get("bmin")) else float(row["bmin"])
        bpa = 0.0 if is_missing(row.get("bpa")) else float(row["bpa"])
        args += ["--beam", _number(bmaj), _number(bmin), _number(bpa)]
    elif not is_missing(row.get("bmin")) or not is_missing(row.get("bpa")):
        raise SettingsError(f"galaxy {row.get('galaxy')!r}: bmin/bpa given without bmaj; give the whole beam")
    if not is_missing(row.get("velocity_convention")):
        args += ["--velocity-convention", str(row["velocity_convention"]).strip()]
    return args


def galaxy_overrides(row: Mapping[str, Any]) -> dict[str, str]:
    """The row's ``<param>_<guess|min|max|fixed>`` cells as ``kinms-core fit --override`` values (text)."""
    out = {}
    for column, value in row.items():
        parsed = _column_parameter(str(column))
        if parsed is None or parsed[1] == "true" or is_missing(value):
            continue
        if isinstance(value, bool):
            out[str(column)] = "true" if value else "false"
        elif isinstance(value, (int, float)):
            out[str(column)] = _number(value)
        else:
            out[str(column)] = str(value).strip()
    return out


def galaxy_truths(
    row: Mapping[str, Any] | None,
    mock_row: Mapping[str, Any] | None,
    parameters: Sequence[str],
) -> dict[str, float]:
    """True parameter values of a galaxy: the sheet's ``<param>_true`` cells, else the mock table's values.

    Parameters
    ----------
    row
        The galaxy's sheet row (or None).
    mock_row
        The galaxy's row of the mock table (or None when it is not a mock).
    parameters
        The model's parameter names: only those are returned.
    """

    truths: dict[str, float] = {}
    if mock_row is not None:
        normal = mock_parameters(mock_row)
        truths.update({name: float(normal[name]) for name in TRUTH_COLUMNS if name in parameters})
    for name in parameters:
        value = (row or {}).get(f"{name}_true")
        if not is_missing(value):
            truths[name] = float(value)
    return {name: truths[name] for name in parameters if name in truths}


def fit_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """The fit settings part (``model``, ``parameters``, ``fit``) of a survey config, checked by
    :func:`kinms_core.settings.load_settings` so that its errors are the library's."""
    raw = {key: config[key] for key in SETTINGS_KEYS if config.get(key) is not None}
    load_settings(raw)
    return json.loads(json.dumps(raw))


def family_settings(config: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The fit settings of each extra model family of a survey config (``families: {name: {model keys}}``): the
    survey's settings with ``model`` changed by the family's keys, and only the ``parameters`` entries that the
    family's model has. Each is checked by :func:`kinms_core.settings.load_settings` (errors name the family)."""
    base = fit_settings(config)
    out = {}
    for name, model in (config.get("families") or {}).items():
        raw = json.loads(json.dumps(base))
        raw["model"] = {**raw.get("model", {}), **dict(model or {})}
        try:
            names = load_settings({"model": raw["model"]}).spec.parameter_names
            raw["parameters"] = {k: v for k, v in (raw.get("parameters") or {}).items() if k in names}
            load_settings(raw)
        except ValueError as exc:
            raise SettingsError(f"families.{name}: {exc}") from exc
        out[name] = raw
    return out


def write_settings(settings: Mapping[str, Any], path: str | Path) -> Path:
    """Write validated fit settings as YAML (the file ``kinms-core fit --settings`` reads)."""
    load_settings(settings)
    text = "# fit settings of the survey (written from the config by the workflow)\n"
    return write_text_atomic(path, text + yaml.safe_dump(json.loads(json.dumps(dict(settings))), sort_keys=False))


def _git_commit(folder: Path) -> str:
    """The git commit (with ``-dirty``) of the folder's checkout, or '' outside one."""
    try:
        result = subprocess.run(
            ["git", "-C", str(folder), "describe", "--always", "--dirty", "--abbrev=40"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return result.stdout.strip() if result.returncode == 0 else ""


def _records(path: str | Path | None) -> list[dict[str, Any]] | None:
    if not path:
        return None
    table = pd.read_csv(path, comment="#", skipinitialspace=True, dtype=str, keep_default_na=False)
    return table.to_dict("records")


def write_provenance(
    path: str | Path,
    *,
    config: Mapping[str, Any],
    sheet: str | Path,
    mocks: str | Path | None = None,
    workflow_dir: str | Path | None = None,
) -> Path:
    """Write ``provenance.json``: software versions, the code's git commit, the full config, the sheet and the mock
    table (as text cells, exactly as read)."""
    record = {
        "versions": software_versions(SURVEY_PACKAGES),
        "git_commit": _git_commit(Path(workflow_dir)) if workflow_dir else "",
        "config": json.loads(json.dumps(dict(config), default=str)),
        "sheet": {"path": str(sheet), "rows": _records(sheet)},
        "mocks": {"path": str(mocks), "rows": _records(mocks)} if mocks else None,
    }
    path = write_json_atomic(path, record, indent=2)
    log.info("wrote %s", path)
    return path
