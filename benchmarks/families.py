"""Fit one cube with several model families and compare them: chi-square, BIC, residual flux, rotation velocity at a
radius, run time (resumable: a finished family is read back).

    python benchmarks/families.py CUBE.fits [--families default data exponential_ring radial warp]
                                  [--radius 20] [--processes 2] [--outdir benchmarks/out/families/NAME]
                                  [--profile 30] [--settings fit.yaml]

The residual flux is the absolute residual summed over the signal mask, over the data's flux there: the share of
the emission that the model misses. The time per likelihood evaluation (run time over evaluations, optimiser and
chain) compares the families' cost whatever the number of steps each chain needed, if they ran under the same load;
``--profile N`` times N likelihood evaluations of each family back to back instead, and gives the fit-time ratio at
equal load as that cost ratio times the ratio of evaluations. ``default`` is the library's
default model; the other names are the keys of FAMILIES below (each a ``model:`` setting), or several of them joined
by ``+`` for a model with all their features (``data+warp``: the gas where the data have it, in a warped disc).
``--settings`` gives the fit settings of every family (YAML; its ``model:`` is joined with each family's), e.g.
``fit: {family_errors: false}`` to compare the families' own fits without each one's search of its extensions.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from pathlib import Path

import numpy as np
import yaml
from astropy.io import fits

from kinms_core.family_errors import ALTERNATIVES
from kinms_core.fit import bic, noise_volume
from kinms_core.galaxy import fit_prepared, load_fit_data
from kinms_core.likelihood import LogPosterior
from kinms_core.parametric import ModelSpec, rotation_curve
from kinms_core.prepare import load_prepared, prepare_cube
from kinms_core.settings import load_settings
from kinms_core.surface import map_parameters

FAMILIES = {
    "default": {},
    **ALTERNATIVES,  # the families of family errors: flows, thick disc, linear warp, dispersion gradient, data
    "gaussian_ring": {"surface_brightness": "gaussian_ring"},
    "exponential_ring": {"surface_brightness": "exponential_ring"},
    "sersic": {"surface_brightness": "sersic"},
    "warp_rings": {"warp": "rings"},
}


def model_setting(family: str) -> dict[str, str]:
    """The ``model:`` setting of a family name: a key of FAMILIES, or keys joined by ``+``."""
    setting: dict[str, str] = {}
    for part in family.split("+"):
        if part not in FAMILIES:
            raise SystemExit(f"unknown family {part!r} in {family!r}: choose from {', '.join(FAMILIES)}")
        setting.update(FAMILIES[part])
    return setting


def compare(prepared: Path, fit_dir: Path, radius: float) -> dict[str, float]:
    summary = json.loads((fit_dir / "summary.json").read_text())
    data = load_prepared(prepared)
    # every family's BIC with the data's noise volume and a data map's price, also for fits summarised by earlier
    # releases: the chi-square at the best point from the summary's BIC, its own volume and what it counted
    n_free, n_voxels, n_effective = summary["n_free"], summary["n_voxels"], summary["n_effective"]
    counted = n_free + summary.get("map_parameters", 0.0)
    chi2_best = (summary["bic"] - counted * math.log(n_effective)) * n_voxels / n_effective
    fit_data = load_fit_data(prepared)
    from_data = summary["spec"].get("surface_brightness") == "data"
    price = map_parameters(fit_data.mask, fit_data.obspars) if from_data else 0.0
    criterion = bic(chi2_best, n_free + price, n_voxels, noise_volume(fit_data))
    with fits.open(fit_dir / "residual.fits") as hdul:
        residual = np.asarray(hdul[0].data, dtype=float)
    mask = data.mask & np.isfinite(data.data)
    missed = float(np.abs(residual[mask]).sum() / np.abs(data.data[mask]).sum())
    values = {name: entry["median"] for name, entry in summary["parameters"].items()}
    spec = ModelSpec.from_record(summary["spec"])
    names = open(fit_dir / "posterior.csv").readline().strip().split(",")
    samples = np.loadtxt(fit_dir / "posterior.csv", delimiter=",", skiprows=1, ndmin=2)
    rows = [{**values, **dict(zip(names, row, strict=True))} for row in samples[:: max(1, len(samples) // 400)]]
    velocity = np.array([float(rotation_curve(spec, p, np.array([radius]))[0]) for p in rows])
    low, median, high = np.percentile(velocity, [16, 50, 84])
    return {
        "chi2": summary["chi2"],
        "bic": criterion["bic"],
        "n_free": summary["n_free"],
        "residual_share": missed,
        "v_at_radius": median,
        "v_error": 0.5 * (high - low),
        "pa": values["pa"],
        "inc": values["inc"],
        "converged": summary["converged"],
        "steps": summary["steps"],
        "runtime_s": summary["runtime_s"],
        "ms_per_evaluation": 1e3 * summary["runtime_s"] / max(summary["evaluations"], 1),
        "n_clouds": summary["n_clouds"],
        "evaluations": summary["evaluations"],
    }


def evaluation_ms(prepared: Path, fit_dir: Path, family: str, repeats: int) -> float:
    """Shortest wall time (ms) of one likelihood evaluation of a fitted family at its best point, with its cloudlets,
    over ``repeats``: profiled back to back, so that the families compare under the same machine load (a fit's
    runtime depends on what else ran), and the shortest, as timeit takes, because other work only adds time."""
    summary = json.loads((fit_dir / "summary.json").read_text())
    fit_data = load_fit_data(prepared)
    settings = load_settings({"model": model_setting(family)}).for_data(fit_data.guesses, fit_data.emission_extent)
    parameters = settings.resolved(fit_data.guesses, fit_data.bounds)
    posterior = LogPosterior(
        fit_data, parameters, settings.spec, correction="none", n_clouds=summary["n_clouds"], seed=settings.options.seed
    )
    theta = np.array([summary["parameters"][name]["map"] for name in posterior.free_names])
    times = []
    for _ in range(repeats + 1):  # the first call plans and warms up
        start = time.perf_counter()
        posterior(theta)
        times.append(time.perf_counter() - start)
    return 1e3 * min(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("cube")
    parser.add_argument("--families", nargs="+", default=["default", "data", "exponential_ring", "radial", "warp"])
    parser.add_argument("--radius", type=float, default=20.0, help="radius of the rotation velocity compared (arcsec)")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--outdir", default=None)
    parser.add_argument("--profile", type=int, default=0, help="also time this many likelihood evaluations each")
    parser.add_argument("--settings", default=None, help="fit settings YAML for every family (default: the defaults)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    outdir = Path(args.outdir or f"benchmarks/out/families/{Path(args.cube).name.split('.')[0]}")
    prepared = outdir / "prepare"
    if not (prepared / "prepare.json").exists():
        prepare_cube(args.cube, prepared)
    common = (yaml.safe_load(Path(args.settings).read_text()) or {}) if args.settings else {}
    rows = {}
    for family in args.families:
        fit_dir = outdir / family
        if not (fit_dir / "summary.json").exists():
            settings = {**common, "model": {**common.get("model", {}), **model_setting(family)}}
            fit_prepared(prepared, settings, fit_dir, processes=args.processes, progress=False)
        rows[family] = compare(prepared, fit_dir, args.radius)
    for family in args.families if args.profile else ():
        rows[family]["profiled_ms"] = evaluation_ms(prepared, outdir / family, family, args.profile)
    best = min(rows, key=lambda name: rows[name]["bic"])
    print(f"{args.cube}: families compared (lowest BIC: {best})")
    print(
        f"{'family':<18}{'n_free':>7}{'chi2':>12}{'dBIC':>10}{'missed':>8}{'v(r)':>16}{'pa':>8}{'inc':>7}{'time s':>8}"
    )
    for family, r in rows.items():
        print(
            f"{family:<18}{r['n_free']:>7}{r['chi2']:>12.0f}{r['bic'] - rows[best]['bic']:>10.1f}"
            f"{100 * r['residual_share']:>7.1f}%{r['v_at_radius']:>9.1f} +-{r['v_error']:<5.1f}{r['pa']:>8.1f}"
            f"{r['inc']:>7.1f}{r['runtime_s']:>8.0f}{r['ms_per_evaluation']:>9.2f}"
            f"{'' if r['converged'] else ' (not converged)'}"
        )
    if args.profile:
        base = rows[args.families[0]]
        print(f"per evaluation, profiled back to back ({args.profile} each), over {args.families[0]}:")
        for family, r in rows.items():
            ratio = r["profiled_ms"] / base["profiled_ms"]
            steps = r["evaluations"] / base["evaluations"]
            print(
                f"  {family:<16}{r['profiled_ms']:>8.2f} ms  x{ratio:.2f}; evaluations x{steps:.2f}; "
                f"fit time at equal load x{ratio * steps:.2f}"
            )
    (outdir / "families.json").write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
