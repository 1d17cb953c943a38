"""The web UI's pages through Starlette's TestClient, over a store filled by the real APIs."""

from __future__ import annotations

import hashlib
import html
import json
import re
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from shipyard.store import Store
from shipyard.ui import CSP, UiAuth, create_app
from ui_store import N_CHURN, REPORT_HTML, Filled, fill

N_TOP = N_CHURN + 3


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, Filled]]:
    with Store.open(root=tmp_path_factory.mktemp("ui") / "sy") as store:
        yield store, fill(store)


@pytest.fixture(scope="module")
def client(filled: tuple[Store, Filled]) -> Iterator[TestClient]:
    store, _ = filled
    with TestClient(create_app(store, auth=UiAuth()), base_url="http://127.0.0.1") as c:
        yield c


def _rows(page: str) -> list[str]:
    """The run names of a runs table, in order."""
    body = page.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return re.findall(r'<a href="/runs/[0-9a-f]{32}">([^<]+)</a>', body)


def _count(page: str) -> str:
    return re.search(r'<p class="count" role="status">([^<]+)</p>', page).group(1)  # type: ignore[union-attr]


# --- the runs page ----------------------------------------------------------------------


def test_home_is_the_runs_page_with_the_newest_runs_and_paging(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200 and response.url.path == "/runs"
    page = response.text
    assert _count(page) == f"Runs 1\u201350 of {N_TOP}"
    assert _rows(page)[:3] == ["search", "stopped", "broken"]
    assert 'href="/runs?offset=50" rel="next"' in page
    assert 'rel="prev"' not in page
    second = client.get("/runs?offset=50").text
    assert _count(second) == f"Runs 51\u2013{N_TOP} of {N_TOP}"
    assert _rows(second)[-1] == "churn-000"
    assert 'rel="prev"' in second and 'rel="next"' not in second
    assert set(_rows(page)).isdisjoint(_rows(second))


def test_every_filter_of_the_runs_page(client: TestClient, filled: tuple[Store, Filled]) -> None:
    store, runs = filled
    assert _count(client.get("/runs?project=penguins").text) == "Runs 1\u20131 of 1"
    assert _rows(client.get("/runs?status=failed").text) == ["broken"]
    page = client.get("/runs", params={"q": "param.model = lightgbm and tag.team = risk"}).text
    assert _count(page) == "Runs 1\u201310 of 10"
    page = client.get("/runs", params={"q": "accuracy > 0.75"}).text
    assert _count(page) == "Runs 1\u20139 of 9"
    page = client.get("/runs", params={"q": "metric.accuracy >= 0.6; accuracy < 0.65"}).text
    assert _count(page) == "Runs 1\u201310 of 10"
    page = client.get("/runs", params={"q": 'tag.team = "growth"', "project": "churn"}).text
    assert _count(page) == "Runs 1\u201330 of 30"
    from shipyard.tracking import view_run

    with store.connect() as conn:
        middle = view_run(conn, runs.churn[30]).start_time
    import datetime as dt

    stamp = dt.datetime.fromtimestamp(middle - 1e-6, tz=dt.UTC).isoformat()  # µs: round down
    later = client.get("/runs", params={"after": stamp, "project": "churn"}).text
    assert _count(later) == f"Runs 1\u2013{N_CHURN - 30 + 2} of {N_CHURN - 30 + 2}"
    earlier = client.get("/runs", params={"before": stamp}).text
    assert _count(earlier) == "Runs 1\u201330 of 30"
    assert "No runs match." in client.get("/runs?after=2999-01-01").text
    assert _count(client.get(f"/runs?parent={runs.search[:8]}").text) == "Runs 1\u20135 of 5"


def test_sorting_by_column_and_metric_with_links_that_toggle(client: TestClient) -> None:
    page = client.get("/runs?sort=metric.accuracy&dir=desc").text
    assert _rows(page)[:2] == ["churn-059", "churn-058"]
    assert 'aria-sort="descending"' in page
    assert 'href="/runs?sort=metric.accuracy&amp;dir=asc"' in page  # the header toggles
    assert _rows(client.get("/runs?sort=metric.accuracy&dir=asc").text)[0] == "broken"
    names = _rows(client.get("/runs?sort=name&dir=asc&offset=0").text)
    assert names == sorted(names)
    assert client.get("/runs?sort=duration&dir=desc").status_code == 200
    assert client.get("/runs?sort=metric.nothing").status_code == 200


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        (
            {"q": "accuracy > high"},
            "q",
            "filter: &#39;accuracy &gt; high&#39;: &#39;high&#39; is not a number",
        ),
        ({"q": "param.model > 3"}, "q", "compare with &#39;=&#39; only"),
        ({"q": "just words"}, "q", "filter: cannot read"),
        ({"after": "yesterday"}, "after", "started after: &#39;yesterday&#39; is not a date"),
        ({"before": "2026-13-01"}, "before", "started before"),
        ({"status": "asleep"}, "status", "status: unknown status"),
        ({"sort": "colour"}, "sort", "sort: cannot sort by"),
        ({"dir": "sideways"}, "dir", "sort direction"),
        ({"offset": "-5"}, "offset", "offset: &#39;-5&#39; is not a whole number"),
    ],
)
def test_bad_filters_show_the_page_with_the_field_named(
    client: TestClient, query: dict[str, str], field: str, message: str
) -> None:
    response = client.get("/runs", params=query)
    assert response.status_code == 200  # the page, with the message: no console error
    assert message in response.text
    assert 'role="alert"' in response.text and "<tbody>" not in response.text
    if field not in ("offset",):
        assert f'id="err-{field}"' in response.text
        assert 'aria-invalid="true"' in response.text


