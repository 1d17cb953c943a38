"""Model URIs: ``models:/NAME@ALIAS``, ``models:/NAME/VERSION``, ``models:/NAME``, ``runs:/ID``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from shipyard.errors import InvalidModelURIError

__all__ = ["ModelRef", "parse_model_uri"]

_NAME = r"[A-Za-z0-9][A-Za-z0-9_.-]*"
_MODELS = re.compile(
    rf"^models:/(?P<name>{_NAME})(?:@(?P<alias>[a-z][a-z0-9_-]*)|/(?P<version>\d+))?$"
)
_RUNS = re.compile(r"^runs:/(?P<run>[0-9a-f]{6,32})(?:/model)?$")


@dataclass(frozen=True)
class ModelRef:
    """A parsed model URI: exactly one way of choosing the version is set.

    ``name`` with neither ``alias`` nor ``version`` means the latest version; ``run_id`` means
    the version registered by that run.
    """

    name: str | None = None
    version: int | None = None
    alias: str | None = None
    run_id: str | None = None

    def __str__(self) -> str:
        if self.run_id is not None:
            return f"runs:/{self.run_id}/model"
        if self.alias is not None:
            return f"models:/{self.name}@{self.alias}"
        if self.version is not None:
            return f"models:/{self.name}/{self.version}"
        return f"models:/{self.name}"


def parse_model_uri(uri: str) -> ModelRef:
    """Parse a model URI.

    Raises:
        InvalidModelURIError: the URI follows none of the accepted forms.

    Example:
        >>> parse_model_uri("models:/penguins@production")
        ModelRef(name='penguins', version=None, alias='production', run_id=None)
    """
    text = uri.strip()
    m = _MODELS.match(text)
    if m:
        version = m.group("version")
        return ModelRef(
            name=m.group("name"),
            alias=m.group("alias"),
            version=int(version) if version is not None else None,
        )
    r = _RUNS.match(text)
    if r:
        return ModelRef(run_id=r.group("run"))
    msg = (
        f"cannot parse model URI {uri!r}; expected models:/NAME@ALIAS (e.g. "
        "models:/penguins@production), models:/NAME/VERSION, models:/NAME or runs:/RUN_ID"
    )
    raise InvalidModelURIError(msg)
