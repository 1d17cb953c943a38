"""The model card in a real browser: a headless Chromium opens a run report with a card and
every plot must have rendered, every section be there, and the console stay clean.

Needs ``/usr/bin/chromium`` and ``/usr/bin/chromedriver`` (``.ci/run`` installs them): skipped
without them, except under ``CI=true``, where a missing browser fails the test.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from browser import headless_chrome
from shipyard.data import CheckResult, ColumnSchema, Signature
from shipyard.evaluate import CandidateRow, RunReport, build_model_card, render_run_report
from shipyard.spec import EvaluationSpec

pytestmark = [pytest.mark.browser]

SECTIONS = (
    "summary",
    "candidates",
    "holdout",
    "plots",
    "card-cv",
    "card-profile",
    "card-fairness",
    "card-calibration",
    "card-importance",
    "card-shap",
    "card-learning",
    "card-timings",
    "lineage",
    "validation",
    "signature",
)
CARD_PLOTS = ("card-calibration", "card-importance", "card-shap", "card-learning")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with headless_chrome() as driver:
        yield driver


def _penguins() -> tuple[pd.DataFrame, pd.Series, Signature]:
    """Palmer penguins: predict sex from measurements, species and island (real data, binary,
    with missing values and a sensitive column)."""
    from palmerpenguins import load_penguins

    frame = load_penguins().dropna(subset=["sex"]).sample(frac=1.0, random_state=0)
    numbers = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "year"]
    categories = ["species", "island"]
    x = frame[numbers + categories].reset_index(drop=True)
    x[numbers] = x[numbers].astype("float64")
    for name in categories:
        x[name] = x[name].astype(object)
    inputs = [
        ColumnSchema(name=n, kind="number", dtype="float64", nullable=True) for n in numbers
    ] + [
        ColumnSchema(
            name=n,
            kind="category",
            dtype="str",
            nullable=True,
            categories=tuple(sorted(x[n].unique())),
        )
        for n in categories
    ]
    signature = Signature(inputs=tuple(inputs), classes=("female", "male"))
    return x, frame["sex"].astype(str).reset_index(drop=True), signature


@pytest.fixture(scope="module")
def report_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import StratifiedKFold

    from shipyard.train import cross_validate, make_pipeline, predict_evaluate

    x, y, signature = _penguins()
    cut = int(len(x) * 0.75)
    x_train, y_train, x_test, y_test = x.iloc[:cut], y.iloc[:cut], x.iloc[cut:], y.iloc[cut:]
    pipeline = make_pipeline(signature, HistGradientBoostingClassifier(max_iter=50))
    cv = cross_validate(
        pipeline, x_train, y_train, cv=StratifiedKFold(3), task="binary", classes=signature.classes
    )
    started = time.perf_counter()
    model = pipeline.fit(x_train, y_train)
    fit_seconds = time.perf_counter() - started
    holdout = predict_evaluate(model, x_test, y_test, task="binary", classes=signature.classes)
    card = build_model_card(
        model=model,
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        task="binary",
        metric="roc_auc",
        classes=signature.classes,
        options=EvaluationSpec(sensitive=["island", "species"]),
        seed=0,
        sensitive=x_test[["island", "species"]],
        deadline=time.monotonic() + 60,
        cv_folds=cv.folds,
        holdout=holdout,
        fit_seconds=fit_seconds,
    )
    report = RunReport(
        project="penguins",
        run_id="0123456789abcdef0123456789abcdef",
        task="binary",
        metric="roc_auc",
        candidates=[CandidateRow("hgb", "hist_gradient_boosting", cv.folds, cv.mean, cv.std, 0.5)],
        holdout=holdout,
        validation=[CheckResult("not_null", "sex", "warning", 11, 344, message="11 rows <x>")],
        signature=signature,
        model_uri="models:/penguins/1",
        gate="promoted to production",
        facts={"rows used": f"{len(x)} of 344", "git commit": "abc1234"},
        created_at=1_700_000_000.0,
        card=card,
    )
    path = tmp_path_factory.mktemp("card") / "report.html"
    path.write_text(render_run_report(report), encoding="utf-8")
    return path


def test_every_section_and_plot_of_the_model_card_renders(browser: Any, report_file: Path) -> None:
    from selenium.webdriver.common.by import By

    browser.get(report_file.as_uri())
    for section in SECTIONS:
        assert browser.find_element(By.ID, section).is_displayed(), section
    images = browser.execute_script(
        "return Array.from(document.images).map(i => ({alt: i.alt, complete: i.complete,"
        " width: i.naturalWidth, section: i.closest('section').id}))"
    )
    assert len(images) >= 4 + len(CARD_PLOTS)
    broken = [i for i in images if not (i["complete"] and i["width"] > 0)]
    assert broken == [], f"plots that did not render: {broken}"
    assert all(len(i["alt"]) > 10 for i in images), images
    assert {i["section"] for i in images} >= set(CARD_PLOTS)
    sparklines = browser.execute_script(
        "return Array.from(document.querySelectorAll('svg.spark'))"
        ".map(s => s.getBoundingClientRect().width)"
    )
    assert len(sparklines) == 7 and min(sparklines) > 0
    fairness = browser.find_element(By.ID, "card-fairness").text
    assert "demographic_parity_difference" in fairness and "Biscoe" in fairness
    assert "skipped" not in browser.find_element(By.ID, "card-timings").text
    resources = browser.execute_script(
        "return performance.getEntriesByType('resource').map(r => r.name)"
    )
    assert [r for r in resources if not r.startswith("data:")] == []  # self-contained


def test_the_console_has_no_errors(browser: Any, report_file: Path) -> None:
    browser.get(report_file.as_uri())
    severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert severe == []


def test_the_card_fits_a_laptop_screen(browser: Any, report_file: Path) -> None:
    browser.get(report_file.as_uri())
    overflow = browser.execute_script(
        "return document.documentElement.scrollWidth - window.innerWidth"
    )
    assert overflow <= 0, f"the page scrolls sideways by {overflow}px at 1366px"
    assert np.isfinite(float(browser.execute_script("return document.body.scrollHeight")))


RUN_SPEC = """\
name: penguins
data: {source: {type: csv, path: data/penguins.csv}, target: sex}
features: {exclude: [year]}
models: [{model: logistic_regression}, {model: random_forest, params: {n_estimators: 50}}]
evaluation: {sensitive: [island]}
"""


@pytest.fixture(scope="module")
def run_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """The report of a real ``shipyard run`` (the card built by the run itself)."""
    import json

    from palmerpenguins import load_penguins

    from shipyard.pipeline import run_project
    from shipyard.spec import load_spec
    from shipyard.store import Store
    from shipyard.tracking import load_run_artifact

    home = tmp_path_factory.mktemp("run")
    (home / "data").mkdir()
    load_penguins().dropna(subset=["sex"]).to_csv(home / "data" / "penguins.csv", index=False)
    (home / "shipyard.yaml").write_text(RUN_SPEC)
    with Store.open(root=home / ".shipyard") as store:
        result = run_project(load_spec(home / "shipyard.yaml"), store=store)
        assert result.report_path is not None
        html = load_run_artifact(store, result.run_id, "report.html")
        card = json.loads(load_run_artifact(store, result.run_id, "model_card.json"))
    path = home / "report.html"
    path.write_bytes(html)
    return path, card


def test_a_runs_own_report_carries_the_model_card(
    browser: Any, run_report: tuple[Path, dict[str, Any]]
) -> None:
    from selenium.webdriver.common.by import By

    path, card = run_report
    browser.get(path.as_uri())
    for section in ("holdout", "card-profile", "card-fairness", "card-timings", "lineage"):
        assert browser.find_element(By.ID, section).is_displayed(), section
    images = browser.execute_script(
        "return Array.from(document.images).map(i => ({complete: i.complete,"
        " width: i.naturalWidth, section: i.closest('section').id}))"
    )
    assert images and [i for i in images if not (i["complete"] and i["width"] > 0)] == []
    assert "Biscoe" in browser.find_element(By.ID, "card-fairness").text
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []
    # the run kept the card's numbers too, each section computed or saying why not
    assert card["seconds"] > 0 and card["task"] == "binary"
    for name, section in card["sections"].items():
        assert section["value"] is not None or section["reason"], name
