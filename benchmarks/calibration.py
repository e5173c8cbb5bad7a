"""Are the errors honest? Fit mocks that the fit's model cannot describe exactly and measure the pulls.

The mocks come from benchmarks/mismatched_mocks.py: KinMS's own code (not ours) with rings, holes, bright cores,
clumps, bars, spiral arms, lopsided discs, radial and bisymmetric flows, falling dispersions, thick discs and mild
warps, with beam-correlated noise or real noise cut from the observed cubes in ../shared/real, at peak S/N 5-50 and
inclinations 20-85 deg. Every mock is fitted with the settings given (by default the library's defaults: what the
calibration measures) and, per parameter, the benchmark prints

- the pulls (fit - truth) / sigma, sigma the posterior's 16th or 84th percentile distance on the truth's side: their
  standard deviation, a robust one (1.4826 x MAD) and mean: unit width for honest errors;
- the coverage: the fraction of 68% intervals (16th-84th percentiles) that hold the truth;
- the median 1-sigma error, so that honesty is not bought with useless errors;
- the same pull widths for the error estimates that robust fits record for comparison (independent voxels, the
  correlated noise alone, the HAC of the scores, the sandwich itself), and the pulls by mismatch feature;
- the same for the rotation the data measure (``v_out`` and ``vsini_out``: the circular velocity and v sin i at the
  fit's emission radius, :mod:`kinms_core.outer_rotation`), against the mock's arctan curve and mean inclination at
  that radius. A fit made before summary.json recorded them is resumed (:func:`outer_rotation_of`: exact, and
  about a second each).

It is resumable (finished fits are kept; a fit interrupted part way resumes from its chain) and runs the fits in
parallel, in a process pool (``--engine pool``) or through the Snakemake workflow (``--engine workflow``).

    python benchmarks/calibration.py [-n 120] [--seed 1] [--jobs 2] [--outdir benchmarks/out/calibration]
                                     [--settings fit.yaml] [--engine pool|workflow] [--summarise]
                                     [--names mm0005 mm0036 ...]
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mismatched_mocks  # noqa: E402

from kinms_core.errors import InputError  # noqa: E402
from kinms_core.family_errors import bic_criteria  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PARAMETERS = ("pa", "inc", "vsys", "vflat", "sigma", "xc", "yc", "flux")
JUDGED = ("pa", "inc", "vsys", "vflat")
ALTERNATIVES = ("sd_independent", "sd_noise", "sd_hac", "sandwich_sd")
#: The rotation at the fit's emission radius (summary.json's ``outer_rotation``), judged beside the parameters.
DERIVED = ("v_out", "vsini_out")

log = logging.getLogger("calibration")


def make_mocks(n: int, seed: int, outdir: Path, names: Sequence[str] = ()) -> pd.DataFrame:
    """Write the mocks that are not there yet; returns the truth table. The specs (each needs one model run) are
    kept in specs_seed<seed>.json, so a resumed run does not draw them again. ``names``, if given, keeps only those
    mocks (to refit a few, e.g. the tails, with the same specs as the whole set)."""
    cache = outdir / f"specs_seed{seed}.json"
    known = json.loads(cache.read_text()) if cache.exists() else []
    specs = [
        mismatched_mocks.MockSpec.from_dict(known[index])
        if index < len(known)
        else mismatched_mocks.draw_spec(index, seed)
        for index in range(n)
    ]
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps([spec.to_dict() for spec in specs]))
    if names:
        unknown = sorted(set(names) - {spec.name for spec in specs})
        if unknown:
            raise SystemExit(f"no mock {', '.join(unknown)} among the first {n} of seed {seed}")
        specs = [spec for spec in specs if spec.name in names]
    mock_dir = outdir / "mocks"
    mock_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    made = 0
    for spec in specs:
        path = mock_dir / f"{spec.name}.fits"
        if not path.exists():
            mismatched_mocks.write_mock(spec, path)
            made += 1
    log.info("%d mocks written (%d already there) in %.0f s", made, len(specs) - made, time.perf_counter() - start)
    table = mismatched_mocks.truth_table(specs)
    table.to_csv(outdir / "truth.csv", index=False)
    return table


def fit_one(name: str, cube: str, outdir: str, settings: str | None) -> tuple[str, str]:
    """Prepare and fit one mock (one process); returns ``(name, "ok" | error message)``."""
    from kinms_core.galaxy import fit_prepared
    from kinms_core.prepare import prepare_cube

    base = Path(outdir) / "fits" / name
    if (base / "fit" / "summary.json").exists():
        return name, "ok"
    try:
        if not (base / "prepare" / "prepare.json").exists():
            prepare_cube(cube, base / "prepare")
        fit_prepared(base / "prepare", settings, base / "fit", galaxy=name, processes=1, progress=False)
    except InputError as exc:  # a recorded failure (no emission, ...), not a crash of the benchmark
        (base / "failed.txt").parent.mkdir(parents=True, exist_ok=True)
        (base / "failed.txt").write_text(str(exc) + "\n")
        return name, str(exc)
    return name, "ok"


def run_pool(truth: pd.DataFrame, outdir: Path, settings: str | None, jobs: int) -> None:
    todo = [
        (row["name"], str(outdir / "mocks" / f"{row['name']}.fits"))
        for _, row in truth.iterrows()
        if not (outdir / "fits" / row["name"] / "fit" / "summary.json").exists()
        and not (outdir / "fits" / row["name"] / "failed.txt").exists()
    ]
    log.info("%d fits to run (%d done), %d at a time", len(todo), len(truth) - len(todo), jobs)
    start = time.perf_counter()
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(fit_one, name, cube, str(outdir), settings) for name, cube in todo]
        for done, future in enumerate(as_completed(futures), 1):
            name, status = future.result()
            elapsed = time.perf_counter() - start
            log.info("[%d/%d, %.0f s] %s: %s", done, len(todo), elapsed, name, status)


def run_workflow(truth: pd.DataFrame, outdir: Path, settings: str | None, jobs: int) -> None:
    """The same fits through the survey workflow: a sheet of the mocks and a config of the settings."""
    sheet = pd.DataFrame(
        {"galaxy": truth["name"], "cube": [str(outdir / "mocks" / f"{n}.fits") for n in truth["name"]]}
    )
    for name in PARAMETERS:
        sheet[f"{name}_true"] = truth[f"{name}_true"]
    sheet.to_csv(outdir / "galaxies.csv", index=False)
    config = {"galaxies": str(outdir / "galaxies.csv"), "results": str(outdir / "workflow")}
    if settings:
        config.update(yaml.safe_load(Path(settings).read_text()) or {})
    (outdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    command = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--cores", str(2 * jobs)]
    command += ["--configfile", str(outdir / "config.yaml"), "--keep-going", "--rerun-incomplete"]
    subprocess.run(command, check=False, cwd=REPO)
    for name in truth["name"]:  # the summaries where the pool engine keeps them
        src = outdir / "workflow" / name
        dst = outdir / "fits" / name
        if (src / "fit" / "summary.json").exists() and not dst.exists():
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.symlink_to(src.resolve(), target_is_directory=True)


def _wrap(value: float, truth: float) -> float:
    return value + 360.0 * round((truth - value) / 360.0)


def collect(truth: pd.DataFrame, outdir: Path, settings: str | None = None) -> pd.DataFrame:
    """One row per mock and parameter: truth, median, percentiles, the alternative sigmas, feature labels."""
    rows = []
    for _, mock in truth.iterrows():
        path = outdir / "fits" / mock["name"] / "fit" / "summary.json"
        if not path.exists():
            continue
        summary = json.loads(path.read_text())
        likelihood = summary.get("likelihood", {})
        for name in PARAMETERS:
            entry = summary["parameters"].get(name)
            if entry is None or entry.get("fixed"):
                continue
            true = float(mock[f"{name}_true"])
            median, p16, p84 = entry["median"], entry["p16"], entry["p84"]
            if name == "pa":
                shift = _wrap(median, true) - median
                median, p16, p84 = median + shift, p16 + shift, p84 + shift
            row = {
                "name": mock["name"],
                "parameter": name,
                "truth": true,
                "median": median,
                "p16": p16,
                "p84": p84,
                "features": mock["features"],
                "noise": mock["noise"],
                "snr": float(mock["snr"]),
                "converged": bool(summary["converged"]),
                "flags": ";".join(k for k, v in summary.get("flags", {}).items() if v),
            }
            for alternative in ALTERNATIVES:
                values = likelihood.get(alternative)
                row[alternative] = float(values[name]) if values and name in values else math.nan
            rows.append(row)
        for derived in _derived_rows(mock, path.parent.parent, summary, settings):
            rows.append({**row, **dict.fromkeys(ALTERNATIVES, math.nan), **derived})
    return pd.DataFrame(rows)


def outer_rotation_of(name: str, fit_dir: Path, summary: dict, settings: str | None) -> dict | None:
    """summary.json's ``outer_rotation``; a fit made before summary.json recorded it is resumed in a scratch copy of
    its chain and start (no new step is sampled: the chain, the start and the error model are reused, so the result is
    exactly what the fit would have recorded) and its summary.json gains that key, nothing else."""
    if "outer_rotation" in summary:
        return summary["outer_rotation"]
    from kinms_core.galaxy import fit_prepared
    from kinms_core.safe_files import write_text_atomic

    with tempfile.TemporaryDirectory() as scratch:
        copy = Path(scratch) / "fit"
        copy.mkdir()
        for kept in ("chain.h5", "map.json"):
            shutil.copy2(fit_dir / "fit" / kept, copy / kept)
        resumed = fit_prepared(fit_dir / "prepare", settings, copy, galaxy=name, processes=1, progress=False)
    if resumed["steps"] != summary["steps"] or resumed["parameters"] != summary["parameters"]:
        raise RuntimeError(f"{name}: the resumed fit differs from the one on disk; were other settings given?")
    summary["outer_rotation"] = resumed["outer_rotation"]
    write_text_atomic(fit_dir / "fit" / "summary.json", json.dumps(summary, indent=2) + "\n")
    return summary["outer_rotation"]


def _derived_rows(mock: pd.Series, fit_dir: Path, summary: dict, settings: str | None) -> list[dict]:
    """The :data:`DERIVED` rows of one fit: the mock's arctan curve and inclination at the fit's radius as truths."""
    outer = outer_rotation_of(str(mock["name"]), fit_dir, summary, settings)
    if not outer:
        return []
    radius = outer["radius"]
    v_true = float(mock["vflat_true"]) * 2.0 / math.pi * math.atan(radius / float(mock["rturn_true"]))
    truths = {"v_out": v_true, "vsini_out": v_true * math.sin(math.radians(float(mock["inc_true"])))}
    return [
        {
            "parameter": name,
            "truth": truths[name],
            **{k: outer[name.removesuffix("_out")][k] for k in ("median", "p16", "p84")},
        }
        for name in DERIVED
    ]


def robust_std(values: np.ndarray) -> float:
    """1.4826 times the median absolute deviation: the standard deviation of the core of a distribution."""
    return float(1.482602218505602 * np.median(np.abs(values - np.median(values))))


def truth_side_sigma(rows: pd.DataFrame) -> np.ndarray:
    """Each fit's 1-sigma error on the truth's side of its median: the 16th or the 84th percentile's distance."""
    diff = (rows["median"] - rows["truth"]).to_numpy()
    return np.where(diff > 0, rows["median"] - rows["p16"], rows["p84"] - rows["median"])


