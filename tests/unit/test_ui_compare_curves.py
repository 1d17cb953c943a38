"""The holdout curves (``curves.json``) on the compare and run pages, and the run's log
(``run.log``) on the run page, through Starlette's TestClient."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from shipyard.store import Store
from shipyard.ui import CSP, UiAuth, create_app
from shipyard.ui._curves import compare_curve_charts, read_curves
from ui_store import CurveRuns, curves_json, fill_curves


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, CurveRuns]]:
    with Store.open(root=tmp_path_factory.mktemp("ui-curves") / "sy") as store:
        yield store, fill_curves(store)


@pytest.fixture(scope="module")
def client(runs: tuple[Store, CurveRuns]) -> Iterator[TestClient]:
    with TestClient(create_app(runs[0], auth=UiAuth()), base_url="http://127.0.0.1") as c:
        yield c


def _curve_charts(page: str) -> list[dict[str, Any]]:
    """The curve charts' data, as the page hands it to curves.js."""
    blocks = re.findall(r'<script type="application/json" id="curve-\d+-data">(.*?)</script>', page)
    return [json.loads(html.unescape(block)) for block in blocks]


def _no_curves(page: str) -> str:
    found = re.search(r"No curves stored: (.*?)\(runs recorded", page, re.S)
    return "" if found is None else found.group(1)


def test_compare_overlays_the_runs_curves_one_line_per_run(
    client: TestClient, runs: tuple[Store, CurveRuns]
) -> None:
    _, r = runs
    page = client.get(f"/compare?ids={r.binary[0]},{r.binary[1]},{r.regression}").text
    charts = _curve_charts(page)
    assert [c["title"] for c in charts] == [
        "ROC: positive class yes",
        "Precision-recall: positive class yes",
    ]
    roc = charts[0]
    assert roc["kind"] == "roc" and roc["x_label"] == "false positive rate"
    labels = [s["label"] for s in roc["series"]]
    assert labels == [
        f"churn-model-0 ({r.binary[0][:8]}): AUC 0.910",
        f"churn-model-1 ({r.binary[1][:8]}): AUC 0.840",
    ]
    assert roc["series"][0]["x"] == [0.0, 0.09, 1.0] and roc["series"][0]["y"] == [0.0, 0.9, 1.0]
    assert "AUC 0.910" in roc["summary"] and "AP 0.860" in charts[1]["summary"]
    assert 'data-curves="curve-1-data"' in page and 'role="img"' in page
    assert "prices" in _no_curves(page) and "churn-model" not in _no_curves(page)
    assert '<script src="/static/curves.js?v=' in page
    assert '<link rel="stylesheet" href="/static/curves.css?v=' in page


def test_a_multiclass_run_gets_a_chart_per_class_and_kind(
    client: TestClient, runs: tuple[Store, CurveRuns]
) -> None:
    _, r = runs
    charts = _curve_charts(client.get(f"/compare?ids={r.multiclass},{r.binary[0]}").text)
    titles = [c["title"] for c in charts]
    assert titles == [
        "ROC: class Adelie",
        "Precision-recall: class Adelie",
        "ROC: class Chinstrap",
        "Precision-recall: class Chinstrap",
        "ROC: class Gentoo",
        "Precision-recall: class Gentoo",
        "ROC: positive class yes",
        "Precision-recall: positive class yes",
    ]
    assert all(len(c["series"]) == 1 for c in charts)


def test_runs_without_usable_curves_are_listed_never_an_error(
    client: TestClient, runs: tuple[Store, CurveRuns]
) -> None:
    _, r = runs
    response = client.get(f"/compare?ids={r.malformed},{r.not_json},{r.regression}")
    assert response.status_code == 200
    page = response.text
    assert _curve_charts(page) == []
    assert all(name in _no_curves(page) for name in ("odd-curves", "not-json", "prices"))
    assert f"not-json ({r.not_json[:8]}): curves.json could not be read" in page  # said


def test_curves_changed_after_they_were_stored_are_refused_with_a_message(
    client: TestClient, runs: tuple[Store, CurveRuns]
) -> None:
    _, r = runs
    response = client.get(f"/compare?ids={r.tampered},{r.binary[0]}")
    assert response.status_code == 200
    page = response.text
    assert "curves.json could not be read" in page and "sha256" in page
    assert "tampered" in _no_curves(page)
    assert len(_curve_charts(page)[0]["series"]) == 1  # the other run's curve still drawn
    run_page = client.get(f"/runs/{r.tampered}")
    assert run_page.status_code == 200
    assert "run.log could not be read" in run_page.text and 'id="log"' not in run_page.text


