"""How values look on a page: times, durations, metric values (Jinja filters)."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

__all__ = ["FILTERS", "fmt_bytes", "fmt_duration", "fmt_float", "fmt_time", "iso_time"]


def fmt_float(value: Any, digits: int = 4) -> str:
    """A metric value: 4 decimals, ``-`` when missing, the text itself when not a number.

    Example:
        >>> fmt_float(0.98765432), fmt_float(None), fmt_float(12345.678)
        ('0.9877', '-', '12,345.68')
    """
    if value is None:
        return "-"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(number) or math.isinf(number):
        return str(number)
    if abs(number) >= 1000:
        return f"{number:,.2f}"
    return f"{number:.{digits}f}"


def fmt_time(epoch: float | None, *, seconds: bool = False) -> str:
    """An epoch time as ``YYYY-MM-DD HH:MM`` (UTC), ``-`` when missing.

    Example:
        >>> fmt_time(0.0)
        '1970-01-01 00:00'
    """
    if epoch is None:
        return "-"
    stamp = dt.datetime.fromtimestamp(float(epoch), tz=dt.UTC)
    return stamp.strftime(f"%Y-%m-%d %H:%M{':%S' if seconds else ''}")


def iso_time(epoch: float | None) -> str:
    """An epoch time in ISO 8601 (for ``<time datetime=...>``), empty when missing."""
    if epoch is None:
        return ""
    return dt.datetime.fromtimestamp(float(epoch), tz=dt.UTC).isoformat(timespec="seconds")


def fmt_duration(seconds: float | None) -> str:
    """A duration for people: ``4.2 s``, ``3 min 5 s``, ``2 h 10 min``; ``-`` when missing.

    Example:
        >>> fmt_duration(4.24), fmt_duration(185), fmt_duration(7800)
        ('4.2 s', '3 min 5 s', '2 h 10 min')
    """
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    return f"{whole // 3600} h {whole % 3600 // 60} min"


def fmt_bytes(size: int) -> str:
    """A file size: ``512 B``, ``1.5 KiB``, ``3.2 MiB``."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"  # pragma: no cover - the loop always returns


FILTERS = {
    "float": fmt_float,
    "time": fmt_time,
    "isotime": iso_time,
    "duration": fmt_duration,
    "bytes": fmt_bytes,
}
"""The Jinja filters the templates use."""
