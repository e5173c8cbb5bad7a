"""Parsing shared by the subcommands: ``KEY=VALUE`` lists and output folders."""

from __future__ import annotations

from pathlib import Path

from ..errors import UsageError

__all__ = ["output_folder", "parse_assignments"]


def parse_assignments(items: list[str] | None, option: str) -> dict[str, str]:
    """``["inc_guess=50", ...]`` -> ``{"inc_guess": "50"}``; a malformed item is an error naming the option."""
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{option} {item!r}: give KEY=VALUE")
        out[key.strip()] = value.strip()
    return out


def output_folder(path: str | Path, option: str = "-o") -> Path:
    """The output folder a command was given, refused with a clear message when it is an existing file."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UsageError(f"{option} {path} is an existing file: give a folder (it is made if needed)")
    return path
