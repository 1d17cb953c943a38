"""Commands that build things: ``init``, ``quickstart``, ``run``."""

from __future__ import annotations

import enum
import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

from shipyard.cli._context import CliState, current_user, open_store, write_file
from shipyard.cli._render import escape, fmt_float, table
from shipyard.errors import SpecError
from shipyard.spec import load_spec, starter_spec

if TYPE_CHECKING:
    from shipyard.pipeline import CandidateResult, Event, Inspection, RunResult
    from shipyard.store import Store

__all__ = ["init", "quickstart", "run", "validate", "worker"]


def init(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="Where to write the project file.")] = Path(
        "shipyard.yaml"
    ),
    name: Annotated[str, typer.Option(help="Project (and model) name.")] = "my-project",
    data: Annotated[
        str, typer.Option(help="CSV or Parquet file, relative to the project file.")
    ] = "data.csv",
    target: Annotated[str, typer.Option(help="The column to predict.")] = "target",
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented starter shipyard.yaml."""
    state: CliState = ctx.obj
    if path.is_dir():
        path = path / "shipyard.yaml"
    if path.exists() and not force:
        msg = f"{path} already exists; pass --force to overwrite it"
        raise SpecError(msg)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(starter_spec(name=name, path=data, target=target), encoding="utf-8")
    shown = escape(path)
    state.out.print(f"Wrote [bold]{shown}[/]. Edit it, then run [bold]shipyard run {shown}[/].")


def quickstart(
    ctx: typer.Context,
    directory: Annotated[Path, typer.Argument(help="Folder for the project.")] = Path(),
    force: Annotated[bool, typer.Option(help="Overwrite an existing shipyard.yaml.")] = False,
) -> None:
    """Create a project from the penguins dataset, train it and register the best model."""
    from shipyard.pipeline import create_quickstart_project  # the training stack loads on use

    state: CliState = ctx.obj
    spec_path = create_quickstart_project(directory, overwrite=force)
    state.out.print(f"Created [bold]{escape(spec_path)}[/] with data/penguins.csv (344 penguins).")
    result = _run(state, spec_path)
    state.out.print()
    state.out.print(f"Model URI: [bold green]{result.model_uri}[/]")
    state.out.print(f"Serve it:  [bold]shipyard serve {result.model_uri}[/]")
    predict = f"shipyard predict {result.model_uri} data/penguins.csv -o predictions.parquet"
    state.out.print(f"Predict:   [bold]{predict}[/]")


class Engine(enum.StrEnum):
    """Where ``shipyard run`` fits the cross-validation folds (``--engine``)."""

    local = "local"
    ray = "ray"


def run(
    ctx: typer.Context,
    spec: Annotated[Path, typer.Argument(help="The project file or its folder.")] = Path(
        "shipyard.yaml"
    ),
    study: Annotated[
        str | None,
        typer.Option(
            help="Share the search under this name: `shipyard worker --study NAME` processes "
            "(same store, same project) join it and run trials too."
        ),
    ] = None,
    engine: Annotated[
        Engine,
        typer.Option(
            help="local: fit the folds in this process; ray: each trial's folds in parallel "
            "on Ray actors (pip install 'shipyard\\[ray]')."
        ),
    ] = Engine.local,
    address: Annotated[
        str | None,
        typer.Option(
            envvar="SHIPYARD_RAY_ADDRESS",
            help="The Ray cluster's address (--engine ray; default: start a local one).",
        ),
    ] = None,
    result_file: Annotated[
        Path | None,
        typer.Option(
            "--result",
            help="Also write the outcome as JSON to this file (run id, model URI, version, "
            "promoted and the gate's reason): what a CI job reads to decide whether to deploy.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Validate the data, train and compare the candidates, register the best model."""
    if address is not None and engine is not Engine.ray:
        msg = "--address names a Ray cluster; add --engine ray"
        raise typer.BadParameter(msg, param_hint="--address")
    result = _run(ctx.obj, spec, study=study, engine=engine, address=address)
    if result_file is not None:
        write_file(result_file, (json.dumps(run_outcome(result), indent=2) + "\n").encode())


