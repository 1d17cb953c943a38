"""Prometheus metrics of one server app, kept in a per-app registry.

Each app owns its :class:`~prometheus_client.CollectorRegistry`, so several apps (and tests)
in one process never share or collide on metrics.

Several worker processes (``--workers N``) report together instead: each worker calls
:func:`use_multiprocess_metrics` after the fork, before its app is built, so that its counters,
histograms and gauges live in files of prometheus_client's multiprocess mode, and any worker's
``/metrics`` adds up every worker's files (:class:`~prometheus_client.multiprocess.
MultiProcessCollector`). The supervisor calls :func:`forget_worker` for each worker that exits.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    values,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from shipyard.model import OutOfDomain
    from shipyard.serve._predlog import PredictionLogStats

__all__ = [
    "METRICS_CONTENT_TYPE",
    "MetricsMiddleware",
    "ServeMetrics",
    "forget_worker",
    "use_multiprocess_metrics",
]

METRICS_CONTENT_TYPE = CONTENT_TYPE_LATEST
_UNMATCHED = "<unmatched>"
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
MAX_IGNORED_NAMES = 32
_OTHER = "<other>"
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 16384)
_MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_MODEL_INFO = "shipyard_model_info"
_multiproc_dir: str | None = None  # set in a worker process by use_multiprocess_metrics


def use_multiprocess_metrics(path: str) -> None:
    """Keep this process's metrics in prometheus_client's multiprocess files under ``path``.

    For a worker process of a server with several: call it after the fork and before the app
    (and its :class:`ServeMetrics`) is built. prometheus_client picks where values live when it
    is imported, which the supervisor did before forking, so the switch is made here.
    """
    global _multiproc_dir
    os.environ[_MULTIPROC_ENV] = path
    values.ValueClass = values.MultiProcessValue()
    _multiproc_dir = path


def forget_worker(pid: int, path: str) -> None:
    """Drop the live gauges (queue, pending log records, model) of a worker that exited.

    Its counters and histograms stay: the server's totals keep what it counted.
    """
    mark_process_dead(pid, path)


class ServeMetrics:
    """The server's metrics: requests, latency, batches, queue, refusals and the model.

    Args:
        name: the model's name (a label of ``shipyard_model_info``).
        version: the model's version (a label of ``shipyard_model_info``).
        runtime: what runs the model, ``onnx`` or ``sklearn`` (a label of
            ``shipyard_model_info``).
    """

    def __init__(self, *, name: str | None, version: str | None, runtime: str = "sklearn") -> None:
        # multiprocess mode: the values live in the worker's files, render() reads every worker's
        self._multiproc_dir = _multiproc_dir
        self._queue: Callable[[], int] | None = None
        self._log_stats: Callable[[], PredictionLogStats] | None = None
        self._log_counted = (0, 0, 0)
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
            multiprocess_mode="livemax",  # a version is served while one live worker serves it
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
            multiprocess_mode="livesum",
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
            "timeout (504), unauthorized (401), forbidden (403), rate_limited (429).",
            ["reason"],
            registry=self.registry,
        )
        self.out_of_distribution = Counter(
            "shipyard_out_of_distribution",
            "Input values outside the training data, per field and reason: below_range, "
            "above_range, unseen_category, missing (see --ood).",
            ["field", "reason"],
            registry=self.registry,
        )
        self.ood_records = Counter(
            "shipyard_out_of_distribution_records",
            "Records with at least one input outside the training data: flagged (answered and "
            "marked in the prediction log) or rejected (422).",
            ["action"],
            registry=self.registry,
        )
        self.rate_limited = Counter(
            "shipyard_rate_limited",
            "Requests refused with a 429 per client: an API key's first 8 sha256 hex digits, "
            "or anonymous.",
            ["client"],
            registry=self.registry,
        )

    @property
    def multiprocess(self) -> bool:
        """Whether these metrics add up several worker processes (see the module's doc)."""
        return self._multiproc_dir is not None

    def watch_queue(self, queued_rows: Callable[[], int]) -> None:
        """Export the batching queue's rows (``shipyard_queue_rows``).

        Read at each scrape; with several workers, each sets its share after every model call
        and when it answers a scrape, and the scrape adds up the live workers' shares.
        """
        if self.multiprocess:
            self._queue = queued_rows
        else:
            self.queue_rows.set_function(queued_rows)

    def watch_prediction_log(self, stats: Callable[[], PredictionLogStats]) -> None:
        """Export the prediction log's counts (read at each scrape).

        With several workers, each worker copies its counts into its metrics files after every
        model call and when it answers a scrape (see :meth:`_sync`).
        """
        if not self.multiprocess:
            self.registry.register(_PredictionLogCollector(stats))
            return
        self._log_stats = stats
        self._log_written = Counter(
            "shipyard_prediction_log_written", _WRITTEN_HELP, registry=self.registry
        )
        self._log_dropped = Counter(
            "shipyard_prediction_log_dropped", _DROPPED_HELP, registry=self.registry
        )
        self._log_errors = Counter(
            "shipyard_prediction_log_flush_errors", _ERRORS_HELP, registry=self.registry
        )
        self._log_pending = Gauge(
            "shipyard_prediction_log_pending",
            _PENDING_HELP,
            registry=self.registry,
            multiprocess_mode="livesum",
        )

    def set_model(self, *, name: str | None, version: str | None, runtime: str) -> None:
        """Point ``shipyard_model_info`` at the version now served (after a hot reload)."""
        if self.multiprocess:  # a file keeps its keys: zero the old version (render drops it)
            self.model_info.labels(**self._model_labels).set(0)
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

    def count_out_of_distribution(
        self, found: Sequence[Sequence[OutOfDomain]], *, rejected: bool
    ) -> None:
        """Count each record's fields outside the training data (fields come from the
        model's Signature, so the label set is bounded)."""
        flagged = 0
        for record in found:
            if record:
                flagged += 1
                for issue in record:
                    self.out_of_distribution.labels(field=issue.field, reason=issue.reason).inc()
        if flagged:
            self.ood_records.labels(action="rejected" if rejected else "flagged").inc(flagged)

    def count_rate_limited(self, client: str) -> None:
        """One request refused for its client's rate."""
        self.rate_limited.labels(client=client).inc()
        self.refused.labels(reason="rate_limited").inc()

    def observe_batch(self, n_rows: int, n_requests: int, seconds: float) -> None:
        """Record one model call (the batcher's ``on_batch`` hook)."""
        self.batch_rows.observe(n_rows)
        self.batch_requests.observe(n_requests)
        self.batch_seconds.observe(seconds)
        if self.multiprocess:
            self._sync()

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        """Record one finished request."""
        self.requests.labels(route=route, method=method, status=str(status)).inc()
        self.latency.labels(route=route).observe(seconds)

    def render(self) -> bytes:
        """The metrics in Prometheus' text exposition format (every worker's, if several)."""
        if self._multiproc_dir is None:
            return generate_latest(self.registry)
        self._sync()
        registry = CollectorRegistry()
        registry.register(_ServedModels(MultiProcessCollector(None, path=self._multiproc_dir)))
        return generate_latest(registry)

    def _sync(self) -> None:
        """Copy what this worker reads at scrape time (queue, prediction log) into its files."""
        if self._queue is not None:
            self.queue_rows.set(self._queue())
        if self._log_stats is not None:
            s = self._log_stats()
            now = (s.n_written, s.n_dropped, s.n_flush_errors)
            counters = (self._log_written, self._log_dropped, self._log_errors)
            for counter, before, after in zip(counters, self._log_counted, now, strict=True):
                if after > before:
                    counter.inc(after - before)
            self._log_counted = now
            self._log_pending.set(s.n_pending)


class _ServedModels:
    """Every worker's metrics, less the versions no worker serves any more (zeroed info)."""

    def __init__(self, collector: MultiProcessCollector) -> None:
        self.collector = collector

    def collect(self) -> Iterator[Metric]:
        for metric in self.collector.collect():
            if metric.name == _MODEL_INFO:
                metric.samples = [s for s in metric.samples if s.value != 0]
            yield metric


_WRITTEN_HELP = "Predictions written to the prediction log."
_DROPPED_HELP = "Predictions dropped (buffer full, unstorable, unwritten at shutdown)."
_ERRORS_HELP = "Failed sink writes (each retried)."
_PENDING_HELP = "Predictions admitted to the log and not yet written."


class _PredictionLogCollector:
    """The prediction log's written, dropped and pending counts, read when scraped."""

    def __init__(self, stats: Callable[[], PredictionLogStats]) -> None:
        self.stats = stats

    def collect(self) -> Iterator[Metric]:
        s = self.stats()
        yield CounterMetricFamily(
            "shipyard_prediction_log_written",
            _WRITTEN_HELP,
            value=s.n_written,
        )
        yield CounterMetricFamily(
            "shipyard_prediction_log_dropped",
            _DROPPED_HELP,
            value=s.n_dropped,
        )
        yield CounterMetricFamily(
            "shipyard_prediction_log_flush_errors",
            _ERRORS_HELP,
            value=s.n_flush_errors,
        )
        yield GaugeMetricFamily(
            "shipyard_prediction_log_pending",
            _PENDING_HELP,
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
