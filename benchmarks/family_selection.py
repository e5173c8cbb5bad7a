"""Does the information criterion pick the model family that made the galaxy?

Reads the fits of the error calibration (benchmarks/calibration.py: KinMS-made mocks with known features) and, for
every mock whose only mismatch is one that a family describes (radial flow, bisymmetric flow, thick disc, warp,
dispersion gradient) or that has none, maximises the likelihood of each candidate family and ranks them by the BIC
that summary.json reports (:func:`kinms_core.fit.information_criterion`: the chi-square and the voxel count divided
by the data's noise-correlation volume, :func:`kinms_core.fit.noise_volume`, so that correlated voxels count once,
and a surface brightness from the data paying for its map's independent beams; stored results are re-ranked with
it). Every family starts from the default fit's best point with its own extra
parameters at the library's guesses (no radial motion, no warp, no dispersion gradient, a scale height of a tenth of
the scale length), and the library's optimiser (``maximise_refined``: Nelder-Mead, then Levenberg-Marquardt, as the
fit's family search) runs the same number of evaluations for each; a thick
disc also starts higher up the valley of constant v sin i with a thicker disc, as a fit of the thick family does
(:func:`kinms_core.starts.start_values`). It prints, per true feature, how often each family wins and the fraction
picked right (``default`` is right for a mock without a feature), and the BIC margins. Because a richer family's
better maximum can lie far from the default's (a thick disc seen at the inclination a thin one would have), the
right family is also started from the mock's truth (its own parameters from the generator's where they have a
counterpart): the fraction picked right then says what the criterion can do with a better search.

    python benchmarks/family_selection.py [--calibration benchmarks/out/calibration] [--jobs 2]
                                          [--max-evaluations 4000] [--summarise] [--refit thick ...]

Resumable: each mock's results are kept in ``<calibration>/families/<name>.json`` and
``<calibration>/families_from_truth/<name>.json`` (``--refit`` maximises the named families again, e.g. after a
change to their search).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
from calibration import truth_side_sigma  # the pulls as the calibration computes them
from mismatched_mocks import DESCRIBES, SURFACE_FEATURES

from kinms_core.family_errors import ALTERNATIVES, aic, akaike_weights, model_spread
from kinms_core.fit import bic, information_criterion, noise_volume
from kinms_core.galaxy import load_fit_data
from kinms_core.likelihood import LogPosterior
from kinms_core.optimise import maximise_refined
from kinms_core.settings import load_settings
from kinms_core.starts import start_vectors
from kinms_core.surface import map_parameters

log = logging.getLogger("family_selection")

DATA_MODEL = ALTERNATIVES["data"]
#: The parameters whose bias the surface brightness from the data should remove.
SURFACE_PARAMETERS = ("pa", "inc", "vsys", "vflat")
#: The candidate families (``model:`` settings), each with the mock features it describes.
FAMILIES = {"default": ({}, ())} | {name: (ALTERNATIVES[name], DESCRIBES[name]) for name in ALTERNATIVES}
FEATURE_FAMILY = {feature: family for family, (_, features) in FAMILIES.items() for feature in features}
TRUE_COLUMNS = ("flux", "pa", "inc", "xc", "yc", "vsys", "sigma", "vflat", "rturn", "scalerad")


def eligible(truth: pd.DataFrame) -> pd.DataFrame:
    """Mocks with no feature, or with exactly one that a candidate family describes."""
    features = truth["features"].fillna("").astype(str)
    single = (truth["n_features"] == 1) & features.isin(list(FEATURE_FAMILY))
    return truth[(truth["n_features"] == 0) | single]


def truth_start(mock: pd.Series, spec: dict) -> dict[str, float]:
    """The mock's true values as a start point: the common parameters, and the right family's own where the mock's
    generator has a counterpart (KinMS's disc thickness as ``z0``, the radial and bisymmetric speeds and bar angle,
    the dispersion's and the warp's change over the emission radius as gradients)."""
    values = {name: float(mock[f"{name}_true"]) for name in TRUE_COLUMNS}
    kinematics, radius = spec["kinematics"], float(mock["r_emission"])
    if "thick" in kinematics:
        values["z0"] = kinematics["thick"]["scale_height"]
    if "radial_flow" in kinematics:
        values["vrad"] = kinematics["radial_flow"]["v_radial"]
    if "bisymmetric" in kinematics:
        values |= {k: kinematics["bisymmetric"][k] for k in ("v2t", "v2r", "phib")}
    if "sigma_gradient" in kinematics:
        gradient = kinematics["sigma_gradient"]
        values |= {"sigma": gradient["sigma_centre"]}
        values["sigma_grad"] = (gradient["sigma_outer"] - gradient["sigma_centre"]) / radius
    if "warp" in kinematics:
        values |= {"pa_grad": kinematics["warp"]["d_pa"] / radius, "inc_grad": kinematics["warp"]["d_inc"] / radius}
    return values


def rank_families(
    fit_root: Path, max_evaluations: int, families: list[str], begin: dict[str, float] | None = None
) -> dict[str, dict[str, float]]:
    """Each family's best chi-square, free parameters and BIC for one mock's prepared cube, started from the default
    fit's best point (or from ``begin``), and for a thick disc also from higher inclinations
    (:func:`kinms_core.starts.start_values`)."""
    fit_data = load_fit_data(fit_root / "prepare")
    summary = json.loads((fit_root / "fit" / "summary.json").read_text())
    best = begin or {name: entry["map"] for name, entry in summary["parameters"].items()}
    volume = noise_volume(fit_data)
    start = replace(fit_data, guesses={**fit_data.guesses, **best})
    out = {}
    for family in families:
        settings = replace(load_settings({"model": FAMILIES[family][0]}), n_clouds=int(summary["n_clouds"]))
        settings = settings.for_data(fit_data.guesses, fit_data.emission_extent)
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
        vectors = start_vectors(posterior, guess, fit_data.guesses.get("scalerad"))
        theta, calls, _ = maximise_refined(posterior, vectors, max_evaluations, fit_data.obspars.beam_area_pixels)
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


def _right_family(mock: pd.Series) -> str:
    return FEATURE_FAMILY.get(str(mock["features"]), "default") if mock["n_features"] else "default"


def run_one(
    mock: pd.Series,
    spec: dict,
    calibration: str,
    max_evaluations: int,
    refit: tuple[str, ...] = (),
    families: tuple[str, ...] = tuple(FAMILIES),
    from_truth: bool = True,
) -> str:
    """Rank the ``families`` of one mock (from the default's best point, and the right one from the truth if
    ``from_truth``); a stored result is kept, except for the ``refit`` families, which are maximised again."""
    fit_root = Path(calibration) / "fits" / mock["name"]
    target = Path(calibration) / "families" / f"{mock['name']}.json"
    stored = json.loads(target.read_text()) if target.exists() else {}
    missing = [family for family in families if family not in stored or family in refit]
    if missing:
        result = stored | rank_families(fit_root, max_evaluations, missing)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(result, indent=1) + "\n")
    target = Path(calibration) / "families_from_truth" / f"{mock['name']}.json"
    if from_truth and not target.exists():
        result = rank_families(fit_root, max_evaluations, [_right_family(mock)], truth_start(mock, spec))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(result, indent=1) + "\n")
    return mock["name"]


@dataclass(frozen=True)
class _Cube:
    """What ranking a mock's families needs of its cube, measured once: the noise volume, the voxels and the price of
    a map from the data (:func:`kinms_core.fit.noise_volume`, :func:`kinms_core.surface.map_parameters`)."""

    volume: float
    n_voxels: int
    map_price: float

    @classmethod
    def of(cls, fit_root: Path) -> _Cube:
        fit_data = load_fit_data(fit_root / "prepare")
        n_voxels = json.loads((fit_root / "fit" / "summary.json").read_text())["n_voxels"]
        return cls(noise_volume(fit_data), n_voxels, map_parameters(fit_data.mask, fit_data.obspars))

    def parameters(self, entry: dict, family: str) -> float:
        """A family's free parameters, a data map's price included."""
        return entry["n_free"] + (self.map_price if FAMILIES[family][0] == DATA_MODEL else 0.0)


def _bic(entry: dict[str, float], family: str, cube: _Cube) -> float:
    """A family's BIC from its stored chi-square and free parameters, with the cube's noise volume and, for the
    surface brightness from the data, its map's price (:func:`kinms_core.fit.bic`: results kept from earlier runs are
    ranked alike)."""
    return bic(entry["chi2"], cube.parameters(entry, family), cube.n_voxels, cube.volume)["bic"]


def summarise(truth: pd.DataFrame, calibration: Path) -> pd.DataFrame:
    """Per mock: the right family, the one with the lowest BIC from the default's best point, and the BIC margins,
    also with the right family started from the truth (what a better search would find)."""
    rows = []
    for _, mock in truth.iterrows():
        path = calibration / "families" / f"{mock['name']}.json"
        oracle = calibration / "families_from_truth" / f"{mock['name']}.json"
        if not path.exists() or not oracle.exists():
            continue
        cube = _Cube.of(calibration / "fits" / mock["name"])
        bics = pd.Series({f: _bic(e, f, cube) for f, e in json.loads(path.read_text()).items()})
        right = _right_family(mock)
        from_truth = min(bics[right], _bic(json.loads(oracle.read_text())[right], right, cube))
        with_truth = bics.copy()
        with_truth[right] = from_truth
        rows.append(
            {
                "name": mock["name"],
                "feature": mock["features"] if mock["n_features"] else "none",
                "snr": mock["snr"],
                "right": right,
                "picked": str(bics.idxmin()),
                "picked_truth_start": str(with_truth.idxmin()),
                "bic_right_minus_default": bics[right] - bics["default"],
                "same_from_truth": from_truth - bics["default"],
            }
        )
    table = pd.DataFrame(rows)
    if not table.empty:
        table["ok"] = table["picked"] == table["right"]
        table["ok_truth_start"] = table["picked_truth_start"] == table["right"]
    return table


def bias_table(truth: pd.DataFrame, calibration: Path) -> pd.DataFrame:
    """Per true feature: the median |best - truth| of pa, inc and vflat of the default family and of the family
    that describes the feature, each maximised from the default fit's best point (does the richer family remove the
    feature's bias?)."""
    rows = []
    for _, mock in truth[truth["n_features"] == 1].iterrows():
        path = calibration / "families" / f"{mock['name']}.json"
        if not path.exists():
            continue
        result, right = json.loads(path.read_text()), _right_family(mock)
        for family, label in (("default", "default"), (right, "right family")):
            best = result[family]["best"]
            row = {"feature": mock["features"], "family": label}
            for name in ("pa", "inc", "vflat"):
                difference = best[name] - float(mock[f"{name}_true"])
                if name == "pa":  # the shortest arc
                    difference = (difference + 180.0) % 360.0 - 180.0
                row[name] = abs(difference)
            rows.append(row)
    if not rows:
        return pd.DataFrame()
    frame = pd.DataFrame(rows)
    table = frame.groupby(["feature", "family"])[["pa", "inc", "vflat"]].median()
    return table.join(frame.groupby(["feature", "family"]).size().rename("mocks"))


