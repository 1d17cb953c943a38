"""The prediction server's settings."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ServeConfig"]


class ServeConfig(BaseModel):
    """Settings of one prediction server app.

    Attributes:
        max_body_bytes: largest request body accepted; larger bodies get a 413 before being
            read whole.
        max_records: most records one ``POST /predict`` may carry.
        extra_fields: ``forbid`` rejects a record with a field the model does not take (422);
            ``ignore`` drops such fields silently.
        title: the OpenAPI title; defaults to the model's name.

    Example:
        >>> ServeConfig(max_records=100).max_records
        100
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_body_bytes: int = Field(default=1_048_576, gt=0)
    max_records: int = Field(default=10_000, gt=0)
    extra_fields: Literal["forbid", "ignore"] = "forbid"
    title: str | None = None
