"""The monitoring pages through Starlette's TestClient, over checks recorded by the real APIs
(drift tests, performance, alert rules), and the registry's reads behind them."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from shipyard.registry import CheckRecord, MonitorHistory, Registry
from shipyard.store import Store
from shipyard.ui import UiAuth, create_app
from shipyard.ui._monitoring import (
    BUCKETS,
    bucket,
    distribution,
    distribution_charts,
    distribution_rows,
    quantile_name,
    stat_text,
)
from ui_store import Monitored, fill, fill_monitoring, package


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, Monitored]]:
    with Store.open(root=tmp_path_factory.mktemp("ui-mon") / "sy") as store:
        fill(store)
        monitored = fill_monitoring(store)
        Registry(store).register("quiet", package(0.9), created_by="ana")  # never checked
        yield store, monitored


@pytest.fixture(scope="module")
def client(filled: tuple[Store, Monitored]) -> Iterator[TestClient]:
    store, _ = filled
    with TestClient(create_app(store, auth=UiAuth()), base_url="http://127.0.0.1") as c:
        yield c


def _chart(page: str, chart_id: str) -> dict[str, object]:
    found = re.search(rf'id="{chart_id}-data">(.*?)</script>', page)
    assert found is not None, chart_id
    return dict(json.loads(found.group(1)))


# --- the registry's reads ---------------------------------------------------------------


def test_detailed_series_reads_every_checks_columns_and_metrics(
    filled: tuple[Store, Monitored],
) -> None:
    store, monitored = filled
    history = MonitorHistory(store)
    series = history.detailed_series("penguins", 2)
    assert [c.id for c in series] == monitored.checks  # oldest first
    for check in series:
        assert check.results == history.get(check.id).results  # same order as get()
        assert {m.metric for m in check.performance} >= {"accuracy"}
    assert [c.id for c in history.detailed_series("penguins", 2, limit=2)] == monitored.checks[-2:]
    assert history.detailed_series("penguins", 1) == []


def test_monitored_counts_checks_by_version(filled: tuple[Store, Monitored]) -> None:
    store, _ = filled
    history = MonitorHistory(store)
    [version] = history.monitored()
    assert (version.model_name, version.model_version) == ("penguins", 2)
    assert (version.n_checks, version.n_drifted) == (6, 3)
    assert version.first_checked_at <= version.last_checked_at
    assert history.monitored("quiet") == []


# --- the heatmap's colours --------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "threshold", "statistic", "drifted", "css"),
    [
        (0.9, 0.05, "p_value", False, "hm-0"),
        (0.15, 0.05, "p_value", False, "hm-1"),
        (0.07, 0.05, "p_value", False, "hm-2"),
        (0.03, 0.05, "p_value", True, "hm-3"),
        (0.0, 0.05, "p_value", True, "hm-4"),
        (0.01, 0.1, "distance", False, "hm-0"),
        (0.03, 0.1, "distance", False, "hm-1"),
        (0.09, 0.1, "distance", False, "hm-2"),
        (0.2, 0.1, "distance", True, "hm-3"),
        (0.5, 0.1, "distance", True, "hm-4"),
        (0.5, None, "distance", True, "hm-3"),
        (0.5, None, "distance", False, "hm-0"),
    ],
)
def test_cells_are_coloured_by_how_far_towards_the_threshold(
    value: float, threshold: float | None, statistic: str, drifted: bool, css: str
) -> None:
    assert bucket(value, threshold, statistic, drifted) == css


def test_statistics_are_short_in_cells() -> None:
    assert stat_text(1e-12, "p_value") == "<0.001"
    assert stat_text(0.0421, "distance") == "0.042"
    assert stat_text(None, None) == "-"


# --- the pages --------------------------------------------------------------------------


def test_the_nav_and_the_model_page_link_to_monitoring(client: TestClient) -> None:
    page = client.get("/models/penguins").text
    assert 'href="/monitoring"' in page and 'href="/serving"' in page
    assert 'href="/models/penguins/monitoring"' in page
    assert 'href="/models/penguins/versions/2/monitoring"' in page


def test_the_overview_lists_monitored_versions_and_open_incidents(client: TestClient) -> None:
    page = client.get("/monitoring").text
    assert 'aria-current="page">Monitoring' in page
    assert 'href="/models/penguins/versions/2/monitoring">v2</a>' in page
    assert "6 checks, 3 drifted" in page
    assert "1 open" in page
    quiet = page.split('href="/models/quiet/monitoring"', 1)[1]
    assert "no checks recorded" in quiet.split("</tr>", 1)[0]


def test_a_model_goes_to_its_latest_checked_version(client: TestClient) -> None:
    response = client.get("/models/penguins/monitoring", follow_redirects=False)
    assert response.status_code == 307
    assert response.headers["location"] == "/models/penguins/versions/2/monitoring"


def test_a_model_or_version_without_checks_says_how_to_record_some(client: TestClient) -> None:
    for url in ("/models/quiet/monitoring", "/models/penguins/versions/1/monitoring"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert "No check of" in response.text and "shipyard monitor models:/" in response.text
        assert '<table class="heatmap"' not in response.text
    # the model's incidents are shown on every version's page
    assert "drift_share &gt; 0.3" in client.get("/models/penguins/versions/1/monitoring").text
    assert "No alert rule has fired for quiet" in client.get("/models/quiet/monitoring").text


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("/models/nothing/monitoring", "nothing"),
        ("/models/nothing/versions/1/monitoring", "nothing"),
        (
            "/models/penguins/versions/9/monitoring",
            "no version &#39;9&#39; (its versions: v1, v2, v3)",
        ),
        ("/models/penguins/versions/two/monitoring", "no version &#39;two&#39;"),
        ("/monitoring/checks/0123456789abcdef", "no monitoring check has the id"),
    ],
)
def test_unknown_models_versions_and_checks_are_404_pages(
    client: TestClient, url: str, message: str
) -> None:
    response = client.get(url)
    assert response.status_code == 404
    assert message in response.text and "<h1>Not found</h1>" in response.text


def test_the_heatmap_has_a_cell_per_feature_and_check_with_text_and_a_legend(
    client: TestClient, filled: tuple[Store, Monitored]
) -> None:
    _, monitored = filled
    page = client.get("/models/penguins/versions/2/monitoring").text
    table = page.split('id="heatmap-inputs"', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r'<th scope="row">([^<]+)</th>', table)
    assert rows == ["bill_length_mm", "body_mass_g", "island"]
    cells = re.findall(r'<td class="hm (hm-\w+)" title="([^"]+)">', table)
    assert len(cells) == 3 * 6
    for check_id in monitored.checks:  # each column header opens its check
        assert f'href="/monitoring/checks/{check_id}"' in table
    bill = [css for css, title in cells if title.startswith("bill_length_mm")]
    assert bill == ["hm-0", "hm-0", "hm-4", "hm-4", "hm-0", "hm-4"]  # drifts on days 3, 4, 6
    mass = [css for css, title in cells if title.startswith("body_mass_g")]
    assert mass == ["hm-0", "hm-0", "hm-0", "hm-0", "hm-1", "hm-4"]  # nearer on day 5
    drifted = [html.unescape(t) for css, t in cells if css == "hm-4"]
    assert all(
        ": drifted; ks p-value <0.001 (threshold 0.05)" in t or "chisquare" in t for t in drifted
    )
    assert table.count('class="hm-mark"') == len(drifted)  # marked, not colour alone
    assert '<span class="visually-hidden">: bill_length_mm at' in table
    assert 'id="heatmap-predictions"' in page  # the outputs have their own
    legend = page.split('class="legend"', 1)[1].split("</div>", 1)[0]
    for css, label in BUCKETS:
        assert f'hm-swatch {css}"' in legend and html.escape(label, quote=True) in legend


def test_charts_of_drift_predictions_and_performance_carry_their_data(client: TestClient) -> None:
    page = client.get("/models/penguins/versions/2/monitoring").text
    drift = _chart(page, "drift-1")
    assert drift["time"] is True and len(drift["x"]) == 6  # type: ignore[arg-type]
    shares = {s["label"]: s["values"] for s in drift["series"]}  # type: ignore[attr-defined]
    assert shares["inputs drifted"] == pytest.approx([0, 0, 2 / 3, 2 / 3, 0, 1])
    assert shares["predictions drifted"] == [0, 0, 1, 1, 0, 1]
    predictions = _chart(page, "pred-1")
    labels = [s["label"] for s in predictions["series"]]  # type: ignore[attr-defined]
    assert labels == ["prediction", "proba.b", "threshold 0.05"]
    assert "p-value" in str(predictions["title"])
    accuracy = _chart(page, "perf-1")
    assert accuracy["title"] == "accuracy: realised vs estimated"
    lines = {s["label"]: s["values"] for s in accuracy["series"]}  # type: ignore[attr-defined]
    assert lines["holdout"] == [0.86] * 6
    assert lines["realised"][0] is None and all(v is not None for v in lines["realised"][1:])
    assert all(0 < v < 1 for v in lines["estimated"])
    assert "realised from" in str(accuracy["summary"])
    assert 'aria-label="accuracy: realised vs estimated by check time (UTC): over 6 checks' in page


def test_incidents_are_listed_with_state_rule_links_and_delivery(
    client: TestClient, filled: tuple[Store, Monitored]
) -> None:
    _, monitored = filled
    page = client.get("/models/penguins/versions/2/monitoring").text
    table = page.split('<table class="incidents">', 1)[1].split("</table>", 1)[0]
    rows = table.split("<tbody>", 1)[1].split("</tr>")[:2]
    newest, older = rows
    assert ">open<" in newest and "drift_share &gt; 0.3" in newest
    assert f'href="/monitoring/checks/{monitored.checks[5]}"' in newest
    assert 'class="undelivered">opening notice not delivered yet' in newest
    assert ">resolved<" in older
    assert f'href="/monitoring/checks/{monitored.checks[2]}"' in older  # opened on day 3
    assert f'href="/monitoring/checks/{monitored.checks[4]}"' in older  # resolved on day 5
    assert "opening notice delivered; resolution notice delivered" in older


def test_the_checks_table_links_every_check(
    client: TestClient, filled: tuple[Store, Monitored]
) -> None:
    _, monitored = filled
    page = client.get("/models/penguins/versions/2/monitoring").text
    section = page.split('id="checks"', 1)[1]
    links = re.findall(r'href="/monitoring/checks/([0-9a-f]{32})">check', section)
    assert links == list(reversed(monitored.checks))  # newest first


def test_a_checks_page_is_its_report(client: TestClient, filled: tuple[Store, Monitored]) -> None:
    _, monitored = filled
    page = client.get(f"/monitoring/checks/{monitored.checks[2]}").text
    assert "<h1>Check of penguins v2</h1>" in page
    assert "2 of 3 columns (67%)" in page and "models:/penguins@production" in page
    assert "Inputs (3 columns)" in page and "Predictions (2 columns)" in page
    row = page.split('<th scope="row">bill_length_mm</th>', 1)[1].split("</tr>", 1)[0]
    assert "ks" in row and "p-value" in row and 'class="drifted">drifted' in row
    assert '<td class="num">0.05</td>' in row
    perf = page.split('id="perf-h"', 1)[1].split("</table>", 1)[0]
    assert '<th scope="row">accuracy</th><td class="num">0.8600</td>' in perf
    assert ">open<" not in page and ">resolved<" in page  # the incident it opened
    quiet = client.get(f"/monitoring/checks/{monitored.checks[0]}").text
    assert "This check opened and resolved no incident." in quiet


def test_the_heatmap_keeps_the_newest_checks_when_there_are_many() -> None:
    from shipyard.registry import CheckRecord, ColumnResult
    from shipyard.ui._monitoring import HEATMAP_CHECKS, heatmap

    def check(i: int, columns: tuple[str, ...]) -> CheckRecord:
        results = tuple(
            ColumnResult("inputs", c, "numeric", "ks", "p_value", 0.5, 0.05, False, 10, 0.0)
            for c in columns
        )
        return CheckRecord(
            f"c{i}",
            "m",
            1,
            "drift",
            None,
            float(i),
            float(i),
            10,
            10,
            1,
            0,
            0.0,
            False,
            {},
            results,
        )

    checks = [check(i, ("a",)) for i in range(HEATMAP_CHECKS + 5)] + [check(99, ("a", "b"))]
    hm = heatmap(checks, "inputs")
    assert hm.n_hidden == 6 and len(hm.checks) == HEATMAP_CHECKS
    assert [name for name, _ in hm.rows] == ["a", "b"]
    b_cells = dict(hm.rows)["b"]
    assert [c.css for c in b_cells[-2:]] == ["hm-na", "hm-0"]
    assert "not in this check" in b_cells[0].title
    assert heatmap(checks, "predictions").rows == ()


def test_a_reader_without_login_is_sent_to_log_in(filled: tuple[Store, Monitored]) -> None:
    store, _ = filled
    from shipyard._apikeys import digest_key

    auth = UiAuth(key_roles={digest_key("k" * 24): "read"}, secret="s" * 32)
    with TestClient(create_app(store, auth=auth), base_url="http://127.0.0.1") as c:
        response = c.get("/models/penguins/versions/2/monitoring", follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/login?next=")


def test_pages_keep_the_csp_and_need_no_inline_script(client: TestClient) -> None:
    response = client.get("/models/penguins/versions/2/monitoring")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    scripts = re.findall(r"<script(?![^>]*\bsrc=)([^>]*)>", response.text)
    assert scripts and all('type="application/json"' in s for s in scripts)
    assert ' style="' not in response.text


# --- the prediction distribution --------------------------------------------------------


def test_class_shares_are_charted_by_check_with_the_reference_dashed(client: TestClient) -> None:
    page = client.get("/models/penguins/versions/2/monitoring").text
    chart = _chart(page, "dist-1")
    assert chart["percent"] is True and len(chart["x"]) == 6  # type: ignore[arg-type]
    series = {s["label"]: s for s in chart["series"]}  # type: ignore[attr-defined]
    assert list(series) == ["a", "b", "reference a", "reference b"]
    assert [s["dash"] for s in series.values()] == [False, False, True, True]
    assert series["a"]["colour"] == series["reference a"]["colour"] == 0  # a class, one colour
    b, ref_b = series["b"]["values"], series["reference b"]["values"]
    assert b[0] is None and ref_b[0] is None  # the first check did not record it
    assert len(set(ref_b[1:])) == 1 and 0.3 < ref_b[1] < 0.5  # the reference: 40% b
    assert all(b[d] > 0.55 for d in (2, 3, 5)) and all(b[d] < 0.55 for d in (1, 4))  # shifted
    assert all(
        a + bb == pytest.approx(1) for a, bb in zip(series["a"]["values"][1:], b[1:], strict=True)
    )
    assert 'aria-label="Predicted class shares by check (dashed: the reference&#39;s)' in page
    assert "Not recorded for 1 of the 6 checks" in page
    assert page.index('id="dist-1-data"') < page.index(
        'id="pred-1-data"'
    )  # then the drift statistics


def test_a_checks_page_shows_its_distribution_or_says_it_was_not_recorded(
    client: TestClient, filled: tuple[Store, Monitored]
) -> None:
    _, monitored = filled
    old = client.get(f"/monitoring/checks/{monitored.checks[0]}").text
    assert "Not recorded for this check" in old and 'id="distribution"' not in old
    page = client.get(f"/monitoring/checks/{monitored.checks[2]}").text
    table = page.split('<table id="distribution">', 1)[1].split("</table>", 1)[0]
    rows = re.findall(
        r'<th scope="row">(\w+)</th>\s*<td class="num">([\d.]+)%</td><td class="num">([\d.]+)%'
        r'</td><td class="num">([+-][\d.]+) pp</td>',
        table,
    )
    assert [r[0] for r in rows] == ["a", "b"]
    for _, ref, cur, change in rows:
        assert float(change) == pytest.approx(float(cur) - float(ref), abs=0.11)
    assert float(rows[1][2]) > 55  # b predicted far more than its reference share


def _regression_check(i: int, summary: dict[str, object]) -> CheckRecord:
    return CheckRecord(
        f"r{i}", "m", 1, "drift", None, float(i), float(i), 10, 10, 1, 0, 0.0, False, summary
    )


def test_a_regressions_median_and_band_are_charted_against_the_reference() -> None:
    from shipyard.monitor import quantile_summary

    checks = [
        _regression_check(0, {}),  # before checks kept the distribution
        _regression_check(1, {"distribution": quantile_summary(range(101), range(101))}),
        _regression_check(2, {"distribution": quantile_summary(range(101), range(50, 151))}),
        _regression_check(3, {"distribution": {"kind": "quantiles", "quantiles": "bad"}}),
        _regression_check(4, {"distribution": quantile_summary(range(101), [])}),
    ]
    assert [distribution(c) is not None for c in checks] == [False, True, True, False, True]
    [chart] = distribution_charts(checks, [0.0, 1.0, 2.0, 3.0, 4.0])
    lines = {s["label"]: s for s in chart["series"]}
    assert lines["median"]["values"] == [None, 50.0, 100.0, None, None]
    assert lines["90th percentile"]["values"] == [None, 90.0, 140.0, None, None]
    assert lines["10th percentile"]["values"] == [None, 10.0, 60.0, None, None]
    assert lines["reference median"]["values"] == [None, 50.0, 50.0, None, 50.0]
    assert lines["reference median"]["dash"] and not lines["median"]["dash"]
    assert chart["bands"] == [[0, 2, 0]]  # the 10-90% band: between the first and third line
    assert [s["label"] for s in chart["series"]][:3] == [
        "90th percentile",
        "median",
        "10th percentile",
    ]
    assert "median from 50.0000 to 100.0000" in chart["summary"]


def test_distributions_that_cannot_be_read_are_not_recorded() -> None:
    for stored in (
        None,
        "classes",
        {"kind": "histogram"},
        {"kind": "classes", "reference": {"a": "x"}, "current": {}},
        {"kind": "classes", "reference": {"a": 1.0}},
        {"kind": "quantiles", "quantiles": [0.5], "reference": [1.0, 2.0], "current": None},
    ):
        assert distribution(_regression_check(0, {"distribution": stored})) is None, stored
    assert distribution_charts([_regression_check(0, {})], [0.0]) == []
    assert distribution_rows(
        {"kind": "quantiles", "quantiles": [0.1, 0.5], "reference": [1.0, 2.0], "current": None}
    ) == [("10th percentile", 1.0, None), ("median", 2.0, None)]
    assert [quantile_name(q) for q in (0.01, 0.02, 0.03, 0.11, 0.25, 0.975)] == [
        "1st percentile",
        "2nd percentile",
        "3rd percentile",
        "11th percentile",
        "25th percentile",
        "97.5th percentile",
    ]


def test_a_version_whose_checks_predate_the_distribution_says_so(tmp_path: Path) -> None:
    import pandas as pd

    from shipyard.monitor import detect_drift

    frame = pd.DataFrame({"x": [float(i) for i in range(50)]})
    with Store.open(root=tmp_path / "sy") as store:
        Registry(store).register("old", package(0.9))
        MonitorHistory(store).record("old", 1, inputs=detect_drift(frame, frame))
        with TestClient(create_app(store, auth=UiAuth()), base_url="http://127.0.0.1") as c:
            page = c.get("/models/old/versions/1/monitoring").text
    assert "The prediction distribution is not recorded for this check" in page
    assert 'id="dist-1-data"' not in page and "No check tested the predictions." in page
