"""Config, sheet and mock table: loaded and validated once; helpers that turn a galaxy's row into rule inputs and
command-line options. No science here: everything is done by kinms_core."""

import os
import re
import shlex

from snakemake.exceptions import WorkflowError
from snakemake.logging import logger
from snakemake.utils import validate

from kinms_core import survey
from kinms_core.catalogue import make_catalogue_after_failure
from kinms_core.galaxy import PLOT_FILES
from kinms_core.settings import load_settings
from kinms_core.simulate import read_mock_table
from kinms_core.survey_plots import SURVEY_PLOT_FILES


def checked(data, schema, what):
    """snakemake.utils.validate, with the offending key or column and the fix in one line instead of the schema."""
    try:
        validate(data, schema)
    except WorkflowError as exc:
        error = exc.__context__  # the jsonschema ValidationError
        if not hasattr(error, "validator"):
            raise
        where = ".".join(str(p) for p in error.absolute_path)
        row = re.search(r"row (\d+) of data frame", str(exc))
        if row:
            index = int(row.group(1))
            what = f"{what}, row {index + 1} (galaxy {data['galaxy'].iloc[index]!r})"
        if error.validator == "additionalProperties":
            patterns = list(error.schema.get("patternProperties", {}))
            known = error.schema.get("properties", {})
            unknown = [
                k
                for k in error.instance
                if k not in known and not any(re.search(p, k) for p in patterns)
            ]
            message = f"unknown key(s) {unknown}; {os.path.basename(schema)} lists the allowed ones"
        else:
            message = (f"{where}: " if where else "") + error.message
            if error.schema.get("description"):
                message += f" ({error.schema['description']})"
        raise WorkflowError(f"Error validating {what}: {message}") from None


checked(config, "../schemas/config.schema.yaml", "the config")

RESULTS = os.path.normpath(config["results"])
# The fit settings part of the config, checked by the library (its errors name the key).
FIT_SETTINGS = survey.fit_settings(config)
# Extra model families fitted to every galaxy (config families:), each with its own settings file.
FAMILIES = survey.family_settings(config)
PARAMETERS = list(load_settings(FIT_SETTINGS).spec.parameter_names)

SHEET = survey.read_sheet(config["galaxies"])
checked(
    SHEET, "../schemas/sheet.schema.yaml", f"the galaxies sheet {config['galaxies']}"
)
survey.check_sheet(SHEET, PARAMETERS, source=config["galaxies"])
# Every galaxy's settings (the config's with its row's overrides), so that a wrong bound or too few walkers stops the
# run now, once, rather than failing each galaxy's fit.
survey.check_galaxy_settings(SHEET, FIT_SETTINGS, source=config["galaxies"])
GALAXIES = list(SHEET["galaxy"])


wildcard_constraints:
    galaxy=survey.GALAXY_PATTERN.strip("^$"),
    family="|".join(FAMILIES) or "(?!)",


MOCKS = read_mock_table(config["mocks"]) if config["mocks"] else None
MOCK_ROWS = (
    {} if MOCKS is None else {str(r["galaxy"]): r for r in MOCKS.to_dict("records")}
)
# The simulate rule makes only the mock table's galaxies (an alternation of their names; never matches if none).
MOCK_PATTERN = (
    "|".join(sorted(MOCK_ROWS)) if config["simulate"] and MOCK_ROWS else "(?!)"
)


def row(galaxy):
    """The galaxy's sheet row without empty cells."""
    return survey.sheet_row(SHEET, galaxy)


def mock_output(galaxy):
    """Where the simulate rule writes the galaxy's mock cube."""
    return os.path.join(RESULTS, "mocks", f"{galaxy}.fits")


def cube_path(wildcards):
    """The galaxy's cube, as the sheet gives it."""
    return row(wildcards.galaxy)["cube"]


def cube_input(wildcards):
    """The cube as an input file when it exists or a rule makes it; otherwise no input, and the prepare job records
    the missing file as the galaxy's failure instead of stopping the whole survey."""
    path = cube_path(wildcards)
    if os.path.exists(path):
        return [path]
    if wildcards.galaxy in MOCK_ROWS and config["simulate"]:
        if os.path.normpath(path) == os.path.normpath(mock_output(wildcards.galaxy)):
            return [path]
    logger.warning(
        f"{wildcards.galaxy}: cube {path} does not exist; its catalogue row will say so"
    )
    return []


def reading_args(wildcards):
    """--restfreq and --beam from the sheet, for kinms-core prepare (shell-quoted)."""
    return shlex.join(survey.cube_arguments(row(wildcards.galaxy)))


def override_args(wildcards):
    """--override <param>_<field>=VALUE for each override cell of the galaxy's row (shell-quoted)."""
    overrides = survey.galaxy_overrides(row(wildcards.galaxy))
    return shlex.join(
        arg
        for key, value in overrides.items()
        for arg in ("--override", f"{key}={value}")
    )


def truths(galaxy):
    """True values of the galaxy's parameters: the sheet's <param>_true cells, else its mock table row."""
    return survey.galaxy_truths(row(galaxy), MOCK_ROWS.get(galaxy), PARAMETERS)


def truth_args(wildcards):
    """--truth PARAM=VALUE for kinms-core plot (shell-quoted)."""
    pairs = truths(wildcards.galaxy).items()
    return shlex.join(
        arg for name, value in pairs for arg in ("--truth", f"{name}={value!r}")
    )


def mock_row(wildcards):
    """The galaxy's mock table row (a params value, so that editing one row remakes only that mock)."""
    return survey.clean_row(MOCK_ROWS[wildcards.galaxy])


def mock_table():
    """The mock table as an input of survey-level rules, or nothing."""
    return [config["mocks"]] if config["mocks"] else []


def galaxy_files(*parts):
    """One path per galaxy of the sheet: RESULTS/<galaxy>/<parts...>."""
    return [os.path.join(RESULTS, galaxy, *parts) for galaxy in GALAXIES]


def all_outputs():
    """Everything a survey run makes."""
    outputs = [
        os.path.join(RESULTS, "catalogue.csv"),
        os.path.join(RESULTS, "catalogue.fits"),
        os.path.join(RESULTS, "survey", "provenance.json"),
    ]
    outputs += [os.path.join(RESULTS, "survey", name) for name in SURVEY_PLOT_FILES]
    for name in PLOT_FILES:
        outputs += galaxy_files("plots", name)
    return outputs


def family_files():
    """The status of every galaxy's fit with every extra model family."""
    return [
        os.path.join(RESULTS, galaxy, "families", family, "status.json")
        for galaxy in GALAXIES
        for family in FAMILIES
    ]


def family_args(wildcards, input):
    """--family NAME=SETTINGS for kinms-core catalogue (shell-quoted)."""
    return shlex.join(
        arg
        for family, path in zip(FAMILIES, input.family_settings)
        for arg in ("--family", f"{family}={path}")
    )


def write_partial_catalogue():
    """The catalogue of a run in which some job failed (kinms_core.catalogue.make_catalogue_after_failure)."""
    make_catalogue_after_failure(
        config["galaxies"],
        RESULTS,
        settings=FIT_SETTINGS,
        mocks=config["mocks"],
        families=FAMILIES,
    )
