"""Per-stage status files: how a survey records that a galaxy failed without stopping the others.

Every stage (prepare, fit) removes its old ``status.json`` when it starts and writes a new one last:
``{"status": "ok" | "failed", "stage", "galaxy", "error"}``. Only an :class:`~kinms_core.errors.InputError` (this
galaxy cannot be fitted as given) is recorded as ``failed`` with exit code 0. Anything else (a bug, a full disk, a
network file system hiccup, a chain file locked by a reader) leaves no status and propagates, so that the job fails,
Snakemake retries it, and a rerun redoes it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .errors import CorruptFileError, InputError
from .safe_files import read_json_object, write_json_atomic

__all__ = ["RECOGNISED_ERRORS", "STATUS_FILE", "clear_status", "read_status", "run_stage", "write_status"]

log = logging.getLogger(__name__)

STATUS_FILE = "status.json"
#: Errors that mean "this input cannot be fitted": recorded as the galaxy's failure. Everything else is a crash.
RECOGNISED_ERRORS: tuple[type[Exception], ...] = (InputError,)


def write_status(outdir: str | Path, stage: str, galaxy: str, error: str = "") -> Path:
    """Write ``outdir/status.json`` (atomically): ``ok`` when ``error`` is empty, else ``failed`` with the message."""
    status = {"status": "failed" if error else "ok", "stage": stage, "galaxy": galaxy, "error": error}
    return write_json_atomic(Path(outdir) / STATUS_FILE, status, indent=2)


def clear_status(outdir: str | Path) -> None:
    """Remove a stage's old ``status.json``, so that a stage that is interrupted never leaves an earlier run's
    ``ok`` beside its half-made products."""
    (Path(outdir) / STATUS_FILE).unlink(missing_ok=True)


def read_status(outdir: str | Path) -> dict[str, Any]:
    """The status of a stage's folder; a folder without one counts as ``ok`` (made outside a survey).

    Raises
    ------
    CorruptFileError
        The file is not a JSON object with a ``status`` (the stage must run again).
    """
    path = Path(outdir) / STATUS_FILE
    if not path.exists():
        return {"status": "ok", "stage": "", "galaxy": "", "error": ""}
    status = read_json_object(path, remedy="run the stage again")
    if status.get("status") not in ("ok", "failed"):
        raise CorruptFileError(f"{path} has no status ok or failed: run the stage again")
    return {"stage": "", "galaxy": "", "error": "", **status}


def run_stage(stage: str, galaxy: str, outdir: str | Path, work: Callable[[], Any], *, record_failure: bool) -> int:
    """Run ``work()`` and write the stage's status; returns the exit code.

    The old status is removed first. A recognised error (:data:`RECOGNISED_ERRORS`) becomes a ``failed`` status
    and exit code 0 with ``record_failure``; without it the error is logged, the status still written, and the exit
    code is 2. Other exceptions propagate (a crash) and leave no status. When the failure cannot be recorded (the
    folder cannot be written), that error propagates in place of the recognised one, which is logged.
    """
    clear_status(outdir)
    try:
        work()
    except RECOGNISED_ERRORS as exc:
        message = str(exc) or type(exc).__name__
        log.error("%s: %s failed: %s", galaxy, stage, message)
        try:
            write_status(outdir, stage, galaxy, message)
        except OSError as write_error:
            log.error("%s: cannot record the failure in %s: %s", galaxy, Path(outdir) / STATUS_FILE, write_error)
            raise write_error from None
        return 0 if record_failure else 2
    write_status(outdir, stage, galaxy)
    return 0