def test_the_run_page_shows_its_curves_and_its_log(
    client: TestClient, runs: tuple[Store, CurveRuns]
) -> None:
    _, r = runs
    page = client.get(f"/runs/{r.multiclass}").text
    charts = _curve_charts(page)
    assert [c["title"] for c in charts] == ["ROC (holdout)", "Precision-recall (holdout)"]
    assert [s["label"] for s in charts[0]["series"]] == [
        "Adelie: AUC 0.990",
        "Chinstrap: AUC 0.950",
        "Gentoo: AUC 0.980",
    ]
    assert 'href="#curves"' in page and 'id="log"' not in page  # this run kept no log
    page = client.get(f"/runs/{r.binary[0]}").text
    log = re.search(r'<pre class="log" tabindex="0"[^>]*>(.*?)</pre>', page, re.S)
    assert log is not None
    assert log.group(1).splitlines()[-1] == "2026-12-01T10:00:01.000Z  finished in 1.0 s"
    assert "2 lines (times in UTC)" in page and 'href="#log"' in page
    assert f'href="/runs/{r.binary[0]}/artifacts/run.log?download=1" download' in page


def test_a_long_log_shows_its_last_lines_escaped(
    client: TestClient, runs: tuple[Store, CurveRuns]
) -> None:
    _, r = runs
    page = client.get(f"/runs/{r.long_log}").text
    assert "The last 200 of 250 lines" in page
    text = re.search(r'<pre class="log"[^>]*>(.*?)</pre>', page, re.S).group(1)  # type: ignore[union-attr]
    lines = text.splitlines()
    assert len(lines) == 200 and lines[0].endswith("step 50 &lt;b&gt;bold&lt;/b&gt;")
    assert "<b>" not in text
    assert _curve_charts(page) == [] and 'id="curves"' not in page
    download = client.get(f"/runs/{r.long_log}/artifacts/run.log?download=1")
    assert download.status_code == 200 and len(download.text.splitlines()) == 250
    assert download.headers["content-type"].startswith("text/plain")


def test_the_curves_script_and_style_are_static_files_under_the_csp(client: TestClient) -> None:
    script = client.get("/static/curves.js")
    assert script.status_code == 200 and "mode: 2" in script.text
    assert script.headers["content-security-policy"] == CSP
    assert client.get("/static/curves.css").status_code == 200


def test_reading_curves_keeps_only_well_formed_ones() -> None:
    good = json.loads(curves_json("binary", {"yes": 0.9}))
    task, curves = read_curves(good)  # type: ignore[misc]
    assert task == "binary" and [c.kind for c in curves] == ["roc", "pr"]
    assert curves[0].area == 0.9 and curves[1].x == [1.0, 0.8, 0.0]
    bad_entries = [
        {"label": "x", "fpr": [0.0, 1.0], "tpr": [0.0]},  # lengths differ
        {"label": "x", "fpr": [0.0, float("nan")], "tpr": [0.0, 1.0]},
        {"label": "x", "fpr": [True, False], "tpr": [0.0, 1.0]},
        {"label": "x", "fpr": [0.0], "tpr": [1.0]},  # one point is no curve
        {"label": "x", "fpr": [0.0] * 3000, "tpr": [0.0] * 3000},  # not the pipeline's
        "roc",
    ]
    assert read_curves({"roc": bad_entries, "pr": None}) is None
    assert read_curves([1, 2]) is None and read_curves(None) is None
    no_area = {"roc": [{"label": "x", "fpr": [0, 1], "tpr": [0, 1]}]}
    _task, (curve,) = read_curves(no_area)  # type: ignore[misc]
    assert curve.area is None
    (chart,) = compare_curve_charts([("run a", "binary", [curve])])
    assert chart["series"][0]["label"] == "run a"


def test_compare_draws_at_most_twenty_curve_charts() -> None:
    aucs = {f"class {i:02d}": 0.9 for i in range(15)}
    _task, curves = read_curves(json.loads(curves_json("multiclass", aucs)))  # type: ignore[misc]
    charts = compare_curve_charts([("a", "multiclass", curves), ("b", "multiclass", curves)])
    assert len(charts) == 20 and charts[-1]["title"] == "Precision-recall: class class 09"
