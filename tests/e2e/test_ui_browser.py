"""The web UI in a real browser: a headless Chromium logs in to ``shipyard ui`` (a subprocess
on a free port, with an admin key) over a store holding a real ``shipyard run`` and generated
runs; every page must render with a clean console and fit a laptop screen, charts must draw,
and filters, paging, compare and promote must work.

Needs ``/usr/bin/chromium`` and ``/usr/bin/chromedriver`` (``.ci/run`` installs them): skipped
without them, except under ``CI=true``, where a missing browser fails the test.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from browser import headless_chrome
from shipyard.store import Store
from ui_store import (
    Filled,
    Monitored,
    fill,
    fill_monitoring,
    metrics_server,
    running_ui,
    wait_healthy,
)

pytestmark = [pytest.mark.browser, pytest.mark.http]

ADMIN_KEY = "browser-admin-key-0123456789"
RUN_SPEC = """\
name: penguins
data: {source: {type: csv, path: data/penguins.csv}, target: species}
models: [{model: logistic_regression}, {model: random_forest, params: {n_estimators: 30}}]
evaluation: {bootstrap: 0, explain: false, learning_curve: false}
"""


@dataclass
class Site:
    """The running UI and what its store holds."""

    base: str
    runs: Filled
    real_run: str
    real_trial: str
    monitored: Monitored
    server: str


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with headless_chrome(implicit_wait=5) as driver:
        yield driver


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, browser: Any) -> Iterator[Site]:
    """A real ``shipyard run`` on Palmer penguins plus the UI tests' runs and model, served
    by ``shipyard ui`` with an admin key; the browser is logged in."""
    from palmerpenguins import load_penguins

    from shipyard.pipeline import run_project
    from shipyard.spec import load_spec
    from shipyard.tracking import page_runs

    home = tmp_path_factory.mktemp("ui-browser")
    (home / "data").mkdir()
    load_penguins().dropna(subset=["sex"]).to_csv(home / "data" / "penguins.csv", index=False)
    (home / "shipyard.yaml").write_text(RUN_SPEC)
    with Store.open(root=home / ".shipyard") as store:
        result = run_project(load_spec(home / "shipyard.yaml"), store=store)
        filled = fill(store)
        monitored = fill_monitoring(store)
        with store.connect() as conn:
            trial = page_runs(conn, parent_id=result.run_id).runs[0].id
    (home / "keys.txt").write_text(f"{ADMIN_KEY} role=admin\n")
    args = ("--api-keys-file", "keys.txt", "--log-level", "warning")
    with metrics_server() as server, running_ui(home, *args, "--server", server) as ui:
        base = f"http://127.0.0.1:{ui.port}"
        with httpx.Client(base_url=base, timeout=10) as client:
            wait_healthy(client)
        _log_in(browser, base)
        yield Site(base, filled, result.run_id, trial, monitored, server)
    assert ADMIN_KEY not in ui.output


def _log_in(browser: Any, base: str) -> None:
    from selenium.webdriver.common.by import By

    browser.get(f"{base}/runs")
    assert "/login" in browser.current_url
    browser.find_element(By.ID, "key").send_keys(ADMIN_KEY)
    browser.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    assert browser.current_url.endswith("/runs")


def _open(browser: Any, url: str) -> None:
    """Open ``url``; its console must stay clean and it must not scroll sideways."""
    browser.get(url)
    severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert severe == [], (url, severe)
    assert browser.execute_script("return document.readyState") == "complete"
    overflow = browser.execute_script(
        "return document.documentElement.scrollWidth - window.innerWidth"
    )
    assert overflow <= 0, f"{url} scrolls sideways by {overflow}px at 1366px"


def _charts(browser: Any, selector: str = "[data-chart]") -> list[dict[str, Any]]:
    """Every chart on the page: drawn or not, its canvas size, its legend's series."""
    return list(
        browser.execute_script(
            "return Array.from(document.querySelectorAll(arguments[0])).map(a => {"
            " const c = a.querySelector('canvas'); const r = c && c.getBoundingClientRect();"
            " return {drawn: a.dataset.drawn, width: r ? r.width : 0, height: r ? r.height : 0,"
            " series: a.querySelectorAll('.u-legend .u-series').length}; })",
            selector,
        )
    )


def test_every_page_renders_with_a_clean_console(browser: Any, site: Site) -> None:
    from selenium.webdriver.common.by import By

    pages = [
        "/runs",
        "/runs?offset=50",
        "/runs?q=accuracy+%3E+high",  # a bad filter: the page, with the message
        f"/runs/{site.real_run}",
        f"/runs/{site.real_trial}",
        f"/runs/{site.runs.search}",
        f"/compare?ids={site.runs.churn[0]},{site.runs.churn[10]},{site.runs.churn[20]}",
        "/models",
        "/models/penguins",
        f"/runs?parent={site.real_run}",
        "/monitoring",
        "/models/penguins/versions/2/monitoring",
        "/models/penguins/versions/1/monitoring",
        f"/monitoring/checks/{site.monitored.checks[2]}",
        "/serving",
    ]
    for page in pages:
        _open(browser, site.base + page)
        assert browser.find_element(By.TAG_NAME, "h1").text
    browser.get(site.base + "/runs?q=accuracy+%3E+high")
    assert "'high' is not a number" in browser.find_element(By.ID, "err-q").text


