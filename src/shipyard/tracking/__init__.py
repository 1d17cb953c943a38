"""Tracking: runs with params, metrics, tags, artifacts and lineage, over the metadata store.

Logging is buffered: ``log_metric`` appends to memory and a background thread writes batches,
so tracking costs microseconds per call; everything is durable when the run ends.

Example:
    >>> from shipyard.store import Store
    >>> from shipyard.tracking import Tracker
    >>> tracker = Tracker(Store.open(root=".shipyard"))  # doctest: +SKIP
    >>> with tracker.start_run("baseline", project="penguins") as run:  # doctest: +SKIP
    ...     run.log_params({"C": 1.0})
    ...     for epoch, loss in enumerate(losses):
    ...         run.log_metric("loss", loss, step=epoch)
    >>> tracker.search_runs(order_by="metric.loss ASC", limit=1)  # doctest: +SKIP
"""

from shipyard.tracking._active import (
    active_run,
    log_metric,
    log_metrics,
    log_param,
    log_params,
    set_tag,
    start_run,
)
from shipyard.tracking._artifacts import load_run_artifact, run_artifact_path
from shipyard.tracking._datasets import record_dataset
from shipyard.tracking._lineage import Lineage, collect_lineage
from shipyard.tracking._pages import (
    MAX_PAGE_SIZE,
    PAGE_SIZE,
    RUN_STATUSES,
    RunPage,
    metric_histories,
    page_runs,
    run_projects,
    view_run,
)
from shipyard.tracking._query import MetricPoint, RunRecord, metric_history
from shipyard.tracking._run import Run, Tracker

__all__ = [
    "MAX_PAGE_SIZE",
    "PAGE_SIZE",
    "RUN_STATUSES",
    "Lineage",
    "MetricPoint",
    "Run",
    "RunPage",
    "RunRecord",
    "Tracker",
    "active_run",
    "collect_lineage",
    "load_run_artifact",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "metric_histories",
    "metric_history",
    "page_runs",
    "record_dataset",
    "run_artifact_path",
    "run_projects",
    "set_tag",
    "start_run",
    "view_run",
]
