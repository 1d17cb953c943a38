"""Rich renderings of results: tables people would rather look at than read."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from typing import Any

from rich.table import Table

__all__ = ["fmt_float", "fmt_time", "kv_table", "table"]


def fmt_float(value: Any, digits: int = 4) -> str:
    """A metric value for display."""
    if value is None:
        return "-"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(number):
        return "nan"
    return f"{number:.{digits}f}"


def fmt_time(epoch: float | None) -> str:
    """An epoch time as local ``YYYY-MM-DD HH:MM``."""
    if epoch is None:
        return "-"
    return dt.datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M")


def table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> Table:
    """A simple table; numeric-looking columns are right-aligned by the caller's formatting."""
    out = Table(title=title, title_justify="left", header_style="bold")
    for col in columns:
        out.add_column(col)
    for row in rows:
        out.add_row(*(str(v) for v in row))
    return out


def kv_table(title: str | None, items: Iterable[tuple[str, Any]]) -> Table:
    """A two-column key/value table."""
    return table(title, ["key", "value"], items)
