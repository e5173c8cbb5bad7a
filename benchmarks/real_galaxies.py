"""Fit the observed cubes of ../shared/real with the default settings and compare with their published references.

For each galaxy it prepares the cube, fits it (resuming a fit that is already there) and prints, per reference
quantity, our posterior median and 1-sigma error (half the 16th-84th percentile range) in the reference's
convention, the reference, the tolerance, and two verdicts: ``agrees`` (within max(2 sigma, tolerance)) and
``useful`` (the error below the useful limit: PA 5 deg, inclination 8 deg, vsys one channel). Rotation velocities
are compared at the reference's radius, from the posterior samples of the rotation curve (and as v sin i where the
reference's inclination is photometric). It also prints each fit's run time, convergence and quality flags, and
writes everything to ``<outdir>/real_galaxies.json``.

Where a fitted parameter disagrees with its reference, it also asks whether the data or the reference is at fault:
the fit's model is maximised again with that parameter held at the reference, and the chi-square it loses, in
independent noise samples (over the data's noise-correlation volume), is printed as ``rejects by dchi2/c``: about 1
if the data cannot tell the two values apart, tens if the reference leaves a pattern in the residual that the
model's other parameters cannot absorb. It measures the noise alone, not the choice of model.

    python benchmarks/real_galaxies.py [--processes 2] [--outdir benchmarks/out/real] [--galaxies NGC4324 ...]
                                       [--settings fit.yaml] [--refit]

The cubes are read from ../shared/real beside the repository, or from $KINMS_REAL_DATA.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from mismatched_mocks import real_data_root  # noqa: E402

from kinms_core.fit import noise_volume
from kinms_core.galaxy import fit_prepared, load_fit_data
from kinms_core.ingest import read_cube
from kinms_core.likelihood import maximisation_posterior
from kinms_core.moments import moment1, point_symmetric_pa
from kinms_core.optimise import maximise_refined
from kinms_core.prepare import prepare_cube
from kinms_core.quality import raised
from kinms_core.settings import load_settings

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Check:
    """One reference quantity: ``kind`` is a parameter name, ``v`` (rotation velocity at ``radius`` arcsec) or
    ``vsini`` (v sin i at ``radius``)."""

    kind: str
    reference: float
    tolerance: float
    source: str
    radius: float = 0.0
    relative: bool = False  # tolerance is a fraction of the reference
    useful_limit: float | None = None


@dataclass(frozen=True)
class Galaxy:
    folder: str
    cube: str
    checks: tuple[Check, ...]
    note: str


# Reference values and their conventions: ../shared/real/<folder>/SOURCE.md. PAs there are those of the receding
# side, north through east, as ours; velocities radio LSR, as the cubes' axes.
GALAXIES = {
    "NGC4324": Galaxy(
        "ngc4324_co_carma",
        "NGC4324.fits",
        (
            Check("pa", 230.0, 5.0, "KinMS test-suite model (by eye)", useful_limit=5.0),
            Check("inc", 65.0, 8.0, "KinMS test-suite model (by eye)", useful_limit=8.0),
            Check("vsys", 1656.0, 20.0, "by eye, 1650-1662 (one 20 km/s channel)", useful_limit=20.0),
            Check("v", 175.0, 0.10, 'by-eye rotation curve, flat beyond 5"', radius=20.0, relative=True),
        ),
        'a molecular ring (r ~ 20"), fitted here as an exponential disc; the reference is a by-eye model',
    ),
    "NGC4047": Galaxy(
        "ngc4047_co_carma",
        "NGC4047.co.smo7msk.K.fits.gz",
        (
            Check("pa", 283.987, 5.0, "EDGE 3D-Barolo (PA free)", useful_limit=5.0),
            Check("vsys", 3403.201, 20.0, "EDGE 3D-Barolo (Vsys free); one 20 km/s channel", useful_limit=20.0),
            Check("inc", 41.31, 8.0, "photometric (HyperLeda axis ratio, held fixed by 3D-Barolo)", useful_limit=8.0),
            Check(
                "vsini",
                228.61 * math.sin(math.radians(41.31)),
                0.10,
                '3D-Barolo Vrot(22.5") x sin(41.31): the kinematic quantity',
                radius=22.5,
                relative=True,
            ),
        ),
        "primary-beam corrected (noise rising to the edge, NaN outside the field), BUNIT K",
    ),
    "ESO121-G6": Galaxy(
        "eso121g6_hi_atca",
        "eso121-g6.fits",
        (
            Check("pa", 38.18, 5.0, "TiRiFiC flat-disc fit (38-42 over its stages)", useful_limit=5.0),
            Check("inc", 85.85, 8.0, "TiRiFiC flat-disc fit (86-90 over its stages)", useful_limit=8.0),
            Check("vsys", 1189.32, 3.298, "TiRiFiC flat-disc fit; one 3.3 km/s channel", useful_limit=3.298),
            Check("v", 141.6, 0.10, "TiRiFiC flat-disc VROT (130-142 over its stages)", radius=100.0, relative=True),
        ),
        "edge-on HI disc; the documentation calls the TiRiFiC fit a toy example",
    ),
}
# WEIN069 has no kinematic reference and a placeholder beam: it is only read (with a beam given).
READ_ONLY = {"WEIN069": ("wein069_hi_wsrt", "WEIN069.fits.gz", (20.0, 15.0, 0.0))}


def real_data() -> Path:
    """The observed cubes' folder (:func:`mismatched_mocks.real_data_root`)."""
    root = real_data_root()
    if not root.is_dir():
        raise SystemExit(
            f"no observed cubes in {root}: put them in ../shared/real beside the repository or set $KINMS_REAL_DATA"
        )
    return root


