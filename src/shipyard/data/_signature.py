"""The Signature: the typed schema of a model's inputs and target.

A Signature is inferred from a dataset snapshot, stored with every model version, used to
validate new data, to build the feature pipeline and to generate the server's request schema.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, model_validator

__all__ = ["ColumnKind", "ColumnSchema", "Signature"]

ColumnKind = Literal["number", "integer", "boolean", "category", "string", "datetime"]
"""How Shipyard treats a column.

``number``/``integer`` are numeric features; ``boolean`` is numeric 0/1; ``category`` is a
low-cardinality string (one-hot encoded); ``string`` is free text (not used as a feature
unless declared); ``datetime`` is expanded into calendar parts.
"""


class ColumnSchema(BaseModel):
    """One column's inferred type and observed domain.

    ``on_bad_numbers`` (``number`` and ``integer`` columns only) is what a value that is not a
    number becomes wherever the column is converted (training, batch and online prediction,
    validation of new data): ``"error"`` reports it, ``"coerce"`` reads it as missing. It is
    the project file's ``data.on_bad_numbers``, kept with the model.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    kind: ColumnKind
    dtype: str
    nullable: bool
    categories: tuple[str, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    on_bad_numbers: Literal["error", "coerce"] = "error"

    @model_validator(mode="after")
    def _policy_for_numbers_only(self) -> ColumnSchema:
        if self.on_bad_numbers != "error" and self.kind not in ("number", "integer"):
            msg = f"on_bad_numbers applies to number and integer columns, not {self.kind!r}"
            raise ValueError(msg)
        return self


class Signature(BaseModel):
    """The inputs a model takes and the target it predicts.

    Attributes:
        inputs: feature columns, in the order the model expects them.
        target: the target column, ``None`` for a signature of inputs only.
        classes: class labels (as strings) for classifiers, ``None`` for regression.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    inputs: tuple[ColumnSchema, ...]
    target: ColumnSchema | None = None
    classes: tuple[str, ...] | None = None

    @property
    def input_names(self) -> list[str]:
        """The input column names, in order."""
        return [c.name for c in self.inputs]

    def column(self, name: str) -> ColumnSchema:
        """Return the input column called ``name``.

        Raises:
            KeyError: when no input has that name.
        """
        for col in self.inputs:
            if col.name == name:
                return col
        raise KeyError(name)

    def to_json(self) -> str:
        """Serialise to JSON (stable field order)."""
        return self.model_dump_json(indent=2)

    @classmethod
    def from_json(cls, text: str | bytes) -> Signature:
        """Parse a Signature written by :meth:`to_json`."""
        return cls.model_validate_json(text)
