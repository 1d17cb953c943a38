"""The HTML report of a monitoring check: one self-contained page, pictures first.

It shows, in this order: the verdict; the alert rules' state; every input column's drift test,
drifted columns first; reference and current histograms of each drifted column; the
predictions' drift and histograms; performance beside the holdout's and, with enough earlier
checks, over time; and how it was all computed.

Pure: the check's results and its two samples in, an HTML string out (CSS inline, plots as
base64 PNG, no external reference). Histograms are binned with numpy over every finite value,
never over a sample of them, and matplotlib only draws the counts, so frames of millions of rows
render in about the time it takes to read them once.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jinja2
import numpy as np
import pandas as pd

from shipyard.monitor._drift import ColumnDrift, DriftReport
from shipyard.monitor._performance import PerformanceReport

__all__ = ["AlertLine", "HistoryPoint", "MonitorReport", "render_monitor_report"]

MAX_DRIFT_FIGURES = 20
"""Histograms of drifted input columns drawn at most (the others are named)."""
MAX_PREDICTION_FIGURES = 8
"""Histograms of prediction columns drawn at most."""
TOP_CATEGORIES = 15
"""Categories drawn as their own bars; the rest share one bar, "other"."""
MAX_TREND_METRICS = 6
"""Metrics charted over time at most."""
FIRING = frozenset({"opened", "ongoing"})
"""Alert statuses that count as firing."""

_DPI = 90
_SIZE = (5.0, 3.1)
_REFERENCE = "#457b9d"
_CURRENT = "#e76f51"
_REALISED = "#1d3557"
_ESTIMATED = "#e9a03b"
_LABEL = 24  # characters of a category or column name drawn in a plot


@dataclass(frozen=True)
class HistoryPoint:
    """One earlier check of the same model version.

    Attributes:
        at: when, epoch seconds (the end of its window).
        share_drifted: the share of its tested input columns that drifted.
        drifted: its dataset verdict.
        estimated: each metric's CBPE estimate (``None``: not estimated).
        realised: each metric's realised value (``None``: no labels).
    """

    at: float
    share_drifted: float
    drifted: bool
    estimated: Mapping[str, float | None]
    realised: Mapping[str, float | None]


@dataclass(frozen=True)
class AlertLine:
    """One alert rule's state after the check.

    Attributes:
        rule: the rule's label.
        status: ``opened``, ``ongoing``, ``resolved``, ``quiet`` or ``no data``.
        value: the signal's value (``None``: not measured).
    """

    rule: str
    status: str
    value: float | None


@dataclass(frozen=True)
class MonitorReport:
    """Everything the monitoring report shows.

    Attributes:
        title: what was checked, e.g. ``penguins/3``.
        window: the window's start and end (``None``: open on that side).
        inputs: the drift report of the model's inputs (the check's verdict).
        predictions: the drift report of its predictions (``None``: not tested).
        performance: its metrics beside the holdout's (``None``: not computed).
        reference: the reference inputs, for the histograms.
        current: the window's inputs, under the same column names.
        reference_predictions: the reference predictions (columns as in ``predictions``).
        current_predictions: the window's predictions.
        history: earlier checks of the version, in any order; with two or more, the report
            charts drift and performance over time, ending with this check.
        alerts: each alert rule's state.
        created_at: when the report was made (now by default).
    """

    title: str
    window: tuple[datetime | None, datetime | None]
    inputs: DriftReport
    predictions: DriftReport | None
    performance: PerformanceReport | None
    reference: pd.DataFrame
    current: pd.DataFrame
    reference_predictions: pd.DataFrame | None = None
    current_predictions: pd.DataFrame | None = None
    history: Sequence[HistoryPoint] = ()
    alerts: Sequence[AlertLine] = ()
    created_at: datetime | None = None


@dataclass(frozen=True)
class _Figure:
    anchor: str
    title: str
    uri: str
    caption: str


@dataclass(frozen=True)
class _Row:
    drift: ColumnDrift
    anchor: str | None


@dataclass(frozen=True)
class _Fact:
    label: str
    text: str
    level: str = ""


def render_monitor_report(report: MonitorReport) -> str:
    """Render the report as one HTML page, its plots embedded as PNG data URIs."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("shipyard.monitor", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
    )
    env.filters.update(stat=_stat, num=_num, pct=_pct, thousands="{:,}".format)
    template = env.get_template("monitor_report.html.j2")
    created = report.created_at or datetime.now(UTC)
    inputs, input_figures, not_drawn = _drift_section(
        report.inputs, report.reference, report.current, "input", MAX_DRIFT_FIGURES, True
    )
    predictions: list[_Row] = []
    prediction_figures: list[_Figure] = []
    if report.predictions is not None:
        predictions, prediction_figures, _ = _drift_section(
            report.predictions,
            report.reference_predictions,
            report.current_predictions,
            "prediction",
            MAX_PREDICTION_FIGURES,
            False,
        )
    level, headline = _verdict(report)
    performance = report.performance
    return template.render(
        r=report,
        created=_when(created),
        window=_window_text(report.window),
        level=level,
        headline=headline,
        facts=_facts(report),
        alerts=[(a, _alert_level(a.status)) for a in report.alerts],
        inputs=inputs,
        input_figures=input_figures,
        not_drawn=not_drawn,
        predictions=predictions,
        prediction_figures=prediction_figures,
        metrics=[] if performance is None else list(performance.metrics),
        any_estimate=performance is not None
        and any(m.estimated is not None for m in performance.metrics),
        calibration=_calibration_text(performance),
        trends=_trend_figures(report, created),
    )


