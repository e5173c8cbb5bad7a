"""``kinms-core fit`` and ``kinms-core plot``: one galaxy from a cube (or a prepared folder) to its fit and plots."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from ..errors import OverwriteError, UsageError
from ..status import read_status, run_stage
from .arguments import output_folder, parse_assignments

__all__ = ["register"]

log = logging.getLogger(__name__)


def _run_fit(args: argparse.Namespace) -> int:
    from ..galaxy import FIT_FILES, fit_prepared
    from ..prepare import prepare_cube
    from ..safe_files import refuse_overwrite

    outdir = output_folder(args.outdir)
    source = Path(args.input)
    refuse_overwrite([source, args.settings], [outdir / name for name in FIT_FILES])
    if source.is_dir() and outdir.is_dir() and os.path.samefile(source, outdir):
        raise OverwriteError(
            f"-o {outdir} is the prepared folder: the fit's status.json would replace the prepare stage's; give "
            "another output folder"
        )
    galaxy = args.galaxy or (source.stem if source.is_file() else source.resolve().parent.name)
    overrides = parse_assignments(args.override, "--override")
    if source.is_dir():
        prepared = source
    else:
        prepared = outdir / "prepared"
        code = run_stage(
            "prepare",
            galaxy,
            prepared,
            lambda: prepare_cube(
                source,
                prepared,
                restfreq=args.restfreq,
                beam=tuple(args.beam) if args.beam else None,
                velocity_convention=args.velocity_convention,
            ),
            record_failure=True,
        )
        if code:
            return code
    code = run_stage(
        "fit",
        galaxy,
        outdir,
        lambda: fit_prepared(
            prepared,
            args.settings,
            outdir,
            galaxy=galaxy,
            overrides=overrides,
            processes=args.threads,
            progress=args.progress,
        ),
        record_failure=args.record_failure,
    )
    if args.plots and code == 0:
        from ..galaxy import plot_galaxy

        plot_galaxy(outdir, prepared, outdir / "plots", galaxy=galaxy, truths=_truths(args.truth))
    status = read_status(outdir)
    if status["status"] == "ok":
        log.info("%s: fit written to %s", galaxy, outdir)
    return code


def _truths(items: list[str] | None) -> dict[str, float]:
    """``--truth PARAM=VALUE`` options as numbers."""
    truths = {}
    for key, value in parse_assignments(items, "--truth").items():
        try:
            truths[key] = float(value)
        except ValueError:
            raise UsageError(f"--truth {key}={value!r}: give a number") from None
    return truths


def register_fit(sub: argparse._SubParsersAction) -> None:
    """Add ``fit INPUT --settings S.yaml -o DIR``."""
    p = sub.add_parser(
        "fit",
        help="fit one galaxy (a FITS cube, prepared on the way, or a prepared folder) with emcee",
        description="Fit one galaxy: optimiser start, emcee chain checkpointed to DIR/chain.h5 (a rerun resumes), "
        "summary.json, model.fits, residual.fits, posterior.csv, and plots in DIR/plots.",
    )
    p.add_argument("input", help="FITS cube, or a folder written by `kinms-core prepare`")
    p.add_argument("--settings", default=None, help="fit settings YAML (model/parameters/fit keys); default: defaults")
    p.add_argument("-o", "--outdir", required=True, help="output folder")
    p.add_argument("--threads", type=int, default=1, help="worker processes for the likelihood (default 1)")
    p.add_argument("--galaxy", default=None, help="name for titles, logs and status (default: from the path)")
    p.add_argument("--override", action="append", metavar="PARAM_FIELD=VALUE", help="e.g. inc_guess=50")
    p.add_argument("--truth", action="append", metavar="PARAM=VALUE", help="true value to mark in plots (mocks)")
    p.add_argument("--restfreq", type=float, default=None, metavar="HZ", help="rest frequency, for a FITS input")
    p.add_argument("--beam", type=float, nargs=3, default=None, metavar=("BMAJ", "BMIN", "BPA"), help="FITS input")
    p.add_argument(
        "--velocity-convention",
        choices=("auto", "radio", "optical"),
        default="auto",
        help="FITS input: reading of a VELO-xxx axis without VELREF (default auto: radio for Miriad files)",
    )
    p.add_argument(
        "--record-failure",
        action="store_true",
        help="a recognised error (bad input or settings) becomes a failed status.json and exit code 0",
    )
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True, help="progress bar")
    p.add_argument("--plots", action=argparse.BooleanOptionalAction, default=True, help="write DIR/plots/*.png")
    p.set_defaults(func=_run_fit)


def _run_plot(args: argparse.Namespace) -> int:
    from ..galaxy import plot_galaxy

    galaxy = args.galaxy or Path(args.fit_dir).resolve().parent.name
    truths = _truths(args.truth)
    plot_galaxy(args.fit_dir, args.prepared, output_folder(args.outdir), galaxy=galaxy, truths=truths)
    return 0


def register_plot(sub: argparse._SubParsersAction) -> None:
    """Add ``plot FIT_DIR --prepared DIR -o PLOTDIR``."""
    p = sub.add_parser("plot", help="diagnostic, corner and trace plots of a fitted galaxy")
    p.add_argument("fit_dir", help="folder written by `kinms-core fit`")
    p.add_argument("--prepared", required=True, help="folder written by `kinms-core prepare`")
    p.add_argument("-o", "--outdir", required=True, help="folder for the PNG files")
    p.add_argument("--galaxy", default=None, help="name for titles (default: from the path)")
    p.add_argument("--truth", action="append", metavar="PARAM=VALUE", help="true value to mark (mocks)")
    p.set_defaults(func=_run_plot)


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``fit`` and ``plot``."""
    register_fit(sub)
    register_plot(sub)
