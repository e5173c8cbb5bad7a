"""The ``kinms-core`` command: one console entry point, one subcommand per task.

Errors it can foresee (a bad input, settings or command line: :class:`~kinms_core.errors.InputError`; a file that
cannot be read or written: :class:`OSError`) print one line naming the problem; ``--debug`` adds their traceback.
Anything else is a bug and prints its traceback. Exit codes: 0 done (also when a failure was recorded with
``--record-failure``), 1 a file-system error or a bug, 2 a bad input or command line, 130 interrupted.
"""

from __future__ import annotations

import argparse
import logging
import sys

from .errors import InputError

__all__ = ["main"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered."""
    parser = argparse.ArgumentParser(prog="kinms-core", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--debug", action="store_true", help="also show the traceback of foreseen errors")
    sub = parser.add_subparsers(dest="command", required=True)
    for register in _REGISTRY:
        register(sub)
    return parser


# Each subcommand module provides ``register(subparsers)`` which adds its parser and sets ``func``.
_REGISTRY: list = []


def _register_ingest(sub: argparse._SubParsersAction) -> None:
    from .ingest_cli import register

    register(sub)


def _register_fit(sub: argparse._SubParsersAction) -> None:
    from .fit_cli import register_fit, register_plot

    register_fit(sub)
    register_plot(sub)


def _register_survey(sub: argparse._SubParsersAction) -> None:
    from .survey_cli import register

    register(sub)


_REGISTRY.extend([_register_ingest, _register_fit, _register_survey])


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


if __name__ == "__main__":
    sys.exit(main())
