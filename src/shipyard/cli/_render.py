"""Rich renderings of results: tables people would rather look at than read.

Everything printed through rich is markup: ``[bold]`` styles and ``[postgres]`` vanishes. Text
that comes from users, data or errors (run names, params, error messages, file names) goes
through :func:`escape` before it is interpolated into markup or put in a table cell.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from typing import Any

from rich.markup import escape as _rich_escape
from rich.table import Table

__all__ = ["escape", "fmt_float", "fmt_time", "kv_table", "table"]


def escape(value: object) -> str:
    """``str(value)`` made safe to print through rich: brackets are shown, never parsed.

    Example:
        >>> print(escape("install shipyard[postgres]"))
        install shipyard\\[postgres]
    """
    return _rich_escape(str(value))


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


def fmt_time(epoch: float | None, *, seconds: bool = False) -> str:
    """An epoch time as local ``YYYY-MM-DD HH:MM`` (``HH:MM:SS`` with ``seconds``)."""
    if epoch is None:
        return "-"
    return dt.datetime.fromtimestamp(epoch).strftime(f"%Y-%m-%d %H:%M{':%S' if seconds else ''}")


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
