"""The holdout ROC and precision-recall curves a run stored (``curves.json``), as charts:
one line per class on a run's page, one line per run (a chart per class) when runs are
compared. The file is read defensively: anything that is not a well-formed curve is skipped,
never an error of the page.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "CURVES_ARTIFACT",
    "MAX_CURVE_CHARTS",
    "RunCurve",
    "compare_curve_charts",
    "read_curves",
    "run_curve_charts",
]

CURVES_ARTIFACT = "curves.json"
MAX_CURVE_CHARTS = 20  # 10 classes, ROC and PR each
_MAX_POINTS = 2_000  # the pipeline stores at most 200 a curve: more is not ours
_MAX_CURVES = 50


@dataclass(frozen=True)
class _Kind:
    title: str
    x: str
    y: str
    area: str
    area_name: str
    x_label: str
    y_label: str


KINDS = {
    "roc": _Kind("ROC", "fpr", "tpr", "auc", "AUC", "false positive rate", "true positive rate"),
    "pr": _Kind(
        "Precision-recall", "recall", "precision", "average_precision", "AP", "recall", "precision"
    ),
}


@dataclass(frozen=True)
class RunCurve:
    """One stored curve: its kind (``roc``, ``pr``), class, points and area."""

    kind: str
    label: str
    x: list[float]
    y: list[float]
    area: float | None


def read_curves(data: Any) -> tuple[str, list[RunCurve]] | None:
    """The task and the curves of a parsed ``curves.json``; ``None`` without any usable one."""
    if not isinstance(data, dict):
        return None
    curves = []
    for kind, spec in KINDS.items():
        entries = data.get(kind)
        for entry in entries[:_MAX_CURVES] if isinstance(entries, list) else []:
            curve = _curve(kind, spec, entry)
            if curve is not None:
                curves.append(curve)
    task = data.get("task")
    return (task if isinstance(task, str) else "", curves) if curves else None


def _curve(kind: str, spec: _Kind, entry: Any) -> RunCurve | None:
    if not isinstance(entry, dict):
        return None
    x, y = _numbers(entry.get(spec.x)), _numbers(entry.get(spec.y))
    if x is None or y is None or len(x) != len(y) or not 2 <= len(x) <= _MAX_POINTS:
        return None
    area = _numbers([entry.get(spec.area)])
    return RunCurve(kind, str(entry.get("label", "?")), x, y, area[0] if area else None)


def _numbers(values: Any) -> list[float] | None:
    if not isinstance(values, list):
        return None
    ok = all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values
    )
    return [float(v) for v in values] if ok else None


def run_curve_charts(curves: Sequence[RunCurve]) -> list[dict[str, Any]]:
    """A run's charts: ROC, then precision-recall, each with a line per class."""
    charts = []
    for kind, spec in KINDS.items():
        lines = [(c.label, c) for c in curves if c.kind == kind]
        if lines:
            charts.append(_chart(kind, f"{spec.title} (holdout)", lines))
    return charts


def compare_curve_charts(
    runs: Sequence[tuple[str, str, Sequence[RunCurve]]],
) -> list[dict[str, Any]]:
    """The compared runs' charts: for each class (a binary model's positive class), a ROC
    and a precision-recall chart with a line per run.

    Args:
        runs: each run's label, task and curves (runs without curves are left out).
    """
    groups: dict[tuple[str, str], list[tuple[str, RunCurve]]] = {}
    tasks: dict[str, str] = {}
    for run_label, task, curves in runs:
        for curve in curves:
            groups.setdefault((curve.label, curve.kind), []).append((run_label, curve))
            tasks.setdefault(curve.label, task)
    charts = []
    for (label, kind), lines in groups.items():
        which = "positive class" if tasks[label] == "binary" else "class"
        charts.append(_chart(kind, f"{KINDS[kind].title}: {which} {label}", lines))
    order = {key: i for i, key in enumerate(dict.fromkeys(label for label, _k in groups))}
    charts.sort(key=lambda c: (order[c["class"]], list(KINDS).index(c["kind"])))
    return charts[:MAX_CURVE_CHARTS]


def _chart(kind: str, title: str, lines: Sequence[tuple[str, RunCurve]]) -> dict[str, Any]:
    spec = KINDS[kind]
    series = [
        {"label": _line_label(name, spec, curve), "x": curve.x, "y": curve.y}
        for name, curve in lines
    ]
    summary = "; ".join(
        f"{name}: {spec.area_name} {curve.area:.3f}" if curve.area is not None else name
        for name, curve in lines
    )
    return {
        "title": title,
        "kind": kind,
        "class": lines[0][1].label,
        "x_label": spec.x_label,
        "y_label": spec.y_label,
        "series": series,
        "summary": f"{spec.x_label} against {spec.y_label}: {summary}",
    }


def _line_label(name: str, spec: _Kind, curve: RunCurve) -> str:
    return f"{name}: {spec.area_name} {curve.area:.3f}" if curve.area is not None else name