# -- the verdict -----------------------------------------------------------------------------


def _verdict(report: MonitorReport) -> tuple[str, str]:
    """The banner's level (``err``, ``warn``, ``ok``) and headline."""
    drift = report.inputs
    firing = sum(a.status in FIRING for a in report.alerts)
    tested = len(drift.tested)
    if not tested:
        headline = "No input column could be tested"
    elif drift.drifted:
        headline = f"Data drift: {drift.n_drifted} of {tested} input columns drifted"
    else:
        headline = f"No data drift: {drift.n_drifted} of {tested} input columns drifted"
    if drift.drifted or firing:
        level = "err"
    elif drift.n_drifted or not tested or (report.predictions and report.predictions.drifted):
        level = "warn"
    else:
        level = "ok"
    return level, headline


def _facts(report: MonitorReport) -> list[_Fact]:
    drift = report.inputs
    tested = len(drift.tested)
    untested = len(drift.columns) - tested
    facts = [
        _Fact(
            "input drift",
            f"{drift.n_drifted} of {tested} tested columns drifted ({_pct(drift.share_drifted)}); "
            f"the dataset drifts at {_pct(drift.drift_share)} or more"
            + (f"; {untested} not tested" if untested else ""),
            "err" if drift.drifted else "warn" if drift.n_drifted or not tested else "ok",
        ),
        _Fact("rows", f"{drift.n_reference:,} reference, {drift.n_current:,} current"),
        _Fact("window", _window_text(report.window)),
    ]
    preds = report.predictions
    if preds is None or not preds.tested:
        facts.append(_Fact("prediction drift", "not tested"))
    else:
        facts.append(
            _Fact(
                "prediction drift",
                f"{'drifted' if preds.drifted else 'no drift'}: {preds.n_drifted} of "
                f"{len(preds.tested)} prediction columns drifted",
                "err" if preds.drifted else "warn" if preds.n_drifted else "ok",
            )
        )
    facts.append(_performance_fact(report.performance))
    firing = sum(a.status in FIRING for a in report.alerts)
    if report.alerts:
        text = f"{firing} of {len(report.alerts)} alert rules firing"
        facts.append(_Fact("alerts", text, "err" if firing else "ok"))
    else:
        facts.append(_Fact("alerts", "no alert rules evaluated"))
    return facts


def _performance_fact(performance: PerformanceReport | None) -> _Fact:
    if performance is None:
        return _Fact("performance", "not computed")
    labelled = f"{performance.n_labelled:,} of {performance.n_predictions:,} predictions labelled"
    drops = [(m.drop, m) for m in performance.metrics if m.drop is not None]
    if not drops:
        return _Fact("performance", f"no metric to compare with the holdout; {labelled}")
    drop, worst = max(drops, key=lambda pair: pair[0] or 0.0)
    if drop is None or drop <= 0:
        return _Fact("performance", f"every metric at or above its holdout value; {labelled}", "ok")
    source = "realised" if worst.realised is not None else "estimated"
    now = worst.realised if worst.realised is not None else worst.estimated
    text = (
        f"largest drop: {worst.metric} worse by {_num(drop)} ({_num(worst.reference)} on the "
        f"holdout, {_num(now)} {source}); {labelled}"
    )
    return _Fact("performance", text, "warn")


