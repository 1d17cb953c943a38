"""``shipyard monitor`` and ``shipyard drift``: drift of a served model, or between two files."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from shipyard.cli._context import CliState, PredictionLogOption, open_store, write_file
from shipyard.cli._render import escape, fmt_float, table
from shipyard.spec import DriftSpec, load_spec
from shipyard.store import store_location

if TYPE_CHECKING:
    from shipyard.monitor import DriftReport, PerformanceReport
    from shipyard.pipeline import MonitorResult, RunResult
    from shipyard.registry import LabelIngest
    from shipyard.store import Store

__all__ = ["DRIFT_EXIT_CODE", "drift", "labels_app", "monitor"]

labels_app = typer.Typer(help="Labels that arrive after the predictions.", no_args_is_help=True)

DRIFT_EXIT_CODE = 3
"""The exit code of ``--fail-on-drift`` when the data drifted (1 and 2 mean errors)."""


class Format(StrEnum):
    """How results are printed."""

    table = "table"
    json = "json"


def monitor(
    ctx: typer.Context,
    model_uri: Annotated[str, typer.Argument(help="models:/NAME@ALIAS or models:/NAME/VERSION")],
    since: Annotated[
        str | None,
        typer.Option(help="The window's start (ISO 8601, UTC unless it says otherwise)."),
    ] = None,
    until: Annotated[str | None, typer.Option(help="The window's end (excluded).")] = None,
    window: Annotated[
        str | None,
        typer.Option(help="The window back from now: 30m, 6h, 1d, 2w (instead of --since)."),
    ] = None,
    predictions: PredictionLogOption = None,
    project: Annotated[
        Path | None,
        typer.Option(
            help="The project file whose monitoring.drift settings apply (default: "
            "./shipyard.yaml when it exists)."
        ),
    ] = None,
    output_format: Annotated[Format, typer.Option("--format", help="table or json.")] = (
        Format.table
    ),
    record: Annotated[
        bool, typer.Option(help="Record the check in the store's monitoring history.")
    ] = True,
    fail_on_drift: Annotated[
        bool, typer.Option(help=f"Exit {DRIFT_EXIT_CODE} when the inputs drifted.")
    ] = False,
    retrain: Annotated[
        bool,
        typer.Option(
            help="When an alert rule fires (without rules: when the inputs drifted), run the "
            "project on its current data; the gate promotes the new version only if it wins."
        ),
    ] = False,
    report: Annotated[
        Path | None,
        typer.Option(
            help="Write the check as a self-contained HTML report (histograms, performance "
            "over time, alerts) to this file."
        ),
    ] = None,
) -> None:
    """Test a served model's logged predictions in a window against its reference."""
    from shipyard.pipeline import check_model, parse_window

    state: CliState = ctx.obj
    if window is not None:
        if since is not None:
            msg = "give either --window or --since, not both"
            raise typer.BadParameter(msg, param_hint="--window")
        try:
            start, end = parse_window(window)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--window") from exc
        since, until = start.isoformat(), until or end.isoformat()
    spec_path = _project_file(project)
    if retrain and spec_path is None:
        msg = "--retrain runs the project: give --project or run it where shipyard.yaml is"
        raise typer.BadParameter(msg, param_hint="--retrain")
    settings = load_spec(spec_path).monitoring if spec_path is not None else None
    store = open_store(state)
    try:
        log = predictions or str(store_location(state.store_url)[1] / "predictions")
        try:
            result = check_model(
                model_uri,
                store=store,
                predictions=log,
                since=since,
                until=until,
                options=settings.drift if settings is not None else None,
                record=record,
                alerts=settings.alerts if settings is not None else None,
            )
        except ValueError as exc:  # a time that is not one
            raise typer.BadParameter(str(exc), param_hint="--since/--until") from exc
        trigger = _retrain_trigger(result)
        if report is not None:
            from shipyard.pipeline import monitor_report

            write_file(report, monitor_report(result, store).encode())
        retrained = None
        if retrain and trigger and spec_path is not None:
            retrained = _retrain(state, spec_path, result, trigger, store)
    finally:
        store.close()
    name = f"{result.model_name}/{result.model_version}"
    if output_format is Format.json:
        payload = {
            "model": result.model_name,
            "version": result.model_version,
            "window": [None if t is None else t.isoformat() for t in result.window],
            "check_id": None if result.check is None else result.check.id,
            "inputs": result.inputs.to_dict(),
            "predictions": result.predictions.to_dict(),
            "performance": result.performance.to_dict(),
            "signals": result.signals,
            "alerts": _alerts_json(result),
            "retrained": None if retrained is None else retrained.model_uri,
        }
        typer.echo(json.dumps(payload, indent=2, default=_json_default))
    else:
        out = state.out
        out.print(_verdict(f"Inputs of {escape(name)}", result.inputs))
        out.print(_drift_table(result.inputs))
        out.print(_verdict("Predictions", result.predictions))
        out.print(_drift_table(result.predictions))
        out.print(_performance_line(result.performance))
        if result.performance.metrics:
            out.print(_performance_table(result.performance))
        for line in _alert_lines(result):
            out.print(line)
        if result.check is not None:
            out.print(f"Recorded check {result.check.id}")
        if report is not None:
            out.print(f"Report: {escape(report)}")
        if retrain and not trigger:
            out.print("No alert fired: nothing to retrain")
    if fail_on_drift and result.inputs.drifted:
        raise typer.Exit(DRIFT_EXIT_CODE)


