"""The monitoring pages: every monitored model, one version's checks over time (a per-feature
drift heatmap, prediction drift, realised vs estimated performance, alerts and incidents), and
one check in full.

Everything is read through :class:`shipyard.registry.MonitorHistory`: a version's page is four
queries (its checks with their columns and metrics, the model's incidents and check ids),
whatever the number of checks. The store keeps each check's numbers, not the HTML report
``shipyard monitor --report`` writes, so a check's page here is its report.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.responses import RedirectResponse, Response

from shipyard.registry import CheckRecord, ColumnResult, Incident, MonitorHistory, VersionRecord
from shipyard.ui._app import PageError, View
from shipyard.ui._format import fmt_float, fmt_time

__all__ = [
    "BUCKETS",
    "Cell",
    "Heatmap",
    "bucket",
    "check_page",
    "distribution",
    "distribution_charts",
    "distribution_rows",
    "heatmap",
    "incident_state",
    "model_monitoring",
    "monitoring_page",
    "quantile_name",
    "version_monitoring",
]

MAX_CHECKS = 365
"""The most checks a version's page reads (the newest)."""
HEATMAP_CHECKS = 60
"""The most checks the heatmap shows (the newest), so that it stays readable."""
STRONG = 4.0
"""A drifted cell this many times past its threshold is marked *strongly* drifted."""

BUCKETS = (
    ("hm-0", "no drift, far from the threshold (under a quarter of the way)"),
    ("hm-1", "no drift, a quarter to half-way to the threshold"),
    ("hm-2", "no drift, over half-way to the threshold"),
    ("hm-3", "drifted"),
    ("hm-4", f"drifted strongly ({STRONG:g} times past the threshold or more)"),
    ("hm-na", "not tested (no values in the window, or not in this check)"),
)
"""The heatmap's colour classes and what each means (the legend)."""


@dataclass(frozen=True)
class Cell:
    """One heatmap cell: a column's test in one check.

    Attributes:
        text: the statistic as shown in the cell.
        title: the whole result in words (the cell's tooltip and accessible description).
        css: its colour class (one of :data:`BUCKETS`).
        drifted: the verdict (``None``: not tested).
    """

    text: str
    title: str
    css: str
    drifted: bool | None


@dataclass(frozen=True)
class Heatmap:
    """A section's columns (rows) by checks (columns, oldest first)."""

    section: str
    checks: tuple[CheckRecord, ...]
    rows: tuple[tuple[str, tuple[Cell, ...]], ...]
    n_hidden: int

    @property
    def heads(self) -> list[tuple[CheckRecord, str, str]]:
        """Each check with its column header: the day (``MM-DD``) and time (``HH:MM``)."""
        return [
            (c, fmt_time(check_time(c))[5:10], fmt_time(check_time(c))[11:]) for c in self.checks
        ]


def monitoring_page(ctx: View) -> Response:
    """``/monitoring``: every registered model with its monitored versions and open
    incidents."""
    registry, history = ctx.ui.registry, MonitorHistory(ctx.store)
    by_model: dict[str, list[Any]] = {}
    for monitored in history.monitored():
        by_model.setdefault(monitored.model_name, []).append(monitored)
    models = [
        (model, by_model.get(model.name, []), history.incidents(model.name, open_only=True))
        for model in registry.list_models()
    ]
    return ctx.render("monitoring.html.j2", section="monitoring", models=models)


def model_monitoring(ctx: View) -> Response:
    """``/models/{name}/monitoring``: the monitoring of the version checked last (or, without
    checks, the page saying how to record some)."""
    name = ctx.request.path_params["name"]
    versions = ctx.ui.registry.list_versions(name)  # ModelNotFoundError: a 404 page
    monitored = MonitorHistory(ctx.store).monitored(name)
    if monitored:
        latest = max(monitored, key=lambda m: m.last_checked_at)
        target = f"/models/{name}/versions/{latest.model_version}/monitoring"
        return RedirectResponse(target, status_code=307)
    return _version(ctx, name, versions[-1] if versions else None, versions, [])