def run_outcome(result: RunResult) -> dict[str, Any]:
    """What ``shipyard run --result FILE`` writes: the run, the version and the gate's call."""
    return {
        "run_id": result.run_id,
        "model_uri": result.model_uri,
        "model_name": result.model_name,
        "model_version": result.model_version,
        "alias": result.alias,
        "promoted": result.promoted,
        "gate": result.gate,
        "metric": result.metric,
        "best": result.best,
        "holdout": {k: v if math.isfinite(v) else None for k, v in result.holdout.items()},
        "runtime": result.runtime,
        "dataset_fingerprint": result.dataset_fingerprint,
    }


def worker(
    ctx: typer.Context,
    study: Annotated[str, typer.Option(help="The shared search to join (the lead's --study).")],
    spec: Annotated[Path, typer.Argument(help="The project file or its folder.")] = Path(
        "shipyard.yaml"
    ),
    wait: Annotated[
        float, typer.Option(help="Seconds to wait for the lead to start the search.")
    ] = 300.0,
    name: Annotated[
        str | None, typer.Option(help="This worker's name on its trials (default host-pid).")
    ] = None,
) -> None:
    """Join a shared search (`shipyard run --study NAME`) and run trials until its budget is
    spent or the lead is done; each trial is a child run of the lead's run."""
    from shipyard.pipeline import run_search_worker  # the training stack loads on use

    state: CliState = ctx.obj
    project = load_spec(spec)
    store = open_store(state, create=True)
    try:
        with _progress(state) as handler:
            done = run_search_worker(
                project, store=store, study=study, worker=name, wait=wait, on_event=handler
            )
    finally:
        store.close()
    state.out.print(
        f"Worker done: {done.trials} trials ({done.complete} complete) in {done.seconds:.1f} s "
        f"for run {done.lead_run_id[:12]}; stopped by {done.stopped_by}"
    )


def validate(
    ctx: typer.Context,
    spec: Annotated[Path, typer.Argument(help="The project file or its folder.")] = Path(
        "shipyard.yaml"
    ),
    show_passed: Annotated[bool, typer.Option("--all", help="List passed checks too.")] = False,
) -> None:
    """Check the project file and its data without training; exit 1 when run would fail.

    The checks are those a run makes before training (its preflight): the validation report,
    the candidates (model keys, parameter names and values) and the split (rows of each class
    for a stratified holdout and for the cross-validation folds).
    """
    from shipyard.pipeline import inspect_project, preflight  # the training stack loads on use

    state: CliState = ctx.obj
    project = load_spec(spec)
    inspection = inspect_project(project)
    _print_inspection(state, inspection, show_passed=show_passed)
    plan = preflight(project, inspection)
    for finding in plan.leakage:
        state.out.print(f"[yellow]warning (leakage):[/] {escape(finding.message)}")
    labels = escape(", ".join(plan.estimators))
    state.out.print(
        f"[green]Ready to train[/] {len(plan.estimators)} candidate(s) ({labels}) on "
        f"{len(plan.train_idx):,} rows with {len(plan.folds)}-fold cross-validation; "
        f"{len(plan.test_idx):,} rows held out"
    )


def _print_inspection(state: CliState, inspection: Inspection, *, show_passed: bool) -> None:
    report = inspection.report
    shown = [r for r in report.results if show_passed or not r.passed]
    rows = [
        (_verdict(r.passed, r.severity), escape(r.column or "<table>"), r.check, escape(r.message))
        for r in shown
    ]
    title = f"Validation of {report.n_rows:,} rows x {report.n_columns} columns"
    state.out.print(table(title, ["", "column", "check", "result"], rows))
    n_passed = sum(r.passed for r in report.results)
    state.out.print(
        f"{n_passed} passed, [red]{len(report.errors)} error(s)[/], "
        f"[yellow]{len(report.warnings)} warning(s)[/]; task [bold]{inspection.task}[/], "
        f"metric [bold]{inspection.metric}[/], data {inspection.fingerprint[:12]}"
    )
    if inspection.signature is not None:
        cols = [
            (escape(c.name), c.kind, "yes" if c.nullable else "no")
            for c in inspection.signature.inputs
        ]
        state.out.print(table("Model inputs (Signature)", ["column", "kind", "nullable"], cols))


def _verdict(passed: bool, severity: str) -> str:
    if passed:
        return "[green]ok[/]"
    return "[red]ERROR[/]" if severity == "error" else "[yellow]warn[/]"