def drift(
    ctx: typer.Context,
    reference: Annotated[Path, typer.Argument(help="The reference: a .csv or .parquet file.")],
    current: Annotated[Path, typer.Argument(help="The current data, with the same columns.")],
    method: Annotated[
        str,
        typer.Option(help="auto (as Evidently's DataDriftPreset), or a test for every column."),
    ] = "auto",
    threshold: Annotated[
        float | None, typer.Option(help="Replace every test's default threshold.", min=0)
    ] = None,
    drift_share: Annotated[
        float,
        typer.Option(help="The share of drifted columns at which the dataset drifts.", min=0),
    ] = 0.5,
    project: Annotated[
        Path | None,
        typer.Option(help="Take the settings from this project file's monitoring.drift."),
    ] = None,
    output_format: Annotated[Format, typer.Option("--format", help="table or json.")] = (
        Format.table
    ),
    fail_on_drift: Annotated[
        bool, typer.Option(help=f"Exit {DRIFT_EXIT_CODE} when the data drifted.")
    ] = False,
    report: Annotated[
        Path | None, typer.Option(help="Write a self-contained HTML report to this file.")
    ] = None,
) -> None:
    """Test every column of a current file against a reference file."""
    from pydantic import ValidationError

    from shipyard.monitor import detect_drift
    from shipyard.pipeline import drift_report, read_pair

    state: CliState = ctx.obj
    if project is not None:
        options = load_spec(project).monitoring.drift
    else:
        try:
            options = DriftSpec(method=method, threshold=threshold, drift_share=drift_share)
        except ValidationError as exc:
            raise typer.BadParameter(exc.errors()[0]["msg"], param_hint="--drift-share") from exc
    ref, cur = read_pair(reference, current)
    result = detect_drift(ref, cur, options=options)
    if report is not None:
        write_file(
            report,
            drift_report(result, ref, cur, f"{current.name} against {reference.name}").encode(),
        )
    if output_format is Format.json:
        typer.echo(json.dumps(result.to_dict(), indent=2, default=_json_default))
    else:
        state.out.print(_verdict(escape(current), result))
        state.out.print(_drift_table(result))
        if report is not None:
            state.out.print(f"Report: {escape(report)}")
    if fail_on_drift and result.drifted:
        raise typer.Exit(DRIFT_EXIT_CODE)


