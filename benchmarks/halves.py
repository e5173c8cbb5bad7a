"""Would the difference between the approaching and the receding half make the errors honest?

FAT and TiRiFiC users quote, beside the fit's formal errors, half the difference between fits of the approaching and
the receding side of a galaxy: an estimate of what the model's assumed symmetry costs. This benchmark measures that
estimate on the error calibration's mocks (benchmarks/calibration.py: KinMS-made galaxies with rings, bars, flows,
thick discs, warps...). For every fitted mock it fits each half as a fit does with ``fit.side_errors``
(:mod:`kinms_core.sides`: the sky pixels where the default fit's best model is receding, or approaching; the
kinematic centre held, every other parameter free from the default fit's best point) and prints, per parameter, the
pulls with the systematic term ``|receding - approaching| / 2`` added in quadrature to the fit's
errors, beside the pulls without it, and the median errors with and without it.

    python benchmarks/halves.py [--calibration benchmarks/out/calibration] [--jobs 2] [--max-evaluations 2000]
                                [--summarise]

Resumable: each mock's halves are kept in ``<calibration>/halves/<name>.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np
import pandas as pd
from calibration import robust_std, truth_side_sigma  # the pulls as the calibration computes them

from kinms_core.galaxy import load_fit_data
from kinms_core.settings import load_settings
from kinms_core.sides import side_differences

log = logging.getLogger("halves")

PARAMETERS = ("pa", "inc", "vsys", "vflat", "sigma")
#: Factors the errors (with the halves' term) are multiplied by, to show whether any one scale would give both a
#: pull std of 1 and a 68% coverage (it cannot when the pulls have heavy tails).
SCALES = (1.5, 2.0, 3.0)


def fit_halves(fit_root: Path, max_evaluations: int) -> dict[str, dict[str, float]]:
    """Best parameters of the receding and the approaching half of one mock's prepared cube, from the default fit's
    best point (:func:`kinms_core.sides.side_differences`, what ``fit.side_errors`` adds to a fit)."""
    fit_data = load_fit_data(fit_root / "prepare")
    summary = json.loads((fit_root / "fit" / "summary.json").read_text())
    best = {name: entry["map"] for name, entry in summary["parameters"].items()}
    settings = load_settings({})
    parameters = settings.resolved(fit_data.guesses, fit_data.bounds)
    return side_differences(
        fit_data,
        parameters,
        settings.spec,
        best,
        n_clouds=int(summary["n_clouds"]),
        seed=settings.options.seed,
        max_evaluations=max_evaluations,
    )


def run_one(name: str, calibration: str, max_evaluations: int) -> str:
    target = Path(calibration) / "halves" / f"{name}.json"
    if not target.exists():
        result = fit_halves(Path(calibration) / "fits" / name, max_evaluations)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(result, indent=1) + "\n")
    return name


def pull_table(calibration: Path) -> pd.DataFrame:
    """Per parameter: pull std (robust), 68% coverage and median error, without and with the halves' term."""
    pulls = pd.read_csv(calibration / "pulls.csv")
    lines = []
    for name in PARAMETERS:
        sub = pulls[pulls["parameter"] == name]
        halves = [calibration / "halves" / f"{mock}.json" for mock in sub["name"]]
        keep = np.array([path.exists() for path in halves])
        sub = sub[keep]
        if sub.empty:
            continue
        results = [json.loads(path.read_text()) for path, k in zip(halves, keep, strict=True) if k]
        term = np.array([0.5 * abs(r["receding"][name] - r["approaching"][name]) for r in results])
        diff = (sub["median"] - sub["truth"]).to_numpy()
        sigma = truth_side_sigma(sub)
        line = {"parameter": name, "n": len(sub)}
        for label, total in (("fit", sigma), ("fit+halves", np.hypot(sigma, term))):
            pull = diff / total
            line[f"{label} std"] = float(np.std(pull))
            line[f"{label} robust"] = robust_std(pull)
            line[f"{label} coverage"] = float(np.mean(np.abs(pull) <= 1.0))
            line[f"{label} >3"] = float(np.mean(np.abs(pull) > 3.0))
            line[f"{label} median err"] = float(np.median(total))
        for scale in SCALES:
            pull = diff / (scale * np.hypot(sigma, term))
            line[f"x{scale:g} std"] = float(np.std(pull))
            line[f"x{scale:g} coverage"] = float(np.mean(np.abs(pull) <= 1.0))
        lines.append(line)
    return pd.DataFrame(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calibration", type=Path, default=Path("benchmarks/out/calibration"))
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--max-evaluations", type=int, default=2000)
    parser.add_argument("--summarise", action="store_true", help="only summarise the results already there")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    names = sorted(path.parent.parent.name for path in (args.calibration / "fits").glob("*/fit/summary.json"))
    if not args.summarise:
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            futures = [pool.submit(run_one, n, str(args.calibration), args.max_evaluations) for n in names]
            for done, future in enumerate(as_completed(futures), 1):
                log.info("[%d/%d] %s done", done, len(futures), future.result())
    table = pull_table(args.calibration)
    if table.empty:
        print("no results yet")
        return 1
    pd.set_option("display.width", 200)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