def pull_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Per parameter: N, pull std / robust std / mean, the fractions of pulls beyond 2 and 3 (a unit Gaussian has 4.6%
    and 0.27%: heavy tails that no scaling of the errors can narrow without making the core too wide), 68% coverage,
    median error; and the alternatives' pull std."""
    lines = []
    for name in (*PARAMETERS, *DERIVED):
        sub = frame[frame["parameter"] == name]
        if sub.empty:
            continue
        diff = (sub["median"] - sub["truth"]).to_numpy()
        sigma = truth_side_sigma(sub)
        pulls = diff / np.where(sigma > 0, sigma, np.nan)
        pulls = pulls[np.isfinite(pulls)]
        covered = ((sub["p16"] <= sub["truth"]) & (sub["truth"] <= sub["p84"])).mean()
        half = 0.5 * (sub["p84"] - sub["p16"])
        line = {
            "parameter": name,
            "n": len(sub),
            "pull_std": float(np.std(pulls)),
            "pull_robust_std": robust_std(pulls),
            "pull_mean": float(np.mean(pulls)),
            "beyond_2": float(np.mean(np.abs(pulls) > 2)),
            "beyond_3": float(np.mean(np.abs(pulls) > 3)),
            "coverage_68": float(covered),
            "median_error": float(np.median(half)),
            "median_abs_error": float(np.median(np.abs(diff))),
        }
        for alternative in ALTERNATIVES:
            alt = (diff / sub[alternative]).to_numpy()
            alt = alt[np.isfinite(alt)]
            line[f"{alternative}_pull_std"] = float(np.std(alt)) if alt.size else math.nan
            recorded = sub[alternative].to_numpy(dtype=float)
            finite = recorded[np.isfinite(recorded)]
            line[f"{alternative}_median"] = float(np.median(finite)) if finite.size else math.nan
        lines.append(line)
    return pd.DataFrame(lines)