def _alert_level(status: str) -> str:
    if status in FIRING:
        return "err"
    return "ok" if status in ("resolved", "quiet") else "none"


def _calibration_text(performance: PerformanceReport | None) -> str:
    calibration = None if performance is None else performance.calibration
    if calibration is None:
        return ""
    if calibration.applied:
        return (
            f"Probabilities were calibrated (isotonic) before estimating: expected calibration "
            f"error {_num(calibration.ece)} on the holdout, {_num(calibration.ece_calibrated)} "
            "after."
        )
    why = (
        "which isotonic calibration did not lower"
        if calibration.ece_calibrated is not None
        else "and too few holdout rows (or not every class) to fit a correction"
    )
    return (
        f"Probabilities were used as the model gives them: expected calibration error "
        f"{_num(calibration.ece)} on the holdout, {why}."
    )


# -- drift tables and histograms -------------------------------------------------------------


def _drift_section(
    drift: DriftReport,
    reference: pd.DataFrame | None,
    current: pd.DataFrame | None,
    prefix: str,
    cap: int,
    drifted_only: bool,
) -> tuple[list[_Row], list[_Figure], list[str]]:
    """The table's rows (drifted first), the histograms drawn, and the columns not drawn."""
    order = {True: 0, False: 1, None: 2}
    columns = sorted(drift.columns, key=lambda c: order[c.drifted])
    wanted = [c for c in columns if (c.drifted if drifted_only else c.drifted is not None)]
    figures: dict[str, _Figure] = {}
    for result in wanted[:cap]:
        ref = _series(reference, result.column)
        cur = _series(current, result.column)
        if ref is None or cur is None:
            continue
        anchor = f"{prefix}-{len(figures) + 1}"
        figures[result.column] = _histogram(anchor, result, ref, cur, prefix == "prediction")
    rows = [_Row(c, figures[c.column].anchor if c.column in figures else None) for c in columns]
    not_drawn = [c.column for c in wanted if c.column not in figures]
    return rows, list(figures.values()), not_drawn


def _series(frame: pd.DataFrame | None, name: str) -> pd.Series | None:
    if frame is None:
        return None
    if name not in frame.columns:
        names = {str(c): c for c in frame.columns}
        if name not in names:
            return None
        name = names[name]
    column = frame[name]
    return column.iloc[:, 0] if isinstance(column, pd.DataFrame) else column


def _histogram(
    anchor: str, result: ColumnDrift, reference: pd.Series, current: pd.Series, prediction: bool
) -> _Figure:
    title = _prediction_title(result) if prediction else result.column
    verdict = "not tested"
    if result.drifted is not None:
        statistic = (result.statistic or "").replace("_", "-")
        verdict = f"{result.method} {statistic} {_stat(result.value)}"
        verdict += ": drifted" if result.drifted else ": no drift"
    if result.kind == "numeric":
        uri, caption = _numeric_png(title, verdict, reference, current)
    else:
        uri, caption = _categorical_png(title, verdict, reference, current)
    return _Figure(anchor, title, uri, caption)


def _prediction_title(result: ColumnDrift) -> str:
    if result.column == "prediction":
        kind = "predicted values" if result.kind == "numeric" else "predicted labels"
        return f"prediction ({kind})"
    if result.column.startswith("proba."):
        return f"probability of {result.column.removeprefix('proba.')}"
    return result.column


def _finite(series: pd.Series) -> tuple[np.ndarray, int]:
    """The finite values as float64, and how many were missing, infinite or not numbers."""
    try:
        array = series.to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError):
        numbers = pd.to_numeric(series, errors="coerce")
        array = numbers.to_numpy(dtype=np.float64, na_value=np.nan)
    keep = np.isfinite(array)
    n_bad = int(array.size - np.count_nonzero(keep))
    return (array[keep] if n_bad else array), n_bad


