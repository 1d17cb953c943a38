"""Request and response models generated from a model's Signature.

Each input column becomes one required, nullable field typed by its kind (``number`` -> float,
``integer`` -> int, ``boolean`` -> bool, ``category`` -> a Literal of the known categories,
``string`` -> str, ``datetime`` -> datetime). Numbers, booleans and strings are strict, so a
JSON string is never silently read as a number or ``"yes"`` as ``true``.

Missing values: ``null`` is the one way to say a value is missing (the model imputes it).
Numbers must be finite: the non-standard tokens ``NaN``, ``Infinity`` and ``-Infinity``, and
literals that overflow a float (``1e400``, a 400-digit integer), are refused with a 422 naming
the field, in every kind of field. Integer fields take 64-bit integers, the range training saw.
"""

from __future__ import annotations

import json
import keyword
import math
import re
import sys
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AllowInfNan,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    TypeAdapter,
    ValidationError,
    create_model,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from shipyard.data import ColumnSchema, Signature, category_text
from shipyard.errors import PredictionError

__all__ = [
    "RECORD_WHITESPACE_BYTES",
    "ErrorDetail",
    "ErrorResponse",
    "InvalidRequestError",
    "ModelInfo",
    "RecordParser",
    "build_record_model",
    "build_response_models",
    "example_record",
    "model_class_name",
    "record_size_bound",
]

_EXAMPLE_DATETIME = "2024-01-01T00:00:00"
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_FLOAT_MAX_INT = int(sys.float_info.max)  # larger integers overflow a float to infinity
# The longest JSON text of one value by kind: -2.2250738585072014e-308, -9223372036854775808,
# false, 2024-01-01T00:00:00.000000+00:00; free text has no observed bound, so an allowance.
_VALUE_BYTES = {"number": 24, "integer": 20, "boolean": 5, "datetime": 34, "string": 256}
RECORD_WHITESPACE_BYTES = 12  # per field: a newline and the indentation of pretty-printed JSON
_SHOWN_BITS = 128  # larger integers are described, not quoted, in an error message


class ModelInfo(BaseModel):
    """Which model answered a request."""

    name: str | None
    version: str | None


class ErrorDetail(BaseModel):
    """One problem with a request."""

    field: str | None = Field(description="the record field at fault, if one is")
    loc: list[str | int] = Field(description="where: body, record index, field")
    msg: str = Field(description="what was found, what was expected and what to do")
    input: Any = Field(default=None, description="the offending value")
    type: str = Field(description="a machine-readable error code")
    record: int | None = Field(default=None, description="the record's index in a list")


class ErrorResponse(BaseModel):
    """The body of every 4xx/5xx response."""

    detail: list[ErrorDetail]


def model_class_name(name: str | None) -> str:
    """Turn a model name into a CamelCase prefix for generated classes (``Model`` if unnamed).

    Example:
        >>> model_class_name("penguin-species")
        'PenguinSpecies'
    """
    parts = [p for p in re.split(r"[^0-9A-Za-z]+", name or "") if p]
    prefix = "".join(p[:1].upper() + p[1:] for p in parts)
    if not prefix or not prefix[0].isalpha():
        prefix = f"Model{prefix}"
    return prefix


def example_value(col: ColumnSchema) -> Any:
    """An example value for one column, drawn from its observed domain."""
    if col.kind == "category":
        return col.categories[0] if col.categories else "value"
    if col.kind in ("number", "integer"):
        lo, hi = col.minimum, col.maximum
        mid = (lo + hi) / 2 if lo is not None and hi is not None else (lo or hi or 0.0)
        return round(mid) if col.kind == "integer" else round(mid, 4)
    if col.kind == "boolean":
        return False
    if col.kind == "datetime":
        return _EXAMPLE_DATETIME
    return "text"


def example_record(signature: Signature) -> dict[str, Any]:
    """One example record (JSON-ready) for the Signature's inputs, in column order."""
    return {col.name: example_value(col) for col in signature.inputs}


def is_finite_number(value: object) -> bool:
    """Whether a JSON number is finite as a float: not NaN, not infinite, no overflow.

    Example:
        >>> is_finite_number(1e300), is_finite_number(float("nan")), is_finite_number(10**400)
        (True, False, False)
    """
    if isinstance(value, float):
        return math.isfinite(value)
    return not isinstance(value, int) or abs(value) <= _FLOAT_MAX_INT


