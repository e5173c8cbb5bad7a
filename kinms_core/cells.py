"""Table cells: what counts as an empty one in a galaxies sheet or a mock table (both read with pandas)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

__all__ = ["as_bool", "clean_row", "is_missing"]


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


def as_bool(value: Any) -> bool | None:
    """A cell as a boolean: ``true/yes/1`` or ``false/no/0`` (any case), a bool; None when it reads as neither."""
    text = str(value).strip().lower()
    if text in ("true", "yes", "1", "1.0"):
        return True
    if text in ("false", "no", "0", "0.0"):
        return False
    return None


def clean_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """A table row without its empty cells (None, NaN, blank text)."""
    return {str(k): v for k, v in row.items() if not is_missing(v)}