# --- one run ----------------------------------------------------------------------------


def test_the_run_page_shows_lineage_params_metrics_charts(
    client: TestClient, filled: tuple[Store, Filled]
) -> None:
    _, runs = filled
    page = client.get(f"/runs/{runs.churn[10][:10]}").text
    for text in (
        "churn-010",
        "data4567",
        "spec0123",
        "abc1234",
        "scikit-learn",
        "1.5.0",
        "logistic_regression",
        "risk",
        "0.5500",
        "Metrics over steps",
    ):
        assert text in page, text
    data = json.loads(re.search(r'id="chart-1-data">(.*?)</script>', page).group(1))  # type: ignore[union-attr]
    assert data["title"] == "loss" and data["x"] == [0, 1, 2, 3, 4]
    assert data["series"][0]["values"][0] == pytest.approx(1 / 11)


def test_the_run_page_shows_trials_artifacts_and_validation(
    client: TestClient, filled: tuple[Store, Filled]
) -> None:
    _, runs = filled
    page = client.get(f"/runs/{runs.search}").text
    assert "Trials (5)" in page and "5 finished" in page
    assert all(f'href="/runs/{t}"' in page for t in runs.trials)
    sha = hashlib.sha256(REPORT_HTML).hexdigest()
    assert sha in page  # stored unencrypted: the sha256 of the bytes themselves
    assert f'href="/runs/{runs.search}/artifacts/report.html"' in page
    assert f"/runs/{runs.search}/artifacts/plots/fold%20scores.json?download=1" in page
    assert "Validation report" in page and "body_mass_g" in page
    matrix = page.split('id="confusion-h"', 1)[1].split("</table>", 1)[0]
    assert re.findall(r'<td class="num">(\d+)</td>', matrix) == ["31", "2", "1", "27"]
    assert '<th scope="row">Gentoo</th>' in matrix
    assert "11 rows of sex are missing &lt;b&gt;" in page  # escaped, never markup
    assert 'href="/models/penguins"' in page
    trial = client.get(f"/runs/{runs.trials[0]}").text
    assert f'trial of <a href="/runs/{runs.search}">search</a>' in trial
    failed = client.get(f"/runs/{runs.failed}").text
    assert "ValueError: bad &lt;input&gt;" in failed


def test_artifacts_open_sandboxed_or_download_with_their_type(
    client: TestClient, filled: tuple[Store, Filled]
) -> None:
    _, runs = filled
    report = client.get(f"/runs/{runs.search}/artifacts/report.html")
    assert report.status_code == 200 and report.content == REPORT_HTML
    assert report.headers["content-type"] == "text/html; charset=utf-8"
    assert report.headers["content-security-policy"].startswith("sandbox;")
    assert report.headers["content-disposition"].startswith("inline;")
    assert report.headers["x-shipyard-sha256"] == hashlib.sha256(REPORT_HTML).hexdigest()
    assert report.headers["x-content-type-options"] == "nosniff"
    folded = client.get(f"/runs/{runs.search}/artifacts/plots/fold%20scores.json?download=1")
    assert folded.json() == {"folds": [0.8, 0.9]}
    assert folded.headers["content-type"] == "application/json; charset=utf-8"
    assert (
        folded.headers["content-disposition"] == "attachment; filename*=UTF-8''fold%20scores.json"
    )
    missing = client.get(f"/runs/{runs.search}/artifacts/nope.txt")
    assert missing.status_code == 404 and "has no artifact &#39;nope.txt&#39;" in missing.text
    sneaky = client.get(f"/runs/{runs.search}/artifacts/..%2F..%2Fshipyard.db")
    assert sneaky.status_code == 404


def test_unknown_runs_and_pages_are_404_pages_never_500(client: TestClient) -> None:
    for url, text in (
        ("/runs/" + "0" * 32, "no run with id"),
        ("/runs/abc", "too short"),
        ("/runs/zzzzzzzzz/artifacts/x", "no run with id"),
        ("/models/nope", "no registered model named 'nope'"),
        ("/nowhere", "there is no page at /nowhere"),
    ):
        response = client.get(url)
        assert response.status_code == 404, url
        assert text in html.unescape(response.text).lower(), (url, response.text[-500:])
        assert "<h1>Not found</h1>" in response.text


