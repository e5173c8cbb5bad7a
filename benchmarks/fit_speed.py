"""The tutorial's fit end to end, converged by the 50-tau rule, against the tutorial's KinMS + GAStimator run.

Prints the wall time on the given number of processes, the number of model evaluations, the posterior against the
truth, and the ratio to the tutorial's KinMS + GAStimator fit, estimated in the same run as 6000 x the time of one
KinMS 3 model (GAStimator made 6000 model evaluations in that fit).

    python benchmarks/fit_speed.py [--processes 2] [--n-clouds 32768] [--nwalkers 32] [--outdir benchmarks/out/fit]
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from conftest import tutorial_params  # noqa: E402
from test_fit import TUTORIAL_ERRORS, TUTORIAL_TRUTH, tutorial_settings  # noqa: E402

from kinms_core import ObsPars, model_cube  # noqa: E402
from kinms_core.fit import fit_galaxy  # noqa: E402
from kinms_core.likelihood import FitData  # noqa: E402
from kinms_core.settings import load_settings  # noqa: E402


def kinms_model_time(repeats: int = 5) -> float:
    """Median time (s) of one KinMS 3 model of the tutorial's cube, the KinMS object reused."""
    from kinms import KinMS

    rad = np.arange(0.0, 100.0, 0.3)
    model = KinMS(64.0, 64.0, 500.0, 1.0, 20.0, [4.0, 4.0, 0.0])
    sb, vel = np.exp(-rad / 5.0), 200.0 * 2.0 / np.pi * np.arctan(rad / 2.0)
    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        model.model_cube(45.0, 270.0, sbProf=sb, sbRad=rad, velRad=rad, velProf=vel, intFlux=30.0)
        times.append(time.perf_counter() - start)
    return float(np.median(times[1:]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--n-clouds", type=int, default=None, help="model cloudlets (default: the settings default)")
    parser.add_argument("--nwalkers", type=int, default=24)
    parser.add_argument("--max-steps", type=int, default=5000)
    parser.add_argument("--outdir", default="benchmarks/out/fit")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    op = ObsPars(nx=64, ny=64, nv=25, cellsize=1.0, dv=20.0, beam=(4.0, 4.0, 0.0))
    truth = model_cube(op, seed=99, **tutorial_params())
    data = truth + np.random.default_rng(5).normal(size=truth.shape) * 1e-3
    fit_data = FitData(data=data, obspars=op, rms=1e-3, n_detected=int((truth > 3e-3).sum()), galaxy="tutorial")
    raw = tutorial_settings(nwalkers=args.nwalkers, max_steps=args.max_steps, seed=1)
    if args.n_clouds:
        raw["model"]["n_clouds"] = args.n_clouds
    else:
        raw.pop("model")
    settings = load_settings(raw)
    shutil.rmtree(args.outdir, ignore_errors=True)

    start = time.perf_counter()
    summary = fit_galaxy(fit_data, settings, args.outdir, processes=args.processes, progress=False)
    wall = time.perf_counter() - start
    kinms = kinms_model_time()

    print(f"\nTutorial fit: {settings.n_clouds} cloudlets, {args.nwalkers} walkers, {args.processes} processes")
    print(f"{'param':9s} {'truth':>7s} {'median':>9s} {'-err':>7s} {'+err':>7s} {'tutorial err':>12s}")
    for name in summary["free_parameters"]:
        p = summary["parameters"][name]
        print(
            f"{name:9s} {TUTORIAL_TRUTH[name]:7.2f} {p['median']:9.3f} {p['median'] - p['p16']:7.3f} "
            f"{p['p84'] - p['median']:7.3f} {TUTORIAL_ERRORS[name]:12.2f}"
        )
    print(
        f"steps {summary['steps']}, tau max {summary['tau_max']:.1f}, converged {summary['converged']}, "
        f"acceptance {summary['acceptance']:.2f}, reduced chi2 {summary['chi2_reduced']:.3f}"
    )
    print(
        f"wall time {wall:.1f} s for {summary['evaluations']} model evaluations "
        f"({wall / summary['evaluations'] * 1e3:.2f} ms each over {args.processes} processes)"
    )
    print(f"KinMS 3 model: {kinms * 1e3:.1f} ms -> tutorial KinMS+GAStimator fit ~ 6000 x = {6000 * kinms:.0f} s")
    print(f"speed-up over the tutorial's fit: {6000 * kinms / wall:.1f}x")


if __name__ == "__main__":
    main()
