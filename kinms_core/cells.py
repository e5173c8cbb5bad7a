"""Table cells: what counts as an empty one in a galaxies sheet or a mock table (both read with pandas)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

__all__ = ["clean_row", "is_missing"]


def is_missing(value: Any) -> bool:
    """Whether a table cell is empty: None, NaN or blank text."""
    if value is None:
        return True
    if isinstance(value, str):
        return value.strip() == ""
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def clean_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """A table row without its empty cells (None, NaN, blank text)."""
    return {str(k): v for k, v in row.items() if not is_missing(v)}
