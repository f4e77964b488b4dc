"""Numbers from report files as the report shows them: JSON writes NaN as null, and a damaged file may hold a
string where a number belongs, so every value is checked before it is formatted."""

from __future__ import annotations

import math
from typing import Any


def num(value: Any) -> float | None:
    """A finite float, or None for null / NaN / infinity / anything not a number (JSON writes NaN as null)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def fmt(value: Any, digits: int = 2, pct: bool = False) -> str:
    """``value`` to ``digits`` decimals (or as a percentage with one decimal fewer); ``–`` for no number."""
    x = num(value)
    if x is None:
        return "–"
    return f"{100 * x:.{max(0, digits - 1)}f}%" if pct else f"{x:.{digits}f}"


def fmt_count(value: Any) -> str:
    """A count with thousands separators; ``–`` for no number."""
    x = num(value)
    return "–" if x is None else f"{x:,.0f}"