def version_monitoring(ctx: View) -> Response:
    """``/models/{name}/versions/{version}/monitoring``: one version's checks over time."""
    name = ctx.request.path_params["name"]
    versions = ctx.ui.registry.list_versions(name)
    text = ctx.request.path_params["version"]
    record = next((v for v in versions if str(v.version) == text), None)
    if record is None:
        known = ", ".join(f"v{v.version}" for v in versions) or "none"
        msg = f"model {name} has no version {text!r} (its versions: {known})"
        raise PageError(404, msg)
    history = MonitorHistory(ctx.store)
    return _version(ctx, name, record, versions, history.monitored(name))


def _version(
    ctx: View,
    name: str,
    record: VersionRecord | None,
    versions: Sequence[VersionRecord],
    monitored: Sequence[Any],
) -> Response:
    history = MonitorHistory(ctx.store)
    checks = (
        history.detailed_series(name, record.version, limit=MAX_CHECKS)
        if record is not None
        else []
    )
    incidents = history.incidents(name, limit=200)
    known = {c.id: c for c in history.checks(name, limit=10_000)} if incidents else {}
    return ctx.render(
        "monitoring_version.html.j2",
        section="monitoring",
        name=name,
        record=record,
        versions=versions,
        monitored={m.model_version: m for m in monitored},
        checks=list(reversed(checks)),
        heatmaps=[h for h in (heatmap(checks, s) for s in ("inputs", "predictions")) if h.rows],
        buckets=BUCKETS,
        charts=_charts(checks),
        unrecorded=sum(1 for c in checks if distribution(c) is None),
        incidents=incidents,
        known_checks=known,
        delivery=incident_state,
    )


def check_page(ctx: View) -> Response:
    """``/monitoring/checks/{id}``: one check in full (its report): each column's test,
    the metrics, and the incidents it opened or resolved."""
    check_id = ctx.request.path_params["check_id"]
    history = MonitorHistory(ctx.store)
    check = history.get(check_id)  # ModelNotFoundError: a 404 page
    incidents = [
        i
        for i in history.incidents(check.model_name, limit=1_000)
        if check.id in (i.opened_check_id, i.resolved_check_id)
    ]
    sections = [
        (section, [r for r in check.results if r.section == section])
        for section in ("inputs", "predictions")
    ]
    return ctx.render(
        "monitoring_check.html.j2",
        section="monitoring",
        check=check,
        sections=[(s, rows) for s, rows in sections if rows],
        cells={(r.section, r.column): cell(r, check) for r in check.results},
        distribution=distribution(check),
        distribution_rows=distribution_rows,
        incidents=incidents,
        known_checks={check.id: check},
        delivery=incident_state,
    )


# -- the heatmap -----------------------------------------------------------------------------


def heatmap(checks: Sequence[CheckRecord], section: str) -> Heatmap:
    """A section's drift heatmap over ``checks`` (oldest first; the newest
    :data:`HEATMAP_CHECKS` are shown): one row per column, one cell per check."""
    shown = tuple(checks[-HEATMAP_CHECKS:])
    names: dict[str, None] = {}
    for check in shown:
        for result in check.results:
            if result.section == section:
                names.setdefault(result.column)
    by_check = [{r.column: r for r in check.results if r.section == section} for check in shown]
    rows = tuple(
        (
            column,
            tuple(
                cell(results[column], check) if column in results else _absent(column, check)
                for check, results in zip(shown, by_check, strict=True)
            ),
        )
        for column in sorted(names)
    )
    return Heatmap(section, shown, rows, len(checks) - len(shown))


def cell(result: ColumnResult, check: CheckRecord) -> Cell:
    """One column's test as a heatmap cell: the statistic, its colour and its words."""
    when = fmt_time(check_time(check))
    missing = f"{result.missing_current:.0%} missing, {result.n_current:,} values"
    if result.drifted is None or result.value is None:
        title = f"{result.column} at {when}: not tested ({missing})"
        return Cell("-", title, "hm-na", None)
    statistic = (result.statistic or "statistic").replace("_", "-")
    verdict = "drifted" if result.drifted else "no drift"
    threshold = "" if result.threshold is None else f" (threshold {result.threshold:g})"
    title = (
        f"{result.column} at {when}: {verdict}; {result.method} {statistic} "
        f"{stat_text(result.value, result.statistic)}{threshold}; {missing}"
    )
    css = bucket(result.value, result.threshold, result.statistic, result.drifted)
    return Cell(stat_text(result.value, result.statistic), title, css, result.drifted)


