"""The ``obspars`` and ``prepare`` subcommands of ``kinms-core``: a cube's observational parameters and noise, and the
prepare stage (read, mask, trim, guess: :func:`kinms_core.prepare.prepare_cube`)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``obspars CUBE`` and ``prepare CUBE -o OUTDIR`` (alias ``trim``) to the subcommands."""
    p = sub.add_parser("obspars", help="print a cube's obspars and noise")
    _add_reading(p)
    p.set_defaults(func=run_obspars)
    p = sub.add_parser(
        "prepare",
        aliases=["trim"],
        help="read, mask, trim and guess: write cube.fits, mask.fits, obspars.json and prepare.json",
    )
    _add_reading(p)
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
    p.set_defaults(func=run_prepare)


def _add_reading(p: argparse.ArgumentParser) -> None:
    """The options of :func:`kinms_core.ingest.read_cube`."""
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


def _reading_kwargs(args: argparse.Namespace) -> dict:
    from ..ingest import DEFAULT_MAX_VOXELS

    return {
        "restfreq": args.restfreq,
        "beam": tuple(args.beam) if args.beam else None,
        "max_voxels": args.max_voxels if args.max_voxels is not None else DEFAULT_MAX_VOXELS,
        "velocity_convention": args.velocity_convention,
    }


def run_obspars(args: argparse.Namespace) -> int:
    """Print the cube's obspars, noise and reading warnings (as text or JSON)."""
    from ..ingest import read_cube
    from ..noise import estimate_rms

    cube = read_cube(args.cube, **_reading_kwargs(args))
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
        f"beam        {bmaj:.4g} x {bmin:.4g} arcsec, PA {bpa:.4g} deg ({op.provenance.beam_source or ''})",
        f"reference   RA {op.ra:.7f}  Dec {op.dec:.7f} deg at pixel x {x_ref:.3f} y {y_ref:.3f} (0-based)",
        f"frames      {op.radesys} {op.projection}, {op.specsys}, rest frequency "
        + (f"{op.restfreq:.9g} Hz" if op.restfreq else "none"),
        f"unit        Jy/beam (from {op.provenance.bunit_original or 'no BUNIT'})",
        f"noise       rms {rms:.4g} Jy/beam",
    ]
    lines += [f"warning     {w}" for w in cube.warnings]
    print("\n".join(lines))
    return 0


def run_prepare(args: argparse.Namespace) -> int:
    """Prepare the cube (with a status file) and print what was trimmed, the noise and the guesses."""
    from ..prepare import prepare_cube
    from ..status import read_status

    results = {}

    def prepare() -> None:
        results["summary"] = prepare_cube(
            args.cube,
            args.outdir,
            n_sigma=args.n_sigma,
            pad_beams=args.pad_beams,
            pad_channels=args.pad_channels,
            **_reading_kwargs(args),
        )

    code = _prepare_with_status(args, prepare)
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


def _prepare_with_status(args: argparse.Namespace, prepare: Callable[[], object]) -> int:
    """Run the prepare stage with a status file (used by ``kinms-core prepare --record-failure``)."""
    from ..status import clear_status, run_stage, write_status
    from .arguments import output_folder

    galaxy = args.galaxy or Path(args.cube).stem
    output_folder(args.outdir)
    if args.record_failure or args.galaxy:
        return run_stage("prepare", galaxy, args.outdir, prepare, record_failure=args.record_failure)
    clear_status(args.outdir)
    prepare()
    write_status(args.outdir, "prepare", galaxy)
    return 0