def test_charts_draw_on_run_and_compare_pages(browser: Any, site: Site) -> None:
    _open(browser, f"{site.base}/runs/{site.real_trial}")  # cross-validation folds by step
    charts = _charts(browser)
    assert charts and all(
        c["drawn"] == "1" and c["width"] > 100 and c["height"] > 100 for c in charts
    )
    runs = site.runs.churn
    _open(browser, f"{site.base}/compare?ids={runs[0]},{runs[10]},{runs[20]}")
    (loss,) = _charts(browser)
    assert loss["drawn"] == "1" and loss["width"] > 100 and loss["series"] == 4  # step + 3 runs


def test_holdout_curves_draw_on_compare_and_run_pages(browser: Any, site: Site) -> None:
    from selenium.webdriver.common.by import By

    _open(browser, f"{site.base}/compare?ids={site.real_run},{site.runs.search}")
    curves = _charts(browser, "[data-curves]")
    assert len(curves) == 6  # penguins: ROC and PR of each species, the real run's line
    assert all(c["drawn"] == "1" and c["width"] > 100 and c["height"] > 100 for c in curves)
    assert curves[0]["series"] == 2  # the run and the chance diagonal
    no_curves = browser.find_element(By.XPATH, "//p[starts-with(., 'No curves stored')]")
    assert "search" in no_curves.text
    _open(browser, f"{site.base}/runs/{site.real_run}")
    roc, pr = _charts(browser, "[data-curves]")
    assert roc["drawn"] == pr["drawn"] == "1" and roc["series"] == 4  # 3 species + chance
    assert "writing the HTML report" in browser.find_element(By.CSS_SELECTOR, "pre.log").text


def test_filters_sorting_and_paging(browser: Any, site: Site) -> None:
    from selenium.webdriver.common.by import By

    _open(browser, site.base + "/runs")
    count = browser.find_element(By.CSS_SELECTOR, "p.count")
    assert count.text.startswith("Runs 1\u201350 of ")
    browser.find_element(By.CSS_SELECTOR, "a[rel=next]").click()  # htmx swaps the table
    _wait_for(
        browser,
        lambda: browser.find_element(By.CSS_SELECTOR, "p.count").text.startswith("Runs 51\u2013"),
    )
    assert "offset=50" in browser.current_url
    field = browser.find_element(By.ID, "q")
    field.clear()
    field.send_keys("accuracy > 0.7 and tag.team = growth")
    browser.find_element(By.ID, "status").send_keys("finished")
    browser.find_element(By.CSS_SELECTOR, ".filters button[type=submit]").click()
    _wait_for(browser, lambda: "of 10" in browser.find_element(By.CSS_SELECTOR, "p.count").text)
    sort_link = "//th/a[starts-with(normalize-space(), 'accuracy')]"
    browser.find_element(By.XPATH, sort_link).click()  # sort by the metric, best first
    _wait_for(browser, lambda: "sort=metric.accuracy&dir=desc" in browser.current_url)
    assert _run_names(browser)[:2] == ["churn-059", "churn-057"]
    browser.find_element(By.XPATH, sort_link).click()  # again: the other way
    _wait_for(browser, lambda: _run_names(browser)[:1] == ["churn-041"])
    assert "dir=asc" in browser.current_url and len(_run_names(browser)) == 10
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []


def test_compare_from_the_runs_table(browser: Any, site: Site) -> None:
    from selenium.webdriver.common.by import By

    _open(browser, site.base + "/runs?project=churn")
    boxes = browser.find_elements(By.CSS_SELECTOR, "input[name=ids]")
    boxes[3].click()
    boxes[5].click()
    browser.find_element(By.XPATH, "//button[normalize-space()='Compare selected runs']").click()
    _wait_for(browser, lambda: "/compare" in browser.current_url)
    assert browser.find_element(By.TAG_NAME, "h1").text == "Compare 2 runs"
    assert browser.find_elements(By.CSS_SELECTOR, "tr.differs")  # params that differ, marked