@labels_app.command("add")
def labels_add(
    ctx: typer.Context,
    source: Annotated[
        str,
        typer.Argument(
            help="A .csv/.tsv/.parquet file, or a SQLAlchemy URL with --query.",
            show_default=False,
        ),
    ],
    model: Annotated[str, typer.Option(help="The registered model's name.", show_default=False)],
    key: Annotated[
        str,
        typer.Option(
            help="The column joining labels to predictions: prediction_id (the id each "
            "response carried) or a request field."
        ),
    ] = "prediction_id",
    label_column: Annotated[str, typer.Option(help="The column with the true label.")] = ("label"),
    query: Annotated[
        str | None, typer.Option(help="The SQL query, when SOURCE is a database URL.")
    ] = None,
    predictions: Annotated[
        str | None,
        typer.Option(
            help="The prediction log, to report keys no prediction has (default: "
            "<SHIPYARD_HOME>/predictions)."
        ),
    ] = None,
    replace: Annotated[
        bool, typer.Option(help="Replace the label of a key already labelled.")
    ] = False,
) -> None:
    """Ingest labels that arrived after the predictions (joined at the next monitor)."""
    from shipyard.pipeline import add_labels

    state: CliState = ctx.obj
    store = open_store(state)
    try:
        log = predictions or str(store_location(state.store_url)[1] / "predictions")
        ingest = add_labels(
            source,
            store=store,
            model=model,
            predictions=log,
            key=key,
            label_column=label_column,
            query=query,
            replace=replace,
        )
    finally:
        store.close()
    for line in _ingest_lines(ingest, model, key):
        state.out.print(line)


def _ingest_lines(ingest: LabelIngest, model: str, key: str) -> list[str]:
    lines = [
        f"Added {ingest.n_added:,} of {ingest.n_rows:,} labels for [bold]{escape(model)}[/] "
        f"(by {escape(key)})"
    ]
    if ingest.n_missing:
        lines.append(f"  {ingest.n_missing:,} row(s) without a key or a label were skipped")
    if ingest.n_duplicates:
        lines.append(
            f"  {ingest.n_duplicates:,} key(s) repeated in the source; the first label was "
            f"kept: {_examples(ingest.duplicates)}"
        )
    if ingest.n_already_labelled:
        what = "replaced" if ingest.n_replaced else "kept (--replace replaces them)"
        lines.append(
            f"  {ingest.n_already_labelled:,} key(s) already had a label, {what}: "
            f"{_examples(ingest.already_labelled)}"
        )
    if ingest.n_unknown:
        lines.append(
            f"  [yellow]{ingest.n_unknown:,} key(s) match no logged prediction[/] (stored; "
            f"check --key and --predictions): {_examples(ingest.unknown)}"
        )
    return lines


def _examples(keys: tuple[str, ...]) -> str:
    return ", ".join(escape(k) for k in keys) + (", ..." if keys else "")


def _performance_line(report: PerformanceReport) -> str:
    calibration = ""
    if report.calibration is not None:
        c = report.calibration
        calibration = (
            f"; estimates from probabilities {'recalibrated' if c.applied else 'as given'} "
            f"(holdout calibration error {c.ece:.3f})"
        )
    return (
        f"Performance: {report.n_labelled:,} of {report.n_predictions:,} predictions "
        f"labelled{calibration}"
    )


def _performance_table(report: PerformanceReport) -> object:
    rows = [
        [
            m.metric,
            fmt_float(m.reference),
            fmt_float(m.estimated),
            fmt_float(m.realised),
            _signed(m.drop),
        ]
        for m in report.metrics
    ]
    return table(None, ["metric", "holdout", "estimated", "realised", "drop"], rows)


def _signed(value: float | None) -> str:
    if value is None:
        return "-"
    text = f"{value:+.4f}"
    return f"[red]{text}[/]" if value > 0 else text


def _project_file(project: Path | None) -> Path | None:
    if project is not None:
        return project
    default = Path("shipyard.yaml")
    return default if default.is_file() else None


def _retrain_trigger(result: MonitorResult) -> str:
    """Why to retrain: the rules that fire, else dataset drift when no rule is set."""
    if result.alerts is not None:
        return ", ".join(r.rule.label for r in result.alerts.rules if r.firing)
    return "the inputs drifted" if result.inputs.drifted else ""


