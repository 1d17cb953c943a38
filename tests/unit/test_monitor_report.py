"""The monitoring report: verdict first, a histogram per drifted column, self-contained,
escaped, history charts only with history, and every awkward column renders."""

from __future__ import annotations

import base64
import dataclasses
import re
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from shipyard.monitor import (
    AlertLine,
    DriftReport,
    HistoryPoint,
    MonitorReport,
    compare_performance,
    detect_drift,
    render_monitor_report,
)
from shipyard.monitor._report import MAX_DRIFT_FIGURES, _stat

SCRIPT = "<script>alert(1)</script>"
PNG = b"\x89PNG\r\n\x1a\n"
WINDOW = (datetime(2024, 5, 1, tzinfo=UTC), datetime(2024, 5, 8, tzinfo=UTC))


def _frames(n: int = 600, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Three drifted columns (one named like a script), two stable ones, one all missing."""
    rng = np.random.default_rng(seed)
    reference = pd.DataFrame(
        {
            "shift": rng.normal(0, 1, n),
            "colour": rng.choice(["red", "green", "blue"], n),
            SCRIPT: rng.normal(0, 1, n),
            "stable": rng.normal(0, 1, n),
            "size": rng.choice(["s", "m", "l"], n),
            "empty": rng.normal(0, 1, n),
        }
    )
    current = pd.DataFrame(
        {
            "shift": rng.normal(2, 1, n),
            "colour": rng.choice(["red", "green", "blue", "black"], n, p=[0.1, 0.1, 0.1, 0.7]),
            SCRIPT: rng.normal(0, 3, n),
            "stable": rng.normal(0, 1, n),
            "size": rng.choice(["s", "m", "l"], n),
            "empty": np.full(n, np.nan),
        }
    )
    return reference, current


def _report(
    reference: pd.DataFrame, current: pd.DataFrame, drift: DriftReport | None = None, **kw: object
) -> MonitorReport:
    fields: dict[str, object] = {
        "title": "penguins/3",
        "window": WINDOW,
        "inputs": drift if drift is not None else detect_drift(reference, current),
        "predictions": None,
        "performance": None,
        "reference": reference,
        "current": current,
        "created_at": datetime(2024, 5, 8, 12, tzinfo=UTC),
    }
    fields.update(kw)
    return MonitorReport(**fields)  # type: ignore[arg-type]


def _classifier(n: int = 500, seed: int = 1) -> dict[str, object]:
    """Prediction frames, their drift report and a performance report, for a binary model."""
    rng = np.random.default_rng(seed)
    ref_p = rng.beta(2, 2, n)
    cur_p = rng.beta(5, 1.5, n)
    reference = pd.DataFrame({"prediction": np.where(ref_p > 0.5, "yes", "no"), "proba.yes": ref_p})
    current = pd.DataFrame({"prediction": np.where(cur_p > 0.5, "yes", "no"), "proba.yes": cur_p})
    drift = detect_drift(
        reference, current, kinds={"prediction": "categorical", "proba.yes": "numeric"}
    )
    labelled = np.arange(n) < n // 2
    y_true = np.where(rng.random(n // 2) < 0.6, "yes", "no")
    performance = compare_performance(
        "binary",
        {"accuracy": 0.91, "f1": 0.9, "roc_auc": 0.95, "precision": 0.9, "recall": 0.9},
        y_pred=current["prediction"].to_numpy(),
        proba=np.column_stack([1 - cur_p, cur_p]),
        classes=["no", "yes"],
        y_true=y_true,
        labelled=labelled,
    )
    return {
        "predictions": drift,
        "performance": performance,
        "reference_predictions": reference,
        "current_predictions": current,
    }


def _images(html: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([^"]+)"', html)]


def _section(html: str, name: str) -> str:
    start = html.index(f'<section id="{name}"')
    return html[start : html.index("</section>", start)]


def _history(n: int, metric: str = "accuracy") -> list[HistoryPoint]:
    return [
        HistoryPoint(
            at=1.714e9 + i * 86_400,
            share_drifted=0.1 * i,
            drifted=i > 4,
            estimated={metric: 0.9 - 0.01 * i},
            realised={metric: None if i % 2 else 0.88 - 0.01 * i},
        )
        for i in range(n)
    ]


# -- structure ---------------------------------------------------------------------------------


def test_the_verdict_comes_first_and_each_drifted_column_is_drawn() -> None:
    reference, current = _frames()
    report = _report(reference, current)
    drifted = [c.column for c in report.inputs.columns if c.drifted]
    assert sorted(drifted) == sorted(["shift", "colour", SCRIPT])
    html = render_monitor_report(report)
    verdict = html.index('<section id="verdict"')
    assert verdict < html.index('<section id="input-drift"') < html.index('id="input-histograms"')
    assert "Data drift: 3 of 5 input columns drifted" in _section(html, "verdict")
    assert html.count("<img") == len(drifted) == 3
    figures = _section(html, "input-histograms")
    for name in ("shift", "colour", "&lt;script&gt;alert(1)&lt;/script&gt;"):
        assert f'alt="{name}"' in figures
    assert 'alt="stable"' not in html and 'alt="size"' not in html
    assert all(png.startswith(PNG) for png in _images(html))


def test_the_drift_table_puts_drifted_columns_first_with_statistics_and_verdicts() -> None:
    reference, current = _frames()
    report = _report(reference, current)
    table = _section(render_monitor_report(report), "input-drift")
    rows = re.findall(r"<tr><td>(.*?)</td>", table)
    names = [re.sub(r"<[^>]+>", "", row) for row in rows]
    assert names[:3] == ["shift", "colour", "&lt;script&gt;alert(1)&lt;/script&gt;"]
    assert names[3:] == ["stable", "size", "empty"]
    assert table.count('class="tag err">drifted') == 3
    assert table.count('class="tag ok">no drift') == 2
    assert table.count('class="tag none">not tested') == 1
    assert "the current sample has no values in this column" in table
    assert "0% &rarr; 100%" in table  # the all-missing column's missing share
    shift = report.inputs.column("shift")
    assert shift.method == "ks" and shift.value is not None and shift.value < 1e-4
    assert f"{shift.value:.2e}" in table and "e-" in _stat(shift.value)
    assert _stat(0.25) == "0.2500" and _stat(None) == "-"
    assert '<a href="#input-1">shift</a>' in table


def test_user_text_is_escaped() -> None:
    reference, current = _frames()
    alerts = [AlertLine(f"drift_share > 0.5 {SCRIPT}", "opened", 0.6)]
    html = render_monitor_report(_report(reference, current, title=f"m/1 {SCRIPT}", alerts=alerts))
    assert SCRIPT not in html
    assert "<script" not in html
    assert html.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 5  # title x2, table, fig, alert


def test_the_page_is_self_contained() -> None:
    reference, current = _frames()
    history = _history(3)
    html = render_monitor_report(
        _report(reference, current, history=history, **_classifier())  # type: ignore[arg-type]
    )
    assert "http://" not in html and "https://" not in html
    assert "<link" not in html and "<script" not in html and "@import" not in html
    sources = re.findall(r'src="([^"]*)"', html)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    assert all(png.startswith(PNG) and b"matplotlib.org" not in png for png in _images(html))


def test_alerts_are_listed_and_counted_in_the_verdict() -> None:
    reference, current = _frames()
    alerts = [
        AlertLine("drift_share above 0.5", "opened", 0.6),
        AlertLine("f1_drop above 0.1", "ongoing", 0.2),
        AlertLine("missing_increase above 0.2", "resolved", 0.0),
        AlertLine("prediction_share_change above 0.3", "no data", None),
    ]
    html = render_monitor_report(_report(reference, current, alerts=alerts))
    assert "2 of 4 alert rules firing" in _section(html, "verdict")
    section = _section(html, "alerts")
    assert section.count('class="tag err"') == 2 and 'class="tag ok">resolved' in section
    assert html.index('id="alerts"') < html.index('id="input-drift"')
    quiet = render_monitor_report(_report(reference, current))
    assert 'id="alerts"' not in quiet and "no alert rules evaluated" in quiet


def test_no_drift_is_a_calm_verdict() -> None:
    rng = np.random.default_rng(3)
    reference = pd.DataFrame({"a": rng.normal(size=400), "b": rng.choice(["x", "y"], 400)})
    current = pd.DataFrame({"a": rng.normal(size=400), "b": rng.choice(["x", "y"], 400)})
    html = render_monitor_report(_report(reference, current))
    assert '<section id="verdict" class="ok">' in html
    assert "No data drift: 0 of 2 input columns drifted" in html
    assert "<img" not in html and 'id="input-histograms"' not in html


# -- predictions and performance ---------------------------------------------------------------


def test_a_classifier_shows_prediction_charts_and_estimated_performance() -> None:
    reference, current = _frames()
    extra = _classifier()
    predictions = extra["predictions"]
    assert isinstance(predictions, DriftReport) and len(predictions.tested) == 2
    html = render_monitor_report(_report(reference, current, **extra))  # type: ignore[arg-type]
    drifted = sum(1 for c in detect_drift(reference, current).columns if c.drifted)
    assert html.count("<img") == drifted + 2 == 3 + 2
    section = _section(html, "prediction-drift")
    assert 'alt="prediction (predicted labels)"' in section
    assert 'alt="probability of yes"' in section
    performance = _section(html, "performance")
    assert "<th>estimated</th>" in performance and "<th>realised</th>" in performance
    assert "250 of 500 predictions in the window have a label" in performance
    assert "largest drop" in _section(html, "verdict")
    assert html.index('id="prediction-drift"') < html.index('id="performance"')
    assert html.index('id="performance"') < html.index('id="methods"')
    assert "CBPE" in _section(html, "methods") and "DataDriftPreset" in html


def test_an_untested_prediction_column_is_not_drawn() -> None:
    reference, current = _frames()
    extra = _classifier()
    cur = extra["current_predictions"]
    assert isinstance(cur, pd.DataFrame)
    cur = cur.assign(**{"proba.yes": np.nan})
    ref = extra["reference_predictions"]
    assert isinstance(ref, pd.DataFrame)
    kinds = {"prediction": "categorical", "proba.yes": "numeric"}
    extra.update(
        current_predictions=cur,
        predictions=detect_drift(ref, cur, kinds=kinds),  # type: ignore[arg-type]
    )
    html = render_monitor_report(_report(reference, current, **extra))  # type: ignore[arg-type]
    assert html.count("<img") == 3 + 1
    assert 'alt="probability of yes"' not in html


def test_a_regression_model_renders_realised_performance_only() -> None:
    rng = np.random.default_rng(4)
    reference = pd.DataFrame({"x": rng.normal(size=300), "k": rng.integers(0, 5, 300)})
    current = pd.DataFrame({"x": rng.normal(1, 1, size=300), "k": rng.integers(0, 5, 300)})
    ref_pred = pd.DataFrame({"prediction": rng.normal(10, 2, 300)})
    cur_pred = pd.DataFrame({"prediction": rng.normal(12, 2, 300)})
    predictions = detect_drift(ref_pred, cur_pred, kinds={"prediction": "numeric"})
    y_pred = cur_pred["prediction"].to_numpy()
    performance = compare_performance(
        "regression",
        {"mae": 1.0, "rmse": 1.3, "r2": 0.8, "mape": 0.1},
        y_pred=y_pred,
        y_true=y_pred[:100] + rng.normal(0, 2, 100),
        labelled=np.arange(300) < 100,
    )
    assert all(m.estimated is None for m in performance.metrics)
    html = render_monitor_report(
        _report(
            reference,
            current,
            predictions=predictions,
            performance=performance,
            reference_predictions=ref_pred,
            current_predictions=cur_pred,
            history=_history(4, "rmse"),
        )
    )
    section = _section(html, "performance")
    assert "<th>estimated</th>" not in section and "<th>realised</th>" in section
    assert "No estimate" in section and "mae" in section and "rmse" in section
    assert 'alt="prediction (predicted values)"' in html
    drifted = sum(1 for c in detect_drift(reference, current).columns if c.drifted)
    assert html.count("<img") == drifted + 1 + 2  # inputs, prediction, two charts over time


# -- history -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("points", "charts"), [(0, 0), (1, 0), (2, 2), (5, 2)])
def test_charts_over_time_need_two_earlier_checks(points: int, charts: int) -> None:
    reference, current = _frames()
    extra = _classifier()
    base = render_monitor_report(_report(reference, current, **extra))  # type: ignore[arg-type]
    html = render_monitor_report(
        _report(reference, current, history=_history(points), **extra)  # type: ignore[arg-type]
    )
    assert html.count("<img") == base.count("<img") + charts
    section = _section(html, "performance")
    assert ('alt="Performance over time"' in section) == bool(charts)
    assert ('alt="Input drift over time"' in section) == bool(charts)
    if not charts:
        assert f"at least two earlier checks ({points} so far)" in section


def test_history_without_performance_charts_drift_only() -> None:
    reference, current = _frames()
    history = [HistoryPoint(1.714e9 + i * 3600, 0.2, False, {}, {}) for i in range(3)]
    html = render_monitor_report(_report(reference, current, history=history))
    assert 'alt="Input drift over time"' in html and 'alt="Performance over time"' not in html
    assert "Performance was not computed" in html
    assert html.count("<img") == 3 + 1


# -- awkward data --------------------------------------------------------------------------------


def _all_drifted(report: DriftReport) -> DriftReport:
    """Every tested column marked drifted, to draw columns no test would call drifted."""
    columns = tuple(
        dataclasses.replace(c, drifted=True) if c.drifted is not None else c for c in report.columns
    )
    return dataclasses.replace(report, columns=columns)


def test_awkward_columns_render() -> None:
    rng = np.random.default_rng(5)
    n = 12_000
    reference = pd.DataFrame(
        {
            "constant": np.full(n, 3.0),
            "one category": ["only"] * n,
            "many": [f"k{i % 10_000}" for i in range(n)],
            "with $math$ and $": rng.choice(["$x$", "a$b", "c"], n),
            "integers": rng.integers(0, 7, n),
            "flags": rng.random(n) < 0.3,
            "mixed": rng.integers(0, 3, n),
            "with inf": np.where(rng.random(n) < 0.1, np.inf, rng.normal(size=n)),
            "huge range": rng.choice([-1e308, 0.0, 1e308], n),
            "nullable": pd.array(rng.integers(0, 100, n), dtype="Int64"),
            "partly missing": np.where(rng.random(n) < 0.5, np.nan, rng.normal(size=n)),
            "all missing": np.full(n, np.nan),
            "category": pd.Categorical(rng.choice(["a", "b"], n), categories=["a", "b", "z"]),
        }
    )
    current = reference.sample(frac=1.0, random_state=1).reset_index(drop=True)
    current["many"] = [f"j{i % 10_000}" for i in range(n)]
    current["mixed"] = current["mixed"].astype(str)
    current["nullable"] = current["nullable"].astype("Int64").where(rng.random(n) < 0.8)
    kinds = dict.fromkeys(("one category", "many", "with $math$ and $", "flags"), "categorical")
    kinds |= dict.fromkeys(("mixed", "category"), "categorical")
    kinds |= {c: "numeric" for c in reference.columns if c not in kinds}
    drift = _all_drifted(detect_drift(reference, current, kinds=kinds))  # type: ignore[arg-type]
    tested = [c.column for c in drift.columns if c.drifted]
    assert "all missing" not in tested and len(tested) == len(kinds) - 1
    html = render_monitor_report(_report(reference, current, drift))
    assert html.count("<img") == len(tested)
    assert all(png.startswith(PNG) for png in _images(html))
    figures = _section(html, "input-histograms")
    assert "the 15 most frequent of 20,000 categories, the other 19,985 together" in figures
    assert "all 1 category." in figures and "1 shared bin over [2.5, 3.5]" in figures
    inf = reference["with inf"]
    finite = int(np.isfinite(inf).sum())
    assert f"{finite:,} reference and {finite:,} current" in figures


def test_an_empty_window_renders() -> None:
    reference, _ = _frames()
    current = reference.iloc[:0]
    drift = detect_drift(reference, current)
    assert not drift.tested
    html = render_monitor_report(_report(reference, current, drift, window=(None, None)))
    assert "No input column could be tested" in html
    assert "every logged prediction" in html and "<img" not in html
    assert '<section id="verdict" class="warn">' in html


def test_no_columns_at_all_renders() -> None:
    empty = pd.DataFrame()
    drift = DriftReport((), 0.5, 0, 0)
    html = render_monitor_report(_report(empty, empty, drift, window=(WINDOW[0], None)))
    assert "The check had no input column to test." in html
    assert "to the last" in html


def test_figures_are_capped_and_the_rest_named() -> None:
    rng = np.random.default_rng(6)
    n, k = 200, MAX_DRIFT_FIGURES + 3
    reference = pd.DataFrame({f"c{i:02d}": rng.normal(0, 1, n) for i in range(k)})
    current = pd.DataFrame({f"c{i:02d}": rng.normal(3, 1, n) for i in range(k)})
    html = render_monitor_report(_report(reference, current))
    assert html.count("<img") == MAX_DRIFT_FIGURES
    assert "Not drawn (3): c20, c21, c22." in html


def test_large_frames_bin_every_value() -> None:
    rng = np.random.default_rng(7)
    n = 200_000
    reference = pd.DataFrame({"x": rng.normal(size=n), "c": rng.choice(list("abc"), n)})
    current = pd.DataFrame({"x": rng.normal(0.3, 1, n), "c": rng.choice(list("abcd"), n)})
    current.loc[:99, "x"] = np.nan
    html = render_monitor_report(_report(reference, current))
    figures = _section(html, "input-histograms")
    assert f"none sampled: {n:,} reference and {n - 100:,} current" in figures
    assert "Left out as missing or infinite: 0 reference and 100 current values." in figures
    assert f"none sampled: {n:,} reference and {n:,} current" in figures  # the categorical one
