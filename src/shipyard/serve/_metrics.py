"""Prometheus metrics of one server app, kept in a per-app registry.

Each app owns its :class:`~prometheus_client.CollectorRegistry`, so several apps (and tests)
in one process never share or collide on metrics.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from shipyard.serve._predlog import PredictionLogStats

__all__ = ["METRICS_CONTENT_TYPE", "MetricsMiddleware", "ServeMetrics"]

METRICS_CONTENT_TYPE = CONTENT_TYPE_LATEST
_UNMATCHED = "<unmatched>"
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
MAX_IGNORED_NAMES = 32
_OTHER = "<other>"
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 16384)


class ServeMetrics:
    """The server's metrics: requests, latency, batches, queue, refusals and the model.

    Args:
        name: the model's name (a label of ``shipyard_model_info``).
        version: the model's version (a label of ``shipyard_model_info``).
        runtime: what runs the model, ``onnx`` or ``sklearn`` (a label of
            ``shipyard_model_info``).
    """

    def __init__(self, *, name: str | None, version: str | None, runtime: str = "sklearn") -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "shipyard_http_requests",
            "HTTP requests by route template, method and status code.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "shipyard_http_request_duration_seconds",
            "HTTP request latency by route template.",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.predictions = Counter(
            "shipyard_predictions",
            "Records predicted.",
            registry=self.registry,
        )
        self.model_info = Gauge(
            "shipyard_model_info",
            "The model this server runs and its runtime (always 1).",
            ["name", "version", "runtime"],
            registry=self.registry,
        )
        self._model_labels = {"name": name or "", "version": version or "", "runtime": runtime}
        self.model_info.labels(**self._model_labels).set(1)
        self.routed = Counter(
            "shipyard_routed_records",
            "Records answered, by the version that answered and its role (primary, canary).",
            ["version", "role"],
            registry=self.registry,
        )
        self.shadow = Counter(
            "shipyard_shadow_records",
            "Records the shadow version scored, by outcome: agree or disagree with the "
            "answer given; dropped (its queue was full) or failed.",
            ["outcome"],
            registry=self.registry,
        )
        self.reloads = Counter(
            "shipyard_model_reloads",
            "Times hot reload switched the served version (the alias moved).",
            registry=self.registry,
        )
        self.batch_rows = Histogram(
            "shipyard_batch_rows",
            "Rows per model call (micro-batches of concurrent requests).",
            buckets=_BATCH_BUCKETS,
            registry=self.registry,
        )
        self.batch_requests = Histogram(
            "shipyard_batch_requests",
            "Requests per model call.",
            buckets=_BATCH_BUCKETS,
            registry=self.registry,
        )
        self.batch_seconds = Histogram(
            "shipyard_batch_duration_seconds",
            "Seconds per model call.",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.queue_rows = Gauge(
            "shipyard_queue_rows",
            "Rows admitted and waiting for the model.",
            registry=self.registry,
        )
        self.ignored_fields = Counter(
            "shipyard_ignored_fields",
            "Fields of records that the model does not take, ignored (see --strict-inputs).",
            ["field"],
            registry=self.registry,
        )
        self._ignored_names: set[str] = set()
        self.refused = Counter(
            "shipyard_requests_refused",
            "Requests refused before the model ran: overloaded (503), shutting_down (503), "
            "timeout (504), unauthorized (401).",
            ["reason"],
            registry=self.registry,
        )

    def watch_prediction_log(self, stats: Callable[[], PredictionLogStats]) -> None:
        """Export the prediction log's counts (read at each scrape)."""
        self.registry.register(_PredictionLogCollector(stats))

    def set_model(self, *, name: str | None, version: str | None, runtime: str) -> None:
        """Point ``shipyard_model_info`` at the version now served (after a hot reload)."""
        self.model_info.remove(*self._model_labels.values())
        self._model_labels = {"name": name or "", "version": version or "", "runtime": runtime}
        self.model_info.labels(**self._model_labels).set(1)

    def count_ignored(self, names: list[str]) -> None:
        """Count fields a record carried that the model does not take (label: the name).

        Only the first :data:`MAX_IGNORED_NAMES` distinct names get a label of their own; the
        rest are counted as ``<other>``, so clients cannot grow the label set without bound.
        """
        for name in names:
            if name not in self._ignored_names:
                if len(self._ignored_names) >= MAX_IGNORED_NAMES:
                    name = _OTHER
                else:
                    self._ignored_names.add(name)
            self.ignored_fields.labels(field=name).inc()

    def observe_batch(self, n_rows: int, n_requests: int, seconds: float) -> None:
        """Record one model call (the batcher's ``on_batch`` hook)."""
        self.batch_rows.observe(n_rows)
        self.batch_requests.observe(n_requests)
        self.batch_seconds.observe(seconds)

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        """Record one finished request."""
        self.requests.labels(route=route, method=method, status=str(status)).inc()
        self.latency.labels(route=route).observe(seconds)

    def render(self) -> bytes:
        """The metrics in Prometheus' text exposition format."""
        return generate_latest(self.registry)


class _PredictionLogCollector:
    """The prediction log's written, dropped and pending counts, read when scraped."""

    def __init__(self, stats: Callable[[], PredictionLogStats]) -> None:
        self.stats = stats

    def collect(self) -> Iterator[Metric]:
        s = self.stats()
        yield CounterMetricFamily(
            "shipyard_prediction_log_written",
            "Predictions written to the prediction log.",
            value=s.n_written,
        )
        yield CounterMetricFamily(
            "shipyard_prediction_log_dropped",
            "Predictions dropped (buffer full, unstorable, unwritten at shutdown).",
            value=s.n_dropped,
        )
        yield CounterMetricFamily(
            "shipyard_prediction_log_flush_errors",
            "Failed sink writes (each retried).",
            value=s.n_flush_errors,
        )
        yield GaugeMetricFamily(
            "shipyard_prediction_log_pending",
            "Predictions admitted to the log and not yet written.",
            value=s.n_pending,
        )


class MetricsMiddleware:
    """ASGI middleware counting requests and timing them by route template.

    The route label is the matched route's path template (``/predict``), never the raw path,
    so unknown paths cannot blow up the label cardinality.
    """

    def __init__(self, app: ASGIApp, metrics: ServeMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = _route_template(scope)
            self.metrics.observe(route, scope["method"], status, time.perf_counter() - start)


def _route_template(scope: Scope) -> str:
    route: Any = scope.get("route")
    path = getattr(route, "path", None)
    if path:
        return str(path)
    if scope.get("endpoint") is None:
        return _UNMATCHED
    if "app_root_path" in scope:
        # a mount (the docs assets) moved its prefix into root_path: count the files under it
        # as one route, so that requests for made-up file names cannot add labels
        prefix = str(scope["root_path"])[len(str(scope["app_root_path"])) :]
        return f"{prefix}/{{path}}"
    # plain Starlette routes (/openapi.json) set only the endpoint; their paths are fixed
    return str(scope["path"])