def _bins(reference: np.ndarray, current: np.ndarray) -> tuple[int, tuple[float, float]]:
    """Shared equal-width bins over both samples: unit bins for a short range of integers,
    else Sturges' count (10 to 40) between the smallest and the largest value."""
    parts = [a for a in (reference, current) if a.size]
    low = min(float(a.min()) for a in parts)
    high = max(float(a.max()) for a in parts)
    if low == high:
        return 1, (low - 0.5, high + 0.5)
    if high - low < 40 and all(np.array_equal(a, np.round(a)) for a in parts):
        return int(high - low) + 1, (low - 0.5, high + 0.5)
    n = reference.size + current.size
    return int(np.clip(math.ceil(math.log2(n)) + 1, 10, 40)), (low, high)


def _unit(span: tuple[float, float]) -> float:
    """What to divide values by for matplotlib to draw them: 1, or a power of ten for values
    so large that an axis spanning them would overflow."""
    magnitude = max(abs(span[0]), abs(span[1]))
    return 10.0 ** math.floor(math.log10(magnitude)) if magnitude > 1e100 else 1.0


def _counts(
    values: np.ndarray, count: int, span: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`numpy.histogram` on equal-width bins (its fast path: no sort, no search)."""
    low, high = span
    if math.isfinite(high - low):
        return np.histogram(values, bins=count, range=span)
    scale = 2.0**-4  # the range overflows a double: bin a scaled copy
    counts, edges = np.histogram(values * scale, bins=count, range=(low * scale, high * scale))
    return counts, edges / scale


def _numeric_png(
    title: str, verdict: str, reference: pd.Series, current: pd.Series
) -> tuple[str, str]:
    ref, bad_ref = _finite(reference)
    cur, bad_cur = _finite(current)
    fig, ax = _figure()
    if ref.size or cur.size:
        count, span = _bins(ref, cur)
        unit = _unit(span)
        for values, label, colour, alpha in (
            (ref, "reference", _REFERENCE, 0.35),
            (cur, "current", _CURRENT, 0.2),
        ):
            if not values.size:
                continue
            counts, edges = _counts(values, count, span)
            edges = edges / unit
            widths = np.diff(edges)
            density = counts / (values.size * np.where(widths > 0, widths, 1.0))
            ax.stairs(density, edges, fill=True, alpha=alpha, color=colour)
            ax.stairs(density, edges, color=colour, linewidth=1.6, label=label)
        ax.legend(fontsize="small")
        if unit != 1.0:
            ax.set_xlabel(f"value / {unit:.0e}")
        bins = f"{_count(count, 'shared bin')} over [{span[0]:.4g}, {span[1]:.4g}]"
    else:
        ax.text(0.5, 0.5, "no values", ha="center", va="center", transform=ax.transAxes)
        bins = "no bins"
    ax.set_ylabel("density")
    _titles(ax, title, verdict)
    caption = (
        f"Every finite value, none sampled: {ref.size:,} reference and {cur.size:,} current; "
        f"{bins}; densities."
    )
    return _image(fig), caption + _left_out(bad_ref, bad_cur, "missing or infinite")


def _categorical_png(
    title: str, verdict: str, reference: pd.Series, current: pd.Series
) -> tuple[str, str]:
    ref, cur = reference.dropna(), current.dropna()
    numeric = pd.api.types.is_numeric_dtype
    if numeric(ref.dtype) != numeric(cur.dtype):  # 1 and "1" are one label, as in the tests
        ref, cur = ref.astype(str), cur.astype(str)
    table = pd.concat(
        [ref.value_counts(sort=False), cur.value_counts(sort=False)], axis=1, keys=["r", "c"]
    ).fillna(0)
    table = table[(table["r"] > 0) | (table["c"] > 0)]
    shares = table / table.sum(axis=0).clip(lower=1)
    ranked = shares.assign(both=shares["r"] + shares["c"]).sort_values("both", ascending=False)
    top = ranked.iloc[:TOP_CATEGORIES]
    if len(ranked) <= TOP_CATEGORIES and _orderable(top.index):
        top = top.sort_index()
    labels = [_short(str(k)) for k in top.index]
    ref_shares, cur_shares = top["r"].to_numpy(), top["c"].to_numpy()
    others = len(ranked) - len(top)
    if others:
        rest = ranked.iloc[TOP_CATEGORIES:]
        labels.append(f"other ({others:,})")
        ref_shares = np.append(ref_shares, rest["r"].sum())
        cur_shares = np.append(cur_shares, rest["c"].sum())
    fig, ax = _figure((max(_SIZE[0], 0.34 * len(labels) + 1.6), _SIZE[1] + 0.5))
    x = np.arange(len(labels))
    ax.bar(x - 0.2, ref_shares, 0.4, color=_REFERENCE, label="reference")
    ax.bar(x + 0.2, cur_shares, 0.4, color=_CURRENT, label="current")
    ax.set_xticks(x, labels=[_plain(label) for label in labels], rotation=45, ha="right")
    ax.set_ylabel("share")
    if labels:
        ax.legend(fontsize="small")
    _titles(ax, title, verdict)
    which = (
        f"the {len(top)} most frequent of {len(ranked):,} categories, the other {others:,} "
        "together as one bar"
        if others
        else f"all {_count(len(ranked), 'category', 'categories')}"
    )
    caption = (
        f"Shares of every non-missing value, none sampled: {len(ref):,} reference and "
        f"{len(cur):,} current; {which}."
    )
    missing = len(reference) - len(ref), len(current) - len(cur)
    return _image(fig), caption + _left_out(*missing, "missing")


def _orderable(index: pd.Index) -> bool:
    return bool(pd.api.types.is_numeric_dtype(index.dtype) or pd.api.types.is_bool_dtype(index))


def _count(n: int, noun: str, plural: str | None = None) -> str:
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"


def _left_out(reference: int, current: int, what: str) -> str:
    if not reference and not current:
        return ""
    return f" Left out as {what}: {reference:,} reference and {current:,} current values."


# -- performance and drift over time ---------------------------------------------------------


def _trend_figures(report: MonitorReport, created: datetime) -> list[_Figure]:
    """Drift share, and the key metrics, over the earlier checks and this one."""
    if len(report.history) < 2:
        return []
    end = report.window[1] or created
    performance = report.performance
    metrics = [] if performance is None else performance.metrics
    now = HistoryPoint(
        at=_epoch(end),
        share_drifted=report.inputs.share_drifted,
        drifted=report.inputs.drifted,
        estimated={m.metric: m.estimated for m in metrics},
        realised={m.metric: m.realised for m in metrics},
    )
    points = [*sorted(report.history, key=lambda p: p.at), now]
    times = [datetime.fromtimestamp(p.at, UTC).replace(tzinfo=None) for p in points]
    figures = []
    names = _trend_metrics(report, points)
    if names:
        holdout = {m.metric: m.reference for m in metrics}
        figures.append(
            _Figure(
                "trend-performance",
                "Performance over time",
                _performance_png(times, points, names, holdout),
                f"Realised and estimated {', '.join(names)} at each of the {len(points)} checks "
                "(the last is this one); dashed: the holdout value at registration.",
            )
        )
    figures.append(
        _Figure(
            "trend-drift",
            "Input drift over time",
            _drift_share_png(times, points, report.inputs.drift_share),
            f"The share of drifted input columns at each of the {len(points)} checks (the last "
            f"is this one); red: the dataset drifted; dashed: drift_share "
            f"{_pct(report.inputs.drift_share)}.",
        )
    )
    return figures


def _trend_metrics(report: MonitorReport, points: Sequence[HistoryPoint]) -> list[str]:
    names = [] if report.performance is None else [m.metric for m in report.performance.metrics]
    for point in points:
        names.extend(n for n in (*point.estimated, *point.realised) if n not in names)

    def measured(name: str) -> bool:  # at two checks or more: a line, not a dot
        values = (
            p.estimated.get(name) if _is_number(p.estimated.get(name)) else p.realised.get(name)
            for p in points
        )
        return sum(_is_number(v) for v in values) >= 2

    return [n for n in names if measured(n)][:MAX_TREND_METRICS]


def _performance_png(
    times: Sequence[datetime],
    points: Sequence[HistoryPoint],
    names: Sequence[str],
    holdout: Mapping[str, float | None],
) -> str:
    ncols = 2 if len(names) > 1 else 1
    nrows = math.ceil(len(names) / ncols)
    fig, axes = _figure((4.0 * ncols, 2.4 * nrows), nrows=nrows, ncols=ncols, sharex=True)
    grid = np.atleast_1d(axes).ravel()
    for ax, name in zip(grid, names, strict=False):
        for values, label, style, colour in (
            ([p.realised.get(name) for p in points], "realised", "-o", _REALISED),
            ([p.estimated.get(name) for p in points], "estimated", ":s", _ESTIMATED),
        ):
            series = [v if _is_number(v) else math.nan for v in values]
            if any(_is_number(v) for v in series):
                ax.plot(times, series, style, color=colour, markersize=4, label=label)
        reference = holdout.get(name)
        if _is_number(reference):
            ax.axhline(reference, linestyle="--", color="grey", linewidth=1, label="holdout")
        ax.set_title(_plain(_short(name, 40)), fontsize="medium")
        _dates(ax)
    grid[0].legend(fontsize="x-small")
    for ax in grid[len(names) :]:
        ax.set_visible(False)
    return _image(fig)


def _drift_share_png(
    times: Sequence[datetime], points: Sequence[HistoryPoint], threshold: float
) -> str:
    fig, ax = _figure((6.4, 2.8))
    shares = [p.share_drifted for p in points]
    ax.plot(times, shares, "-", color=_REFERENCE, linewidth=1.5)
    colours = [_CURRENT if p.drifted else _REFERENCE for p in points]
    ax.scatter(times, shares, c=colours, s=24, zorder=3)
    ax.axhline(threshold, linestyle="--", color="grey", linewidth=1, label="drift_share")
    ax.set_ylim(-0.03, 1.03)
    ax.set_ylabel("share of columns drifted")
    ax.legend(fontsize="small", loc="upper left")
    _dates(ax)
    return _image(fig)


def _dates(ax: Any) -> None:
    from matplotlib import dates

    locator = dates.AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(dates.ConciseDateFormatter(locator))


# -- drawing and formatting ------------------------------------------------------------------


def _figure(size: tuple[float, float] = _SIZE, **grid: Any) -> tuple[Any, Any]:
    from matplotlib.figure import Figure  # heavy: imported when a report is drawn

    fig = Figure(figsize=size, dpi=_DPI, layout="constrained")
    return fig, fig.subplots(**grid)


def _image(fig: Any) -> str:
    """The figure as a PNG data URI (no metadata, so no link to matplotlib's site); the
    figure is cleared once drawn."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    out = io.BytesIO()
    try:
        canvas.print_png(out, metadata={"Software": None})
    finally:
        fig.clear()
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode("ascii")


def _titles(ax: Any, title: str, subtitle: str) -> None:
    ax.set_title(f"{_plain(_short(title, 48))}\n{_plain(subtitle)}", fontsize="medium")


def _plain(text: str) -> str:
    """Text matplotlib draws as given: a ``$`` would start mathtext."""
    return text.replace("$", r"\$")


def _short(text: str, limit: int = _LABEL) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _is_number(value: Any) -> bool:
    return value is not None and math.isfinite(float(value))


def _epoch(when: datetime) -> float:
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def _when(when: datetime) -> str:
    zone = when.tzname() if when.tzinfo else None
    return when.strftime("%Y-%m-%d %H:%M") + (f" {zone}" if zone else "")


def _window_text(window: tuple[datetime | None, datetime | None]) -> str:
    start, end = window
    if start is None and end is None:
        return "every logged prediction"
    first = _when(start) if start else "the first logged prediction"
    last = _when(end) if end else "the last"
    return f"{first} to {last}"


def _stat(value: float | None) -> str:
    """A statistic: scientific notation below 1e-4 (p-values), else four decimals."""
    if value is None:
        return "-"
    number = float(value)
    if not math.isfinite(number):
        return str(number)
    if number != 0 and abs(number) < 1e-4:
        return f"{number:.2e}"
    return f"{number:.4f}"


def _num(value: float | None, digits: int = 4) -> str:
    if value is None:
        return "-"
    number = float(value)
    return "nan" if math.isnan(number) else f"{number:.{digits}f}"


def _pct(value: float | None) -> str:
    if value is None:
        return "-"
    percent = float(value) * 100
    return f"{percent:.0f}%" if percent == round(percent) else f"{percent:.1f}%"
