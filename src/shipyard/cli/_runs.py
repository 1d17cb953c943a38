"""``shipyard runs``: list, show and compare tracked runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from shipyard.cli._context import CliState, open_store, write_file
from shipyard.cli._render import escape, fmt_float, fmt_time, kv_table, table
from shipyard.errors import TrackingError
from shipyard.store import ArtifactRecord, Store
from shipyard.tracking import RunRecord, Tracker

__all__ = ["runs_app"]

runs_app = typer.Typer(help="List, show and compare tracked runs.", no_args_is_help=True)


@runs_app.command("list")
def list_runs(
    ctx: typer.Context,
    project: Annotated[str | None, typer.Option(help="Only runs of this project.")] = None,
    status: Annotated[
        str | None,
        typer.Option(
            help="running, finished, failed, killed or crashed (its process died without "
            "ending it: kill -9, out of memory, lost host)."
        ),
    ] = None,
    children: Annotated[
        bool, typer.Option("--all", help="Include candidate (child) runs.")
    ] = False,
    limit: Annotated[int, typer.Option(help="At most this many runs.")] = 20,
) -> None:
    """List runs, newest first; runs whose process died show as crashed."""
    state: CliState = ctx.obj
    store = open_store(state)
    try:
        kwargs = {} if children else {"parent_id": None}
        runs = Tracker(store).search_runs(
            project=project, status=status, order_by="start_time DESC", limit=limit, **kwargs
        )
    finally:
        store.close()
    rows = [
        (
            r.id[:8],
            escape(r.project or "-"),
            escape(r.name),
            _status(r.status),
            fmt_time(r.start_time),
            _duration(r),
            _headline(r),
        )
        for r in runs
    ]
    state.out.print(
        table(
            f"{len(runs)} run(s)",
            ["run", "project", "name", "status", "started", "took", "metrics"],
            rows,
        )
    )


@runs_app.command("show")
def show_run(
    ctx: typer.Context, run_id: Annotated[str, typer.Argument(help="A run id or a unique prefix.")]
) -> None:
    """Show one run: status, process, lineage, params, metrics, tags."""
    state: CliState = ctx.obj
    store = open_store(state)
    try:
        run = Tracker(store).get_run(run_id)
        artifacts = store.artifacts.list(f"runs/{run.id}")
        evaluation = _evaluation(store, artifacts)
    finally:
        store.close()
    info = [
        ("id", run.id),
        ("name", escape(run.name)),
        ("project", escape(run.project or "-")),
        ("parent", run.parent_id or "-"),
        ("status", _status(run.status)),
        ("started", fmt_time(run.start_time)),
        ("took", _duration(run)),
        ("dataset", escape(run.dataset_fingerprint or "-")),
        ("spec hash", escape(run.spec_hash or "-")),
        ("git commit", escape(run.git_commit or "-")),
    ]
    if run.pid is not None:
        info.insert(7, ("process", escape(f"pid {run.pid} on {run.host or '?'}")))
    if run.status in ("running", "crashed") and run.heartbeat_at is not None:
        info.insert(8, ("last heartbeat", fmt_time(run.heartbeat_at, seconds=True)))
    if run.error:
        info.append(("error", f"[red]{escape(run.error)}[/]"))
    state.out.print(kv_table("Run", info))
    state.out.print(kv_table("Params", _escaped(sorted(run.params.items()))))
    state.out.print(
        kv_table("Metrics", [(escape(k), fmt_float(v)) for k, v in sorted(run.metrics.items())])
    )
    if run.tags:
        state.out.print(kv_table("Tags", _escaped(sorted(run.tags.items()))))
    if artifacts:
        prefix = f"runs/{run.id}/"
        files = [
            (escape(a.path.removeprefix(prefix)), f"{a.size:,} B", a.sha256[:16]) for a in artifacts
        ]
        state.out.print(table(f"Artifacts (under {prefix})", ["file", "size", "sha256"], files))
    matrix = evaluation.get("confusion_matrix")
    if matrix:
        labels = [escape(label) for label in evaluation.get("labels") or []]
        cells = [
            [f"[bold]{label}[/]", *map(str, counts)]
            for label, counts in zip(labels, matrix, strict=True)
        ]
        title = "Holdout confusion matrix (rows: true, columns: predicted)"
        state.out.print(table(title, ["", *labels], cells))


@runs_app.command("compare")
def compare_runs(
    ctx: typer.Context,
    run_ids: Annotated[list[str], typer.Argument(help="Two or more run ids (or unique prefixes).")],
) -> None:
    """Compare runs side by side: params and metrics, differences highlighted."""
    state: CliState = ctx.obj
    if len(run_ids) < 2:
        msg = "give at least two run ids"
        raise typer.BadParameter(msg)
    store = open_store(state)
    try:
        tracker = Tracker(store)
        runs = [tracker.get_run(r) for r in run_ids]
    finally:
        store.close()
    header = ["", *[f"{escape(r.name)} ({r.id[:8]})" for r in runs]]
    params = sorted({k for r in runs for k in r.params})
    metrics = sorted({k for r in runs for k in r.metrics})
    rows = [_row(f"param {k}", [r.params.get(k, "-") for r in runs]) for k in params]
    rows += [_row(k, [fmt_float(r.metrics.get(k)) for r in runs]) for k in metrics]
    state.out.print(table("Runs compared", header, rows))


@runs_app.command("report")
def export_report(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="A run id or a unique prefix.")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Where to write (default report-ID.html).")
    ] = None,
) -> None:
    """Write a run's HTML report (metrics, plots, validation, signature) to a file."""
    state: CliState = ctx.obj
    store = open_store(state)
    try:
        run = Tracker(store).get_run(run_id)
        path = f"runs/{run.id}/report.html"
        if not store.artifacts.exists(path):
            msg = f"run {run.id} has no HTML report (only pipeline runs that finished have one)"
            raise TrackingError(msg)
        html = store.artifacts.get(path)
    finally:
        store.close()
    target = output or Path(f"report-{run.id[:8]}.html")
    write_file(target, html)
    state.out.print(f"Wrote [bold]{escape(target)}[/] ({len(html):,} bytes)")


