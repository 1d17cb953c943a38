"""The runs page's query string: filters, sort and offset, checked field by field.

A bad value never fails the page: it becomes a message naming the field (``filter``,
``started after``, ``sort``...), shown beside that field's control.

The ``q`` filter is a list of conditions joined by ``and`` (or on separate lines):
``accuracy > 0.9``, ``metric.log_loss <= 0.2``, ``param.model = lightgbm``,
``tag.team = "risk team"``. A bare key is a metric; params and tags compare with ``=`` only.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shipyard.tracking import PAGE_SIZE, RUN_STATUSES

__all__ = ["RUN_COLUMNS", "RunQuery", "parse_run_query"]

#: Sort keys besides ``metric.<key>``, with their labels.
RUN_COLUMNS = {
    "start_time": "started",
    "name": "name",
    "status": "status",
    "duration": "took",
    "project": "project",
    "end_time": "ended",
}
_METRIC_OPS = (">=", "<=", "!=", "==", ">", "<", "=")
_CONDITION = re.compile(
    r"""^\s*(?P<key>[^\s<>=!]+)\s*(?P<op>>=|<=|!=|==|>|<|=)\s*(?P<value>.*?)\s*$"""
)
# " and " or a line break or ";" outside double or single quotes
_SEPARATOR = re.compile(r"""(?:\s+and\s+|[;\n]+)(?=(?:[^"']*["'][^"']*["'])*[^"']*$)""", re.I)
_MAX_QUERY = 2000


@dataclass
class RunQuery:
    """The runs page's query, as given (to refill the form) and as parsed.

    Attributes:
        values: the raw values, by field name (``project``, ``status``, ``after``,
            ``before``, ``q``, ``sort``, ``dir``, ``offset``, ``parent``: the run whose
            trials to list, as an id or prefix).
        errors: a message per field that could not be read.
        kwargs: the arguments for :func:`shipyard.tracking.page_runs`, when there are no
            errors.
    """

    values: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)
    kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def sort(self) -> str:
        """The sort key (``start_time``, ``metric.accuracy``...)."""
        return self.values.get("sort") or "start_time"

    @property
    def descending(self) -> bool:
        """Whether the sort is descending."""
        return (self.values.get("dir") or "desc").lower() == "desc"

    @property
    def filter_keys(self) -> list[str]:
        """The metric keys the filter names, in order."""
        return [key for key, _op, _value in self.kwargs.get("metrics", [])]

    def link(self, **changes: str | int | None) -> str:
        """This page's query string with some values changed (``None`` drops one)."""
        from urllib.parse import urlencode

        merged: dict[str, Any] = {**self.values, **changes}
        kept = {k: v for k, v in merged.items() if v not in (None, "") and v != 0}
        return "?" + urlencode(kept) if kept else "?"


def parse_run_query(params: Mapping[str, str]) -> RunQuery:
    """Read the runs page's query string.

    Args:
        params: the query string's values (the last of each name).

    Returns:
        The query; ``errors`` names each field that could not be read.
    """
    names = ("project", "status", "after", "before", "q", "sort", "dir", "offset", "parent")
    query = RunQuery({name: (params.get(name) or "").strip() for name in names})
    values, errors, kwargs = query.values, query.errors, query.kwargs
    kwargs["project"] = values["project"] or None
    if values["status"] and values["status"] not in RUN_STATUSES:
        known = ", ".join(RUN_STATUSES)
        errors["status"] = f"status: unknown status {values['status']!r}; expected one of {known}"
    kwargs["status"] = values["status"] or None
    for name, label, arg in (
        ("after", "started after", "started_after"),
        ("before", "started before", "started_before"),
    ):
        kwargs[arg], problem = _time(values[name], label)
        if problem:
            errors[name] = problem
    try:
        kwargs.update(parse_conditions(values["q"]))
    except ValueError as exc:
        errors["q"] = str(exc)
    _sort(query)
    _offset(query)
    kwargs["limit"] = PAGE_SIZE
    return query


def parse_conditions(text: str) -> dict[str, Any]:
    """The ``params``, ``tags`` and ``metrics`` arguments of ``page_runs`` for ``text``.

    Raises:
        ValueError: naming the field ``filter``, the condition and what is wrong with it.

    Example:
        >>> parse_conditions("accuracy > 0.9 and param.model = lightgbm")
        {'params': {'model': 'lightgbm'}, 'tags': {}, 'metrics': [('accuracy', '>', 0.9)]}
    """
    out: dict[str, Any] = {"params": {}, "tags": {}, "metrics": []}
    if len(text) > _MAX_QUERY:
        msg = f"filter: too long ({len(text)} characters); at most {_MAX_QUERY}"
        raise ValueError(msg)
    for part in _SEPARATOR.split(text):
        if part.strip():
            _condition(part.strip(), out)
    return out


def _condition(text: str, out: dict[str, Any]) -> None:
    found = _CONDITION.match(text)
    if found is None or not found.group("value"):
        msg = (
            f"filter: cannot read {text!r}; expected KEY OPERATOR VALUE, e.g. 'accuracy > 0.9', "
            "'param.model = lightgbm' or 'tag.team = risk', joined by 'and'"
        )
        raise ValueError(msg)
    key, op, raw = found.group("key"), found.group("op"), found.group("value")
    value = _unquote(raw)
    kind, _, name = key.partition(".")
    if kind in ("param", "tag") and name:
        if op not in ("=", "=="):
            msg = f"filter: {text!r}: {kind}s are text and compare with '=' only"
            raise ValueError(msg)
        out[f"{kind}s"][name] = value
        return
    metric = name if kind == "metric" and name else key
    try:
        number = float(value)
    except ValueError:
        msg = f"filter: {text!r}: {value!r} is not a number (metrics compare with numbers)"
        raise ValueError(msg) from None
    out["metrics"].append((metric, op, number))


def _unquote(raw: str) -> str:
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'":
        return raw[1:-1]
    return raw


def _time(text: str, label: str) -> tuple[float | None, str | None]:
    """An ISO date or date-time (UTC unless it says otherwise) as epoch seconds."""
    if not text:
        return None, None
    try:
        stamp = dt.datetime.fromisoformat(text)
    except ValueError:
        return None, (
            f"{label}: {text!r} is not a date; expected YYYY-MM-DD or YYYY-MM-DDTHH:MM (UTC)"
        )
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=dt.UTC)
    return stamp.timestamp(), None


def _sort(query: RunQuery) -> None:
    sort, direction = query.values["sort"], query.values["dir"].lower()
    if (
        sort
        and sort not in RUN_COLUMNS
        and not (sort.startswith("metric.") and len(sort) > len("metric."))
    ):
        query.errors["sort"] = (
            f"sort: cannot sort by {sort!r}; expected metric.<key> or one of "
            f"{', '.join(RUN_COLUMNS)}"
        )
        return
    if direction and direction not in ("asc", "desc"):
        query.errors["dir"] = f"sort direction: {direction!r}; expected asc or desc"
        return
    query.kwargs["order_by"] = f"{query.sort} {'DESC' if query.descending else 'ASC'}"


def _offset(query: RunQuery) -> None:
    text = query.values["offset"]
    if not text:
        query.kwargs["offset"] = 0
        return
    if not text.isdigit() or len(text) > 12:
        query.errors["offset"] = f"offset: {text!r} is not a whole number of runs (0 or more)"
        return
    query.kwargs["offset"] = int(text)