def feature_table(frame: pd.DataFrame, parameters: Sequence[str] = JUDGED) -> pd.DataFrame:
    """Pull standard deviation of the judged parameters per mismatch feature (a mock counts for each of its
    features) and per noise kind."""
    lines = []
    groups: dict[str, pd.DataFrame] = {}
    for feature in sorted({f for fs in frame["features"] for f in str(fs).split(";") if f and f != "none"}):
        groups[feature] = frame[frame["features"].str.split(";").map(lambda fs, f=feature: f in fs)]
    groups["(none)"] = frame[frame["features"].fillna("none") == "none"]
    for kind in ("correlated", "real"):
        groups[f"noise:{kind}"] = frame[frame["noise"].str.startswith(kind)]
    for label, sub in groups.items():
        if sub.empty:
            continue
        line = {"group": label, "mocks": sub["name"].nunique()}
        for name in parameters:
            part = sub[sub["parameter"] == name]
            diff = part["median"] - part["truth"]
            sigma = np.where(diff > 0, part["median"] - part["p16"], part["p84"] - part["median"])
            pulls = (diff / np.where(sigma > 0, sigma, np.nan)).to_numpy()
            line[name] = float(np.nanstd(pulls)) if np.isfinite(pulls).any() else math.nan
        lines.append(line)
    return pd.DataFrame(lines)