def _run(
    state: CliState,
    spec_path: Path,
    *,
    study: str | None = None,
    engine: Engine = Engine.local,
    address: str | None = None,
) -> RunResult:
    from shipyard.pipeline import run_project  # the training stack loads on use

    spec = load_spec(spec_path)
    store = open_store(state, create=True)
    try:
        with _progress(state) as handler:
            result = run_project(
                spec,
                store=store,
                user=current_user(),
                on_event=handler,
                study=study,
                engine=engine.value,
                ray_address=address,
            )
        report = _report_location(store, result)
    finally:
        store.close()
    _print_result(state, result)
    state.out.print(f"Report: [bold]{escape(report)}[/]")
    return result


def _report_location(store: Store, result: RunResult) -> str:
    """The report's local file when artifacts are local and in clear, else the command that
    exports it (decrypted)."""
    root = store.artifacts.root
    if result.report_path is None:
        return "none (see the warning above)"
    local = "://" not in root or root.startswith("file://")
    if local and store.artifacts.key_id is None:
        return str(Path(root.removeprefix("file://")) / result.report_path)
    return f"shipyard runs report {result.run_id[:12]} -o report.html"


class _ProgressHandler:
    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._task = progress.add_task("starting", total=None)

    def __call__(self, event: Event) -> None:
        if event.kind == "warning":
            self._progress.console.print(f"[yellow]warning:[/] {escape(event.message)}")
        elif event.kind == "fold":
            self._progress.update(
                self._task, completed=event.current, total=event.total, description=event.message
            )
        else:
            self._progress.update(self._task, description=event.message, completed=0, total=None)


@contextmanager
def _progress(state: CliState) -> Iterator[_ProgressHandler]:
    bar = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=state.out,
        transient=True,
    )
    with bar:
        yield _ProgressHandler(bar)


def _print_result(state: CliState, result: RunResult) -> None:
    from shipyard.evaluate import KEY_METRICS

    out = state.out
    metric = result.metric
    shown = result.candidates
    if result.search is not None:  # the best trial of each family; every trial is a run
        best_of: dict[str, CandidateResult] = {}
        for c in result.candidates:  # best first
            best_of.setdefault(c.model, c)
        shown = list(best_of.values())
    rows = [
        (
            "*" if c.label == result.best else "",
            escape(c.label),
            f"{fmt_float(c.cv_mean[metric])} ± {fmt_float(c.cv_std[metric])}",
            f"{c.fit_seconds:.1f}s",
            c.run_id[:8],
        )
        for c in shown
    ]
    title = f"Candidates ({result.task}, {result.n_rows} rows, {metric} by cross-validation)"
    if result.search is not None:
        title = f"Best trial per family ({result.task}, {result.n_rows} rows, cv {metric})"
    out.print(table(title, ["", "candidate", f"cv {metric}", "fit time", "run"], rows))
    if result.search is not None:
        search = result.search
        states = ", ".join(f"{n} {s}" for s, n in sorted(search["states"].items()))
        families = ", ".join(f"{k} {n}" for k, n in search["per_family"].items())
        out.print(
            f"Search: {search['trials']} trials in {search['seconds']:.1f} s ({states}; "
            f"stopped by {search['stopped_by']}); trials per family: {families}"
        )
    keys = [k for k in KEY_METRICS[result.task] if k in result.holdout]
    holdout = [(k, fmt_float(result.holdout[k])) for k in keys]
    out.print(table("Holdout metrics", ["metric", escape(result.best)], holdout))
    verb = "[green]promoted[/]" if result.promoted else "[yellow]not promoted[/]"
    version = f"[bold]{result.model_name}[/] version [bold]{result.model_version}[/]"
    out.print(f"Registered {version} ({verb}: {escape(result.gate)})")
    out.print(f"Runtime: {escape(_runtime_line(result))}")
    out.print(f"Run: {result.run_id}  data: {result.dataset_fingerprint[:12]}")


def _runtime_line(result: RunResult) -> str:
    """What the server will run, and why (ONNX checked on the holdout, or sklearn's reason)."""
    check = result.onnx.get("check") or {}
    if result.runtime == "onnx":
        return (
            f"onnx (checked against the pipeline on {check.get('n_rows', 0)} rows, "
            f"largest difference {check.get('max_abs_diff', 0.0):.1e})"
        )
    return f"sklearn ({result.onnx.get('reason') or 'no ONNX graph'})"