def _not_finite() -> PydanticCustomError:
    return PydanticCustomError("finite_number", "Input should be a finite number")


def record_size_bound(signature: Signature) -> int:
    """The most bytes one record of ``signature`` takes as JSON, with each field's longest value.

    Numbers count as long as a float's longest text, categories as their longest name
    (JSON-escaped), free text as 256 bytes, and every field with room for the newline and
    indentation of pretty-printed JSON. A list of ``n`` records fits in ``n`` times this.

    Args:
        signature: the model's Signature.

    Returns:
        The size in bytes, separators between records included.

    Example:
        >>> x = ColumnSchema(name="x", kind="number", dtype="float64", nullable=True)
        >>> record_size_bound(Signature(inputs=(x,)))  # {"x": -2.2250738585072014e-308}, ...
        58
    """
    size = 2 + 2 + RECORD_WHITESPACE_BYTES  # braces, ", " after the record, the closing line
    for col in signature.inputs:
        value = _VALUE_BYTES.get(col.kind, _VALUE_BYTES["string"])
        if col.kind == "category" and col.categories:
            value = max(len(json.dumps(c)) for c in col.categories)
        size += len(json.dumps(col.name)) + len(": ") + max(value, len("null")) + len(",")
        size += RECORD_WHITESPACE_BYTES
    return size


def _as_category_text(value: Any) -> Any:
    if isinstance(value, bool | int | float):
        if not is_finite_number(value):
            raise _not_finite()
        return category_text(value)
    return value


def _finite_float(value: Any) -> Any:
    """Refuse NaN and infinities up front, so an integer field says so as a number field does."""
    if isinstance(value, float) and not math.isfinite(value):
        raise _not_finite()
    return value


def _field_type(col: ColumnSchema) -> Any:
    """The Python type a column's field validates against (null always allowed)."""
    base: Any
    if col.kind == "category" and col.categories:
        # numbers and booleans are read as the text training saw: 2007 -> "2007"
        return Annotated[Literal[col.categories] | None, BeforeValidator(_as_category_text)]
    if col.kind == "number":
        base = Annotated[float, Strict(), AllowInfNan(False)]
    elif col.kind == "integer":
        limits = Field(ge=_INT64_MIN, le=_INT64_MAX)
        base = Annotated[int, Strict(), limits, BeforeValidator(_finite_float)]
    elif col.kind == "boolean":
        base = Annotated[bool, Strict()]
    elif col.kind == "datetime":
        base = datetime
    else:
        base = Annotated[str, Strict()]
    return base | None


def _python_name(index: int, name: str) -> str:
    """A safe attribute name for a column; the column name itself is the field's alias."""
    safe = name.isidentifier() and not keyword.iskeyword(name) and not name.startswith("_")
    if safe and not hasattr(BaseModel, name):
        return name
    return f"field_{index}"


def _description(col: ColumnSchema) -> str:
    text = f"{col.kind} ({col.dtype})"
    if col.minimum is not None and col.maximum is not None:
        text += f", observed range [{col.minimum:g}, {col.maximum:g}]"
    if col.kind in ("number", "integer"):
        text += "; finite (NaN and Infinity are refused)"
    return text + "; null lets the model impute it"