def posterior_samples(fit_dir: Path) -> dict[str, np.ndarray]:
    """Every parameter as samples: the posterior's for free parameters, the fixed value for the others."""
    summary = json.loads((fit_dir / "summary.json").read_text())
    with open(fit_dir / "posterior.csv") as handle:
        names = handle.readline().strip().split(",")
    values = np.loadtxt(fit_dir / "posterior.csv", delimiter=",", skiprows=1, ndmin=2)
    samples = {name: values[:, k] for k, name in enumerate(names)}
    for name, entry in summary["parameters"].items():
        samples.setdefault(name, np.full(values.shape[0], entry["median"]))
    return samples


def rotation(samples: dict[str, np.ndarray], radius: float) -> np.ndarray:
    """Rotation velocity at ``radius`` (arcsec) per sample, arctan or rings curve."""
    if "vflat" in samples:
        return samples["vflat"] * 2.0 / np.pi * np.arctan(radius / samples["rturn"])
    raise SystemExit("only the arctan rotation curve is compared here")


def quantity(check: Check, samples: dict[str, np.ndarray]) -> np.ndarray:
    if check.kind == "v":
        return rotation(samples, check.radius)
    if check.kind == "vsini":
        return rotation(samples, check.radius) * np.sin(np.radians(samples["inc"]))
    values = samples[check.kind]
    if check.kind == "pa":  # the equivalent angle nearest the reference
        values = values + 360.0 * np.round((check.reference - np.median(values)) / 360.0)
    return values


def compare(check: Check, samples: dict[str, np.ndarray]) -> dict[str, object]:
    values = quantity(check, samples)
    median = float(np.median(values))
    low, high = np.percentile(values, [16.0, 84.0])
    error = 0.5 * float(high - low)
    tolerance = check.tolerance * check.reference if check.relative else check.tolerance
    difference = median - check.reference
    return {
        "quantity": check.kind if not check.radius else f'{check.kind}({check.radius:g}")',
        "ours": median,
        "error": error,
        "reference": check.reference,
        "difference": difference,
        "tolerance": tolerance,
        "agrees": bool(abs(difference) <= max(2.0 * error, tolerance)),
        "useful": None if check.useful_limit is None else bool(error < check.useful_limit),
        "source": check.source,
    }