def _shortest_arc(difference: np.ndarray) -> np.ndarray:
    return (difference + 180.0) % 360.0 - 180.0


def calibration_errors(calibration: Path, parameters: tuple[str, ...] = SURFACE_PARAMETERS) -> pd.DataFrame:
    """The default fits' 1-sigma errors as the calibration measures them (benchmarks/halves.py): the posterior's
    16th or 84th percentile distance on the truth's side (:func:`calibration.truth_side_sigma`) and half the two
    sides' difference, in quadrature, with the posterior median and the truth; indexed by (mock, parameter)."""
    pulls = pd.read_csv(calibration / "pulls.csv")
    pulls["sigma"] = truth_side_sigma(pulls)
    rows = []
    for _, row in pulls.iterrows():
        path = calibration / "halves" / f"{row['name']}.json"
        if row["parameter"] not in parameters or not path.exists():
            continue
        halves = json.loads(path.read_text())
        side = 0.5 * abs(halves["receding"][row["parameter"]] - halves["approaching"][row["parameter"]])
        error = float(np.hypot(row["sigma"], side))
        rows.append((row["name"], row["parameter"], error, row["median"], row["truth"]))
    columns = ["name", "parameter", "error", "median", "truth"]
    return pd.DataFrame(rows, columns=columns).set_index(["name", "parameter"])


