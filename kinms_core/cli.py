"""The ``kinms-core`` command: one console entry point, one subcommand per task.

Errors it can foresee (a bad input, settings or command line: :class:`~kinms_core.errors.InputError`; a file that
cannot be read or written: :class:`OSError`) print one line naming the problem; ``--debug`` adds their traceback.
Anything else is a bug and prints its traceback. Exit codes: 0 done (also when a failure was recorded with
``--record-failure``), 1 a file-system error or a bug, 2 a bad input or command line, 130 interrupted.
"""

from __future__ import annotations

import argparse
import logging
import sys

from .errors import InputError

__all__ = ["main"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered."""
    parser = argparse.ArgumentParser(prog="kinms-core", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--debug", action="store_true", help="also show the traceback of foreseen errors")
    sub = parser.add_subparsers(dest="command", required=True)
    for register in _REGISTRY:
        register(sub)
    return parser


# Each subcommand module provides ``register(subparsers)`` which adds its parser and sets ``func``.
_REGISTRY: list = []


# ----------------------------------------------------------------------------------------------- ingest (issue 3)
def _register_ingest(sub: argparse._SubParsersAction) -> None:
    """``obspars CUBE``: print the cube's obspars and noise; ``trim CUBE -o OUTDIR`` (alias ``prepare``): read,
    mask, trim, guess and write the galaxy's files (kinms_core.prepare)."""

    def add_reading(p: argparse.ArgumentParser) -> None:
        p.add_argument("cube", help="FITS cube")
        p.add_argument("--restfreq", type=float, default=None, metavar="HZ", help="rest frequency (Hz)")
        p.add_argument(
            "--beam", type=float, nargs=3, default=None, metavar=("BMAJ", "BMIN", "BPA"), help="arcsec arcsec deg"
        )
        p.add_argument("--max-voxels", type=float, default=None, help="refuse larger cubes (default 4e8)")
        p.add_argument(
            "--velocity-convention",
            choices=("auto", "radio", "optical"),
            default="auto",
            help="reading of a VELO-xxx axis without VELREF (default auto: radio for Miriad files, else optical)",
        )
        p.add_argument("--json", action="store_true", help="print JSON instead of text")

    def reading_kwargs(args: argparse.Namespace) -> dict:
        from .ingest import DEFAULT_MAX_VOXELS

        return {
            "restfreq": args.restfreq,
            "beam": tuple(args.beam) if args.beam else None,
            "max_voxels": args.max_voxels if args.max_voxels is not None else DEFAULT_MAX_VOXELS,
            "velocity_convention": args.velocity_convention,
        }

    def run_obspars(args: argparse.Namespace) -> int:
        import json

        from .ingest import read_cube
        from .noise import estimate_rms

        cube = read_cube(args.cube, **reading_kwargs(args))
        rms = estimate_rms(cube.data)
        op = cube.obspars
        if args.json:
            out = {"obspars": op.to_dict(), "rms": rms, "rms_unit": "Jy/beam", "warnings": cube.warnings}
            print(json.dumps(out, indent=2, sort_keys=True))
            return 0
        bmaj, bmin, bpa = op.beam
        x_ref, y_ref = op.reference_pixel
        lines = [
            f"cube        {cube.path}",
            f"shape       nx {op.nx}  ny {op.ny}  nv {op.nv}",
            f"cellsize    {op.cellsize:.6g} arcsec",
            f"channels    dv {op.dv:.6g} km/s, {op.velocities[0]:.6g} .. {op.velocities[-1]:.6g} km/s (radio)",
            f"beam        {bmaj:.4g} x {bmin:.4g} arcsec, PA {bpa:.4g} deg ({op.extra.get('beam_source', '')})",
            f"reference   RA {op.ra:.7f}  Dec {op.dec:.7f} deg at pixel x {x_ref:.3f} y {y_ref:.3f} (0-based)",
            f"frames      {op.radesys} {op.projection}, {op.specsys}, rest frequency "
            + (f"{op.restfreq:.9g} Hz" if op.restfreq else "none"),
            f"unit        Jy/beam (from {op.extra.get('bunit_original') or 'no BUNIT'})",
            f"noise       rms {rms:.4g} Jy/beam",
        ]
        lines += [f"warning     {w}" for w in cube.warnings]
        print("\n".join(lines))
        return 0

    def run_trim(args: argparse.Namespace) -> int:
        import json

        from .fit_cli import prepare_with_status
        from .prepare import prepare_cube
        from .status import read_status

        results = {}

        def prepare() -> None:
            results["summary"] = prepare_cube(
                args.cube,
                args.outdir,
                n_sigma=args.n_sigma,
                pad_beams=args.pad_beams,
                pad_channels=args.pad_channels,
                **reading_kwargs(args),
            )

        code = prepare_with_status(args, prepare)
        if "summary" not in results:
            print(f"{args.cube}: failed: {read_status(args.outdir)['error']}")
            return code
        summary = results["summary"]
        if args.json:
            print(json.dumps(summary, indent=2, sort_keys=True))
            return 0
        trim = summary["trim"]
        guesses = ", ".join(f"{k} {v:.4g}" for k, v in summary["guesses"].items())
        print(
            f"{args.cube} -> {args.outdir}: {'x'.join(map(str, trim['original_shape']))} trimmed to "
            f"{'x'.join(map(str, trim['shape']))} ({trim['size_rule']}); rms {summary['rms']:.4g} Jy/beam; "
            f"{summary['n_detected']} voxels detected\nguesses: {guesses}"
        )
        return 0

    p = sub.add_parser("obspars", help="print a cube's obspars and noise")
    add_reading(p)
    p.set_defaults(func=run_obspars)
    p = sub.add_parser(
        "trim",
        aliases=["prepare"],
        help="read, mask, trim and guess: write cube.fits, mask.fits, obspars.json and prepare.json",
    )
    add_reading(p)
    p.add_argument("-o", "--outdir", required=True, help="output folder")
    p.add_argument("--n-sigma", type=float, default=4.0, help="mask detection threshold (default 4)")
    p.add_argument("--pad-beams", type=float, default=2.0, help="spatial padding in beams (default 2)")
    p.add_argument("--pad-channels", type=int, default=3, help="spectral padding in channels (default 3)")
    p.add_argument("--galaxy", default=None, help="galaxy name recorded in status.json (default: the file name)")
    p.add_argument(
        "--record-failure",
        action="store_true",
        help="a recognised error (bad or unreadable cube) becomes a failed status.json and exit code 0",
    )
    p.set_defaults(func=run_trim)


def _register_fit(sub: argparse._SubParsersAction) -> None:
    from .fit_cli import register_fit, register_plot

    register_fit(sub)
    register_plot(sub)


def _register_survey(sub: argparse._SubParsersAction) -> None:
    from .survey_cli import register

    register(sub)


_REGISTRY.extend([_register_ingest, _register_fit, _register_survey])


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``kinms-core``; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    log = logging.getLogger("kinms-core")
    try:
        return int(args.func(args) or 0)
    except InputError as exc:
        log.error("%s", exc, exc_info=args.debug)
        return 2
    except OSError as exc:  # unreadable or unwritable files, a full disk, a name too long: the system's words
        log.error("%s", exc, exc_info=args.debug)
        return 1
    except KeyboardInterrupt:
        log.error("interrupted")
        return 130
    except Exception:
        log.critical("unexpected error: a bug in kinms-core; please report it with this traceback", exc_info=True)
        return 1


if __name__ == "__main__":
    sys.exit(main())
