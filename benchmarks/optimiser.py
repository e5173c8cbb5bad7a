"""How close does the optimiser get to the maximum? Nelder-Mead alone against Nelder-Mead then Levenberg-Marquardt
(:func:`kinms_core.optimise.refine`), on the fit's model from the first guesses and on each model family from there.

    python benchmarks/optimiser.py PREPARED_DIR [PREPARED_DIR ...] [--n-clouds 32768] [--evaluations 4000]

Each PREPARED_DIR is a folder written by the prepare stage (``kinms-core prepare``, or ``benchmarks/real_galaxies.py``
under ``<outdir>/<galaxy>/prepare``). For the fit's model it prints the log-likelihood that Nelder-Mead reaches from
the first guesses with ``--evaluations`` and what refining it gains; then, for each family of the family errors
started at that point, Nelder-Mead with half those evaluations (as the fits did before the refinement) against an
eighth of them and the refinement (as they do now): the log-likelihood reached, the AIC difference that makes
(``2 dlogL / c``, ``c`` the data's noise-correlation volume: what the Akaike weights see), the evaluations and the
time. The likelihood is the one the optimiser maximises: the chi-square of independent noise.
"""

from __future__ import annotations

import argparse
import logging
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from kinms_core.family_errors import ALTERNATIVES
from kinms_core.fit import noise_volume
from kinms_core.galaxy import load_fit_data
from kinms_core.likelihood import FitData, LogPosterior, maximisation_posterior
from kinms_core.optimise import maximise, refine
from kinms_core.settings import load_settings


def posterior_for(fit_data: FitData, model: dict[str, str], values: dict[str, float], n_clouds: int) -> LogPosterior:
    """The maximised posterior of the model family ``model`` (``model:`` settings), started at ``values``."""
    settings = load_settings({"model": model}).for_data(fit_data.guesses, fit_data.emission_extent)
    start = replace(fit_data, guesses={**fit_data.guesses, **values})
    parameters = settings.resolved(start.guesses, start.bounds)
    return maximisation_posterior(fit_data, parameters, settings.spec, n_clouds=n_clouds, seed=settings.options.seed)


def timed(function, *arguments) -> tuple[np.ndarray, int, float]:
    started = time.perf_counter()
    theta, calls = function(*arguments)
    return theta, calls, time.perf_counter() - started


def both_ways(posterior: LogPosterior, correlation: float, evaluations: int) -> dict[str, tuple[float, int, float]]:
    """Nelder-Mead with ``evaluations`` alone, and with a quarter of them then refined: log-likelihood, calls, s."""
    start, low, high = np.clip(posterior.guess, posterior.low, posterior.high), posterior.low, posterior.high
    alone, calls, seconds = timed(maximise, posterior, start, low, high, evaluations)
    short, short_calls, short_seconds = timed(maximise, posterior, start, low, high, evaluations // 4)
    refined, refine_calls, refine_seconds = timed(refine, posterior, short, correlation)
    return {
        "nelder-mead": (posterior(alone), calls, seconds),
        "nelder-mead + refine": (posterior(refined), short_calls + refine_calls, short_seconds + refine_seconds),
    }


def run(prepared: Path, n_clouds: int, evaluations: int) -> None:
    fit_data = load_fit_data(prepared)
    correlation = fit_data.obspars.beam_area_pixels
    volume = noise_volume(fit_data)
    print(f"\n{fit_data.galaxy}: noise-correlation volume {volume:.1f} voxels, {n_clouds} cloudlets")
    default = posterior_for(fit_data, {}, {}, n_clouds)
    start = np.clip(default.guess, default.low, default.high)
    best, calls, seconds = timed(maximise, default, start, default.low, default.high, evaluations)
    refined, refine_calls, refine_seconds = timed(refine, default, best, correlation)
    gain = default(refined) - default(best)
    print(
        f"  fit's model from the guesses: Nelder-Mead {default(best):.1f} ({calls} evaluations, {seconds:.1f} s); "
        f"refined +{gain:.1f} (AIC -{2 * gain / volume:.2f}; {refine_calls} evaluations, {refine_seconds:.1f} s)"
    )
    values = default.values(refined)
    print(f"  {'family':14s} {'Nelder-Mead':>28s} {'an eighth + refine':>28s} {'gain':>8s} {'AIC':>7s}")
    for family, model in ALTERNATIVES.items():
        posterior = posterior_for(fit_data, model, values, n_clouds)
        result = both_ways(posterior, correlation, evaluations // 2)
        (old, old_calls, old_s), (new, new_calls, new_s) = result["nelder-mead"], result["nelder-mead + refine"]
        print(
            f"  {family:14s} {old:12.1f} {old_calls:5d} ev {old_s:5.1f} s {new:12.1f} {new_calls:5d} ev {new_s:5.1f} s"
            f" {new - old:+8.1f} {-2 * (new - old) / volume:+7.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("prepared", nargs="+", type=Path)
    parser.add_argument("--n-clouds", type=int, default=2**15)
    parser.add_argument("--evaluations", type=int, default=4000, help="the fit's optimiser_evaluations")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    for prepared in args.prepared:
        run(prepared, args.n_clouds, args.evaluations)


if __name__ == "__main__":
    main()
