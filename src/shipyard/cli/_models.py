"""``shipyard models``: list, show, promote and roll back registered models."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Annotated, Any, get_args

import typer

from shipyard.cli._context import CliState, current_user, open_store
from shipyard.cli._render import escape, fmt_float, fmt_time, kv_table, table
from shipyard.registry import GateRecord, Registry, parse_model_uri
from shipyard.spec import TaskType

__all__ = ["models_app"]

models_app = typer.Typer(
    help="List, show, promote and roll back registered models; list the model catalogue.",
    no_args_is_help=True,
)


@models_app.command("list")
def list_models(ctx: typer.Context) -> None:
    """List registered models with their latest version and aliases."""
    state: CliState = ctx.obj
    store = open_store(state)
    try:
        models = Registry(store).list_models()
    finally:
        store.close()
    rows = [
        (
            m.name,
            m.latest_version,
            ", ".join(f"{a}=v{v}" for a, v in sorted(m.aliases.items())) or "-",
            fmt_time(m.created_at),
        )
        for m in models
    ]
    state.out.print(
        table(f"{len(models)} model(s)", ["name", "latest", "aliases", "created"], rows)
    )


@models_app.command("show")
def show_model(
    ctx: typer.Context,
    target: Annotated[
        str, typer.Argument(help="A model name or URI (models:/NAME@ALIAS, models:/NAME/VERSION).")
    ],
) -> None:
    """Show a model's versions and alias history, or one version in detail."""
    state: CliState = ctx.obj
    store = open_store(state)
    try:
        registry = Registry(store)
        if target.startswith(("models:/", "runs:/")) and (
            "@" in target or target.count("/") > 1 or target.startswith("runs:/")
        ):
            _show_version(state, registry, target)
            return
        name = parse_model_uri(target).name if target.startswith("models:/") else target
        assert name is not None
        versions = registry.list_versions(name)
        history = registry.alias_history(name)
        decisions = registry.gate_decisions(name)
    finally:
        store.close()
    rows = [
        (
            f"v{v.version}",
            ", ".join(v.aliases) or "-",
            v.task,
            _primary(v.metrics, v.lineage),
            fmt_time(v.created_at),
            escape(v.created_by),
            (v.run_id or "-")[:8],
        )
        for v in versions
    ]
    state.out.print(
        table(
            f"Model {name}", ["version", "aliases", "task", "metric", "created", "by", "run"], rows
        )
    )
    moves = [
        (
            fmt_time(h.moved_at),
            h.alias,
            _move(h.previous_version, h.version),
            escape(h.moved_by),
            escape(h.reason or ""),
        )
        for h in history
    ]
    state.out.print(table("Alias history", ["when", "alias", "move", "by", "reason"], moves))
    if decisions:
        state.out.print(_decisions_table(decisions))


def _show_version(state: CliState, registry: Registry, uri: str) -> None:
    v = registry.resolve(uri)
    decisions = registry.gate_decisions(v.name, v.version)
    info = [
        ("name", v.name),
        ("version", v.version),
        ("aliases", ", ".join(v.aliases) or "-"),
        ("task", v.task),
        ("run", v.run_id or "-"),
        ("created", f"{fmt_time(v.created_at)} by {escape(v.created_by)}"),
        ("package", escape(v.package_path)),
    ]
    state.out.print(kv_table(f"models:/{v.name}/{v.version}", info))
    state.out.print(
        kv_table(
            "Holdout metrics", [(escape(k), fmt_float(x)) for k, x in sorted(v.metrics.items())]
        )
    )
    inputs = v.signature.get("inputs", [])
    rows = [
        (escape(c["name"]), c["kind"], "yes" if c["nullable"] else "no", escape(_domain(c)))
        for c in inputs
    ]
    state.out.print(table("Signature", ["input", "kind", "nullable", "domain"], rows))
    state.out.print(
        kv_table(
            "Lineage",
            [
                (escape(k), escape(json.dumps(x) if isinstance(x, dict) else str(x)))
                for k, x in sorted(v.lineage.items())
            ],
        )
    )
    if not decisions:
        state.out.print("Gate: no promotion decision recorded for this version")
    for decision in reversed(decisions):  # oldest first, as the alias history
        state.out.print(_decision_table(decision))
        fairness = decision.evidence.get("fairness") or {}
        if fairness:
            state.out.print(_fairness_table(decision.alias, fairness))