def _evaluation(store: Store, artifacts: list[ArtifactRecord]) -> dict[str, Any]:
    for artifact in artifacts:
        if artifact.path.endswith("/evaluation.json"):
            return dict(json.loads(store.artifacts.get(artifact.path)))
    return {}


def _row(label: str, values: list[str]) -> list[str]:
    """A comparison row (plain text in, markup out): differing values highlighted."""
    differs = len(set(values)) > 1
    label, values = escape(label), [escape(v) for v in values]
    return [
        f"[bold]{label}[/]" if differs else label,
        *(f"[yellow]{v}[/]" if differs else v for v in values),
    ]


def _escaped(items: list[tuple[str, Any]]) -> list[tuple[str, str]]:
    """Key/value pairs of user text, safe to print."""
    return [(escape(k), escape(v)) for k, v in items]


def _status(status: str) -> str:
    colour = {
        "finished": "green",
        "failed": "red",
        "running": "cyan",
        "killed": "magenta",
        "crashed": "bold yellow",
    }.get(status, "white")
    return f"[{colour}]{escape(status)}[/]"


def _duration(run: RunRecord) -> str:
    if run.duration is None:
        return "-"
    # a crashed run's end is its last heartbeat: it ran at least that long
    return f"{'≥' if run.status == 'crashed' else ''}{run.duration:.1f}s"


def _headline(run: RunRecord) -> str:
    metric = run.params.get("metric")
    if metric and metric in run.metrics:
        return f"{escape(metric)}={fmt_float(run.metrics[metric])}"
    shown = [f"{escape(k)}={fmt_float(v)}" for k, v in sorted(run.metrics.items())[:2]]
    return ", ".join(shown) or "-"