def _absent(column: str, check: CheckRecord) -> Cell:
    title = f"{column} at {fmt_time(check_time(check))}: not in this check"
    return Cell("-", title, "hm-na", None)


def bucket(value: float, threshold: float | None, statistic: str | None, drifted: bool) -> str:
    """A tested column's colour class, by how far its statistic went towards (or past) its
    threshold: a p-value drifts below it, a distance above it.

    Example:
        >>> bucket(0.5, 0.05, "p_value", False), bucket(0.0001, 0.05, "p_value", True)
        ('hm-0', 'hm-4')
        >>> bucket(0.06, 0.1, "distance", False), bucket(0.15, 0.1, "distance", True)
        ('hm-2', 'hm-3')
    """
    ratio = _ratio(value, threshold, statistic)
    if drifted:
        return "hm-4" if ratio is not None and ratio >= STRONG else "hm-3"
    if ratio is None or ratio < 0.25:
        return "hm-0"
    return "hm-2" if ratio >= 0.5 else "hm-1"


def _ratio(value: float, threshold: float | None, statistic: str | None) -> float | None:
    """How far towards the threshold: 1 at it, above 1 past it."""
    if threshold is None or threshold <= 0 or not math.isfinite(value):
        return None
    if statistic == "p_value":
        return math.inf if value <= 0 else threshold / value
    return value / threshold


def stat_text(value: float | None, statistic: str | None) -> str:
    """A statistic for a cell: 3 decimals, tiny p-values as ``<0.001``.

    Example:
        >>> stat_text(0.04321, "p_value"), stat_text(1e-9, "p_value"), stat_text(0.2, "distance")
        ('0.043', '<0.001', '0.200')
    """
    if value is None:
        return "-"
    if statistic == "p_value" and 0 <= value < 0.001:
        return "<0.001"
    return f"{value:.3f}" if abs(value) < 1000 else f"{value:,.0f}"


def check_time(check: CheckRecord) -> float:
    """When a check's data ends (its window's end), else when it ran."""
    return check.window_end if check.window_end is not None else check.created_at


# -- the charts ------------------------------------------------------------------------------


def _charts(checks: Sequence[CheckRecord]) -> dict[str, list[dict[str, Any]]]:
    """The version page's charts (uPlot, drawn by ui.js): drift shares, prediction drift by
    statistic, and each metric's holdout, estimated and realised values."""
    if not checks:
        return {"drift": [], "distribution": [], "predictions": [], "performance": []}
    x = [check_time(c) for c in checks]
    predicted = [_prediction_share(c) for c in checks]
    shares: list[tuple[str, list[float | None]]] = [
        ("inputs drifted", [c.share_drifted for c in checks])
    ]
    if any(v is not None for v in predicted):
        shares.append(("predictions drifted", predicted))
    drift = [_chart("Share of columns drifted", x, shares, "share", percent=True)]
    return {
        "drift": drift,
        "distribution": distribution_charts(checks, x),
        "predictions": _prediction_charts(checks, x),
        "performance": _performance_charts(checks, x),
    }


def distribution(check: CheckRecord) -> dict[str, Any] | None:
    """The prediction distribution a check stored (``summary["distribution"]``: class shares
    or quantiles, reference and window), or ``None`` for a check recorded before Shipyard
    kept it (or one whose entry cannot be read)."""
    found = check.summary.get("distribution")
    if not isinstance(found, dict):
        return None
    if found.get("kind") == "classes":
        shares = [found.get("reference"), found.get("current")]
        if all(
            isinstance(side, dict) and all(isinstance(v, int | float) for v in side.values())
            for side in shares
        ):
            return found
    elif found.get("kind") == "quantiles":
        levels = found.get("quantiles")
        if isinstance(levels, list) and all(isinstance(q, int | float) for q in levels):
            sides = [found.get("reference"), found.get("current")]
            if all(
                side is None
                or (
                    isinstance(side, list)
                    and len(side) == len(levels)
                    and all(isinstance(v, int | float) for v in side)
                )
                for side in sides
            ):
                return found
    return None