def build_record_model(
    signature: Signature,
    *,
    name: str,
    extra: Literal["forbid", "ignore"] = "forbid",
    pii: Mapping[str, str] | None = None,
) -> type[BaseModel]:
    """Build the pydantic model of one input record.

    Args:
        signature: the model's Signature; one field per input column, in order.
        name: the generated class's name (shown in the OpenAPI schema).
        extra: whether an unknown field is an error (``forbid``) or dropped (``ignore``).
            Ignored fields are kept on the validated model (pydantic's ``allow``) so that
            :class:`RecordParser` can count them before it drops them.
        pii: personal-data fields the model does not take but a client may send (the
            project's ``features.pii``: column -> ``drop`` or ``hash``): optional, any type,
            never validated (so never echoed in an error); :class:`RecordParser` drops or
            hashes them.

    Returns:
        A model whose fields are aliased to the column names; dump it with ``by_alias=True``.
    """
    fields: dict[str, Any] = {}
    for i, col in enumerate(signature.inputs):
        info = Field(
            alias=col.name,
            title=col.name,
            description=_description(col),
            examples=[example_value(col)],
        )
        fields[_python_name(i, col.name)] = (_field_type(col), info)
    for j, (column, action) in enumerate((pii or {}).items(), start=len(signature.inputs)):
        what = "replaced by a keyed hash" if action == "hash" else "dropped"
        info = Field(
            default=None,
            alias=column,
            title=column,
            description=f"personal data, optional: {what} before anything is logged",
        )
        fields[_python_name(j, column)] = (Any, info)
    config = ConfigDict(
        extra="forbid" if extra == "forbid" else "allow",
        json_schema_extra={"example": example_record(signature)},
    )
    return create_model(name, __config__=config, **fields)


def build_response_models(
    signature: Signature, *, prefix: str, is_classifier: bool
) -> tuple[type[BaseModel], type[BaseModel]]:
    """Build the response models for one record and for a list of records.

    Returns:
        ``(single, batch)``: ``single`` holds ``prediction`` (plus ``probabilities`` for
        classifiers) and ``model``; ``batch`` holds ``predictions`` and ``model``.
    """
    item_fields: dict[str, Any] = {}
    if is_classifier:
        label: Any = Literal[signature.classes] if signature.classes else str
        item_fields["prediction"] = (label, Field(description="the most probable class"))
        item_fields["probabilities"] = (
            dict[str, float],
            Field(description="the probability of each class"),
        )
    else:
        item_fields["prediction"] = (float, Field(description="the predicted value"))
    item_fields["prediction_id"] = (
        str,
        Field(
            description="this prediction's id in the prediction log: the request id for one "
            "record, REQUEST_ID-INDEX in a list; late labels join on it"
        ),
    )
    item = create_model(f"{prefix}PredictionItem", **item_fields)
    single = create_model(f"{prefix}Prediction", __base__=item, model=(ModelInfo, ...))
    batch = create_model(
        f"{prefix}Predictions", predictions=(list[item], ...), model=(ModelInfo, ...)
    )
    return single, batch


class InvalidRequestError(PredictionError):
    """A prediction request the server refuses, with a JSON-ready list of what is wrong.

    Attributes:
        detail: one entry per problem: ``field``, ``loc``, ``msg``, ``input``, ``type`` and,
            for a list of records, ``record`` (the record's index).
        status_code: the HTTP status to answer with (422, or 413 for too many records).
    """

    def __init__(self, detail: list[dict[str, Any]], status_code: int = 422) -> None:
        super().__init__("; ".join(str(d["msg"]) for d in detail))
        self.detail = detail
        self.status_code = status_code


