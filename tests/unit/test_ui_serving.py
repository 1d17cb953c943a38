"""The serving page: parsing a server's Prometheus text, rates and quantiles between two
scrapes (on text rendered by the server's own metrics class), and the page and its polled
fragment through Starlette's TestClient, with the server's answers from an httpx mock."""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from shipyard._apikeys import digest_key
from shipyard.serve._metrics import ServeMetrics
from shipyard.store import Store
from shipyard.ui import UiAuth, create_app
from shipyard.ui._serving import (
    ScrapeError,
    Scraper,
    histogram_quantile,
    live_view,
    normalise_url,
    parse_metrics,
)

SERVER = "http://127.0.0.1:8000"
KEY = "server-key-0123456789abcdef"


def _metrics() -> ServeMetrics:
    metrics = ServeMetrics(name="penguins", version="2")
    metrics.watch_queue(lambda: 3)
    return metrics


def _traffic(metrics: ServeMetrics, n: int, seconds: float) -> None:
    """``n`` predict requests taking ``seconds`` each, in model calls of 4 rows, 90% of the
    records answered by v2 and 10% by the canary v3; a scrape and a probe beside them."""
    for _ in range(n):
        metrics.observe("/predict", "POST", 200, seconds)
    metrics.observe("/predict", "POST", 503, seconds)
    metrics.observe("/metrics", "GET", 200, 5.0)  # scrapes and probes are left out
    metrics.observe("/health", "GET", 200, 5.0)
    metrics.predictions.inc(n * 2)
    for _ in range(n // 4):
        metrics.observe_batch(4, 2, 0.003)
    metrics.routed.labels(version="2", role="primary").inc(n * 9 // 10)
    metrics.routed.labels(version="3", role="canary").inc(n // 10)
    metrics.shadow.labels(outcome="agree").inc(n // 2)
    metrics.refused.labels(reason="overloaded").inc(1)


def test_rates_and_quantiles_between_two_scrapes() -> None:
    metrics = _metrics()
    _traffic(metrics, 100, 0.002)
    first = parse_metrics(metrics.render().decode(), at=100.0, wall=1_000.0)
    _traffic(metrics, 200, 0.2)  # slower now: the quantiles follow the last interval
    second = parse_metrics(metrics.render().decode(), at=110.0, wall=1_010.0)
    view = live_view(SERVER, second, first)
    assert view.interval == 10.0
    assert view.requests_per_s == pytest.approx(20.1)  # 201 predict requests, no scrapes
    assert view.records_per_s == pytest.approx(40.0)
    assert view.errors_per_s == pytest.approx(0.1)
    assert view.p50 is not None and 0.1 < view.p50 <= 0.25
    assert view.p99 is not None and 0.1 < view.p99 <= 0.25
    assert view.queue_rows == 3
    assert view.calls_per_s == pytest.approx(5.0)
    assert view.rows_per_call == pytest.approx(4.0) and view.requests_per_call == 2.0
    assert [(s.version, s.role, s.records) for s in view.split] == [
        ("2", "primary", 180),
        ("3", "canary", 20),
    ]
    assert [s.share for s in view.split] == pytest.approx([0.9, 0.1])
    assert view.shadow == [("agree", 100)] and view.refused == [("overloaded", 1)]
    assert [r[0] for r in view.routes] == ["/predict"]
    assert view.models == [{"name": "penguins", "version": "2", "runtime": "sklearn"}]
    assert view.point() == {
        "t": 1_010.0,
        "rps": 20.1,
        "p50": view.p50 * 1000,
        "p99": view.p99 * 1000,
        "queue": 3,
    }


def test_a_first_scrape_shows_totals_since_the_start() -> None:
    metrics = _metrics()
    _traffic(metrics, 40, 0.002)
    view = live_view(SERVER, parse_metrics(metrics.render().decode()), None)
    assert view.interval is None and view.requests_per_s is None and view.errors_per_s is None
    assert view.n_requests == 41
    assert view.p50 is not None and view.p50 <= 0.0025  # since the server started
    assert view.routes[0][1] == 41  # a count, not a rate


def test_a_restarted_server_counts_from_zero_again() -> None:
    busy, fresh = _metrics(), _metrics()
    _traffic(busy, 400, 0.002)
    _traffic(fresh, 20, 0.002)
    before = parse_metrics(busy.render().decode(), at=0.0)
    after = parse_metrics(fresh.render().decode(), at=2.0)
    view = live_view(SERVER, after, before)
    assert view.requests_per_s == pytest.approx(21 / 2)
    assert view.p50 is not None


def test_an_idle_server_has_no_quantiles() -> None:
    metrics = _metrics()
    text = metrics.render().decode()
    view = live_view(SERVER, parse_metrics(text, at=1.0), parse_metrics(text, at=0.0))
    assert view.requests_per_s == 0 and view.p50 is None and view.p99 is None
    assert view.rows_per_call is None and view.split == []


@pytest.mark.parametrize(
    ("q", "buckets", "expected"),
    [
        (0.5, {0.1: 5.0, 0.2: 10.0, math.inf: 10.0}, 0.1),
        (0.99, {0.1: 0.0, 0.2: 100.0, math.inf: 100.0}, 0.199),
        (0.5, {0.1: 0.0, 0.2: 0.0, math.inf: 4.0}, 0.2),  # beyond the last bound
        (0.5, {0.1: 0.0, math.inf: 0.0}, None),
        (0.5, {}, None),
    ],
)
def test_histogram_quantiles_as_prometheus_computes_them(
    q: float, buckets: dict[float, float], expected: float | None
) -> None:
    assert histogram_quantile(q, buckets) == (None if expected is None else pytest.approx(expected))


def test_text_that_is_not_prometheus_is_an_error() -> None:
    with pytest.raises(ScrapeError, match="not Prometheus metrics text"):
        parse_metrics("<html><body>hello</body></html>\n")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ftp://host/x", "not an http:// or https:// URL"),
        ("127.0.0.1:8000", "not an http:// or https:// URL"),
        ("http://user:pw@host:8000", "must not hold a user name or password"),
        ("http://host:8000/?a=1", "without ?query"),
        ("http://host:port", "is not a URL"),
        ("http://" + "a" * 2001, "longer than 2,000"),
    ],
)
def test_only_plain_http_urls_are_servers(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        normalise_url(text)


def test_urls_are_kept_without_a_trailing_slash() -> None:
    assert normalise_url("https://models.example.com/penguins/") == (
        "https://models.example.com/penguins"
    )


# --- fetching -----------------------------------------------------------------------------

Handler = Callable[[httpx.Request], httpx.Response]


def _scraper(handler: Handler, server: str | None = SERVER, key: str | None = KEY) -> Scraper:
    return Scraper(server, key, transport=httpx.MockTransport(handler))


def test_the_key_goes_to_the_configured_server_only() -> None:
    seen: list[httpx.Request] = []
    text = _metrics().render().decode()

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, text=text)

    scraper = _scraper(handler)
    scraper.scrape(SERVER)
    scraper.scrape("http://127.0.0.1:9000")
    assert [str(r.url) for r in seen] == [f"{SERVER}/metrics", "http://127.0.0.1:9000/metrics"]
    assert seen[0].headers["authorization"] == f"Bearer {KEY}"
    assert "authorization" not in seen[1].headers


@pytest.mark.parametrize(
    ("handler", "url", "message"),
    [
        (lambda r: httpx.Response(401), SERVER, "refused the key (HTTP 401)"),
        (lambda r: httpx.Response(401), "http://other:1", "needs an API key (HTTP 401)"),
        (lambda r: httpx.Response(404), SERVER, "answered HTTP 404, not the metrics"),
        (lambda r: httpx.Response(302, headers={"location": "/x"}), SERVER, "HTTP 302"),
        (lambda r: httpx.Response(200, content=b"\xff\xfe"), SERVER, "not text"),
        (
            lambda r: httpx.Response(200, content=b"x" * (5 * 1024 * 1024)),
            SERVER,
            "more than 4 MiB",
        ),
        (lambda r: httpx.Response(200, text="<html>"), SERVER, "not Prometheus"),
    ],
)
def test_answers_that_are_not_metrics_say_why(handler: Handler, url: str, message: str) -> None:
    with pytest.raises(ScrapeError, match=re.escape(message)):
        _scraper(handler).scrape(url)


def test_timeouts_and_refused_connections_say_so() -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    with pytest.raises(ScrapeError, match="did not answer within 2 s"):
        _scraper(slow).scrape(SERVER)
    with pytest.raises(
        ScrapeError, match=r"cannot reach http://127.0.0.1:8000/metrics: ConnectError"
    ):
        _scraper(down).scrape(SERVER)


def test_rates_compare_with_a_scrape_at_least_a_second_old(monkeypatch: pytest.MonkeyPatch) -> None:
    metrics = _metrics()
    clock = iter([10.0, 10.4, 11.2, 11.5])
    monkeypatch.setattr("shipyard.ui._serving.time.monotonic", lambda: next(clock))
    scraper = _scraper(lambda r: httpx.Response(200, text=metrics.render().decode()))
    assert scraper.scrape(SERVER).interval is None
    assert scraper.scrape(SERVER).interval is None  # 0.4 s: too close to compare
    assert scraper.scrape(SERVER).interval == pytest.approx(1.2)
    assert scraper.scrape(SERVER).interval == pytest.approx(1.1)  # the 10.4 one


# --- the pages ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    with Store.open(root=Path(tmp_path_factory.mktemp("ui-serving")) / "sy") as opened:
        yield opened


def _client(store: Store, handler: Handler, auth: UiAuth | None = None) -> TestClient:
    app = create_app(store, auth=auth or UiAuth(), server=SERVER, server_key=KEY)
    app.state.ui.scraper.transport = httpx.MockTransport(handler)
    return TestClient(app, base_url="http://127.0.0.1")


def test_the_page_polls_the_configured_server_and_never_shows_its_key(store: Store) -> None:
    metrics = _metrics()
    _traffic(metrics, 30, 0.004)
    with _client(store, lambda r: httpx.Response(200, text=metrics.render().decode())) as c:
        page = c.get("/serving").text
        assert 'aria-current="page">Serving' in page
        assert f'value="{SERVER}"' in page
        assert 'hx-get="/serving/live?url=http%3A//127.0.0.1%3A8000"' in page
        assert 'hx-trigger="load, every 3s"' in page and 'data-live-chart="rps"' in page
        live = c.get("/serving/live", params={"url": SERVER})
        assert live.status_code == 200
        assert "Serving <strong>penguins v2</strong> (sklearn)" in live.text
        assert "since the server started" in live.text
        assert "<dt>Queue (rows)</dt><dd>3</dd>" in live.text
        assert '<th scope="row">v3</th><td>canary</td>' in live.text
        point = live.text.split("data-point='", 1)[1].split("'", 1)[0]
        assert json.loads(html.unescape(point))["queue"] == 3
        for text in (page, live.text):
            assert KEY not in text and "Bearer" not in text


def test_an_unreachable_server_is_a_message_not_an_error(store: Store) -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    with _client(store, down) as c:
        page = c.get("/serving", params={"url": "http://127.0.0.1:9"})
        assert page.status_code == 200 and 'hx-get="/serving/live?url=' in page.text
        live = c.get("/serving/live", params={"url": "http://127.0.0.1:9"})
        assert live.status_code == 200
        assert (
            'class="error unreachable" role="alert">cannot reach http://127.0.0.1:9/metrics'
            in live.text
        )


def test_a_real_closed_port_is_unreachable(store: Store) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(store, auth=UiAuth())
    with TestClient(app, base_url="http://127.0.0.1") as c:
        live = c.get("/serving/live", params={"url": f"http://127.0.0.1:{port}"})
        assert live.status_code == 200 and "cannot reach" in live.text


def test_a_bad_url_is_named_on_the_page(store: Store) -> None:
    with _client(store, lambda r: httpx.Response(500)) as c:
        page = c.get("/serving", params={"url": "ftp://files"}).text
        assert (
            'id="url-error"' in page and "server URL: &#39;ftp://files&#39; is not an http" in page
        )
        assert 'aria-invalid="true"' in page and "hx-get" not in page
        live = c.get("/serving/live", params={"url": "javascript:alert(1)"}).text
        assert "server URL:" in live


def test_without_a_configured_server_the_page_asks_for_one(store: Store) -> None:
    with TestClient(create_app(store), base_url="http://127.0.0.1") as c:
        page = c.get("/serving").text
        assert "shipyard ui --server URL" in page and "hx-get" not in page
        assert "No server" not in c.get("/serving/live").text  # nothing to read: empty


def test_only_admins_point_a_logged_in_ui_at_another_server(store: Store) -> None:
    roles = {
        digest_key("reader-key-0123456789"): "read",
        digest_key("admin-key-0123456789"): "admin",
    }
    auth = UiAuth(key_roles=roles, secret="s" * 32)
    text = _metrics().render().decode()
    with _client(store, lambda r: httpx.Response(200, text=text), auth=auth) as c:
        login = c.get("/login")
        csrf = login.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        c.post("/login", data={"key": "reader-key-0123456789", "csrf": csrf, "next": "/serving"})
        other = c.get("/serving/live", params={"url": "http://10.0.0.5:8000"}).text
        assert "only an admin may point the UI at another server" in other
        assert "penguins v2" in c.get("/serving/live", params={"url": SERVER}).text
        c.cookies.clear()  # the session ended: the polling page is sent to log in again
        headers = {"HX-Request": "true", "HX-Current-URL": "http://127.0.0.1/serving?url=x"}
        polled = c.get("/serving/live", params={"url": SERVER}, headers=headers)
        assert polled.status_code == 200 and polled.text == ""
        assert polled.headers["hx-redirect"] == "/login?next=/serving%3Furl%3Dx"