def distribution_rows(found: dict[str, Any]) -> list[tuple[str, float | None, float | None]]:
    """A stored distribution as table rows: (class or quantile, reference, window).

    Example:
        >>> distribution_rows({"kind": "classes", "reference": {"a": 0.6}, "current": {}})
        [('a', 0.6, None)]
        >>> distribution_rows(
        ...     {"kind": "quantiles", "quantiles": [0.5], "reference": [2.0], "current": None}
        ... )
        [('median', 2.0, None)]
    """
    if found["kind"] == "classes":
        reference, current = found["reference"], found["current"]
        names = list(dict.fromkeys([*reference, *current]))
        return [(name, reference.get(name), current.get(name)) for name in names]
    reference, current = found["reference"], found["current"]
    return [
        (
            quantile_name(q),
            None if reference is None else reference[i],
            None if current is None else current[i],
        )
        for i, q in enumerate(found["quantiles"])
    ]


def quantile_name(q: float) -> str:
    """``0.5`` is the median, ``0.1`` the 10th percentile.

    Example:
        >>> quantile_name(0.5), quantile_name(0.1), quantile_name(0.25)
        ('median', '10th percentile', '25th percentile')
    """
    if q == 0.5:
        return "median"
    pct = round(q * 100, 2)
    text = f"{pct:g}"
    suffix = "th"
    if pct == int(pct) and int(pct) % 100 not in (11, 12, 13):
        suffix = {1: "st", 2: "nd", 3: "rd"}.get(int(pct) % 10, "th")
    return f"{text}{suffix} percentile"


def distribution_charts(checks: Sequence[CheckRecord], x: list[float]) -> list[dict[str, Any]]:
    """The prediction distribution over the checks that stored it: a classifier's share of
    each predicted class (a solid line each, its reference share dashed in the same colour),
    a regression's median with its 10-90% band (its reference's dashed). A check without a
    stored distribution is a gap."""
    found = [distribution(c) for c in checks]
    charts = []
    shares = [d if d is not None and d["kind"] == "classes" else None for d in found]
    if any(d is not None for d in shares):
        names: dict[str, None] = {}
        for d in reversed(shares):  # the newest check's order (by reference share) first
            if d is not None:
                names.update(dict.fromkeys([*d["reference"], *d["current"]]))
        lines: list[tuple[str, list[float | None]]] = []
        styles: dict[str, tuple[int, bool]] = {}
        for i, name in enumerate(names):
            lines.append(
                (name, [None if d is None else d["current"].get(name, 0.0) for d in shares])
            )
            styles[name] = (i, False)
        for i, name in enumerate(names):
            label = f"reference {name}"
            lines.append(
                (label, [None if d is None else d["reference"].get(name, 0.0) for d in shares])
            )
            styles[label] = (i, True)
        charts.append(
            _chart(
                "Predicted class shares by check (dashed: the reference's)",
                x,
                lines,
                "share",
                percent=True,
                styles=styles,
            )
        )
    values = [d if d is not None and d["kind"] == "quantiles" else None for d in found]
    if any(d is not None for d in values):

        def level(side: str, q: float) -> list[float | None]:
            out: list[float | None] = []
            for d in values:
                levels = [] if d is None else list(d["quantiles"])
                if d is None or d[side] is None or q not in levels:
                    out.append(None)
                else:
                    out.append(float(d[side][levels.index(q)]))
            return out

        lines = [
            ("90th percentile", level("current", 0.9)),
            ("median", level("current", 0.5)),
            ("10th percentile", level("current", 0.1)),
            ("reference 90th percentile", level("reference", 0.9)),
            ("reference median", level("reference", 0.5)),
            ("reference 10th percentile", level("reference", 0.1)),
        ]
        styles = {
            "90th percentile": (0, False),
            "median": (0, False),
            "10th percentile": (0, False),
            "reference 90th percentile": (7, True),
            "reference median": (7, True),
            "reference 10th percentile": (7, True),
        }
        chart = _chart(
            "Predicted value by check: median and 10-90% band (dashed: the reference's)",
            x,
            lines,
            "prediction",
            styles=styles,
        )
        chart["bands"] = [[0, 2, 0]]  # between the 90th and the 10th percentile, colour 0
        charts.append(chart)
    return charts


def _prediction_share(check: CheckRecord) -> float | None:
    section = check.summary.get("predictions")
    if isinstance(section, dict) and isinstance(section.get("share_drifted"), int | float):
        return float(section["share_drifted"])
    return None


