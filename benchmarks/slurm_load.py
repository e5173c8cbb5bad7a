"""Load: a 50-galaxy mock survey (small cubes, short chains) through the local one-node SLURM and locally.

Starts the test cluster (tests/slurm/cluster.sh, root only), runs the same survey twice, from scratch each time:
through ``--profile profiles/slurm`` and with ``--cores all``, and prints galaxies per hour for both and
their ratio. The cluster is stopped afterwards.

    sudo python benchmarks/slurm_load.py [--galaxies 50] [--outdir benchmarks/out/slurm_load]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
CLUSTER = REPO / "tests" / "slurm" / "cluster.sh"
COLUMNS = "galaxy,nx,ny,nv,cellsize,dv,bmaj,bmin,bpa,flux,pa,inc,vsys,sigma,scalerad,vflat,rturn,rms,n_clouds,format"
CONFIG = {
    "galaxies": "galaxies.csv",
    "mocks": "mocks.csv",
    "simulate": True,
    "results": "results",
    "model": {"n_clouds": 4096},
    "parameters": {name: {"fixed": True} for name in ("flux", "xc", "yc", "sigma")},
    "fit": {"nwalkers": 12, "max_steps": 100, "check_every": 50, "optimiser_evaluations": 200, "seed": 1},
}


def write_survey(folder: Path, n: int) -> Path:
    """``n`` small mocks with random geometry; returns the config file."""
    rng = np.random.default_rng(2026)
    rows, sheet = [COLUMNS], ["galaxy,cube"]
    for i in range(n):
        name = f"g{i:03d}"
        inc, pa, vflat = rng.uniform(30, 75), rng.uniform(0, 360), rng.uniform(120, 260)
        rows.append(
            f"{name},32,32,16,1.0,30,4.0,4.0,0,20,{pa:.1f},{inc:.1f},{rng.uniform(500, 3000):.0f},10,3,"
            f"{vflat:.0f},1.5,0.002,16384,vrad"
        )
        sheet.append(f"{name},results/mocks/{name}.fits")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "mocks.csv").write_text("\n".join(rows) + "\n")
    (folder / "galaxies.csv").write_text("\n".join(sheet) + "\n")
    configfile = folder / "config.yaml"
    configfile.write_text(yaml.safe_dump(CONFIG))
    return configfile


def run(folder: Path, configfile: Path, extra: list[str], env: dict[str, str]) -> float:
    command = [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(REPO / "Snakefile"),
        "--directory",
        str(folder),
        "--configfile",
        str(configfile),
        "--workflow-profile",
        "none",
        "--quiet",
        "progress",
        *extra,
    ]
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, cwd=folder)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--galaxies", type=int, default=50)
    parser.add_argument("--outdir", default="benchmarks/out/slurm_load")
    args = parser.parse_args()
    out = Path(args.outdir).resolve()
    shutil.rmtree(out, ignore_errors=True)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    subprocess.run(["bash", str(CLUSTER), "start"], check=True, env=env)
    env["SLURM_CONF"] = str(Path(os.environ.get("SLURM_TEST_DIR", "/tmp/kinms-slurm")) / "slurm.conf")
    try:
        slurm = run(
            out / "slurm",
            write_survey(out / "slurm", args.galaxies),
            ["--profile", str(REPO / "profiles" / "slurm")],
            env,
        )
        local = run(out / "local", write_survey(out / "local", args.galaxies), ["--cores", "all"], env)
    finally:
        subprocess.run(["bash", str(CLUSTER), "stop"], check=False, env=env)
    ok = {
        mode: int((pd.read_csv(out / mode / "results" / "catalogue.csv")["status"] == "ok").sum())
        for mode in ("slurm", "local")
    }
    n = args.galaxies
    print(f"\n{n} mock galaxies (32x32x16, 4096 cloudlets, 12 walkers x 100 steps), {os.cpu_count()} cores")
    print(f"local --cores all : {local:7.1f} s  {n / local * 3600:7.0f} galaxies/hour  ({ok['local']} ok)")
    print(f"local SLURM       : {slurm:7.1f} s  {n / slurm * 3600:7.0f} galaxies/hour  ({ok['slurm']} ok)")
    print(f"SLURM / local throughput: {local / slurm:.2f}")


if __name__ == "__main__":
    main()