def preferred_models(summary: dict) -> dict[str, frozenset[str]]:
    """The families of the model that each criterion prefers among a fit's family search: ``aic`` the largest Akaike
    weight (the catalogue's ``preferred_family``), ``bic`` the lowest BIC, ``AIC + k (ln N_eff - 2)`` with ``k`` the
    parameters each model counts (Schwarz's penalty instead of Akaike's). Empty without a search; no ``bic`` for a
    fit that did not record its models' parameter counts."""
    families = summary.get("likelihood", {}).get("families", {})
    criteria = families.get("aic")
    if not criteria:
        return {}

    def families_of(model: str) -> frozenset[str]:
        return frozenset() if model == "fit" else frozenset(model.split("+"))

    chosen = {"aic": families_of(min(criteria, key=criteria.get))}
    bic = bic_criteria(families, summary.get("n_effective", math.nan))
    if bic:
        chosen["bic"] = families_of(min(bic, key=bic.get))
    return chosen


def _describes(family: str, feature: str) -> bool:
    return feature in mismatched_mocks.DESCRIBES[family]


CRITERIA = ("aic", "bic")


def selection_rows(truth: pd.DataFrame, outdir: Path) -> pd.DataFrame:
    """Per mock whose fit records every criterion's choice: its features and each criterion's preferred families."""
    rows = []
    for _, mock in truth.iterrows():
        path = outdir / "fits" / mock["name"] / "fit" / "summary.json"
        chosen = preferred_models(json.loads(path.read_text())) if path.exists() else {}
        if set(chosen) == set(CRITERIA):
            rows.append({"features": {f for f in str(mock["features"]).split(";") if f and f != "none"}, **chosen})
    return pd.DataFrame(rows, columns=["features", *CRITERIA])


def selection_table(frame: pd.DataFrame, criterion: str) -> pd.DataFrame:
    """Per mock feature (and ``(none)``): the mocks with it, those whose preferred model by ``criterion`` holds a
    family that describes it (:data:`mismatched_mocks.DESCRIBES`) and those whose model holds exactly the truth's
    features; per family (``false F``): the mocks with none of its features, and those whose model holds it; ``all``:
    the mocks, and the exact ones (-1: not applicable)."""
    found, spurious = [], []
    for features, families in zip(frame["features"], frame[criterion], strict=True):
        found.append({f for f in features if any(_describes(k, f) for k in families)})
        spurious.append({k for k in families if not any(_describes(k, f) for f in features)})
    exact = np.array([f == fs and not sp for f, fs, sp in zip(found, frame["features"], spurious, strict=True)], bool)
    lines = []
    for feature in (*mismatched_mocks.FEATURES, "(none)"):
        has = frame["features"].map(lambda fs, f=feature: f in fs if f != "(none)" else not fs).to_numpy(bool)
        if has.any():
            hits = sum(feature in f for f, h in zip(found, has, strict=True) if h)
            lines.append({"feature": feature, "mocks": int(has.sum()), "found": hits, "exact": int(exact[has].sum())})
    for family in mismatched_mocks.DESCRIBES:
        lacking = [not any(_describes(family, f) for f in fs) for fs in frame["features"]]
        held = sum(family in sp for sp, lack in zip(spurious, lacking, strict=True) if lack)
        lines.append({"feature": f"false {family}", "mocks": sum(lacking), "found": held, "exact": -1})
    lines.append({"feature": "all", "mocks": len(frame), "found": -1, "exact": int(exact.sum())})
    return pd.DataFrame(lines)


