"""Accuracy of the first guesses (kinms_core.guesses) on random mock galaxies.

Each mock is an exponential disc with an arctan rotation curve made with ``kinms_core.model_cube`` on a 64 x 64 x 40
grid (1 arcsec pixels, 20 km/s channels, a 4 x 3 arcsec beam at a random angle), plus Gaussian noise correlated on
the beam scale, at a peak signal-to-noise of 8, 15 or 30. Parameters are drawn uniformly: PA 0-360, inclination
30-80, vflat 100-250 km/s, rturn 0.5-3 arcsec, scale radius 3-7 arcsec, dispersion 5-15 km/s, centre within
5 arcsec of the cube centre, systemic velocity within 60 km/s of it. The mask is ``signal_mask`` with its defaults.

Prints, for every guess, the median, 90th percentile and maximum of its absolute error, in the units of the issue's
tolerances (PA 20 deg, inclination 15 deg, vsys 1 channel, centre 1 beam, flux 20%, vflat 25%), and how many
galaxies fall outside each tolerance.

Usage::

    python benchmarks/guess_accuracy.py [--n 30] [--seed 0]
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import time

import numpy as np
from scipy import ndimage

from kinms_core import ObsPars, model_cube
from kinms_core.fitsio import obspars_header
from kinms_core.guesses import first_guesses
from kinms_core.ingest import Cube
from kinms_core.noise import estimate_rms, signal_mask

TOLERANCES = {
    "pa (deg)": 20.0,
    "inc (deg)": 15.0,
    "vsys (channels)": 1.0,
    "centre (beams)": 1.0,
    "flux (fraction)": 0.2,
    "vflat (fraction)": 0.25,
    "scalerad (fraction)": None,
}


def mock(rng: np.random.Generator, seed: int) -> tuple[Cube, dict, float]:
    bpa = float(rng.uniform(0, 180))
    v_centre = 1500.0
    op = ObsPars(
        nx=64,
        ny=64,
        nv=40,
        cellsize=1.0,
        dv=20.0,
        beam=(4.0, 3.0, bpa),
        x_ref=32.0,
        y_ref=32.0,
        v_start=v_centre - 20.0 * 20,
    )
    truth = {
        "flux": float(rng.uniform(10, 50)),
        "pa": float(rng.uniform(0, 360)),
        "inc": float(rng.uniform(30, 80)),
        "vflat": float(rng.uniform(100, 250)),
        "rturn": float(rng.uniform(0.5, 3)),
        "scalerad": float(rng.uniform(3, 7)),
        "sigma": float(rng.uniform(5, 15)),
        "xc": float(rng.uniform(-5, 5)),
        "yc": float(rng.uniform(-5, 5)),
        "vsys": v_centre + float(rng.uniform(-60, 60)),
    }
    snr = float(rng.choice([8.0, 15.0, 30.0]))
    rad = np.linspace(0.0, 140.0, 400)
    model = model_cube(
        op,
        inc=truth["inc"],
        pa=truth["pa"],
        sb_rad=rad,
        sb_prof=np.exp(-rad / truth["scalerad"]),
        vel_rad=rad,
        vel_prof=truth["vflat"] * 2 / np.pi * np.arctan(rad / truth["rturn"]),
        int_flux=truth["flux"],
        gas_sigma=truth["sigma"],
        phase_cent=(truth["xc"], truth["yc"]),
        v_offset=truth["vsys"] - op.centre_velocity,
        n_clouds=2**15,
        seed=seed,
    )
    noise = np.random.default_rng(seed + 1).standard_normal(op.shape)
    sigma = math.sqrt(4.0 * 3.0) / (2 * math.sqrt(2 * math.log(2))) / math.sqrt(2.0)
    noise = ndimage.gaussian_filter(noise, (0, sigma, sigma), mode="wrap")
    noise *= model.max() / snr / noise.std()
    header = obspars_header(op)
    cube = Cube(data=model + noise, obspars=op, velocities=op.velocities, header=header, wcs=None)
    return cube, truth, snr


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=30, help="number of mock galaxies")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    rng = np.random.default_rng(args.seed)
    errors: dict[str, list[float]] = {name: [] for name in TOLERANCES}
    start = time.perf_counter()
    for i in range(args.n):
        cube, truth, snr = mock(rng, 1000 * args.seed + i)
        op = cube.obspars
        rms = estimate_rms(cube.data)
        g = first_guesses(cube, signal_mask(cube.data, rms, op), rms)
        errors["pa (deg)"].append(abs((g["pa"] - truth["pa"] + 180.0) % 360.0 - 180.0))
        errors["inc (deg)"].append(abs(g["inc"] - truth["inc"]))
        errors["vsys (channels)"].append(abs(g["vsys"] - truth["vsys"]) / op.dv)
        errors["centre (beams)"].append(math.hypot(g["xc"] - truth["xc"], g["yc"] - truth["yc"]) / op.beam[0])
        for key in ("flux", "vflat", "scalerad"):
            errors[f"{key} (fraction)"].append(abs(g[key] / truth[key] - 1.0))
        print(
            f"{i:3d} S/N {snr:4.0f} inc {truth['inc']:5.1f}: dPA {errors['pa (deg)'][-1]:5.1f} "
            f"dinc {errors['inc (deg)'][-1]:5.1f} dvsys {errors['vsys (channels)'][-1]:4.2f} ch "
            f"dcentre {errors['centre (beams)'][-1]:4.2f} beam flux {errors['flux (fraction)'][-1]:5.3f} "
            f"vflat {errors['vflat (fraction)'][-1]:5.3f}"
        )
    print(f"\n{args.n} mock galaxies in {time.perf_counter() - start:.1f} s; absolute errors:")
    print(f"{'guess':22s} {'median':>8s} {'90th pct':>9s} {'max':>8s} {'tolerance':>10s} {'outside':>8s}")
    for name, values in errors.items():
        arr = np.array(values)
        tol = TOLERANCES[name]
        outside = "" if tol is None else str(int((arr > tol).sum()))
        print(
            f"{name:22s} {np.median(arr):8.3f} {np.percentile(arr, 90):9.3f} {arr.max():8.3f} "
            f"{'' if tol is None else f'{tol:g}':>10s} {outside:>8s}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