def symmetry_pa(prepared: Path, summary: dict) -> float:
    """A model-free check of the fitted PA: the point-symmetric kinematic PA
    (:func:`kinms_core.moments.point_symmetric_pa`) of the moment-1 map of the prepared cube's signal mask, over the
    pixels with at least two masked channels, about the fitted centre and vsys (KinMS's convention, as the fit's)."""
    fit_data = load_fit_data(prepared)
    op, values = fit_data.obspars, {name: entry["median"] for name, entry in summary["parameters"].items()}
    velocity = moment1(fit_data.data, op.velocities, fit_data.mask)
    velocity[fit_data.mask.sum(axis=0) < 2] = np.nan
    x_ref, y_ref = op.reference_pixel  # xc, yc are offsets from it
    centre = (x_ref + values["xc"] / op.cellsize, y_ref + values["yc"] / op.cellsize)
    return point_symmetric_pa(velocity, centre, values["vsys"])


#: Likelihood evaluations per maximisation of :func:`reference_rejection` (Nelder-Mead, then Levenberg-Marquardt).
PROFILE_EVALUATIONS = 3000


def reference_rejection(prepared: Path, summary: dict, settings: str | None, name: str, value: float) -> float:
    """``(chi2_ref - chi2_free) / c``: the chi-square (of independent noise, untempered) that the fit's model loses
    when parameter ``name`` is held at ``value`` and the others are maximised again, both maxima started from the
    fit's best point; ``c`` the data's noise-correlation volume (:func:`kinms_core.fit.noise_volume`)."""
    fit_data = load_fit_data(prepared)
    best = {key: entry["map"] for key, entry in summary["parameters"].items()}
    chi2 = {}
    for held in (False, True):
        raw = dict(load_settings(settings).raw)
        if held:
            raw["parameters"] = {**raw.get("parameters", {}), name: {"guess": value, "fixed": True}}
        fit_settings = load_settings(raw).for_data(fit_data.guesses, fit_data.emission_extent)
        start = {**best, name: value} if held else best
        parameters = fit_settings.resolved({**fit_data.guesses, **start}, fit_data.bounds)
        posterior = maximisation_posterior(
            fit_data, parameters, fit_settings.spec, n_clouds=summary["n_clouds"], seed=fit_settings.options.seed
        )
        guess = np.clip(posterior.guess, posterior.low, posterior.high)
        theta, _, _ = maximise_refined(posterior, [guess], PROFILE_EVALUATIONS, fit_data.obspars.beam_area_pixels)
        chi2[held] = posterior.chi2(theta)
    return (chi2[True] - chi2[False]) / noise_volume(fit_data)


def fit_one(name: str, galaxy: Galaxy, args: argparse.Namespace, data: Path) -> dict[str, object]:
    outdir = Path(args.outdir) / name
    if args.refit and outdir.exists():
        shutil.rmtree(outdir)
    prepared, fit_dir = outdir / "prepare", outdir / "fit"
    start = time.perf_counter()
    if not (prepared / "prepare.json").exists():
        prepare_cube(data / galaxy.folder / galaxy.cube, prepared)
    if not (fit_dir / "summary.json").exists():
        fit_prepared(prepared, args.settings, fit_dir, galaxy=name, processes=args.processes, progress=False)
    wall = time.perf_counter() - start
    summary = json.loads((fit_dir / "summary.json").read_text())
    prepare_info = json.loads((prepared / "prepare.json").read_text())
    samples = posterior_samples(fit_dir)
    comparisons = [compare(check, samples) for check in galaxy.checks]
    for check, comparison in zip(galaxy.checks, comparisons, strict=True):
        if not comparison["agrees"] and check.kind in summary["parameters"]:
            reference = summary["parameters"][check.kind]["median"] - comparison["difference"]
            comparison["rejects"] = reference_rejection(prepared, summary, args.settings, check.kind, reference)
    return {
        "galaxy": name,
        "note": galaxy.note,
        "runtime_s": summary["runtime_s"],
        "wall_s_this_run": wall,
        "converged": summary["converged"],
        "steps": summary["steps"],
        "tau_max": summary["tau_max"],
        "acceptance": summary["acceptance"],
        "chi2_reduced": summary["chi2_reduced"],
        "noise_model": summary.get("noise_model"),
        "errors": summary.get("errors"),
        "temperature": summary.get("likelihood", {}).get("temperature"),
        "inflation": summary.get("likelihood", {}).get("inflation"),
        "flags": raised(summary.get("flags", {})) + (["other_sources"] if prepare_info.get("other_sources") else []),
        "comparisons": comparisons,
        "fit_pa": summary["parameters"]["pa"]["median"],
        "symmetry_pa": symmetry_pa(prepared, summary),
        "outer_rotation": summary.get("outer_rotation"),
    }