# --- compare ----------------------------------------------------------------------------


def test_compare_diffs_params_and_overlays_metric_charts(
    client: TestClient, filled: tuple[Store, Filled]
) -> None:
    _, runs = filled
    a, b = runs.churn[0], runs.churn[10]
    page = client.get(f"/compare?ids={a},{b[:8]}").text
    assert "Compare 2 runs" in page
    assert re.search(r'<tr class="differs"><th scope="row">model <span', page)
    assert re.search(r'<tr><th scope="row">metric</th>', page)  # the same in both
    data = json.loads(re.search(r'id="chart-1-data">(.*?)</script>', page).group(1))  # type: ignore[union-attr]
    assert data["title"] == "loss" and len(data["series"]) == 2
    same = client.get(f"/compare?ids={a}&ids={runs.churn[20]}&ids={runs.churn[30]}")
    assert same.status_code == 200 and "Compare 3 runs" in same.text


@pytest.mark.parametrize(
    ("query", "status", "text"),
    [
        ("", 400, "choose 2 to 10 runs (got 0)"),
        ("?ids=abcdef", 400, "(got 1)"),
        ("?ids=" + ",".join(f"{i:06d}" for i in range(11)), 400, "(got 11)"),
        ("?ids=" + "0" * 32 + ",abcdefabcdef", 404, "no run with id"),
    ],
)
def test_compare_refuses_bad_choices_with_a_message(
    client: TestClient, query: str, status: int, text: str
) -> None:
    response = client.get(f"/compare{query}")
    assert response.status_code == status and text in html.unescape(response.text)


def test_compare_refuses_one_run_named_twice(
    client: TestClient, filled: tuple[Store, Filled]
) -> None:
    _, runs = filled
    response = client.get(f"/compare?ids={runs.churn[0]},{runs.churn[0][:8]}")
    assert response.status_code == 400 and "one run twice" in response.text


# --- models -----------------------------------------------------------------------------


def test_models_and_a_models_versions_timeline_and_decisions(client: TestClient) -> None:
    listing = client.get("/models").text
    assert 'href="/models/penguins"' in listing and "production → v2" in listing
    page = client.get("/models/penguins").text
    assert page.index("v3") < page.index("v1")  # newest first
    assert 'accuracy <span class="muted">(primary)</span>' in page
    assert "0.8600" in page
    history = page.split('id="history-h"', 1)[1].split("</ol>", 1)[0]
    moves = re.findall(r'<span class="who-moved">([^<]+)</span>', history)
    assert moves == ["bob", "bob", "ana"]  # newest first
    assert "better on fresh data" in history and "v1 → <strong>v2</strong>" in history
    decisions = page.split('id="decisions-h"', 1)[1]
    assert "beats v1 by 0.02 (p=0.97)" in decisions and "kept out" in decisions
    assert "bootstrap.p_better" in decisions and "0.9700" in decisions
    assert 'name="csrf"' in page and 'action="/models/penguins/promote"' in page


def test_security_headers_on_every_response(client: TestClient) -> None:
    for url in ("/runs", "/models", "/nowhere", "/static/ui.css"):
        headers = client.get(url).headers
        assert headers["content-security-policy"] == CSP, url
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in CSP and "'unsafe-inline'" not in CSP
    assert client.get("/runs").headers["cache-control"] == "no-store"
    assert client.get("/health").text == "ok"


def test_pages_load_only_local_assets_and_no_inline_script(client: TestClient) -> None:
    for url in ("/runs", "/models", "/models/penguins"):
        page = client.get(url).text
        sources = re.findall(r'(?:src|href)="([^"]+)"', page)
        assert all(s.startswith(("/", "#", "?")) for s in sources), sources
        assert not re.search(r"<script(?![^>]*(?:src=|application/json))", page)
        assert " style=" not in page and " on" + "click=" not in page
    for asset in (
        "/static/vendor/htmx/htmx.min.js",
        "/static/vendor/uplot/uPlot.iife.min.js",
        "/static/vendor/uplot/uPlot.min.css",
        "/static/ui.js",
        "/static/ui.css",
    ):
        assert client.get(asset).status_code == 200, asset


def test_every_form_control_has_a_label(client: TestClient, filled: tuple[Store, Filled]) -> None:
    _, runs = filled
    for url in ("/runs", "/models/penguins", f"/runs/{runs.search}"):
        page = client.get(url).text
        controls = re.findall(r"<(?:input|select|textarea)\b([^>]*)>", page)
        for attrs in controls:
            if 'type="hidden"' in attrs:
                continue
            if "aria-label=" in attrs:
                continue
            ident = re.search(r'id="([^"]+)"', attrs)
            assert ident and f'for="{ident.group(1)}"' in page, (url, attrs)