def _retrain(
    state: CliState, spec_path: Path, result: MonitorResult, trigger: str, store: Store
) -> RunResult:
    from shipyard.cli._context import current_user
    from shipyard.pipeline import run_project

    state.out.print(f"Retraining {escape(spec_path)} because {escape(trigger)}")
    tags = {"trigger": "monitor", "trigger_reason": trigger}
    if result.check is not None:
        tags["trigger_check"] = result.check.id
    run = run_project(load_spec(spec_path), store=store, user=current_user(), tags=tags)
    verdict = "promoted" if run.promoted else "not promoted"
    state.out.print(
        f"Registered {escape(run.model_name)} version {run.model_version}: {verdict} "
        f"({escape(run.gate)}); run {run.run_id}"
    )
    return run


def _alert_lines(result: MonitorResult) -> list[str]:
    outcome = result.alerts
    if outcome is None:
        return []
    lines = []
    for incident in outcome.opened:
        lines.append(
            f"[bold red]Alert[/] {escape(incident.rule)}: firing ({_value(incident.value)})"
        )
    for incident in outcome.ongoing:
        lines.append(
            f"[red]Alert[/] {escape(incident.rule)}: still firing ({_value(incident.value)}; "
            "already notified)"
        )
    for incident in outcome.resolved:
        lines.append(f"[green]Resolved[/] {escape(incident.rule)} ({_value(incident.value)})")
    for notice in outcome.undelivered:
        lines.append(
            f"[yellow]Undelivered[/] {notice.status} notice of {escape(notice.incident.rule)}: "
            "sent again at the next check"
        )
    if not lines:
        quiet = [r for r in outcome.rules if r.firing is False]
        lines.append(f"Alerts: none firing ({len(quiet)} of {len(outcome.rules)} rules checked)")
    return lines


def _alerts_json(result: MonitorResult) -> list[dict[str, object]] | None:
    if result.alerts is None:
        return None
    opened = {i.rule for i in result.alerts.opened}
    resolved = {i.rule for i in result.alerts.resolved}
    return [
        {
            "rule": r.rule.label,
            "signal": r.rule.signal,
            "value": r.value,
            "firing": r.firing,
            "opened": r.rule.label in opened,
            "resolved": r.rule.label in resolved,
        }
        for r in result.alerts.rules
    ]


def _value(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _verdict(what: str, report: DriftReport) -> str:
    tested = len(report.tested)
    summary = (
        f"{report.n_drifted} of {tested} column(s) drifted ({report.share_drifted:.0%}; "
        f"the dataset drifts at {report.drift_share:.0%}), {report.n_current:,} rows against "
        f"{report.n_reference:,} reference rows"
    )
    word = "[bold red]drifted[/]" if report.drifted else "[bold green]no drift[/]"
    return f"{what}: {word}: {summary}"


def _drift_table(report: DriftReport) -> object:
    notes = any(c.note for c in report.columns)
    rows = []
    for c in report.columns:
        verdict = {True: "[red]drift[/]", False: "ok", None: "-"}[c.drifted]
        row = [
            escape(c.column),
            c.kind,
            c.method or "-",
            _statistic(c.value, c.statistic),
            fmt_float(c.threshold, 2) if c.threshold is not None else "-",
            verdict,
            f"{c.missing_current:.1%}",
        ]
        rows.append([*row, escape(c.note)] if notes else row)
    header = ["column", "kind", "test", "statistic", "threshold", "verdict", "missing"]
    return table(None, [*header, "note"] if notes else header, rows)


def _statistic(value: float | None, statistic: str | None) -> str:
    if value is None:
        return "-"
    if statistic == "p_value" and value < 1e-4:
        return f"{value:.1e}"
    return fmt_float(value, 4)


def _json_default(value: object) -> object:
    if hasattr(value, "item"):
        return value.item()  # numpy scalars
    return str(value)