@models_app.command("promote")
def promote(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The model name.")],
    version: Annotated[int, typer.Argument(help="The version to promote.")],
    alias: Annotated[str, typer.Option(help="The alias to move.")] = "production",
    reason: Annotated[str | None, typer.Option(help="Why (kept in the alias history).")] = None,
) -> None:
    """Point an alias (production by default) at a version."""
    state: CliState = ctx.obj
    store = open_store(state)
    try:
        move = Registry(store).promote(name, version, alias, moved_by=current_user(), reason=reason)
    finally:
        store.close()
    state.out.print(f"{name}@{alias}: {_move(move.previous_version, move.version)}")


@models_app.command("rollback")
def rollback(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The model name.")],
    alias: Annotated[str, typer.Option(help="The alias to move back.")] = "production",
    reason: Annotated[str | None, typer.Option(help="Why (kept in the alias history).")] = None,
) -> None:
    """Point an alias back at the version it held before its latest move."""
    state: CliState = ctx.obj
    store = open_store(state)
    try:
        move = Registry(store).rollback(name, alias, moved_by=current_user(), reason=reason)
    finally:
        store.close()
    state.out.print(f"{name}@{alias}: {_move(move.previous_version, move.version)}")


@models_app.command("catalogue")
def catalogue(
    ctx: typer.Context,
    task: Annotated[
        str | None,
        typer.Option(help="Only the families that do this task: binary, multiclass or regression."),
    ] = None,
) -> None:
    """List the model families a project file's models: can name (no store needed)."""
    from shipyard.train import default_catalogue  # the training stack loads on use

    state: CliState = ctx.obj
    tasks = get_args(TaskType)
    if task is not None and task not in tasks:
        msg = f"unknown task {task!r}; expected one of {', '.join(tasks)}"
        raise typer.BadParameter(msg, param_hint="--task")
    entries = default_catalogue().entries(task)
    rows = [
        (
            e.key,
            ", ".join(t for t in tasks if t in e.tasks),
            escape(e.description),
            escape(e.library),
        )
        for e in entries
    ]
    title = f"{len(entries)} model families" + (f" for {task}" if task else "")
    state.out.print(table(title, ["key", "tasks", "description", "library"], rows))
    state.out.print("Use a key in shipyard.yaml: models: [{model: KEY, params: {...}}]")


def _verdict(d: GateRecord) -> str:
    return "[green]promoted[/]" if d.promoted else "[yellow]kept out[/]"


def _decisions_table(decisions: list[GateRecord]) -> Any:
    rows = [
        (
            fmt_time(d.decided_at),
            f"v{d.version}",
            d.alias,
            _verdict(d),
            escape(d.evidence.get("method", "-")),
            escape(_evidence_summary(d.evidence)),
            escape(d.decided_by),
        )
        for d in reversed(decisions)
    ]
    columns = ["when", "version", "alias", "verdict", "method", "evidence", "by"]
    return table("Gate decisions", columns, rows)


def _evidence_summary(ev: Mapping[str, Any]) -> str:
    """One line: the metric on both models, and the bootstrap's or the bounds' verdict."""
    metric, champion = ev.get("metric", "?"), ev.get("champion") or {}
    line = f"{metric} {fmt_float(ev.get('challenger'))}"
    if champion:
        line += f" vs {fmt_float(champion.get('score', champion.get('recorded')))}"
        line += f" (v{champion.get('version')})"
    boot = ev.get("bootstrap")
    if boot:
        line += f"; better in {_pct(boot.get('p_better'))}, needs {_pct(boot.get('confidence'), 0)}"
    over = [k for k, f in (ev.get("fairness") or {}).items() if f.get("over")]
    if over:
        line += f"; over the bound: {', '.join(over)}"
    return line


