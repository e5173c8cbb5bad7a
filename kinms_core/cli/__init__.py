"""The ``kinms-core`` command: one console entry point, one subcommand per task.

Errors it can foresee (a bad input, settings or command line: :class:`~kinms_core.errors.InputError`; a file that
cannot be read or written: :class:`OSError`) print one line naming the problem; ``--debug`` adds their traceback.
Anything else is a bug and prints its traceback. Exit codes: 0 done (also when a failure was recorded with
``--record-failure``), 1 a file-system error or a bug, 2 a bad input or command line, 130 interrupted.

Each subcommand module adds its parsers with ``register(subparsers)`` and calls one library function per
subcommand: :mod:`~kinms_core.cli.ingest` (``obspars``, ``prepare``), :mod:`~kinms_core.cli.fit` (``fit``,
``plot``), :mod:`~kinms_core.cli.survey` (``simulate``, ``catalogue``, ``survey-plots``); shared argument parsing is
in :mod:`~kinms_core.cli.arguments`.
"""

from __future__ import annotations

import argparse
import logging

from ..errors import InputError
from . import fit, ingest, survey

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered."""
    # the help shows what a user needs: the docstring's first two paragraphs (the rest is for developers)
    parser = argparse.ArgumentParser(prog="kinms-core", description="\n\n".join(__doc__.split("\n\n")[:2]))
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--debug", action="store_true", help="also show the traceback of foreseen errors")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in (ingest, fit, survey):
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``kinms-core``; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    log = logging.getLogger("kinms-core")
    try:
        return int(args.func(args) or 0)
    except InputError as exc:
        log.error("%s", exc, exc_info=args.debug)
        return 2
    except OSError as exc:  # unreadable or unwritable files, a full disk, a name too long: the system's words
        log.error("%s", exc, exc_info=args.debug)
        return 1
    except KeyboardInterrupt:
        log.error("interrupted")
        return 130
    except Exception:
        log.critical("unexpected error: a bug in kinms-core; please report it with this traceback", exc_info=True)
        return 1
