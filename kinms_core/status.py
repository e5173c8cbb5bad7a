"""Per-stage status files: how a survey records that a galaxy failed without stopping the others.

Every stage (prepare, fit) writes ``status.json`` last: ``{"status": "ok" | "failed", "stage", "galaxy", "error"}``.
A failure the library recognises (bad input, a fit that cannot start) is recorded there and the stage exits 0, so a
survey carries on and the catalogue gets a ``failed`` row with the message; anything else is a crash.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["RECOGNISED_ERRORS", "read_status", "run_stage", "write_status"]

log = logging.getLogger(__name__)

STATUS_FILE = "status.json"
# Errors that mean "this input cannot be fitted", as opposed to a bug: OSError covers unreadable and truncated files.
RECOGNISED_ERRORS = (ValueError, FileNotFoundError, OSError)


def write_status(outdir: str | Path, stage: str, galaxy: str, error: str = "") -> Path:
    """Write ``outdir/status.json``: ``ok`` when ``error`` is empty, else ``failed`` with the message."""
    path = Path(outdir) / STATUS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    status = {"status": "failed" if error else "ok", "stage": stage, "galaxy": galaxy, "error": error}
    path.write_text(json.dumps(status, indent=2) + "\n")
    return path


def read_status(outdir: str | Path) -> dict[str, Any]:
    """The status of a stage's folder; a folder without one counts as ``ok`` (made outside a survey)."""
    path = Path(outdir) / STATUS_FILE
    if not path.exists():
        return {"status": "ok", "stage": "", "galaxy": "", "error": ""}
    return json.loads(path.read_text())


def run_stage(stage: str, galaxy: str, outdir: str | Path, work: Callable[[], Any], *, record_failure: bool) -> int:
    """Run ``work()`` and write the stage's status; returns the exit code.

    With ``record_failure``, a recognised error becomes a ``failed`` status and exit code 0; without it the error is
    logged, the status still written, and the exit code is 2. Other exceptions propagate (a crash).
    """
    try:
        work()
    except RECOGNISED_ERRORS as exc:
        message = str(exc) or type(exc).__name__
        log.error("%s: %s failed: %s", galaxy, stage, message)
        write_status(outdir, stage, galaxy, message)
        return 0 if record_failure else 2
    write_status(outdir, stage, galaxy)
    return 0
