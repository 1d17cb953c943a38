"""The serving page: a live view of a running ``shipyard serve``'s ``/metrics``.

The UI fetches the server's Prometheus text itself (the browser talks to the UI only, so the
Content-Security-Policy keeps ``connect-src 'self'``), parses it with prometheus_client's
parser, and turns two scrapes into rates: requests and records per second, p50 and p99
latency from the histogram's buckets, model calls and their sizes, the canary and shadow split.
The page polls a fragment every few seconds (htmx).

Only ``<base URL>/metrics`` is fetched (``GET``, no redirects followed, 2 s, at most
:data:`MAX_BYTES`), and only numbers parsed from it are shown. The API key for a server with
keys (``SHIPYARD_UI_SERVER_KEY``, read by ``shipyard ui``) goes to the configured server only,
never to another URL a visitor types, and never into a page. When the UI has logins, only an
admin may point it at another server than the configured one.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
from prometheus_client.parser import text_string_to_metric_families
from starlette.responses import HTMLResponse, Response

from shipyard.ui._app import View

__all__ = [
    "LiveView",
    "Scrape",
    "ScrapeError",
    "Scraper",
    "histogram_quantile",
    "live_fragment",
    "live_view",
    "normalise_url",
    "parse_metrics",
    "serving_page",
]

TIMEOUT = 2.0
"""Seconds a scrape may take."""
MAX_BYTES = 4 * 1024 * 1024
"""The most of a ``/metrics`` answer read."""
MIN_INTERVAL = 1.0
"""Rates compare with the latest scrape at least this many seconds old."""
KEEP = 8
"""Scrapes kept per server (the rates need two)."""
MAX_SERVERS = 16
"""Servers whose scrapes are kept (the least recently scraped go first)."""
REFRESH_SECONDS = 3
"""How often the page asks for fresh numbers."""
QUIET_ROUTES = frozenset(
    {"/metrics", "/health", "/ready", "/v2/health/live", "/v2/health/ready", "<unmatched>"}
)
"""Routes left out of the request rate and latency: scrapes (this page's own) and probes."""

Samples = dict[str, list[tuple[dict[str, str], float]]]


class ScrapeError(Exception):
    """The server's metrics could not be read; the message says why, for the page."""


@dataclass(frozen=True)
class Scrape:
    """One read of a server's ``/metrics``: when (monotonic and wall clock) and every
    sample by name (``shipyard_http_requests_total``, ``..._bucket``, ...)."""

    at: float
    wall: float
    samples: Samples

    def total(self, name: str, exclude: Mapping[str, Collection[str]] | None = None) -> float:
        """The sum of a metric's samples, leaving out those with an excluded label value."""
        return sum(v for labels, v in self.samples.get(name, ()) if not _excluded(labels, exclude))

    def by(self, name: str, *keys: str) -> dict[tuple[str, ...], float]:
        """A metric's samples summed by the values of ``keys``."""
        out: dict[tuple[str, ...], float] = {}
        for labels, value in self.samples.get(name, ()):
            group = tuple(labels.get(k, "") for k in keys)
            out[group] = out.get(group, 0.0) + value
        return out

    def buckets(
        self, name: str, exclude: Mapping[str, Collection[str]] | None = None
    ) -> dict[float, float]:
        """A histogram's cumulative bucket counts by upper bound, summed over its label sets."""
        out: dict[float, float] = {}
        for labels, value in self.samples.get(f"{name}_bucket", ()):
            if _excluded(labels, exclude) or "le" not in labels:
                continue
            bound = float(labels["le"])
            out[bound] = out.get(bound, 0.0) + value
        return out


def _excluded(labels: Mapping[str, str], exclude: Mapping[str, Collection[str]] | None) -> bool:
    return exclude is not None and any(labels.get(k, "") in v for k, v in exclude.items())


def parse_metrics(text: str, *, at: float | None = None, wall: float | None = None) -> Scrape:
    """Prometheus text as a :class:`Scrape`.

    Raises:
        ScrapeError: the text is not Prometheus' exposition format.
    """
    samples: Samples = {}
    try:
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                samples.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    except Exception as exc:  # the parser raises ValueError, TypeError, IndexError...
        msg = "the answer is not Prometheus metrics text (is this a shipyard serve URL?)"
        raise ScrapeError(msg) from exc
    return Scrape(
        time.monotonic() if at is None else at, time.time() if wall is None else wall, samples
    )


def histogram_quantile(q: float, buckets: Mapping[float, float]) -> float | None:
    """The ``q`` quantile of a histogram's cumulative buckets, as Prometheus computes it:
    linear within the bucket holding the rank; ``None`` without observations.

    Example:
        >>> histogram_quantile(0.5, {0.1: 5, 0.2: 10, math.inf: 10})
        0.1
        >>> histogram_quantile(0.99, {0.1: 0, 0.2: 100, math.inf: 100})
        0.199
    """
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return None
    rank = q * buckets[bounds[-1]]
    lower, below = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank and count > below:
            if math.isinf(bound):
                return lower  # beyond the largest finite bound: that bound is all we know
            return lower + (bound - lower) * (rank - below) / (count - below)
        lower, below = (bound if not math.isinf(bound) else lower), count
    return lower


def _delta(now: float, before: float) -> float:
    """A counter's increase; a counter that went down was reset (the server restarted)."""
    return now - before if now >= before else now


def _bucket_delta(now: Mapping[float, float], before: Mapping[float, float]) -> dict[float, float]:
    if any(now.get(b, 0.0) < v for b, v in before.items()):
        return dict(now)  # reset
    return {b: v - before.get(b, 0.0) for b, v in now.items()}


@dataclass(frozen=True)
class Split:
    """Records answered by one version in one role (``primary``, ``canary``)."""

    version: str
    role: str
    records: float
    share: float | None


@dataclass(frozen=True)
class LiveView:
    """What the page shows of a server: rates over :attr:`interval` seconds (``None`` on the
    first scrape: then totals since the server started)."""

    url: str
    wall: float
    interval: float | None
    models: list[dict[str, str]]
    requests_per_s: float | None
    records_per_s: float | None
    errors_per_s: float | None
    p50: float | None
    p99: float | None
    n_requests: float
    queue_rows: float | None
    calls_per_s: float | None
    rows_per_call: float | None
    rows_per_call_p99: float | None
    requests_per_call: float | None
    split: list[Split]
    shadow: list[tuple[str, float]]
    refused: list[tuple[str, float]]
    routes: list[tuple[str, float, float | None, float | None]]
    log_pending: float | None = None
    log_dropped: float | None = None

    def point(self) -> dict[str, Any]:
        """This view as one point of the page's live charts (latency in ms)."""
        ms = [None if v is None else round(v * 1000, 3) for v in (self.p50, self.p99)]
        return {
            "t": self.wall,
            "rps": None if self.requests_per_s is None else round(self.requests_per_s, 3),
            "p50": ms[0],
            "p99": ms[1],
            "queue": self.queue_rows,
        }


_LATENCY = "shipyard_http_request_duration_seconds"
_REQUESTS = "shipyard_http_requests_total"


def live_view(url: str, now: Scrape, before: Scrape | None) -> LiveView:
    """The numbers of a server between two scrapes (``before`` ``None``: since it started)."""
    quiet = {"route": QUIET_ROUTES}
    interval = None if before is None else now.at - before.at
    base = before or Scrape(now.at, now.wall, {})

    def rate(name: str, exclude: Mapping[str, Collection[str]] | None = None) -> float | None:
        if interval is None or interval <= 0:
            return None
        return _delta(now.total(name, exclude), base.total(name, exclude)) / interval

    latency = _bucket_delta(now.buckets(_LATENCY, quiet), base.buckets(_LATENCY, quiet))
    rows = _bucket_delta(now.buckets("shipyard_batch_rows"), base.buckets("shipyard_batch_rows"))
    calls = _delta(now.total("shipyard_batch_rows_count"), base.total("shipyard_batch_rows_count"))
    rows_sum = _delta(now.total("shipyard_batch_rows_sum"), base.total("shipyard_batch_rows_sum"))
    req_sum = _delta(
        now.total("shipyard_batch_requests_sum"), base.total("shipyard_batch_requests_sum")
    )
    errors = None
    if interval is not None and interval > 0:
        failed = {
            k: v for k, v in now.by(_REQUESTS, "route", "status").items() if k[1].startswith("5")
        }
        was = base.by(_REQUESTS, "route", "status")
        errors = sum(_delta(v, was.get(k, 0.0)) for k, v in failed.items()) / interval
    return LiveView(
        url=url,
        wall=now.wall,
        interval=interval,
        models=[
            labels for labels, value in now.samples.get("shipyard_model_info", ()) if value > 0
        ],
        requests_per_s=rate(_REQUESTS, quiet),
        records_per_s=rate("shipyard_predictions_total"),
        errors_per_s=errors,
        p50=histogram_quantile(0.5, latency),
        p99=histogram_quantile(0.99, latency),
        n_requests=_delta(now.total(_REQUESTS, quiet), base.total(_REQUESTS, quiet)),
        queue_rows=_gauge(now, "shipyard_queue_rows"),
        calls_per_s=None if not interval else calls / interval,
        rows_per_call=rows_sum / calls if calls else None,
        rows_per_call_p99=histogram_quantile(0.99, rows),
        requests_per_call=req_sum / calls if calls else None,
        split=_split(now, base),
        shadow=_counts(now, base, "shipyard_shadow_records_total", "outcome"),
        refused=_counts(now, base, "shipyard_requests_refused_total", "reason"),
        routes=_routes(now, base, interval),
        log_pending=_gauge(now, "shipyard_prediction_log_pending"),
        log_dropped=_gauge(now, "shipyard_prediction_log_dropped_total"),
    )


def _gauge(scrape: Scrape, name: str) -> float | None:
    return scrape.total(name) if name in scrape.samples else None


def _split(now: Scrape, before: Scrape) -> list[Split]:
    name = "shipyard_routed_records_total"
    was = before.by(name, "version", "role")
    counts = {k: _delta(v, was.get(k, 0.0)) for k, v in now.by(name, "version", "role").items()}
    total = sum(counts.values())
    return [
        Split(version, role, n, n / total if total else None)
        for (version, role), n in sorted(counts.items())
    ]


def _counts(now: Scrape, before: Scrape, name: str, key: str) -> list[tuple[str, float]]:
    was = before.by(name, key)
    return sorted((k[0], _delta(v, was.get(k, 0.0))) for k, v in now.by(name, key).items())


def _routes(
    now: Scrape, before: Scrape, interval: float | None
) -> list[tuple[str, float, float | None, float | None]]:
    """Each busy route: requests (per second, or in total on a first scrape), p50, p99."""
    out = []
    was = before.by(_REQUESTS, "route")
    for (route,), count in sorted(now.by(_REQUESTS, "route").items()):
        if route in QUIET_ROUTES:
            continue
        n = _delta(count, was.get((route,), 0.0))
        only = {"route": [r for (r,) in now.by(_REQUESTS, "route") if r != route]}
        latency = _bucket_delta(now.buckets(_LATENCY, only), before.buckets(_LATENCY, only))
        per = n / interval if interval else n
        out.append(
            (route, per, histogram_quantile(0.5, latency), histogram_quantile(0.99, latency))
        )
    return out


# -- fetching --------------------------------------------------------------------------------


def normalise_url(text: str) -> str:
    """A server's base URL as typed, checked: ``http`` or ``https``, a host, no credentials,
    query or fragment; without a trailing slash (``/metrics`` is added to it).

    Raises:
        ValueError: it is not such a URL (the message says why).

    Example:
        >>> normalise_url(" http://127.0.0.1:8000/ ")
        'http://127.0.0.1:8000'
    """
    text = text.strip()
    if len(text) > 2000:
        msg = "the URL is longer than 2,000 characters"
        raise ValueError(msg)
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 (a port that is not a number raises here)
    except ValueError as exc:
        msg = f"{text!r} is not a URL"
        raise ValueError(msg) from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        msg = f"{text!r} is not an http:// or https:// URL with a host, e.g. http://127.0.0.1:8000"
        raise ValueError(msg)
    if parts.username or parts.password:
        msg = (
            "the URL must not hold a user name or password (the API key comes from "
            "SHIPYARD_UI_SERVER_KEY)"
        )
        raise ValueError(msg)
    if parts.query or parts.fragment:
        msg = "give the server's base URL, without ?query or #fragment"
        raise ValueError(msg)
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"


@dataclass
class Scraper:
    """Reads servers' ``/metrics`` and keeps their latest scrapes (one per app).

    Args:
        server: the configured server's base URL (``shipyard ui --server``), if any.
        api_key: its API key, sent to it only (as ``Authorization: Bearer``).
        transport: an httpx transport (tests).
    """

    server: str | None = None
    api_key: str | None = field(default=None, repr=False)
    transport: httpx.BaseTransport | None = field(default=None, repr=False)
    _scrapes: dict[str, deque[Scrape]] = field(default_factory=dict, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.server is not None:
            self.server = normalise_url(self.server)

    def fetch(self, url: str) -> str:
        """``url/metrics`` as text.

        Raises:
            ScrapeError: unreachable, slow, not 200, too large, or not text.
        """
        headers = {"Accept": "text/plain"}
        if self.api_key and url == self.server:
            headers["Authorization"] = f"Bearer {self.api_key}"
        target = f"{url}/metrics"
        try:
            with (
                httpx.Client(timeout=TIMEOUT, transport=self.transport, trust_env=False) as client,
                client.stream("GET", target, headers=headers) as response,
            ):
                if response.status_code in (401, 403):
                    raise ScrapeError(_refused(response.status_code, url == self.server))
                if response.status_code != 200:
                    msg = f"{target} answered HTTP {response.status_code}, not the metrics"
                    raise ScrapeError(msg)
                body = bytearray()
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > MAX_BYTES:
                        msg = f"{target} answered more than {MAX_BYTES // (1024 * 1024)} MiB"
                        raise ScrapeError(msg)
        except httpx.TimeoutException as exc:
            msg = f"{target} did not answer within {TIMEOUT:g} s"
            raise ScrapeError(msg) from exc
        except httpx.HTTPError as exc:
            msg = f"cannot reach {target}: {type(exc).__name__}"
            detail = str(exc).strip()
            raise ScrapeError(f"{msg} ({detail})" if detail else msg) from exc
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError as exc:
            msg = f"{target} answered something that is not text"
            raise ScrapeError(msg) from exc

    def scrape(self, url: str) -> LiveView:
        """Read ``url``'s metrics now and compare with an earlier scrape.

        Raises:
            ScrapeError: see :meth:`fetch` and :func:`parse_metrics`.
        """
        now = parse_metrics(self.fetch(url))
        with self._lock:
            kept = self._scrapes.pop(url, None) or deque(maxlen=KEEP)
            self._scrapes[url] = kept  # most recently scraped last
            while len(self._scrapes) > MAX_SERVERS:
                self._scrapes.pop(next(iter(self._scrapes)))
            before = next((s for s in reversed(kept) if now.at - s.at >= MIN_INTERVAL), None)
            kept.append(now)
        return live_view(url, now, before)


def _refused(status: int, configured: bool) -> str:
    if configured:
        return (
            f"the server refused the key (HTTP {status}): set SHIPYARD_UI_SERVER_KEY to a "
            "key with role read or admin and start shipyard ui again"
        )
    return (
        f"the server needs an API key (HTTP {status}); the UI sends SHIPYARD_UI_SERVER_KEY "
        "only to the server given with shipyard ui --server"
    )


# -- the views -------------------------------------------------------------------------------


def serving_page(ctx: View) -> Response:
    """``/serving?url=``: the live view's page (the numbers come from :func:`live_fragment`)."""
    scraper: Scraper = ctx.ui.scraper
    given = ctx.request.query_params.get("url")
    url, error = _target(ctx, given)
    return ctx.render(
        "serving.html.j2",
        section="serving",
        url=url,
        typed=given if given is not None else (scraper.server or ""),
        error=error,
        configured=scraper.server,
        refresh=REFRESH_SECONDS,
    )


def live_fragment(ctx: View) -> Response:
    """``/serving/live?url=``: the numbers (an HTML fragment the page polls); a server that
    cannot be read is a message, never an error status (htmx would not show it)."""
    url, error = _target(ctx, ctx.request.query_params.get("url"))
    view = None
    if url is not None:
        try:
            view = ctx.ui.scraper.scrape(url)
        except ScrapeError as exc:
            error = str(exc)
    html = ctx.ui.templates.get_template("serving_live.html.j2").render(
        url=url, view=view, error=error, checked=time.time()
    )
    return HTMLResponse(html)


def _target(ctx: View, given: str | None) -> tuple[str | None, str | None]:
    """The server to show and, when there is none, why."""
    scraper: Scraper = ctx.ui.scraper
    if given is None or not given.strip():
        return scraper.server, None
    try:
        url = normalise_url(given)
    except ValueError as exc:
        return None, f"server URL: {exc}"
    if url != scraper.server and ctx.ui.auth.required and not ctx.session.can_admin:
        shown = scraper.server or "none"
        msg = f"only an admin may point the UI at another server than the configured one ({shown})"
        return None, msg
    return url, None