def print_selection(truth: pd.DataFrame, outdir: Path) -> None:
    """The model selection tables of both criteria, side by side."""
    frame = selection_rows(truth, outdir)
    if frame.empty:
        return
    tables = [selection_table(frame, criterion) for criterion in CRITERIA]
    merged = tables[0][["feature", "mocks"]].copy()
    for criterion, table in zip(CRITERIA, tables, strict=True):
        merged[f"{criterion}_found"], merged[f"{criterion}_exact"] = table["found"], table["exact"]
    print(
        f"\nModel selection by the fits' family search ({len(frame)} fits that record both criteria): the preferred "
        "model by AIC (the largest Akaike weight) and by BIC. Per feature: the mocks with it, those whose preferred "
        "model holds a family that describes it (found) and those whose model holds exactly the truth's features "
        "(exact); 'false F': the mocks without F's features and those whose model holds F; 'all': the mocks and the "
        "exact ones (-1: not applicable)"
    )
    print(merged.to_string(index=False))


def summarise(truth: pd.DataFrame, outdir: Path, settings: str | None = None) -> None:
    frame = collect(truth, outdir, settings)
    failed = sorted(p.parent.name for p in (outdir / "fits").glob("*/failed.txt"))
    if frame.empty:
        print("no finished fits yet")
        return
    fits = frame["name"].nunique()
    converged = frame.drop_duplicates("name")["converged"].mean()
    print(
        f"{fits} of {len(truth)} mocks fitted ({len(failed)} failed: {', '.join(failed) or 'none'}); "
        f"{100 * converged:.0f}% converged"
    )
    table = pull_table(frame)
    pd.set_option("display.width", 200)
    pd.set_option("display.max_columns", 30)
    columns = ["parameter", "n", "pull_std", "pull_robust_std", "pull_mean", "beyond_2", "beyond_3", "coverage_68"]
    columns += ["median_error", "median_abs_error"]
    print("\nPulls (fit - truth) / sigma: honest errors have a pull std of 1 and a 68% coverage of 0.68")
    print(table[columns].to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    clean = frame[frame["flags"].fillna("").astype(str) == ""]
    if not clean.empty:
        print(
            f"\nThe same for the {clean['name'].nunique()} fits with no quality flag raised (what a survey keeps when "
            "it filters on the flags)"
        )
        print(pull_table(clean)[columns].to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    print("\nPull std with other error estimates (sigma from each; median sigma in brackets)")
    alt = table[["parameter"]].copy()
    for alternative in ALTERNATIVES:
        alt[alternative] = [
            f"{a:.3g} ({m:.3g})"
            for a, m in zip(table[f"{alternative}_pull_std"], table[f"{alternative}_median"], strict=True)
        ]
    print(alt.to_string(index=False))
    print("\nPull std of the judged parameters by mismatch feature and noise")
    print(feature_table(frame).to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    print_selection(truth, outdir)
    frame.to_csv(outdir / "pulls.csv", index=False)
    table.to_csv(outdir / "pull_table.csv", index=False)
    print(f"\nper-mock rows in {outdir / 'pulls.csv'}, the table in {outdir / 'pull_table.csv'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=120, help="number of mocks")
    parser.add_argument("--seed", type=int, default=1, help="seed of the mock set")
    parser.add_argument("--jobs", type=int, default=2, help="fits at a time (one process each)")
    parser.add_argument("--outdir", default="benchmarks/out/calibration")
    parser.add_argument("--settings", default=None, help="fit settings YAML (default: the library's defaults)")
    parser.add_argument("--engine", choices=("pool", "workflow"), default="pool")
    parser.add_argument("--summarise", action="store_true", help="only summarise the fits already there")
    parser.add_argument("--names", nargs="+", default=(), help="only these mocks of the set (e.g. mm0005 mm0036)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("kinms_core").setLevel(logging.WARNING)
    outdir = Path(args.outdir)
    truth = make_mocks(args.n, args.seed, outdir, args.names)
    if not args.summarise:
        (run_pool if args.engine == "pool" else run_workflow)(truth, outdir, args.settings, args.jobs)
    summarise(truth, outdir, args.settings)


if __name__ == "__main__":
    main()