def _prediction_charts(checks: Sequence[CheckRecord], x: list[float]) -> list[dict[str, Any]]:
    """One chart per statistic of the predictions' tests (p-values and distances do not share
    an axis): each prediction column's statistic by check, with the threshold."""
    by_stat: dict[str, dict[str, list[float | None]]] = {}
    thresholds: dict[str, set[float]] = {}
    for i, check in enumerate(checks):
        for r in check.results:
            if r.section != "predictions" or r.statistic is None:
                continue
            lines = by_stat.setdefault(r.statistic, {})
            lines.setdefault(r.column, [None] * len(checks))[i] = r.value
            if r.threshold is not None:
                thresholds.setdefault(r.statistic, set()).add(r.threshold)
    charts = []
    for statistic, lines in sorted(by_stat.items()):
        series = sorted(lines.items())
        limits = thresholds.get(statistic, set())
        if len(limits) == 1:
            series.append((f"threshold {next(iter(limits)):g}", [next(iter(limits))] * len(x)))
        way = "below" if statistic == "p_value" else "above"
        title = f"Prediction drift: {statistic.replace('_', '-')} (drifted {way} the threshold)"
        charts.append(_chart(title, x, series, statistic.replace("_", "-")))
    return charts


def _performance_charts(checks: Sequence[CheckRecord], x: list[float]) -> list[dict[str, Any]]:
    names: dict[str, None] = {}
    for check in checks:
        for m in check.performance:
            if m.estimated is not None or m.realised is not None:
                names.setdefault(m.metric)
    charts = []
    for metric in names:
        found = [{m.metric: m for m in c.performance}.get(metric) for c in checks]
        series = [
            ("holdout", [None if m is None else m.reference for m in found]),
            ("estimated", [None if m is None else m.estimated for m in found]),
            ("realised", [None if m is None else m.realised for m in found]),
        ]
        series = [(label, values) for label, values in series if any(v is not None for v in values)]
        charts.append(_chart(f"{metric}: realised vs estimated", x, series, metric))
    return charts


def _chart(
    title: str,
    x: list[float],
    series: Iterable[tuple[str, Sequence[float | None]]],
    ylabel: str,
    *,
    percent: bool = False,
    styles: dict[str, tuple[int, bool]] | None = None,
) -> dict[str, Any]:
    """A time chart's data for ui.js: each line's label, values (``None``: a gap), dash and
    colour (by ``styles[label]``: a palette index and whether dashed; else by its label)."""
    lines = [(label, [_finite(v) for v in values]) for label, values in series]
    styles = styles or {}
    return {
        "title": title,
        "x": x,
        "time": True,
        "ylabel": ylabel,
        "percent": percent,
        "series": [
            {
                "label": label,
                "values": values,
                "dash": styles[label][1]
                if label in styles
                else label.startswith(("holdout", "threshold")),
                "colour": styles[label][0]
                if label in styles
                else _COLOURS.get(label.split(" ")[0]),
            }
            for label, values in lines
        ],
        "summary": _summary(lines, len(x), percent=percent),
    }


_COLOURS = {"holdout": 7, "threshold": 7, "estimated": 0, "realised": 3}
"""Lines that mean the same on every chart keep one colour (an index of ui.js' palette)."""


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _summary(lines: Sequence[tuple[str, Sequence[float | None]]], n: int, *, percent: bool) -> str:
    """The chart in words: each line's first and last value over the checks."""

    def show(value: float) -> str:
        return f"{value:.0%}" if percent else fmt_float(value)

    parts = []
    for label, values in lines:
        known = [v for v in values if v is not None]
        if not known:
            parts.append(f"{label}: no values")
        elif len(known) == 1 or known[0] == known[-1]:
            parts.append(f"{label} {show(known[-1])}")
        else:
            parts.append(f"{label} from {show(known[0])} to {show(known[-1])}")
    return f"over {n} check{'s' if n != 1 else ''}: " + "; ".join(parts)


def incident_state(incident: Incident) -> str:
    """An incident's delivery in words."""
    opened = "delivered" if incident.open_notified else "not delivered yet"
    if incident.is_open:
        return f"opening notice {opened}"
    resolved = "delivered" if incident.resolve_notified else "not delivered yet"
    return f"opening notice {opened}; resolution notice {resolved}"
