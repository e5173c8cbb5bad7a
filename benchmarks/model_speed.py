"""Model speed and accuracy against KinMS 3.0.x on the seed tutorial's cube; peak memory of a large CubeModel.

Prints, from one run: KinMS's time per model (object reused), ours (CubeModel reused), the ratio, the relative L2
error of both against a converged KinMS reference (1e7 cloudlets), and the peak memory of a 256x256x128 CubeModel.

    python benchmarks/model_speed.py [--repeats 20] [--reference-clouds 1e7]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time

import numpy as np

from kinms_core import DEFAULT_CLOUDS, CubeModel, ObsPars

RAD = np.arange(0.0, 100.0, 0.3)
SB = np.exp(-RAD / 5.0)
VEL = 200.0 * 2.0 / np.pi * np.arctan(RAD / 2.0)
OBSPARS = ObsPars(nx=64, ny=64, nv=25, cellsize=1.0, dv=20.0, beam=(4.0, 4.0, 0.0))
PARAMS = dict(inc=45.0, pa=270.0, sb_rad=RAD, sb_prof=SB, vel_rad=RAD, vel_prof=VEL, int_flux=30.0)


def best_time(call, repeats: int) -> float:
    """Median wall time of ``call`` in seconds over ``repeats`` runs (after one warm-up)."""
    call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def kinms_model(n: float, seed: int):
    from kinms import KinMS

    model = KinMS(64.0, 64.0, 500.0, 1.0, 20.0, [4.0, 4.0, 0.0], nSamps=int(n), seed=seed)

    def call() -> np.ndarray:
        return model.model_cube(45.0, 270.0, sbProf=SB, sbRad=RAD, velRad=RAD, velProf=VEL, intFlux=30.0).T

    return call


# VmHWM (peak resident memory of this process image) rather than ru_maxrss, which a child inherits from its parent.
MEMORY_PROBE = """
import re, numpy as np
from kinms_core import CubeModel, ObsPars
def vmhwm_mb():
    return int(re.search(r"VmHWM:\\s+(\\d+) kB", open("/proc/self/status").read()).group(1)) / 1024
rad = np.arange(0.0, 200.0, 0.5)
base = vmhwm_mb()
op = ObsPars(nx=256, ny=256, nv=128, cellsize=0.5, dv=5.0, beam=(3.0, 2.5, 30.0))
model = CubeModel(op)
cube = model.cube(inc=60.0, pa=40.0, sb_rad=rad, sb_prof=np.exp(-rad / 15.0), vel_rad=rad,
                  vel_prof=250 * 2 / np.pi * np.arctan(rad / 3.0), int_flux=50.0, gas_sigma=10.0)
print(base, vmhwm_mb())
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--reference-clouds", type=float, default=1e7)
    args = parser.parse_args()

    reference = kinms_model(args.reference_clouds, seed=7)()

    def rel_l2(cube: np.ndarray) -> float:
        return float(np.linalg.norm(cube - reference) / np.linalg.norm(reference))

    kinms_call = kinms_model(5e5, seed=1)
    kinms_time = best_time(kinms_call, max(3, args.repeats // 4))
    kinms_err = rel_l2(kinms_call())

    model = CubeModel(OBSPARS)
    ours_time = best_time(lambda: model.cube(**PARAMS), args.repeats)
    ours_err = rel_l2(model.cube(**PARAMS))

    small = CubeModel(OBSPARS, n_clouds=DEFAULT_CLOUDS // 2)
    small_time = best_time(lambda: small.cube(**PARAMS), args.repeats)
    small_err = rel_l2(small.cube(**PARAMS))

    probe = subprocess.run([sys.executable, "-c", MEMORY_PROBE], capture_output=True, text=True, check=True)
    base_mb, peak_mb = (float(v) for v in probe.stdout.split())

    print('Tutorial cube 64x64x25, 1"/pixel, 20 km/s, 4" beam; exponential disc h=5", arctan vflat=200 rturn=2')
    print(f"reference: KinMS with {args.reference_clouds:.0e} cloudlets")
    print(f"{'model':34s} {'time/model':>11s} {'rel. L2 error':>14s}")
    print(f"{'KinMS 3 (5e5 random, reused)':34s} {kinms_time * 1e3:8.1f} ms {kinms_err:14.4f}")
    print(f"{f'CubeModel ({DEFAULT_CLOUDS} Sobol, default)':34s} {ours_time * 1e3:8.2f} ms {ours_err:14.4f}")
    print(f"{f'CubeModel ({DEFAULT_CLOUDS // 2} Sobol)':34s} {small_time * 1e3:8.2f} ms {small_err:14.4f}")
    print(f"speed-up of the default: {kinms_time / ours_time:.1f}x at {kinms_err / ours_err:.1f}x smaller error")
    print(f"CubeModel 256x256x128 (one cube made): peak RSS {peak_mb:.0f} MB ({peak_mb - base_mb:.0f} MB over imports)")
    this = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"(this benchmark process, holding the 1e7-cloudlet KinMS reference run: peak RSS {this:.0f} MB)")


if __name__ == "__main__":
    main()
