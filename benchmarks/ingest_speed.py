"""Speed and memory of reading, masking and trimming a large cube (issue 3's benchmark).

Builds (once, in a child process, so that its memory does not count) a 512 x 512 x 256 float32 cube on disk: a
model galaxy made with ``kinms_core.model_cube`` on a 128 x 128 x 64 grid, placed off-centre, plus Gaussian noise
correlated on the beam scale. Then times, in this process, ``read_cube``, ``estimate_rms``, ``signal_mask``,
``trim_cube``, ``first_guesses`` and ``data_bounds``, and prints the wall time of each step and the peak resident
memory (``ru_maxrss``) of the process. Target: under 20 s and 4 GB on a 2-core machine.

Usage::

    python benchmarks/ingest_speed.py [--path /tmp/kinms_bench_512.fits] [--keep]
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

SHAPE = (256, 512, 512)
SMALL = (64, 128, 128)
OFFSET = (100, 230, 140)  # (v, y, x) of the small grid's first voxel in the big cube
BEAM = (4.0, 3.0, 20.0)
CELL = 1.0
DV = 10.0


def make_cube(path: Path) -> None:
    """Write the benchmark cube (model galaxy plus beam-correlated noise, float32)."""
    from scipy import ndimage

    from kinms_core import ObsPars, model_cube, write_cube

    big = ObsPars(
        nx=SHAPE[2],
        ny=SHAPE[1],
        nv=SHAPE[0],
        cellsize=CELL,
        dv=DV,
        beam=BEAM,
        ra=150.0,
        dec=2.0,
        v_start=1000.0,
        restfreq=1.420405751e9,
    )
    small = ObsPars(nx=SMALL[2], ny=SMALL[1], nv=SMALL[0], cellsize=CELL, dv=DV, beam=BEAM)
    rad = np.linspace(0.0, 150.0, 500)
    galaxy = model_cube(
        small,
        inc=60.0,
        pa=135.0,
        sb_rad=rad,
        sb_prof=np.exp(-rad / 8.0),
        vel_rad=rad,
        vel_prof=200.0 * 2 / np.pi * np.arctan(rad / 3.0),
        int_flux=50.0,
        gas_sigma=10.0,
        n_clouds=2**18,
        seed=1,
    )
    rms = float(galaxy.max()) / 10.0  # peak S/N 10
    rng = np.random.default_rng(0)
    cube = rng.standard_normal(SHAPE, dtype=np.float32)
    sigma = math.sqrt(BEAM[0] * BEAM[1]) / (2 * math.sqrt(2 * math.log(2))) / CELL / math.sqrt(2.0)
    for channel in cube:  # beam-correlated noise, one plane at a time
        ndimage.gaussian_filter(channel, sigma, output=channel, mode="wrap")
    cube *= np.float32(rms / cube[:8].std())
    v0, y0, x0 = OFFSET
    cube[v0 : v0 + SMALL[0], y0 : y0 + SMALL[1], x0 : x0 + SMALL[2]] += galaxy.astype(np.float32)
    write_cube(path, cube, big)
    print(f"wrote {path} ({path.stat().st_size / 1e6:.0f} MB), rms {rms:.3g} Jy/beam")


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # kB on Linux


def run(path: Path) -> dict:
    t0 = time.perf_counter()
    from kinms_core.guesses import data_bounds, first_guesses
    from kinms_core.ingest import read_cube
    from kinms_core.noise import estimate_rms, signal_mask
    from kinms_core.trim import trim_cube

    t_import = time.perf_counter() - t0
    base = peak_rss_gb()
    times = {}
    peaks = {}
    t = time.perf_counter()
    cube = read_cube(path)
    times["read_cube"] = time.perf_counter() - t
    peaks["read_cube"] = peak_rss_gb()
    t = time.perf_counter()
    rms = estimate_rms(cube.data)
    times["estimate_rms"] = time.perf_counter() - t
    peaks["estimate_rms"] = peak_rss_gb()
    t = time.perf_counter()
    mask = signal_mask(cube.data, rms, cube.obspars, source=str(path))
    times["signal_mask"] = time.perf_counter() - t
    peaks["signal_mask"] = peak_rss_gb()
    t = time.perf_counter()
    trimmed, info = trim_cube(cube, mask)
    times["trim_cube"] = time.perf_counter() - t
    peaks["trim_cube"] = peak_rss_gb()
    del cube, mask
    t = time.perf_counter()
    guesses = first_guesses(trimmed, trimmed.mask, rms)
    data_bounds(trimmed, guesses)
    times["guesses"] = time.perf_counter() - t
    peaks["guesses"] = peak_rss_gb()
    total = sum(times.values())
    print(f"imports {t_import:.2f} s (not counted); resident memory after imports {base:.2f} GB")
    for name, value in times.items():
        print(f"  {name:13s} {value:6.2f} s   peak resident memory so far {peaks[name]:.2f} GB")
    print(f"  {'total':13s} {total:6.2f} s   (target < 20 s)")
    print(f"peak resident memory {peak_rss_gb():.2f} GB (target < 4 GB)")
    print(
        f"trimmed {info.original_shape} -> {info.shape} ({info.size_rule}); rms {rms:.3g} Jy/beam; "
        f"{int(trimmed.mask.sum())} voxels detected"
    )
    print("guesses: " + ", ".join(f"{k} {v:.4g}" for k, v in guesses.items()))
    return {"total_s": total, "peak_gb": peak_rss_gb(), **times}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "kinms_bench_512.fits")
    parser.add_argument("--keep", action="store_true", help="keep the cube on disk afterwards")
    parser.add_argument("--make-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.make_only:
        make_cube(args.path)
        return 0
    if not args.path.exists():
        subprocess.run([sys.executable, __file__, "--make-only", "--path", str(args.path)], check=True)
    try:
        run(args.path)
    finally:
        if not args.keep:
            args.path.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
