"""Plots and the HTML run report: every task renders, plots only where they apply."""

from __future__ import annotations

import numpy as np
import pytest

from shipyard.data import CheckResult, ColumnSchema, Signature
from shipyard.evaluate import CandidateRow, RunReport, evaluate_predictions, render_run_report
from shipyard.evaluate._plots import pr_curves_png, roc_curves_png

PNG = b"\x89PNG"
SIG = Signature(
    inputs=(
        ColumnSchema(
            name="x", kind="number", dtype="float64", nullable=False, minimum=0, maximum=1
        ),
        ColumnSchema(
            name="c", kind="category", dtype="str", nullable=True, categories=("a", "<b>")
        ),
    ),
    classes=("no", "yes"),
)


def _report(task: str, holdout: object) -> RunReport:
    rows = [
        CandidateRow("lgbm", "lightgbm", [{"m": 0.8}, {"m": 0.9}], {"m": 0.85}, {"m": 0.05}, 1.2),
        CandidateRow("lin", "linear", [{"m": 0.7}, {"m": 0.75}], {"m": 0.725}, {"m": 0.02}, 0.1),
    ]
    checks = [
        CheckResult("range", "x", "error", 0, 10, message="range ok"),
        CheckResult("not_null", "c", "warning", 2, 10, (3, 7), (None, None), "2 of 10 rows <fail>"),
    ]
    return RunReport(
        project="demo",
        run_id="0123456789abcdef",
        task=task,
        metric="m",
        candidates=rows,
        holdout=holdout,  # type: ignore[arg-type]
        validation=checks,
        signature=SIG,
        model_uri="models:/demo@production",
        gate="promoted to production",
        facts={"rows used": "10 of 10"},
    )


def test_binary_report_has_every_classification_plot_and_escapes_text() -> None:
    rng = np.random.default_rng(0)
    y = rng.choice(["no", "yes"], 50)
    p = np.clip((y == "yes") * 0.6 + rng.random(50) * 0.4, 0, 1)
    ev = evaluate_predictions(
        "binary", y, np.where(p > 0.5, "yes", "no"), np.column_stack([1 - p, p]), ["no", "yes"]
    )
    ev.metrics["m"] = 0.9
    html = render_run_report(_report("binary", ev))
    assert html.count("<img") == 4  # CV, confusion matrix, ROC, PR
    assert "models:/demo@production" in html and "lgbm" in html
    assert "&lt;fail&gt;" in html and "&lt;b&gt;" in html and "<fail>" not in html
    assert "1 did not" in html


def test_regression_report_plots_predictions() -> None:
    y = np.linspace(0, 10, 40)
    ev = evaluate_predictions("regression", y, y + np.sin(y))
    ev.metrics["m"] = 1.0
    html = render_run_report(_report("regression", ev))
    assert html.count("<img") == 2  # CV and predicted-vs-actual
    assert "Confusion" not in html


@pytest.mark.parametrize("plot", [roc_curves_png, pr_curves_png])
def test_curves_need_both_outcomes(plot: object) -> None:
    proba = np.array([[0.2, 0.8], [0.3, 0.7]])
    assert plot("binary", ["yes", "yes"], proba, ["no", "yes"]) is None  # type: ignore[operator]
    multi = np.array([[0.2, 0.5, 0.3], [0.6, 0.2, 0.2], [0.1, 0.1, 0.8]])
    png = plot("multiclass", ["b", "a", "c"], multi, ["a", "b", "c"])  # type: ignore[operator]
    assert png is not None and png.startswith(PNG)
