"""The runs pages: the table of runs, one run (its curves and its log), its artifacts, and
runs compared."""

from __future__ import annotations

import json
import mimetypes
from collections import Counter
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from starlette.responses import Response

from shipyard.errors import StoreError
from shipyard.store import ArtifactRecord
from shipyard.tracking import (
    RUN_STATUSES,
    MetricPoint,
    RunPage,
    RunRecord,
    metric_histories,
    page_runs,
    run_projects,
    view_run,
)
from shipyard.ui._app import PageError, View
from shipyard.ui._curves import (
    CURVES_ARTIFACT,
    RunCurve,
    compare_curve_charts,
    read_curves,
    run_curve_charts,
)
from shipyard.ui._filters import RUN_COLUMNS, RunQuery, parse_run_query

__all__ = ["artifact", "compare_page", "run_page", "runs_page"]

MAX_METRIC_COLUMNS = 6
MAX_COMPARED = 10
MAX_CHARTS = 24
MAX_POINTS = 1000  # per series: more are thinned evenly (the last point is always kept)
TRIALS_SHOWN = 100
LOG_ARTIFACT = "run.log"  # the pipeline's name (shipyard.pipeline is not the UI's to import)
LOG_LINES_SHOWN = 200
#: The artifacts' own policy: shown as a sandboxed document (no script runs, no cookie is
#: readable), self-contained reports (inline styles, data: images) still render.
ARTIFACT_CSP = (
    "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'; font-src data:"
)
_TEXT_TYPES = ("text/", "application/json", "image/svg+xml")
_OTHER_TYPES = {"log": "text/plain"}  # what mimetypes does not know
_BINARY = "application/octet-stream"


def runs_page(ctx: View) -> Response:
    """``/runs``: a page of runs, filtered and sorted as the query string says."""
    query = parse_run_query(ctx.request.query_params)
    page: RunPage | None = None
    parent = None
    with ctx.store.connect() as conn:
        projects = run_projects(conn)
        if query.values["parent"]:
            parent = view_run(conn, query.values["parent"])
        if not query.errors:
            parent_id = None if parent is None else parent.id
            page = page_runs(conn, parent_id=parent_id, **query.kwargs)
    return ctx.render(
        "runs.html.j2",
        query=query,
        page=page,
        parent=parent,
        projects=projects,
        statuses=RUN_STATUSES,
        sort_columns=RUN_COLUMNS,
        metric_columns=metric_columns(page.runs if page else [], query),
    )


