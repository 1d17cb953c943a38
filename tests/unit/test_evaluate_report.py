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


def _card_and_holdout(**options: object) -> tuple[object, object]:
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    from shipyard.evaluate import build_model_card
    from shipyard.spec import EvaluationSpec
    from shipyard.train import make_pipeline, predict_evaluate

    rng = np.random.default_rng(0)
    n = 300
    x = pd.DataFrame({"x": rng.random(n), "c": rng.choice(["a", "<b>"], n).astype(object)})
    y = pd.Series(np.where(x["x"] + rng.normal(scale=0.2, size=n) > 0.5, "yes", "no"))
    model = make_pipeline(SIG, LogisticRegression()).fit(x.iloc[:200], y.iloc[:200])
    holdout = predict_evaluate(
        model, x.iloc[200:], y.iloc[200:], task="binary", classes=SIG.classes
    )
    holdout.metrics["m"] = holdout.metrics["f1"]  # the report's made-up primary metric
    card = build_model_card(
        model=model,
        x_train=x.iloc[:200],
        y_train=y.iloc[:200],
        x_test=x.iloc[200:],
        y_test=y.iloc[200:],
        task="binary",
        metric="f1",
        classes=SIG.classes,
        options=EvaluationSpec(**{"bootstrap": 100, **options}),  # type: ignore[arg-type]
        seed=0,
        sensitive=pd.DataFrame({"<group>": x["c"].iloc[200:].to_numpy()}),
        cv_folds=[{"f1": 0.8}, {"f1": 0.9}],
        holdout=holdout,
    )
    return card, holdout


def test_report_with_a_model_card_renders_every_section_accessibly() -> None:
    import dataclasses
    import re

    card, holdout = _card_and_holdout()
    report = dataclasses.replace(_report("binary", holdout), card=card)
    html = render_run_report(report)
    for section in (
        "card-cv",
        "card-profile",
        "card-fairness",
        "card-calibration",
        "card-importance",
        "card-shap",
        "card-learning",
        "card-timings",
        "lineage",
    ):
        assert f'id="{section}"' in html, section
    images = re.findall(r"<img [^>]*>", html)
    assert len(images) == 4 + 4  # the report's plots, then calibration, importance, SHAP, curve
    assert all(re.search(r'alt="[^"]{10,}"', img) for img in images)
    assert html.count('<svg class="spark" role="img" aria-label="distribution of') == 2
    assert "demographic_parity_difference" in html and "equalized_odds_difference" in html
    assert "95% interval" in html and " to " in html
    assert "&lt;group&gt;" in html and "<group>" not in html
    assert 'src="http' not in html and "<link" not in html and "<script" not in html


def test_report_shows_why_a_card_section_is_missing() -> None:
    import dataclasses

    card, holdout = _card_and_holdout(explain=False, learning_curve=False, bootstrap=0)
    html = render_run_report(dataclasses.replace(_report("binary", holdout), card=card))
    assert "explanations are off (evaluation.explain: false)" in html
    assert "bootstrap intervals are off" in html
    assert html.count("<img") == 4 + 1  # only the calibration plot joins the report's own
