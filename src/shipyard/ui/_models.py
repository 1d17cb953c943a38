"""The models pages: registered models, one model's versions, alias timeline and gate
decisions, and promoting or rolling back an alias (recorded as the CLI records it)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from starlette.responses import RedirectResponse, Response

from shipyard.errors import ModelNotFoundError, RegistryError
from shipyard.registry import AliasMove
from shipyard.ui._app import View

__all__ = ["model_page", "models_page", "promote", "rollback"]

logger = logging.getLogger(__name__)

MAX_METRIC_COLUMNS = 8
MAX_REASON = 1000


def models_page(ctx: View) -> Response:
    """``/models``: every registered model with its latest version and aliases."""
    return ctx.render("models.html.j2", models=ctx.ui.registry.list_models())


def model_page(ctx: View) -> Response:
    """``/models/{name}``: versions with metrics, the alias timeline, gate decisions, and
    the promote and roll back forms."""
    return _model(ctx, ctx.request.path_params["name"])


def promote(ctx: View) -> Response:
    """``POST /models/{name}/promote``: point an alias at a version, with a reason."""
    name = ctx.request.path_params["name"]
    alias = ctx.form.get("alias", "").strip()
    version_text = ctx.form.get("version", "").strip()
    try:
        reason = _reason(ctx.form)
        if not version_text.isdigit():
            msg = f"version: {version_text!r} is not a version number"
            raise ValueError(msg)
        if not alias:
            msg = "alias: name the alias to move, e.g. production"
            raise ValueError(msg)
    except ValueError as exc:
        return _model(ctx, name, form_error=("promote", str(exc)), status=400)
    try:
        move = ctx.ui.registry.promote(
            name, int(version_text), alias, moved_by=ctx.session.who, reason=reason
        )
    except ModelNotFoundError as exc:
        if not _exists(ctx, name):
            raise
        return _model(ctx, name, form_error=("promote", str(exc)), status=400)
    except RegistryError as exc:
        return _model(ctx, name, form_error=("promote", str(exc)), status=400)
    return _moved(ctx, move)


def rollback(ctx: View) -> Response:
    """``POST /models/{name}/rollback``: point an alias back at its previous version."""
    name = ctx.request.path_params["name"]
    alias = ctx.form.get("alias", "").strip()
    try:
        reason = _reason(ctx.form)
        if not alias:
            msg = "alias: choose the alias to roll back"
            raise ValueError(msg)
    except ValueError as exc:
        return _model(ctx, name, form_error=("rollback", str(exc)), status=400)
    try:
        move = ctx.ui.registry.rollback(name, alias, moved_by=ctx.session.who, reason=reason)
    except ModelNotFoundError as exc:
        if not _exists(ctx, name):
            raise
        return _model(ctx, name, form_error=("rollback", str(exc)), status=400)
    except RegistryError as exc:
        return _model(ctx, name, form_error=("rollback", str(exc)), status=400)
    return _moved(ctx, move)


def _model(
    ctx: View, name: str, *, form_error: tuple[str, str] | None = None, status: int = 200
) -> Response:
    registry = ctx.ui.registry
    history = registry.alias_history(name)  # ModelNotFoundError: a 404 page
    versions = registry.list_versions(name)
    decisions = registry.gate_decisions(name)
    primary = next(
        (str(v.lineage["primary_metric"]) for v in versions if v.lineage.get("primary_metric")),
        None,
    )
    keys = sorted({k for v in versions for k in v.metrics})
    if primary in keys:
        keys = [primary] + [k for k in keys if k != primary]
    aliases = sorted({a for v in versions for a in v.aliases} | {h.alias for h in history})
    return ctx.render(
        "model.html.j2",
        status=status,
        name=name,
        versions=list(reversed(versions)),
        metric_keys=keys[:MAX_METRIC_COLUMNS],
        primary=primary,
        history=list(reversed(history)),
        decisions=[(d, flatten(d.evidence)) for d in decisions],
        aliases=aliases,
        rollback_aliases=sorted({h.alias for h in history if h.previous_version is not None}),
        form_error=form_error,
        form=ctx.form,
    )


def _exists(ctx: View, name: str) -> bool:
    return any(m.name == name for m in ctx.ui.registry.list_models())


def _reason(form: Mapping[str, str]) -> str:
    reason = form.get("reason", "").strip()
    if not reason:
        msg = "reason: say why (it is kept in the alias history)"
        raise ValueError(msg)
    if len(reason) > MAX_REASON:
        msg = f"reason: at most {MAX_REASON} characters ({len(reason)} given)"
        raise ValueError(msg)
    return reason


def _moved(ctx: View, move: AliasMove) -> Response:
    before = f"v{move.previous_version}" if move.previous_version else "none"
    ctx.flash(f"{move.name}@{move.alias}: {before} → v{move.version} ({move.reason})")
    logger.info(
        "UI: %s moved %s@%s from %s to %s",
        move.moved_by,
        move.name,
        move.alias,
        move.previous_version,
        move.version,
    )
    return RedirectResponse(f"/models/{move.name}#history", status_code=303)


def flatten(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Nested evidence as ``(dotted key, value)`` rows, in the evidence's own order.

    Example:
        >>> flatten({"metric": "f1", "champion": {"version": 1, "score": 0.9}})
        [('metric', 'f1'), ('champion.version', 1), ('champion.score', 0.9)]
    """
    if isinstance(value, Mapping):
        rows: list[tuple[str, Any]] = []
        for key, inner in value.items():
            rows += flatten(inner, f"{prefix}{key}.")
        return rows
    if isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
        return [row for i, inner in enumerate(value) for row in flatten(inner, f"{prefix}{i}.")]
    return [(prefix.rstrip("."), value)]
