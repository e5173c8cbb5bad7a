"""The ``kinms-core`` command: one console entry point, one subcommand per task."""

from __future__ import annotations

import argparse
import logging
import sys

__all__ = ["main"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered."""
    parser = argparse.ArgumentParser(prog="kinms-core", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    for register in _REGISTRY:
        register(sub)
    return parser


# Each subcommand module provides ``register(subparsers)`` which adds its parser and sets ``func``.
_REGISTRY: list = []


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``kinms-core``; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError) as exc:
        logging.getLogger("kinms-core").error("%s", exc)
        return 2


if __name__ == "__main__":
    sys.exit(main())
