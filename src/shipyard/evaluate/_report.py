"""The HTML report of a run, with its model card when it has one: one self-contained file
(plots embedded, no external asset) to look at, not read.

Pure: it takes the run's results as objects and returns HTML; the pipeline stores it as the
run's ``report.html`` artifact.
"""

from __future__ import annotations

import base64
import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import jinja2
import markupsafe

from shipyard.data import CheckResult, Signature
from shipyard.evaluate._card import ModelCard
from shipyard.evaluate._metrics import KEY_METRICS, Evaluation
from shipyard.evaluate._plots import (
    confusion_matrix_png,
    cv_scores_png,
    histogram_svg,
    pr_curves_png,
    regression_png,
    roc_curves_png,
)

__all__ = ["CandidateRow", "RunReport", "render_report_plots", "render_run_report"]


@dataclass(frozen=True)
class CandidateRow:
    """One candidate in the report: its CV scores on every metric, per fold."""

    label: str
    model: str
    folds: Sequence[dict[str, float]]
    mean: dict[str, float]
    std: dict[str, float]
    fit_seconds: float


@dataclass(frozen=True)
class RunReport:
    """Everything the run report shows.

    Attributes:
        project: the project's name.
        run_id: the run.
        task, metric: the task and the primary metric.
        candidates: cross-validated candidates, best first.
        holdout: the winner's evaluation on the holdout rows.
        validation: every validation check's result.
        signature: the model's inputs and target.
        model_uri: the registered version, and ``gate`` the promotion decision.
        facts: further key/value lines (data fingerprint, rows, lineage).
        card: the model card's sections (see :func:`build_model_card`); without one the
            report shows the metrics and plots only.
        plots: the plots, drawn beforehand by :func:`render_report_plots` (else drawn when
            the report renders).
    """

    project: str
    run_id: str
    task: str
    metric: str
    candidates: Sequence[CandidateRow]
    holdout: Evaluation
    validation: Sequence[CheckResult]
    signature: Signature
    model_uri: str
    gate: str
    facts: dict[str, Any] = field(default_factory=dict)
    created_at: float | None = None
    card: ModelCard | None = None
    plots: Sequence[tuple[str, str]] | None = None


def render_run_report(report: RunReport) -> str:
    """Render the report as one HTML page with its plots embedded as PNG data URIs."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("shipyard.evaluate", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
    )
    env.filters["num"] = _num
    env.filters["pvalue"] = _pvalue
    env.filters["uri"] = _data_uri
    env.globals["sparkline"] = _sparkline
    template = env.get_template("run_report.html.j2")
    created = dt.datetime.fromtimestamp(report.created_at or dt.datetime.now().timestamp())
    return template.render(
        r=report,
        created=created.strftime("%Y-%m-%d %H:%M"),
        plots=(
            render_report_plots(report.task, report.metric, report.candidates, report.holdout)
            if report.plots is None
            else report.plots
        ),
        failed=[c for c in report.validation if not c.passed],
        n_passed=sum(c.passed for c in report.validation),
        metric_names=sorted(report.holdout.metrics),
        key_metrics=[m for m in KEY_METRICS.get(report.task, ()) if m != report.metric],
        card=report.card,
        intervals=_intervals(report.card),
        card_metrics=list(dict.fromkeys([report.metric, *KEY_METRICS.get(report.task, ())])),
    )


def render_report_plots(
    task: str, metric: str, candidates: Sequence[CandidateRow], holdout: Evaluation
) -> list[tuple[str, str]]:
    """(title, data URI) for every report plot that applies to the task: the candidates' CV
    scores on ``metric`` and the holdout's plots."""
    ev = holdout
    pngs: list[tuple[str, bytes | None]] = []
    if candidates:
        folds = [[f[metric] for f in c.folds] for c in candidates]
        labels = [c.label for c in candidates]
        pngs.append(("Cross-validation", cv_scores_png(labels, folds, metric)))
    if task == "regression" and ev.y_true is not None and ev.y_pred is not None:
        pngs.append(("Holdout predictions", regression_png(ev.y_true, ev.y_pred)))
    if ev.confusion_matrix is not None and ev.labels is not None:
        pngs.append(("Confusion matrix", confusion_matrix_png(ev.labels, ev.confusion_matrix)))
    if ev.proba is not None and ev.y_true is not None and ev.labels is not None:
        pngs.append(("ROC", roc_curves_png(task, ev.y_true, ev.proba, ev.labels)))
        pngs.append(("Precision-recall", pr_curves_png(task, ev.y_true, ev.proba, ev.labels)))
    return [(title, _data_uri(png)) for title, png in pngs if png is not None]


def _intervals(card: ModelCard | None) -> dict[str, Any]:
    """The holdout metrics' intervals, by metric (empty without a card or a bootstrap)."""
    if card is None or card.holdout.value is None:
        return {}
    return dict(card.holdout.value)


def _sparkline(bins: Any, label: str) -> markupsafe.Markup:
    return markupsafe.Markup(histogram_svg(list(bins), label))  # histogram_svg escapes the label


def _pvalue(value: Any) -> str:
    if value is None:
        return "-"
    number = float(value)
    if math.isnan(number):
        return "nan"
    if number < 1e-300:
        return "< 1e-300"
    return f"{number:.2e}" if number < 1e-3 else f"{number:.3f}"


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _num(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    number = float(value)
    return "nan" if math.isnan(number) else f"{number:.{digits}f}"