#: The parameters whose pulls the family errors are measured on.
AVERAGED_PARAMETERS = ("pa", "inc", "vsys", "vflat", "sigma", "flux")


def _family_spread(result: dict, cube: _Cube) -> dict[str, float]:
    """``fit.family_errors``' term for one mock from its stored families (the default's as the fit's own): Akaike
    weights of ``chi2 / c + 2 p`` (a data map priced by its beams) and the weighted spread about the default's best
    point (:func:`kinms_core.family_errors.akaike_weights`, :func:`~kinms_core.family_errors.model_spread`)."""
    criteria = {}
    for family, entry in result.items():
        criteria["fit" if family == "default" else family] = aic(
            entry["chi2"], cube.parameters(entry, family), cube.volume
        )
    others = {family: entry["best"] for family, entry in result.items() if family != "default"}
    return model_spread(result["default"]["best"], others, akaike_weights(criteria))


def averaged_pull_table(calibration: Path) -> pd.DataFrame:
    """The calibration's pulls (posterior medians, errors with the sides' term) without and with the family errors'
    term, on every mock where every family was maximised: per parameter the pull std (and robust std, 1.4826 MAD),
    the 68% coverage, the fraction beyond 3 sigma and the median error."""
    errors = calibration_errors(calibration, AVERAGED_PARAMETERS)
    rows = []
    for name in errors.index.get_level_values("name").unique():
        path = calibration / "families" / f"{name}.json"
        result = json.loads(path.read_text()) if path.exists() else {}
        if set(result) != set(FAMILIES):
            continue
        spread = _family_spread(result, _Cube.of(calibration / "fits" / name))
        for parameter, row in errors.loc[name].iterrows():
            difference = row["median"] - row["truth"]
            if parameter == "pa":
                difference = _shortest_arc(difference)
            total = float(np.hypot(row["error"], spread.get(parameter, 0.0)))
            rows.append({"parameter": parameter, "difference": difference, "fit": row["error"], "families": total})
    if not rows:
        return pd.DataFrame()
    frame = pd.DataFrame(rows)
    lines = []
    for parameter, sub in frame.groupby("parameter", sort=False):
        line = {"parameter": parameter, "mocks": len(sub)}
        for label in ("fit", "families"):
            pull = sub["difference"] / sub[label]
            line[f"{label} std"] = float(pull.std())
            line[f"{label} robust"] = float(1.4826 * np.median(np.abs(pull - pull.median())))
            line[f"{label} coverage"] = float(np.mean(np.abs(pull) <= 1.0))
            line[f"{label} >3"] = float(np.mean(np.abs(pull) > 3.0))
            line[f"{label} median error"] = float(sub[label].median())
        lines.append(line)
    return pd.DataFrame(lines)