class RecordParser:
    """Validate a ``POST /predict`` body: one record (an object) or a list of records.

    Fields the model does not take (when the record model ignores them) are dropped from the
    records and reported to ``on_ignored``, once per record, by name.

    Args:
        record_model: the model from :func:`build_record_model`.
        max_records: the most records one list may hold.
        on_ignored: called with the names of the unknown fields of each record that had some.
        protect: called with each record, to drop or hash its personal-data fields in place.
    """

    def __init__(
        self,
        record_model: type[BaseModel],
        *,
        max_records: int,
        on_ignored: Callable[[list[str]], None] | None = None,
        protect: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self._one = record_model
        self._on_ignored = on_ignored
        self.protect = protect
        # record_model is built at run time, so mypy cannot treat it as a type here
        items: Any = record_model
        many: Any = Annotated[list[items], Field(min_length=1, max_length=max_records)]
        self._many: TypeAdapter[list[BaseModel]] = TypeAdapter(many)
        self._names = [f.alias or k for k, f in record_model.model_fields.items()]

    def parse(self, body: bytes) -> tuple[list[dict[str, Any]], bool]:
        """Validate a JSON body.

        Returns:
            ``(records, is_batch)``: the records as dicts keyed by column name, and whether
            the body was a list.

        Raises:
            InvalidRequestError: the body is empty, not JSON, not an object or array, or a
                record breaks the schema.
        """
        start = body.lstrip()[:1]
        if start not in (b"{", b"["):
            raise InvalidRequestError([_shape_error(body)])
        is_batch = start == b"["
        try:
            if is_batch:
                models = self._many.validate_json(body)
            else:
                models = [self._one.model_validate_json(body)]
        except ValidationError as exc:
            errors = exc.errors(include_url=False)
            status = 413 if errors[0]["type"] == "too_long" else 422
            raise InvalidRequestError(self._details(errors, is_batch), status) from None
        return [self._record(m) for m in models], is_batch

    def _record(self, model: BaseModel) -> dict[str, Any]:
        record = model.model_dump(by_alias=True)
        extra = model.__pydantic_extra__
        if extra:
            for name in extra:
                record.pop(name, None)
            if self._on_ignored is not None:
                self._on_ignored(list(extra))
        if self.protect is not None:
            self.protect(record)
        return record

    def _details(self, errors: list[ErrorDetails], is_batch: bool) -> list[dict[str, Any]]:
        return [_detail(e, is_batch, self._names) for e in errors]


def _shape_error(body: bytes) -> dict[str, Any]:
    head = body.lstrip()[:20]
    found = f"a body starting with {head!r}" if head else "an empty body"
    msg = (
        f"expected one record as a JSON object or a list of records as a JSON array, found {found}"
    )
    return {"field": None, "loc": ["body"], "msg": msg, "input": None, "type": "body_shape"}


def _detail(error: ErrorDetails, is_batch: bool, names: list[str]) -> dict[str, Any]:
    """Turn one pydantic error into a JSON-ready entry naming the record and the field."""
    loc = list(error["loc"])
    first = loc[0] if loc else None
    record = first if is_batch and isinstance(first, int) else None
    if record is not None:
        loc.pop(0)
    field = str(loc[0]) if loc else None
    entry: dict[str, Any] = {
        "field": field,
        "loc": ["body", *([record] if record is not None else []), *loc],
        "msg": _message(error, field, record, names),
        "input": _input(error, field),
        "type": "too_many_records" if error["type"] == "too_long" else error["type"],
    }
    if is_batch:
        entry["record"] = record
    return entry


def _message(error: ErrorDetails, field: str | None, record: int | None, names: list[str]) -> str:
    where = f"record {record}: " if record is not None else ""
    kind = error["type"]
    ctx = error.get("ctx", {})
    if kind == "missing":
        return f"{where}field {field!r} is required; send null to let the model impute it"
    if kind == "extra_forbidden":
        return f"{where}unknown field {field!r}: remove it; the model takes only {names}"
    if kind == "too_long":
        return (
            f"the request holds {ctx.get('actual_length')} records, more than the server's "
            f"record limit of {ctx.get('max_length')} (--max-records): split it into smaller "
            f"requests, or start the server with a larger --max-records"
        )
    if kind == "too_short":
        return "the list of records is empty: send at least one record"
    if kind == "json_invalid":
        return f"the body is not valid JSON ({ctx.get('error')}): fix the JSON syntax"
    if field is None:
        return f"{where}{error['msg']}"
    shown = _shown(error["input"])
    if kind == "finite_number":
        return (
            f"{where}field {field!r}: found {shown}, which is not a finite number; "
            f"send a finite number, or null for a missing value"
        )
    return f"{where}field {field!r}: {error['msg']}, found {shown}"


def _input(error: ErrorDetails, field: str | None) -> Any:
    """The offending value, when it is one field's value (never a whole body or record)."""
    if field is None or error["type"] == "missing":
        return None
    return _json_safe(error["input"])


def _json_safe(value: Any) -> Any:
    """``value`` with what strict JSON cannot hold (NaN, infinities, huge integers) as text."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, int | float) and not is_finite_number(value):
        return _shown(value)
    return value


def _shown(value: Any) -> str:
    """How a value is quoted in an error message: non-finite numbers by their JSON token."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > _SHOWN_BITS:
        # never str() a huge integer: past 4300 digits Python refuses to convert it
        digits = int(value.bit_length() * math.log10(2)) + 1
        return f"{'-' if value < 0 else ''}an integer of about {digits} digits"
    return repr(_json_safe(value))
