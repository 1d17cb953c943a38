"""``shipyard forget`` (the right to erasure) and ``shipyard audit`` (who did it, when).

The subject's value is never printed: output names it by its keyed hash.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from shipyard.cli._context import CliState, PredictionLogOption, current_user, open_store
from shipyard.cli._render import escape, fmt_time, table
from shipyard.errors import ShipyardError
from shipyard.store import store_location

if TYPE_CHECKING:
    from shipyard.pipeline import ForgetResult

__all__ = ["audit", "forget"]

_VERDICT = {"trained": "[bold red]yes[/]", "not_trained": "no", "unknown": "[yellow]unknown[/]"}


def forget(
    ctx: typer.Context,
    column: Annotated[
        str,
        typer.Option(
            help="The request field naming the subject (customer_id).", show_default=False
        ),
    ],
    value: Annotated[
        str,
        typer.Option(
            help="The subject's value, or its keyed hash (pii:...); - reads it from the first "
            "line of stdin, out of the shell history. Never printed.",
            show_default=False,
        ),
    ],
    model: Annotated[
        str | None, typer.Option(help="Only this registered model (default: every model).")
    ] = None,
    predictions: PredictionLogOption = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would go; change and record nothing.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Erase without asking first.")] = False,
) -> None:
    """Erase a subject's predictions and labels, and list the model versions trained on them
    (the right to erasure); recorded in the audit log."""
    from shipyard.pipeline import forget as run_forget

    state: CliState = ctx.obj
    if value == "-":
        value = sys.stdin.readline().rstrip("\r\n")
    if not (dry_run or yes or _interactive()):
        msg = "forget erases data: pass --yes to confirm (or --dry-run to count first)"
        raise ShipyardError(msg)
    store = open_store(state)
    try:
        log, note = _prediction_log(state, predictions)
        if note:
            state.out.print(note)
        erase = functools.partial(
            run_forget, column, value, store=store, predictions=log, model=model
        )
        if not (dry_run or yes):
            state.out.print(_summary(erase(dry_run=True)))
            if not typer.confirm("Erase them?", default=False):
                state.out.print("Nothing was erased.")
                raise typer.Exit(1)
        result = erase(dry_run=dry_run, user=current_user())
    finally:
        store.close()
    _print_result(state, result)


def audit(
    ctx: typer.Context,
    action: Annotated[str | None, typer.Option(help="Only this action's entries.")] = None,
    model: Annotated[
        str | None, typer.Option(help="Only entries about this model (or every model).")
    ] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 50,
) -> None:
    """List the audit log: who erased what (by keyed hash) and when."""
    from shipyard.registry import AuditLog

    state: CliState = ctx.obj
    store = open_store(state)
    try:
        entries = AuditLog(store).entries(action=action, model=model, limit=limit)
    finally:
        store.close()
    rows = [
        (
            e.id,
            fmt_time(e.created_at, seconds=True),
            escape(e.action),
            escape(e.actor),
            escape(e.model or "*"),
            escape(_details(e.action, e.details)),
        )
        for e in entries
    ]
    columns = ["id", "when", "action", "actor", "model", "details"]
    state.out.print(table(f"{len(entries)} audit entr(ies)", columns, rows))


def _interactive() -> bool:
    return sys.stdin.isatty()


def _prediction_log(state: CliState, given: str | None) -> tuple[str | None, str | None]:
    """The log to erase from; the default folder is skipped, with a note, when missing."""
    if given:
        return given, None
    default = store_location(state.store_url)[1] / "predictions"
    if Path(default).is_dir():
        return str(default), None
    note = (
        f"No prediction log at {escape(default)} (nothing to erase there; give --predictions "
        "for another folder or a database)."
    )
    return None, note


def _subject(result: ForgetResult) -> str:
    return f"{escape(result.column)} = the given value (keyed hash {result.value_hash})"


def _summary(result: ForgetResult) -> str:
    verb = "would remove" if result.dry_run else "removed"
    scope = f"model {escape(result.model)}" if result.model else "every model"
    return (
        f"Subject {_subject(result)}, {scope}: {verb} {result.predictions_removed:,} logged "
        f"prediction(s) and {result.labels_removed:,} label(s); {len(result.retrain)} model "
        f"version(s) trained on them"
    )


def _print_result(state: CliState, result: ForgetResult) -> None:
    out = state.out
    if result.dry_run:
        out.print("[bold]Dry run[/]: nothing was changed or recorded.")
    out.print(_summary(result))
    counts = [
        ("logged predictions", f"{result.predictions_removed:,}"),
        ("labels", f"{result.labels_removed:,}"),
    ]
    if result.files_rewritten or result.files_removed:
        counts.append(("log files rewritten", f"{result.files_rewritten:,}"))
        counts.append(("log files removed (only the subject's)", f"{result.files_removed:,}"))
    out.print(table("Would remove" if result.dry_run else "Removed", ["what", "count"], counts))
    if result.prediction_log is not None:
        out.print(f"Prediction log: {escape(result.prediction_log)}")
    if result.versions:
        rows = [(escape(v.uri), _VERDICT[v.status], escape(v.reason)) for v in result.versions]
        columns = ["version", "trained on the subject", "why / what to do"]
        out.print(table("Model versions and their training data", columns, rows))
    if result.retrain:
        uris = ", ".join(escape(v.uri) for v in result.retrain)
        out.print(
            f"[bold red]Retrain without the subject, then retire[/]: {uris} (remove the "
            "subject from the training data, shipyard run, promote the new version)"
        )
    for warning in result.warnings:
        out.print(f"[yellow]warning:[/] {escape(warning)}")
    if result.audit_id is not None:
        out.print(f"Recorded in the audit log as entry {result.audit_id} (shipyard audit).")


def _details(action: str, details: Mapping[str, Any]) -> str:
    """An entry's details in a line: an erasure's in words, others as JSON."""
    if action != "forget":
        return json.dumps(dict(details), sort_keys=True)
    retrain = [
        f"models:/{v['model']}/{v['version']}"
        for v in details.get("versions", [])
        if v.get("status") == "trained"
    ]
    text = (
        f"{details.get('column')} = {details.get('value_hash')} ({details.get('status')}): "
        f"{details.get('predictions_removed', '?')} prediction(s), "
        f"{details.get('labels_removed', '?')} label(s) removed"
    )
    if retrain:
        text += f"; trained on them: {', '.join(retrain)}"
    if details.get("error"):
        text += f"; error: {details['error']}"
    return text
