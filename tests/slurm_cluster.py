"""A real single-node SLURM for tests: pytest fixture around ``tests/slurm/cluster.sh``.

Use in a test module (the fixture is registered under the name ``slurm_cluster``)::

    from slurm_cluster import slurm_cluster_fixture  # noqa: F401

    @pytest.mark.slurm
    def test_x(slurm_cluster):
        subprocess.run(["sbatch", ...], env=slurm_cluster.env, check=True)

Environment:
  KINMS_SKIP_SLURM=1   skip every test that uses the fixture
  KINMS_SLURM_KEEP=1   leave the cluster running after the session (faster reruns)
  SLURM_TEST_DIR       state dir of the cluster (default /tmp/kinms-slurm)
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

CLUSTER_SH = Path(__file__).resolve().parent / "slurm" / "cluster.sh"
STATE_DIR = Path(os.environ.get("SLURM_TEST_DIR", "/tmp/kinms-slurm"))
# first start on a fresh machine runs apt-get update + install
START_TIMEOUT_S = 900


@dataclass(frozen=True)
class SlurmCluster:
    """What a test needs to talk to the local cluster."""

    state_dir: Path
    conf: Path
    env: dict[str, str] = field(repr=False)
    start_seconds: float = 0.0

    def run(self, *args: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess:
        """Run a SLURM client command (sbatch, squeue, ...) against this cluster."""
        return subprocess.run(list(args), env=self.env, capture_output=True, text=True, timeout=timeout, check=check)


def skip_reason() -> str | None:
    """Why the local SLURM cannot be used here, or None."""
    if os.environ.get("KINMS_SKIP_SLURM") == "1":
        return "KINMS_SKIP_SLURM=1: local SLURM tests disabled"
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "local SLURM tests need root (apt-get install slurm-wlm munge, SlurmUser=root)"
    return None


def _cluster_sh(cmd: str, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(CLUSTER_SH), cmd], env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session", name="slurm_cluster")
def slurm_cluster_fixture() -> Iterator[SlurmCluster]:
    """Start munged/slurmctld/slurmd (installing them if needed), stop them at the end."""
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    env = dict(os.environ, SLURM_TEST_DIR=str(STATE_DIR))
    t0 = time.monotonic()
    proc = _cluster_sh("start", env, START_TIMEOUT_S)
    elapsed = time.monotonic() - t0
    if proc.returncode != 0:
        pytest.fail(
            f"tests/slurm/cluster.sh start failed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}",
            pytrace=False,
        )
    conf = STATE_DIR / "slurm.conf"
    env["SLURM_CONF"] = str(conf)
    try:
        yield SlurmCluster(state_dir=STATE_DIR, conf=conf, env=env, start_seconds=elapsed)
    finally:
        if os.environ.get("KINMS_SLURM_KEEP") != "1":
            stop = _cluster_sh("stop", env, 120)
            if stop.returncode != 0:
                print(f"tests/slurm/cluster.sh stop failed:\n{stop.stdout}\n{stop.stderr}")