def test_promote_through_the_login_and_csrf_form(browser: Any, site: Site) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    _open(browser, site.base + "/models/penguins")
    Select(browser.find_element(By.ID, "promote-version")).select_by_value("3")
    browser.find_element(By.ID, "promote-reason").send_keys("wins on the fresh week of data")
    browser.find_element(By.XPATH, "//button[normalize-space()='Promote']").click()
    _wait_for(browser, lambda: browser.find_elements(By.CSS_SELECTOR, "p.flash"))
    assert "penguins@production: v2 → v3" in browser.find_element(By.CSS_SELECTOR, "p.flash").text
    newest = browser.find_element(By.CSS_SELECTOR, "ol.timeline li")
    assert "wins on the fresh week of data" in newest.text and "by key " in newest.text
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []


def test_the_runs_report_opens_from_its_page(browser: Any, site: Site) -> None:
    from selenium.webdriver.common.by import By

    _open(browser, f"{site.base}/runs/{site.real_run}")
    sha = browser.find_element(By.XPATH, "//tr[td/a[normalize-space()='report.html']]//code").text
    assert re.fullmatch(r"[0-9a-f]{64}", sha)
    browser.find_element(By.LINK_TEXT, "Report and model card").click()
    _wait_for(browser, lambda: browser.current_url.endswith("/artifacts/report.html"))
    assert browser.find_element(By.ID, "holdout").is_displayed()
    images = browser.execute_script(
        "return Array.from(document.images).map(i => i.complete && i.naturalWidth > 0)"
    )
    assert images and all(images)
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []


def test_monitoring_heatmap_and_charts(browser: Any, site: Site) -> None:
    from selenium.webdriver.common.by import By

    _open(browser, site.base + "/monitoring")
    browser.find_element(By.LINK_TEXT, "v2").click()
    _wait_for(
        browser, lambda: browser.current_url.endswith("/models/penguins/versions/2/monitoring")
    )
    cells = browser.find_elements(By.CSS_SELECTOR, "#heatmap-inputs td.hm")
    assert len(cells) == 3 * 6
    drifted = browser.find_elements(By.CSS_SELECTOR, "#heatmap-inputs td.hm-4")
    assert drifted and all("drifted" in c.get_attribute("title") for c in drifted)
    colours = {c.value_of_css_property("background-color") for c in cells}
    assert len(colours) >= 2  # the classes colour the cells (no inline style needed)
    assert len(browser.find_elements(By.CSS_SELECTOR, ".legend li")) == 6
    charts = _charts(browser)  # drift share, prediction drift, accuracy, ...
    assert len(charts) >= 3 and all(c["drawn"] == "1" and c["width"] > 100 for c in charts)
    assert all(c["series"] >= 2 for c in charts)
    [shares] = _charts(browser, '[data-chart="dist-1-data"]')  # each class and its reference
    assert shares["drawn"] == "1" and shares["series"] >= 4
    header = browser.find_element(By.CSS_SELECTOR, "#heatmap-inputs th.hm-check a")
    header.click()  # a column opens its check
    _wait_for(browser, lambda: "/monitoring/checks/" in browser.current_url)
    assert browser.find_element(By.TAG_NAME, "h1").text == "Check of penguins v2"
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []


def test_serving_live_view_updates_and_says_when_a_server_is_down(browser: Any, site: Site) -> None:
    from selenium.webdriver.common.by import By

    _open(browser, site.base + "/serving")  # the server given with --server
    _wait_for(browser, lambda: "over the last" in browser.find_element(By.ID, "live").text)
    live = browser.find_element(By.ID, "live").text
    assert "penguins v2" in live and "Requests/s" in live
    assert float(browser.find_element(By.XPATH, "//dt[.='Requests/s']/../dd").text) > 0
    drawn = browser.execute_script(
        "return Array.from(document.querySelectorAll('[data-live-chart]'))"
        ".map(a => a.dataset.drawn === '1' && !!a.querySelector('canvas'))"
    )
    assert drawn == [True, True]
    pause = browser.find_element(By.ID, "live-pause")
    pause.click()
    assert pause.get_attribute("aria-pressed") == "true"
    _open(browser, site.base + "/serving?url=http%3A%2F%2F127.0.0.1%3A9")
    _wait_for(browser, lambda: browser.find_elements(By.CSS_SELECTOR, "#live .unreachable"))
    assert "cannot reach http://127.0.0.1:9/metrics" in browser.find_element(By.ID, "live").text
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []


def _wait_for(browser: Any, condition: Any, timeout: float = 10) -> None:
    """Wait until ``condition()`` holds; elements htmx replaced meanwhile are looked up again."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    ignored = (NoSuchElementException, StaleElementReferenceException)
    WebDriverWait(browser, timeout, ignored_exceptions=ignored).until(lambda _d: condition())


def _run_names(browser: Any) -> list[str]:
    """The runs table's run names, read in one go (htmx may swap the table at any time)."""
    return list(
        browser.execute_script(
            "return Array.from(document.querySelectorAll("
            "'table.runs tbody td:nth-child(2) a')).map(a => a.textContent)"
        )
    )
