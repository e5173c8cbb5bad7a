"""Worker processes: one way to start them for every parallel step of a fit."""

from __future__ import annotations

import multiprocessing
from multiprocessing.context import BaseContext

__all__ = ["process_context"]


def process_context() -> BaseContext:
    """Fork where there is one: it starts workers without re-importing the caller's script, which spawn would run
    again unless it is guarded by ``if __name__ == "__main__"``, as the tutorial's cells are not."""
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")
