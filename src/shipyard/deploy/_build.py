"""A :class:`DeploySpec` for a registered model: resolve its URI through the registry."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from shipyard.deploy._spec import DeploySpec
from shipyard.errors import DeployError, ModelNotFoundError
from shipyard.registry import Registry

__all__ = ["spec_for"]


def spec_for(registry: Registry, model_uri: str, **settings: Any) -> DeploySpec:
    """The deployment of the version ``model_uri`` points at now.

    Args:
        registry: the registry the model is registered in.
        model_uri: ``models:/NAME/VERSION`` or ``models:/NAME@ALIAS`` (served as given: an
            alias is followed when it moves).
        settings: the other :class:`DeploySpec` fields.

    Raises:
        InvalidModelURIError: the URI does not parse.
        ModelNotFoundError: nothing is registered under it.
        DeployError: a setting is invalid.
    """
    try:
        record = registry.resolve(model_uri)
    except ModelNotFoundError as exc:
        msg = f"cannot deploy {model_uri}: {exc}"
        raise ModelNotFoundError(msg) from exc
    try:
        return DeploySpec(
            model_uri=model_uri.strip(),
            model_name=record.name,
            model_version=record.version,
            **settings,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        what = f"setting {where}" if where else "settings"
        msg = f"invalid deployment {what}: {first['msg'].removeprefix('Value error, ')}"
        raise DeployError(msg) from exc
