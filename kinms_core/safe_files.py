"""Writing files so that a kill never leaves half of one, reading JSON that an earlier stage wrote, and refusing to
write an output over an input.

Every output is first written to a hidden temporary file beside its destination and then renamed onto it: a rename
within one folder is atomic on POSIX file systems, so a reader (or a rerun after a kill) sees either the old file or
the new one, never a truncated one.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import CorruptFileError, OverwriteError

__all__ = ["atomic_path", "read_json_object", "refuse_overwrite", "write_json_atomic", "write_text_atomic"]


def _fsync(path: Path) -> None:
    """Flush a file's data to disk, so that the rename never publishes a file whose data are still in flight."""
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path to write ``path``'s content to; renamed onto ``path`` when the block ends without error,
    removed when it raises (the destination is then left as it was).

    The temporary file is in the same folder (a rename across file systems is not atomic) and hidden
    (``.<name>.<random>.tmp``); the folder is made if needed.

    Examples
    --------
    >>> with atomic_path("out/cube.fits") as tmp:  # doctest: +SKIP
    ...     hdu.writeto(tmp)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_path`)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return path


def write_json_atomic(path: str | Path, data: Any, **dumps: Any) -> Path:
    """Write ``data`` as JSON (``json.dumps(data, **dumps)`` and a newline) atomically."""
    return write_text_atomic(path, json.dumps(data, **dumps) + "\n")


def read_json_object(path: str | Path, *, remedy: str) -> dict[str, Any]:
    """Read a JSON file that must hold an object (a mapping).

    Parameters
    ----------
    path
        The file.
    remedy
        What to do when it cannot be read, e.g. ``"prepare the cube again"`` (ends the error message).

    Raises
    ------
    CorruptFileError
        It is not valid UTF-8 JSON, or holds something other than an object.
    FileNotFoundError
        It does not exist (left to the caller, who knows what a missing file means).
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CorruptFileError(f"{path} is not valid JSON ({exc}): {remedy}") from exc
    if not isinstance(data, dict):
        raise CorruptFileError(f"{path} holds a JSON {type(data).__name__}, not an object: {remedy}")
    return data


def refuse_overwrite(inputs: Iterable[str | Path | None], outputs: Iterable[str | Path]) -> None:
    """Raise :class:`OverwriteError` when an output is one of the inputs (the same file, also through a link).

    Outputs that do not exist yet cannot be an existing input and are skipped; so are inputs that are None.
    """
    existing_inputs = [Path(p) for p in inputs if p is not None and Path(p).exists()]
    for output in outputs:
        output = Path(output)
        if not output.exists():
            continue
        for source in existing_inputs:
            if os.path.samefile(source, output):
                raise OverwriteError(
                    f"{output} is an output of this command and also its input {source}: writing it would destroy "
                    "the input; give another output folder (-o)"
                )