def _decision_table(d: GateRecord) -> Any:
    ev, champion = d.evidence, d.evidence.get("champion") or {}
    items: list[tuple[str, Any]] = [
        ("verdict", _verdict(d)),
        ("reason", escape(d.reason)),
        ("decided", f"{fmt_time(d.decided_at)} by {escape(d.decided_by)}"),
        ("method", escape(ev.get("method", "-"))),
        ("metric", escape(ev.get("metric", "-"))),
        ("challenger", fmt_float(ev.get("challenger"))),
    ]
    if champion:
        items += [
            ("champion", f"v{champion.get('version')}: {fmt_float(champion.get('score'))}"),
            ("scored on", escape(champion.get("scored_on", "-"))),
        ]
        if champion.get("recorded") is not None:
            items.append(("champion recorded", fmt_float(champion.get("recorded"))))
        if champion.get("unscored"):
            items.append(("not re-scored", escape(champion["unscored"])))
    if ev.get("difference") is not None:
        items.append(("improvement", _signed(ev.get("difference"))))
    items.append(("min improvement", fmt_float(ev.get("min_improvement"))))
    boot = ev.get("bootstrap")
    if boot:
        level = _pct(boot.get("confidence"), 0)
        items += [
            (
                f"{level} interval",
                f"[{_signed(boot.get('ci_low'))}, {_signed(boot.get('ci_high'))}]",
            ),
            ("P(better by the margin)", f"{_pct(boot.get('p_better'))} (needs {level})"),
            (
                "resamples",
                f"{boot.get('n_valid')} of {boot.get('samples')} valid, seed {boot.get('seed')}",
            ),
            ("rows", boot.get("n_rows")),
        ]
    return kv_table(f"Gate decision for {escape(d.alias)}", items)


def _fairness_table(alias: str, fairness: Mapping[str, Mapping[str, Any]]) -> Any:
    rows = []
    for measure, f in sorted(fairness.items()):
        if not f.get("applies"):
            rows.append(
                (measure, "-", "-", fmt_float(f.get("bound"), 3), escape(f.get("note", "")))
            )
            continue
        for column, value in sorted((f.get("by_column") or {}).items()):
            over = value is not None and value > f.get("bound", 1.0)
            status = "[red]over the bound[/]" if over else "within"
            rows.append(
                (measure, escape(column), fmt_float(value, 3), fmt_float(f.get("bound"), 3), status)
            )
    columns = ["measure", "column", "value", "bound", "status"]
    return table(f"Fairness bounds ({escape(alias)})", columns, rows)


def _pct(value: Any, digits: int = 1) -> str:
    return "-" if value is None else f"{float(value):.{digits}%}"


def _signed(value: Any) -> str:
    return "-" if value is None else f"{float(value):+.4f}"


def _move(before: int | None, after: int | None) -> str:
    return f"{'v' + str(before) if before else 'none'} -> {'v' + str(after) if after else 'none'}"


def _primary(metrics: dict[str, float], lineage: dict[str, object]) -> str:
    key = str(lineage.get("primary_metric", ""))
    return f"{key}={fmt_float(metrics[key])}" if key in metrics else "-"


def _domain(col: dict[str, Any]) -> str:
    if col.get("categories"):
        cats = list(col["categories"])
        return ", ".join(map(str, cats[:6])) + (" ..." if len(cats) > 6 else "")
    if col.get("minimum") is not None:
        return f"[{fmt_float(col['minimum'], 2)}, {fmt_float(col['maximum'], 2)}]"
    return ""