def surface_table(truth: pd.DataFrame, calibration: Path) -> pd.DataFrame:
    """The default's and the data surface brightness's best points, and the one of the two with the lower BIC
    (``picked``), against the truth on every mock where both were maximised, for mocks with a surface-brightness
    feature and without: median |best - truth| and the fraction of |best - truth| beyond 3 of the default fit's
    errors (the calibration's pull tail, if the errors stayed as they are)."""
    errors = calibration_errors(calibration)
    rows = []
    for _, mock in truth.iterrows():
        path = calibration / "families" / f"{mock['name']}.json"
        result = json.loads(path.read_text()) if path.exists() else {}
        if not {"default", "data"} <= set(result):
            continue
        cube = _Cube.of(calibration / "fits" / mock["name"])
        bics = {family: _bic(result[family], family, cube) for family in ("default", "data")}
        result["picked"] = result[min(bics, key=bics.__getitem__)]
        surface = any(bool(mock[f"has_{feature}"]) for feature in SURFACE_FEATURES)
        for name in SURFACE_PARAMETERS:
            if (mock["name"], name) not in errors.index:
                continue
            error = errors.loc[(mock["name"], name), "error"]
            for family in ("default", "data", "picked"):
                difference = result[family]["best"][name] - float(mock[f"{name}_true"])
                difference = abs(_shortest_arc(difference) if name == "pa" else difference)
                rows.append(
                    {
                        "mocks": "surface feature" if surface else "no surface feature",
                        "parameter": name,
                        "family": family,
                        "abs_error": difference,
                        "beyond_3": difference > 3.0 * error,
                    }
                )
    if not rows:
        return pd.DataFrame()
    frame = pd.DataFrame(rows)
    grouped = frame.groupby(["mocks", "parameter", "family"])
    return pd.DataFrame(
        {
            "n": grouped.size(),
            "median_abs_error": grouped["abs_error"].median(),
            "p90_abs_error": grouped["abs_error"].quantile(0.9),
            "beyond_3_sigma": grouped["beyond_3"].mean(),
        }
    ).unstack("family")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calibration", type=Path, default=Path("benchmarks/out/calibration"))
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--max-evaluations", type=int, default=4000)
    parser.add_argument("--summarise", action="store_true", help="only summarise the results already there")
    parser.add_argument(
        "--refit", nargs="+", default=[], choices=sorted(FAMILIES), help="families to maximise again in stored results"
    )
    parser.add_argument(
        "--all-mocks",
        nargs="+",
        default=[],
        choices=sorted(FAMILIES),
        help="also maximise these families on every fitted mock (whatever its features), for the bias table of the "
        "surface brightness from the data",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    truth = pd.read_csv(args.calibration / "truth.csv")
    fitted = truth[[(args.calibration / "fits" / n / "fit" / "summary.json").exists() for n in truth["name"]]]
    todo = eligible(fitted)
    specs = {spec["name"]: spec for spec in json.loads(next(args.calibration.glob("specs_seed*.json")).read_text())}
    if not args.summarise:
        log.info("%d mocks with one family's feature or none", len(todo))
        jobs = [(mock, {}) for _, mock in todo.iterrows()]
        if args.all_mocks:
            others = fitted[~fitted["name"].isin(todo["name"])]
            jobs += [(mock, {"families": tuple(args.all_mocks), "from_truth": False}) for _, mock in others.iterrows()]
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            futures = [
                pool.submit(
                    run_one,
                    mock,
                    specs[mock["name"]],
                    str(args.calibration),
                    args.max_evaluations,
                    tuple(args.refit),
                    **options,
                )
                for mock, options in jobs
            ]
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
    right = table["ok_truth_start"]
    print(f"with the right family started from the truth: {right.sum()} of {len(table)} ({100 * right.mean():.0f}%)")
    print("\nmedian |best - truth| (pa, inc in deg, vflat in km/s) of the default and of the right family")
    print(bias_table(todo, args.calibration).to_string(float_format=lambda v: f"{v:.1f}"))
    surface = surface_table(fitted, args.calibration)
    if not surface.empty:
        print(
            "\nthe default and the data surface brightness on every mock where both were maximised (beyond_3_sigma: "
            "|best - truth| over 3 of the default fit's errors, sides included)"
        )
        print(surface.to_string(float_format=lambda v: f"{v:.2f}"))
    averaged = averaged_pull_table(args.calibration)
    if not averaged.empty:
        print(
            "\nthe calibration's pulls with the errors of the default fit (sides included) and with fit.family_errors' "
            "term (every family maximised from the default's best point, Akaike weights)"
        )
        print(averaged.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
