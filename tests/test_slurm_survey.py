"""Surveys on a real (local, single-node) SLURM cluster: the same catalogue as a local run, and a fit job cancelled
with scancel part way is resubmitted by Snakemake and resumes from its checkpoint."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import chain_steps
from slurm_cluster import SlurmCluster, slurm_cluster_fixture  # noqa: F401 - the fixture
from test_workflow import REPO, SNAKEFILE, TINY_CONFIG, TINY_MOCKS, snakemake

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

PROFILE = REPO / "profiles" / "slurm"
SHEET = "galaxy,cube\nalpha,results/mocks/alpha.fits\nbeta,results/mocks/beta.fits\nghost,nowhere/ghost.fits\n"


def _survey(folder: Path, config: dict, sheet: str = SHEET) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "mocks.csv").write_text(TINY_MOCKS)
    (folder / "galaxies.csv").write_text(sheet)
    configfile = folder / "config.yaml"
    configfile.write_text(yaml.safe_dump(config))
    return configfile


def _slurm_command(workdir: Path, configfile: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(SNAKEFILE),
        "--directory",
        str(workdir),
        "--configfile",
        str(configfile),
        "--workflow-profile",
        "none",
        "--profile",
        str(PROFILE),
    ]


def _catalogue(workdir: Path) -> pd.DataFrame:
    table = pd.read_csv(workdir / "results" / "catalogue.csv")
    return table.drop(columns=["runtime_s"]).sort_values("galaxy").reset_index(drop=True)


def test_survey_through_slurm_gives_the_local_catalogue(slurm_cluster: SlurmCluster, tmp_path):
    local = tmp_path / "local"
    local_config = _survey(local, TINY_CONFIG)
    result = snakemake(local, "--cores", "2", "--workflow-profile", "none", configfile=local_config)
    assert result.returncode == 0, result.output[-3000:]

    remote = tmp_path / "slurm"
    remote_config = _survey(remote, TINY_CONFIG)
    env = dict(slurm_cluster.env, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    run = subprocess.run(
        _slurm_command(remote, remote_config), env=env, capture_output=True, text=True, timeout=900, cwd=remote
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-4000:]
    assert "slurm" in output.lower()
    logs = list((remote / ".snakemake" / "slurm_logs").rglob("*.log"))
    assert any("rule_fit" in str(p) for p in logs), "the fits did not run as SLURM jobs"
    pd.testing.assert_frame_equal(_catalogue(remote), _catalogue(local))
    table = _catalogue(remote).set_index("galaxy")
    assert table.loc["alpha", "status"] == "ok" and table.loc["beta", "status"] == "ok"
    assert table.loc["ghost", "status"] == "failed"


def test_cancelled_fit_job_is_resubmitted_and_resumes_from_its_checkpoint(slurm_cluster: SlurmCluster, tmp_path):
    config = dict(TINY_CONFIG)
    # a chain long enough to cancel part way; no early convergence, so both runs take every step
    config["fit"] = dict(TINY_CONFIG["fit"], max_steps=400, check_every=50, tau_factor=1000)
    sheet = "galaxy,cube\nalpha,results/mocks/alpha.fits\n"

    local = tmp_path / "local"
    result = snakemake(local, "--cores", "2", "--workflow-profile", "none", configfile=_survey(local, config, sheet))
    assert result.returncode == 0, result.output[-3000:]
    reference = json.loads((local / "results" / "alpha" / "fit" / "summary.json").read_text())

    remote = tmp_path / "slurm"
    configfile = _survey(remote, config, sheet)
    env = dict(slurm_cluster.env, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    proc = subprocess.Popen(
        _slurm_command(remote, configfile),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=remote,
    )
    chain = remote / "results" / "alpha" / "fit" / "chain.h5"
    steps_before, deadline = 0, time.time() + 600
    while time.time() < deadline and steps_before < 100:
        time.sleep(0.5)
        steps_before = chain_steps(chain)
        assert proc.poll() is None, proc.stdout.read()[-3000:]
    assert steps_before >= 100, "the fit did not get going"
    running = slurm_cluster.run("squeue", "-h", "-t", "RUNNING", "-o", "%i %k").stdout.split("\n")
    fit_jobs = [line.split()[0] for line in running if "fit" in line]
    assert fit_jobs, f"no running fit job in squeue: {running}"
    slurm_cluster.run("scancel", *fit_jobs)
    output, _ = proc.communicate(timeout=900)
    assert proc.returncode == 0, output[-4000:]
    assert "CANCELLED" in output or "cancel" in output.lower(), output[-3000:]

    summary = json.loads((remote / "results" / "alpha" / "fit" / "summary.json").read_text())
    print(f"scancel at step {steps_before}; resumed run finished {summary['steps']} steps")
    assert summary["resumed"] is True  # continued from the saved chain, not from zero
    assert summary["steps"] == 400 > steps_before
    comparable = ("runtime_s", "resumed")
    assert {k: v for k, v in summary.items() if k not in comparable} == {
        k: v for k, v in reference.items() if k not in comparable
    }