def metric_columns(runs: Sequence[RunRecord], query: RunQuery | None = None) -> list[str]:
    """The metrics shown as columns: the sorted one, the filtered ones, then the most common
    on the page (at most :data:`MAX_METRIC_COLUMNS`)."""
    first: list[str] = []
    if query is not None:
        if query.sort.startswith("metric."):
            first.append(query.sort.removeprefix("metric."))
        first += query.filter_keys
    counts = Counter(key for run in runs for key in run.metrics)
    common = [key for key, _n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
    ordered = list(dict.fromkeys(first + common))
    return ordered[:MAX_METRIC_COLUMNS]


def run_page(ctx: View) -> Response:
    """``/runs/{id}``: one run with its lineage, params, metrics, charts, trials, artifacts and
    validation report."""
    with ctx.store.connect() as conn:
        run = view_run(conn, ctx.request.path_params["run_id"])
        histories = metric_histories(conn, run.id)
        trials = page_runs(conn, parent_id=run.id, limit=TRIALS_SHOWN)
        parent = view_run(conn, run.parent_id) if run.parent_id else None
    artifacts = ctx.store.artifacts.list(f"runs/{run.id}")
    problems: list[str] = []
    validation = _json_artifact(ctx, run, artifacts, "validation.json", problems)
    evaluation = _json_artifact(ctx, run, artifacts, "evaluation.json", problems) or {}
    curves = _run_curves(ctx, run, artifacts, problems)
    charts = [
        chart(key, [(run.name, points)])
        for key, points in sorted(histories.items())
        if len(points) > 1
    ][:MAX_CHARTS]
    primary = run.params.get("metric")
    trial_metrics = metric_columns(trials.runs)
    if primary and primary in trial_metrics:
        trial_metrics = [primary] + [k for k in trial_metrics if k != primary]
    return ctx.render(
        "run.html.j2",
        run=run,
        parent=parent,
        charts=charts,
        trials=trials,
        trial_statuses=Counter(t.status for t in trials.runs),
        trial_metrics=trial_metrics,
        artifacts=[(a, a.path.removeprefix(f"runs/{run.id}/")) for a in artifacts],
        validation=validation,
        confusion=_confusion(evaluation),
        curve_charts=run_curve_charts(curves[1]) if curves else [],
        log=_log_tail(ctx, run, artifacts, problems),
        problems=problems,
        has_report=any(a.path.endswith("/report.html") for a in artifacts),
        quote=quote,
    )


def artifact(ctx: View) -> Response:
    """``/runs/{id}/artifacts/{path}``: one of a run's artifacts, sha256-verified, shown
    in the browser (sandboxed) or, with ``?download=1``, downloaded."""
    name = ctx.request.path_params["path"]
    with ctx.store.connect() as conn:
        run = view_run(conn, ctx.request.path_params["run_id"])
    path = f"runs/{run.id}/{name}"
    records = {a.path: a for a in ctx.store.artifacts.list(f"runs/{run.id}")}
    if path not in records:
        msg = f"run {run.id} has no artifact {name!r}; its page lists the ones it has"
        raise PageError(404, msg)
    data = ctx.store.artifacts.get(path)
    kind = mimetypes.guess_type(name)[0] or _OTHER_TYPES.get(name.rsplit(".", 1)[-1], _BINARY)
    if kind.startswith(_TEXT_TYPES):
        kind += "; charset=utf-8"
    download = ctx.request.query_params.get("download") == "1"
    filename = quote(name.rsplit("/", 1)[-1])
    headers = {
        "content-security-policy": ARTIFACT_CSP,
        "content-disposition": (
            f"{'attachment' if download else 'inline'}; filename*=UTF-8''{filename}"
        ),
        "x-shipyard-sha256": records[path].sha256,
    }
    return Response(data, media_type=kind, headers=headers)


def compare_page(ctx: View) -> Response:
    """``/compare?ids=a,b``: 2 to 10 runs side by side (params, metrics, charts)."""
    ids = _compared_ids(ctx.request.query_params.getlist("ids"))
    with ctx.store.connect() as conn:
        runs = [view_run(conn, run_id) for run_id in ids]
        histories = {run.id: metric_histories(conn, run.id) for run in runs}
    if len({run.id for run in runs}) < 2:
        raise PageError(400, "compare: these ids name one run twice; choose 2 to 10 runs")
    problems: list[str] = []
    curves = {run.id: _compared_curves(ctx, run, problems) for run in runs}
    stored = [(_label(run), found) for run in runs if (found := curves[run.id]) is not None]
    curve_charts = compare_curve_charts([(label, *found) for label, found in stored])
    param_keys = sorted({k for run in runs for k in run.params})
    metric_keys = sorted({k for run in runs for k in run.metrics})
    params = [_compared(key, [run.params.get(key) for run in runs]) for key in param_keys]
    metrics = [_compared(key, [run.metrics.get(key) for run in runs]) for key in metric_keys]
    keys = sorted({k for h in histories.values() for k, points in h.items() if len(points) > 1})
    charts = [
        chart(key, [(_label(run), histories[run.id].get(key, [])) for run in runs])
        for key in keys[:MAX_CHARTS]
    ]
    return ctx.render(
        "compare.html.j2",
        runs=runs,
        params=params,
        metrics=metrics,
        charts=charts,
        n_differing=sum(1 for row in params if row["differs"]),
        curve_charts=curve_charts,
        without_curves=[run for run in runs if curves[run.id] is None],
        problems=problems,
    )


def chart(key: str, series: Sequence[tuple[str, Sequence[MetricPoint]]]) -> dict[str, Any]:
    """A metric-over-steps chart's data: shared steps, one value list per series (``None``
    where a series has no value at a step)."""
    thinned = [(label, _thin(points)) for label, points in series]
    steps = sorted({p.step for _label, points in thinned for p in points})
    lines = []
    for label, points in thinned:
        by_step = {p.step: p.value for p in points}
        lines.append({"label": label, "values": [by_step.get(s) for s in steps]})
    return {"title": key, "x": steps, "series": lines, "summary": _summary(series)}


def _summary(series: Sequence[tuple[str, Sequence[MetricPoint]]]) -> str:
    """The chart in words (for screen readers and the curious)."""
    parts = []
    for label, points in series:
        if points:
            low = min(p.value for p in points)
            high = max(p.value for p in points)
            parts.append(
                f"{label}: {len(points)} steps, from {points[0].value:.4g} to "
                f"{points[-1].value:.4g} (min {low:.4g}, max {high:.4g})"
            )
    return "; ".join(parts)


def _thin(points: Sequence[MetricPoint]) -> list[MetricPoint]:
    if len(points) <= MAX_POINTS:
        return list(points)
    stride = len(points) / (MAX_POINTS - 1)
    picked = [points[int(i * stride)] for i in range(MAX_POINTS - 1)]
    return [*picked, points[-1]]


def _compared_ids(raw: list[str]) -> list[str]:
    ids = list(dict.fromkeys(part.strip() for item in raw for part in item.split(",")))
    ids = [i for i in ids if i]
    if not 2 <= len(ids) <= MAX_COMPARED:
        msg = (
            f"compare: choose 2 to {MAX_COMPARED} runs (got {len(ids)}); tick them on the runs "
            "page, or give ids=A,B in the address"
        )
        raise PageError(400, msg)
    return ids


def _compared(key: str, values: list[Any]) -> dict[str, Any]:
    return {"key": key, "values": values, "differs": len({repr(v) for v in values}) > 1}


def _label(run: RunRecord) -> str:
    return f"{run.name} ({run.id[:8]})"


def _json_artifact(
    ctx: View, run: RunRecord, artifacts: list[ArtifactRecord], name: str, problems: list[str]
) -> dict[str, Any] | None:
    """A run's JSON artifact, parsed; ``None`` when it has none. One that cannot be read (it
    changed after it was stored, it is encrypted with another key, it is not JSON) adds a
    line to ``problems`` instead of failing the page."""
    path = f"runs/{run.id}/{name}"
    if not any(a.path == path for a in artifacts):
        return None
    try:
        loaded = json.loads(ctx.store.artifacts.get(path))
    except (StoreError, ValueError) as exc:
        problems.append(f"{name} could not be read: {exc}")
        return None
    return loaded if isinstance(loaded, dict) else None


def _run_curves(
    ctx: View, run: RunRecord, artifacts: list[ArtifactRecord], problems: list[str]
) -> tuple[str, list[RunCurve]] | None:
    """The task and holdout curves ``run`` stored (``curves.json``, sha256-verified);
    ``None`` for a run without them (older runs, regressions)."""
    return read_curves(_json_artifact(ctx, run, artifacts, CURVES_ARTIFACT, problems))


def _compared_curves(
    ctx: View, run: RunRecord, problems: list[str]
) -> tuple[str, list[RunCurve]] | None:
    """:func:`_run_curves` of one of the compared runs, its problems naming it."""
    own: list[str] = []
    found = _run_curves(ctx, run, ctx.store.artifacts.list(f"runs/{run.id}"), own)
    problems += [f"{_label(run)}: {problem}" for problem in own]
    return found


def _log_tail(
    ctx: View, run: RunRecord, artifacts: list[ArtifactRecord], problems: list[str]
) -> dict[str, Any] | None:
    """The last :data:`LOG_LINES_SHOWN` lines of the run's ``run.log`` (sha256-verified),
    with its line count; ``None`` for a run without a log."""
    path = f"runs/{run.id}/{LOG_ARTIFACT}"
    if not any(a.path == path for a in artifacts):
        return None
    try:
        text = ctx.store.artifacts.get(path).decode("utf-8", "replace")
    except StoreError as exc:
        problems.append(f"{LOG_ARTIFACT} could not be read: {exc}")
        return None
    lines = text.splitlines()
    shown = lines[-LOG_LINES_SHOWN:]
    return {
        "name": LOG_ARTIFACT,
        "text": "\n".join(shown),
        "n_shown": len(shown),
        "n_lines": len(lines),
    }


def _confusion(evaluation: dict[str, Any]) -> dict[str, Any] | None:
    """The holdout confusion matrix (rows: true, columns: predicted), as ``runs show`` prints
    it; ``None`` without one."""
    matrix, labels = evaluation.get("confusion_matrix"), evaluation.get("labels")
    if not matrix or not labels or len(matrix) != len(labels):
        return None
    return {"labels": [str(label) for label in labels], "rows": matrix}
