"""Fault injection: one job of a tiny survey is killed (SIGKILL, with its worker processes) at a random moment of its
prepare, fit or catalogue; a rerun must end with a complete catalogue equal to that of an uninterrupted run.

A kill can land anywhere: while Python imports, while a FITS file, ``map.json``, ``summary.json`` or the
catalogue is written, or while the chain is checkpointed. Atomic writes, stale statuses removed when a stage starts
and a resumable chain are what make the rerun exact.
"""

from __future__ import annotations

import csv
import os
import random
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from bad_inputs import GRID, galaxy_cube
from test_workflow import BIN, snakemake

from kinms_core import write_cube

GALAXIES = ("north", "south")
CONFIG = {
    "galaxies": "galaxies.csv",
    "results": "results",
    "model": {"n_clouds": 2048},
    "parameters": {name: {"fixed": True} for name in ("flux", "xc", "yc", "sigma")},
    "fit": {"nwalkers": 12, "max_steps": 40, "check_every": 20, "optimiser_evaluations": 40, "seed": 5},
}
# Only what the catalogue needs (no plots), one thread per fit so that both galaxies' fits run side by side,
# keep-going and rerun-incomplete as in profiles/default; the target last (--configfile takes every word up to the
# next option).
RUN = (
    "--cores",
    "2",
    "--set-threads",
    "fit=1",
    "--keep-going",
    "--rerun-incomplete",
    "--workflow-profile",
    "none",
    "results/catalogue.csv",
)

KILL_SHIM = """#!{python}
# kinms-core, except that the job of stage {stage!r} (galaxy {galaxy!r}) is killed with its process group {delay:.3f} s
# after it starts or {offset:.3f} s after its first output file appears, whichever comes first (the second lands the
# kill among its writes however fast the machine is today); what happened is appended to {record}.
import os, signal, subprocess, sys, time
argv = sys.argv[1:]
galaxy = argv[argv.index("--galaxy") + 1] if "--galaxy" in argv else None
if argv[:1] != [{stage!r}] or galaxy != {galaxy!r}:
    os.execv({real!r}, [{real!r}, *argv])
output = argv[argv.index("-o") + 1]
folder = os.path.dirname(output) if {stage!r} == "catalogue" else output


def new_file(since):
    try:
        return any(e.is_file() and e.stat().st_mtime >= since for e in os.scandir(folder))
    except FileNotFoundError:
        return False


start = time.time()
job = subprocess.Popen([{real!r}, *argv], start_new_session=True)
seen = None
while job.poll() is None:
    now = time.time()
    if seen is None and new_file(start):
        seen = now
    if now - start >= {delay!r} or (seen is not None and now - seen >= {offset!r}):
        os.killpg(job.pid, signal.SIGKILL)
        job.wait()
        open({record!r}, "a").write("killed\\n")
        sys.exit(137)
    time.sleep(0.005)
open({record!r}, "a").write("finished\\n")
sys.exit(job.returncode)
"""


def write_inputs(work: Path) -> None:
    """Two small galaxies (the same disc with different noise), their sheet and the config."""
    for seed, galaxy in enumerate(GALAXIES):
        noise = np.random.default_rng(seed).normal(size=GRID.shape).astype(np.float32) * 1e-3
        write_cube(work / f"{galaxy}.fits", galaxy_cube() + noise, GRID)
    (work / "galaxies.csv").write_text("galaxy,cube\n" + "".join(f"{g},{g}.fits\n" for g in GALAXIES))
    (work / "config.yaml").write_text(yaml.safe_dump(CONFIG))


def comparable(catalogue: Path) -> pd.DataFrame:
    """The catalogue without its runtimes (the only column that may differ between two runs)."""
    return pd.read_csv(catalogue, dtype=str, keep_default_na=False).drop(columns=["runtime_s"])


def job_seconds(results: Path, stage: str, galaxy: str | None) -> float:
    """How long a job of the uninterrupted run took: its benchmark, or for the catalogue the time from the last fit
    status to the catalogue file."""
    if galaxy is not None:
        with open(results / "benchmarks" / stage / f"{galaxy}.tsv") as handle:
            return float(next(csv.DictReader(handle, delimiter="\t"))["s"])
    last_fit = max((results / g / "fit" / "status.json").stat().st_mtime for g in GALAXIES)
    return max((results / "catalogue.csv").stat().st_mtime - last_fit, 1.0)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run: its catalogue and how long each job took."""
    work = tmp_path_factory.mktemp("reference")
    write_inputs(work)
    result = snakemake(work, *RUN, configfile=work / "config.yaml")
    assert result.returncode == 0, result.output[-3000:]
    results = work / "results"
    assert (comparable(results / "catalogue.csv")["status"] == "ok").all()
    seconds = {(s, g): job_seconds(results, s, g) for s in ("prepare", "fit") for g in GALAXIES}
    seconds[("catalogue", None)] = job_seconds(results, "catalogue", None)
    return {"catalogue": comparable(results / "catalogue.csv"), "seconds": seconds}


@pytest.mark.slow
def test_a_job_killed_at_a_random_moment_then_a_rerun_gives_the_uninterrupted_catalogue(reference, tmp_path):
    real = shutil.which("kinms-core", path=os.pathsep.join([str(BIN), os.environ.get("PATH", "")]))
    assert real, "kinms-core is not installed (pip install -e .)"
    outcomes = []
    for seed, stage in enumerate(("prepare", "fit", "catalogue")):
        rng = random.Random(seed)
        galaxy = None if stage == "catalogue" else rng.choice(GALAXIES)
        delay = rng.uniform(0.2, 0.9) * reference["seconds"][(stage, galaxy)]
        offset = rng.uniform(0.0, 1.0 if stage == "fit" else 0.05)  # the fit writes its chain step by step
        work = tmp_path / f"seed{seed}"
        work.mkdir()
        write_inputs(work)
        shim, record = work / "shim", work / "kills.txt"
        shim.mkdir()
        text = KILL_SHIM.format(
            python=sys.executable,
            stage=stage,
            galaxy=galaxy,
            delay=delay,
            offset=offset,
            real=real,
            record=str(record),
        )
        (shim / "kinms-core").write_text(text)
        (shim / "kinms-core").chmod(0o755)

        killed = snakemake(work, *RUN, configfile=work / "config.yaml", path_prefix=shim)
        outcome = record.read_text().split() if record.exists() else []
        if outcome == ["killed"]:
            assert killed.returncode != 0, killed.output[-2000:]  # a killed job fails the run: it is not recorded
        rerun = snakemake(work, *RUN, configfile=work / "config.yaml")
        assert rerun.returncode == 0, (seed, stage, galaxy, delay, rerun.output[-3000:])
        catalogue = comparable(work / "results" / "catalogue.csv")
        pd.testing.assert_frame_equal(catalogue, reference["catalogue"], obj=f"seed {seed}: {stage} {galaxy}")
        outcomes.append((stage, galaxy, round(delay, 2), outcome))
    print("kills:", outcomes)
    # the moments are drawn within each job's duration: most kills must have landed
    assert sum(o[3] == ["killed"] for o in outcomes) >= 2, outcomes