def read_only(name: str, folder: str, cube: str, beam: tuple[float, float, float], data: Path) -> dict[str, object]:
    path = data / folder / cube
    try:
        read_cube(path)
        refused = "read without a beam"
    except ValueError as exc:
        refused = str(exc)
    op = read_cube(path, beam=beam).obspars
    return {"galaxy": name, "without_beam": refused, "with_beam": f"{op.nx}x{op.ny}x{op.nv}, dv {op.dv:.4g} km/s"}


def print_table(results: list[dict[str, object]]) -> None:
    for result in results:
        r = result
        state = "converged" if r["converged"] else "NOT converged"
        print(
            f"\n{r['galaxy']}: {state} in {r['steps']} steps (tau {r['tau_max']:.0f}, acceptance "
            f"{r['acceptance']:.2f}), fit {r['runtime_s']:.0f} s; noise {r['noise_model']}, errors {r['errors']} "
            f"(chain tempered by {r['temperature']:.3g}, error variances x{r['inflation']:.3g}); reduced chi2 "
            f"{r['chi2_reduced']:.2f}; flags: {', '.join(r['flags']) or 'none'}"
        )
        print(f"  ({result['note']})")
        print(f"  {'quantity':<14}{'ours':>18}{'reference':>12}{'diff':>9}{'tol':>8}  agrees useful  source")
        for c in result["comparisons"]:
            useful = "-" if c["useful"] is None else ("yes" if c["useful"] else "NO")
            print(
                f"  {c['quantity']:<14}{c['ours']:>10.2f} +-{c['error']:<6.2f}{c['reference']:>12.2f}"
                f"{c['difference']:>9.2f}{c['tolerance']:>8.2f}  {'yes' if c['agrees'] else 'NO':<6} {useful:<6} "
                f"{c['source']}"
            )
            if "rejects" in c:
                print(
                    f"  {'':<14}held at the reference, the model's other parameters maximised: rejects by "
                    f"dchi2/c {c['rejects']:.1f}"
                )
        print(
            f"  model-free check: the moment-1 map's point-symmetric PA {result['symmetry_pa']:.1f} (the fit's "
            f"{result['fit_pa']:.1f}, both KinMS's convention)"
        )
        outer = result.get("outer_rotation")
        if outer:
            v, vsini = outer["v"], outer["vsini"]
            print(
                f"  the catalogue's rotation at r_out = {outer['radius']:.1f}\" ({100 * outer['share']:.0f}% of the "
                f"flux along the major axis): v {v['median']:.1f} (+{v['p84'] - v['median']:.1f} "
                f"-{v['median'] - v['p16']:.1f}), v sin i {vsini['median']:.1f} (+{vsini['p84'] - vsini['median']:.1f} "
                f"-{vsini['median'] - vsini['p16']:.1f}) km/s"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--outdir", default="benchmarks/out/real")
    parser.add_argument("--galaxies", nargs="*", default=list(GALAXIES), choices=list(GALAXIES))
    parser.add_argument("--settings", default=None, help="fit settings YAML (default: the library's defaults)")
    parser.add_argument("--refit", action="store_true", help="discard earlier results and fit again")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    data = real_data()
    results = [fit_one(name, GALAXIES[name], args, data) for name in args.galaxies]
    print_table(results)
    others = [read_only(name, *spec, data) for name, spec in READ_ONLY.items()]
    for other in others:
        print(f"\n{other['galaxy']} (reading only): without a beam: {other['without_beam']}")
        print(f"  with a beam given: {other['with_beam']}")
    out = Path(args.outdir) / "real_galaxies.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"fits": results, "read_only": others}, indent=2) + "\n")
    print(f"\nwritten to {out}")


if __name__ == "__main__":
    main()
