"""Does the information criterion pick the model family that made the galaxy?

Reads the fits of the error calibration (benchmarks/calibration.py: KinMS-made mocks with known features) and, for
every mock whose only mismatch is one that a family describes (radial flow, bisymmetric flow, thick disc, warp,
dispersion gradient) or that has none, maximises the likelihood of each candidate family and ranks them by the BIC
that summary.json reports (:func:`kinms_core.fit.information_criterion`: the chi-square and the voxel count divided
by the measured noise-correlation volume, so that correlated voxels count once). Every family starts from the
default fit's best point with its own extra parameters at their neutral guesses (no radial motion, no warp, ...),
so that it is at least as good as the default, and the library's optimiser (``maximise``) runs the same number of
evaluations for each. It prints, per true feature, how often each family wins and the fraction picked right
(``default`` is right for a mock without a feature), and the BIC margins.

    python benchmarks/family_selection.py [--calibration benchmarks/out/calibration] [--jobs 2]
                                          [--max-evaluations 4000] [--summarise]

Resumable: each mock's result is kept in ``<calibration>/families/<name>.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from kinms_core.fit import information_criterion
from kinms_core.galaxy import load_fit_data
from kinms_core.likelihood import LogPosterior
from kinms_core.optimise import maximise
from kinms_core.settings import load_settings

log = logging.getLogger("family_selection")

#: The candidate families (``model:`` settings) and the mock feature each describes.
FAMILIES = {
    "default": ({}, None),
    "radial": ({"motions": "radial"}, "radial_flow"),
    "bisymmetric": ({"motions": "bisymmetric"}, "bisymmetric"),
    "thick": ({"thickness": "exponential"}, "thick"),
    "warp": ({"warp": "linear"}, "warp"),
    "sigma_linear": ({"dispersion": "linear"}, "sigma_gradient"),
}
FEATURE_FAMILY = {feature: family for family, (_, feature) in FAMILIES.items() if feature}


def eligible(truth: pd.DataFrame) -> pd.DataFrame:
    """Mocks with no feature, or with exactly one that a candidate family describes."""
    features = truth["features"].fillna("").astype(str)
    single = (truth["n_features"] == 1) & features.isin(list(FEATURE_FAMILY))
    return truth[(truth["n_features"] == 0) | single]


def rank_families(fit_root: Path, max_evaluations: int) -> dict[str, dict[str, float]]:
    """Each family's best chi-square, free parameters and BIC for one mock's prepared cube."""
    fit_data = load_fit_data(fit_root / "prepare")
    summary = json.loads((fit_root / "fit" / "summary.json").read_text())
    best = {name: entry["map"] for name, entry in summary["parameters"].items()}
    volume = float(summary["likelihood"]["noise_correlation_volume"])
    start = replace(fit_data, guesses={**fit_data.guesses, **best})
    out = {}
    for family, (model, _) in FAMILIES.items():
        settings = replace(load_settings({"model": model}), n_clouds=int(summary["n_clouds"]))
        parameters = settings.resolved(start.guesses, start.bounds)
        posterior = LogPosterior(
            start,
            parameters,
            settings.spec,
            correction="none",
            noise_correlation="none",
            n_clouds=settings.n_clouds,
            seed=settings.options.seed,
        )
        guess = np.clip(posterior.guess, posterior.low, posterior.high)
        theta, calls = maximise(posterior, guess, posterior.low, posterior.high, max_evaluations)
        criterion = information_criterion(posterior, theta, volume)
        out[family] = {
            "chi2": posterior.chi2(theta),
            "n_free": len(posterior.free),
            "evaluations": calls,
            **criterion,
            "best": dict(zip(posterior.free_names, theta.tolist(), strict=True)),
        }
        log.info("%s %s: BIC %.1f (%d evaluations)", fit_root.name, family, criterion["bic"], calls)
    return out


def run_one(name: str, calibration: str, max_evaluations: int) -> str:
    target = Path(calibration) / "families" / f"{name}.json"
    if not target.exists():
        result = rank_families(Path(calibration) / "fits" / name, max_evaluations)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(result, indent=1) + "\n")
    return name


def summarise(truth: pd.DataFrame, calibration: Path) -> pd.DataFrame:
    rows = []
    for _, mock in truth.iterrows():
        path = calibration / "families" / f"{mock['name']}.json"
        if not path.exists():
            continue
        result = json.loads(path.read_text())
        bics = pd.Series({family: entry["bic"] for family, entry in result.items()})
        right = FEATURE_FAMILY.get(str(mock["features"]), "default") if mock["n_features"] else "default"
        picked = str(bics.idxmin())
        rows.append(
            {
                "name": mock["name"],
                "feature": mock["features"] if mock["n_features"] else "none",
                "snr": mock["snr"],
                "right": right,
                "picked": picked,
                "ok": picked == right,
                "bic_right_minus_default": bics[right] - bics["default"],
                "bic_best_other": float(bics.drop(right).min() - bics[right]),
            }
        )
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calibration", type=Path, default=Path("benchmarks/out/calibration"))
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--max-evaluations", type=int, default=4000)
    parser.add_argument("--summarise", action="store_true", help="only summarise the results already there")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    truth = pd.read_csv(args.calibration / "truth.csv")
    fitted = [(args.calibration / "fits" / n / "fit" / "summary.json").exists() for n in truth["name"]]
    todo = eligible(truth[fitted])
    if not args.summarise:
        log.info("%d mocks with one family's feature or none", len(todo))
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            futures = [pool.submit(run_one, n, str(args.calibration), args.max_evaluations) for n in todo["name"]]
            for done, future in enumerate(as_completed(futures), 1):
                log.info("[%d/%d] %s done", done, len(futures), future.result())
    table = summarise(todo, args.calibration)
    if table.empty:
        print("no results yet")
        return 1
    pd.set_option("display.width", 160)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.1f}"))
    print("\npicked (rows: true feature, columns: family with the lowest BIC)")
    print(pd.crosstab(table["feature"], table["picked"]).to_string())
    print(f"\nright family picked: {table['ok'].sum()} of {len(table)} ({100 * table['ok'].mean():.0f}%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
