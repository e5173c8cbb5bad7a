"""Survey subcommands of ``kinms-core``: ``simulate``, ``catalogue`` and ``survey-plots`` (what the workflow runs).

Each ``register_*`` function adds one subcommand to the ``kinms-core`` parser (:func:`kinms_core.cli.build_parser`).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..errors import MissingInputError, UsageError

__all__ = ["register", "register_catalogue", "register_simulate", "register_survey_plots"]

log = logging.getLogger(__name__)


def _run_simulate(args: argparse.Namespace) -> int:
    from ..safe_files import refuse_overwrite
    from ..simulate import simulate_survey_row

    refuse_overwrite([args.table], [args.output])
    path = simulate_survey_row(args.table, args.galaxy, args.output)
    print(f"{args.galaxy}: mock cube written to {path}")
    return 0


def register_simulate(sub: argparse._SubParsersAction) -> None:
    """Add ``simulate --table T --galaxy G -o OUT.fits``."""
    p = sub.add_parser(
        "simulate",
        help="write the mock cube of one galaxy of a table of true parameters",
        description="Write a mock FITS cube (KinMS-style model plus seeded, beam-correlated noise) of one row of a "
        "mock table (CSV: grid, galaxy, noise, format; see kinms_core.simulate).",
    )
    p.add_argument("--table", required=True, help="mock table (CSV), e.g. config/mocks.csv")
    p.add_argument("--galaxy", required=True, help="the row's galaxy name")
    p.add_argument("-o", "--output", required=True, help="output FITS file")
    p.set_defaults(func=_run_simulate)


def _run_catalogue(args: argparse.Namespace) -> int:
    from ..catalogue import make_catalogue
    from .arguments import parse_assignments

    families = parse_assignments(args.family, "--family")
    frame = make_catalogue(
        args.sheet, args.results, args.output, args.fits, settings=args.settings, mocks=args.mocks, families=families
    )
    n_ok = int((frame["status"] == "ok").sum())
    print(f"catalogue: {len(frame)} fits ({n_ok} ok, {len(frame) - n_ok} failed) -> {args.output}")
    for _, row in frame[frame["status"] != "ok"].iterrows():
        print(f"  {row['galaxy']} ({row['model']}): {row['error']}")
    return 0


def register_catalogue(sub: argparse._SubParsersAction) -> None:
    """Add ``catalogue --sheet S --results DIR -o CSV [--fits FITS] [--settings S.yaml] [--mocks T]
    [--family NAME=S.yaml ...]``."""
    p = sub.add_parser(
        "catalogue",
        help="collect every galaxy's fit (or failure) into the survey catalogue (CSV and FITS)",
        description="One row per galaxy of the sheet and model family: status, error, median and 16th/84th "
        "percentiles of every parameter, diagnostics, model comparison (BIC), quality flags, and true values where "
        "the sheet or the mock table has them.",
    )
    p.add_argument("--sheet", required=True, help="galaxies sheet (CSV)")
    p.add_argument("--results", required=True, help="folder with <galaxy>/prepare and <galaxy>/fit")
    p.add_argument("-o", "--output", required=True, help="catalogue CSV")
    p.add_argument("--fits", default=None, help="catalogue FITS table with units")
    p.add_argument("--settings", default=None, help="the survey's fit settings YAML (gives the model's parameters)")
    p.add_argument("--mocks", default=None, help="mock table whose values are its galaxies' true values")
    p.add_argument(
        "--family",
        action="append",
        metavar="NAME=SETTINGS.yaml",
        help="an extra model family fitted to every galaxy in <galaxy>/families/NAME (repeat for more)",
    )
    p.set_defaults(func=_run_catalogue)


def _run_survey_plots(args: argparse.Namespace) -> int:
    import pandas as pd

    from ..survey_plots import SURVEY_PLOT_FILES, plot_distributions, plot_pulls, plot_recovery

    path = Path(args.catalogue)
    if not path.is_file():
        raise MissingInputError(f"catalogue {path} does not exist: run `kinms-core catalogue` first")
    cat = pd.read_csv(path, dtype={"galaxy": str, "status": str, "error": str}, keep_default_na=True)
    params = [c for c in cat.columns if f"{c}_lo" in cat.columns and f"{c}_hi" in cat.columns]
    if not params:
        raise UsageError(f"catalogue {path} has no parameter columns (p, p_lo, p_hi): is it a kinms-core catalogue?")
    outdir = Path(args.outdir)
    plot_recovery(cat, params, outdir / "recovery.png")
    plot_pulls(cat, params, outdir / "pulls.png")
    plot_distributions(cat, params, outdir / "distributions.png")
    print(f"survey plots written to {outdir}: {', '.join(SURVEY_PLOT_FILES)}")
    return 0


def register_survey_plots(sub: argparse._SubParsersAction) -> None:
    """Add ``survey-plots --catalogue CSV -o DIR``."""
    p = sub.add_parser(
        "survey-plots",
        help="recovery, pull and distribution plots of a survey catalogue",
        description="Write DIR/recovery.png (fit against truth), DIR/pulls.png ((fit - truth) / error) and "
        "DIR/distributions.png from the catalogue's ok rows; figures without data say so.",
    )
    p.add_argument("--catalogue", required=True, help="catalogue CSV written by `kinms-core catalogue`")
    p.add_argument("-o", "--outdir", required=True, help="output folder")
    p.set_defaults(func=_run_survey_plots)


def register(sub: argparse._SubParsersAction) -> None:
    """Add all three survey subcommands."""
    register_simulate(sub)
    register_catalogue(sub)
    register_survey_plots(sub)
