"""Jobs through a real local SLURM (tests/slurm/cluster.sh) and the Snakemake SLURM profile."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from slurm_cluster import SlurmCluster, slurm_cluster_fixture  # noqa: F401

pytestmark = pytest.mark.slurm

REPO = Path(__file__).resolve().parents[1]
PROFILE = REPO / "profiles" / "slurm"


def wait_for(predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.5) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def job_state(cluster: SlurmCluster, jobid: str) -> str:
    """State as squeue shows it ('' once the job is gone from slurmctld)."""
    out = cluster.run("squeue", "-h", "-j", jobid, "-t", "all", "-o", "%T", check=False)
    return out.stdout.strip()


def sbatch(cluster: SlurmCluster, workdir: Path, wrap: str) -> str:
    out = cluster.run("sbatch", "--parsable", "-D", str(workdir), "-o", str(workdir / "slurm-%j.out"), "--wrap", wrap)
    return out.stdout.strip().split(";")[0]


def test_cluster_is_up(slurm_cluster: SlurmCluster) -> None:
    print(f"cluster start took {slurm_cluster.start_seconds:.1f}s")
    out = slurm_cluster.run("sinfo", "-h", "-N", "-o", "%N %t %c")
    assert "idle" in out.stdout or "mix" in out.stdout or "alloc" in out.stdout, out.stdout


def test_sbatch_wrap_job_writes_file(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:
    target = tmp_path / "hello.txt"
    jobid = sbatch(slurm_cluster, tmp_path, f"echo $SLURM_JOB_ID > {target}")
    assert jobid.isdigit(), jobid
    wait_for(lambda: target.exists() and target.read_text().strip() != "", 60, f"{target}")
    assert target.read_text().strip() == jobid
    # MinJobAge keeps finished jobs in squeue; 'gone' is accepted as well
    wait_for(lambda: job_state(slurm_cluster, jobid) in ("COMPLETED", ""), 30, f"job {jobid} COMPLETED")


def test_scancel_running_job(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:
    jobid = sbatch(slurm_cluster, tmp_path, "sleep 300")
    wait_for(lambda: job_state(slurm_cluster, jobid) == "RUNNING", 60, f"job {jobid} RUNNING")
    slurm_cluster.run("scancel", jobid)
    wait_for(lambda: job_state(slurm_cluster, jobid) in ("CANCELLED", ""), 30, f"job {jobid} CANCELLED")


def test_two_one_cpu_jobs_run_at_once(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:
    cpus = int(slurm_cluster.run("sinfo", "-h", "-N", "-o", "%c").stdout.split()[0])
    if cpus < 2:
        pytest.skip("node has a single CPU")
    ids = [sbatch(slurm_cluster, tmp_path, "sleep 120") for _ in range(2)]
    try:
        wait_for(lambda: all(job_state(slurm_cluster, j) == "RUNNING" for j in ids), 60, f"jobs {ids} RUNNING")
    finally:
        slurm_cluster.run("scancel", *ids, check=False)


@pytest.mark.slow
def test_snakemake_slurm_profile(slurm_cluster: SlurmCluster, tmp_path: Path) -> None:
    """Two rules go through sbatch with profiles/slurm and snakemake exits 0."""
    (tmp_path / "Snakefile").write_text(
        "rule all:\n"
        '    input: "b.txt"\n\n'
        "rule a:\n"
        '    output: "a.txt"\n'
        '    shell: "echo $SLURM_JOB_ID > {output}"\n\n'
        "rule b:\n"
        '    input: "a.txt"\n'
        '    output: "b.txt"\n'
        '    shell: "cat {input} > {output}; echo $SLURM_JOB_ID >> {output}"\n'
    )
    env = dict(slurm_cluster.env)
    env.pop("SLURM_JOB_ID", None)
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "--profile", str(PROFILE), "--directory", str(tmp_path),
         "--snakefile", str(tmp_path / "Snakefile")],
        env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log
    ids = (tmp_path / "b.txt").read_text().split()
    assert len(ids) == 2 and all(i.isdigit() for i in ids) and ids[0] != ids[1], ids
    for jobid in ids:
        assert job_state(slurm_cluster, jobid) in ("COMPLETED", ""), jobid
    logs = sorted(p.relative_to(tmp_path) for p in (tmp_path / ".snakemake" / "slurm_logs").rglob("*.log"))
    assert [str(p.parent) for p in logs] == [
        os.path.join(".snakemake", "slurm_logs", "rule_a"),
        os.path.join(".snakemake", "slurm_logs", "rule_b"),
    ], logs
