"""The Open Inference Protocol (KServe V2 REST) beside ``/predict``: health, metadata, infer.

Each input column of the Signature is one input tensor of the same name, one row per record:
shape ``[n, 1]`` (or ``[n]``), datatype by kind (``number`` FP64, ``integer`` INT64,
``boolean`` BOOL, ``category``/``string``/``datetime`` BYTES, as strings). An infer request's
tensors become records keyed by column name and go through the same record model, the same
micro-batcher and the same runtime as ``POST /predict``, so a row gets the same answer by
either route. The outputs are ``label`` (BYTES class labels, or FP64 values for regression)
and, for classifiers, ``probabilities`` (FP64, ``[n, n_classes]``, row-major, classes in the
order of its ``parameters.classes``).

Every refusal is a V2 error body, ``{"error": msg}``: 400 for a malformed request (not JSON,
a missing or repeated input, a datatype that does not fit the column, a shape that is not one
column, data that do not fill the shape or do not match the datatype; an unknown input is
ignored like an unknown field, or a 400 under ``--strict-inputs``), 404 for another model or
version, 413 past the record limit, 415 for a body that is not JSON, 422 for a value the
record model refuses (an unknown category, a non-finite number), 503 with ``Retry-After`` and
504 as for ``/predict``. ``null`` in any tensor is a missing value, which the model imputes
(V2 has no other way to send one).
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal, get_args

import orjson
import pydantic_core
from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from pydantic_core import ErrorDetails
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope, Send

from shipyard.errors import PredictionError
from shipyard.serve import _scoring as scoring
from shipyard.serve._batcher import Overloaded, ShuttingDown, TimedOut
from shipyard.serve._schema import InvalidRequestError
from shipyard.store import PredictionEntry

if TYPE_CHECKING:
    from shipyard.data import ColumnSchema, Signature
    from shipyard.serve._runner import ModelRunner
    from shipyard.serve._state import ModelSlot, ServerState

__all__ = ["DATATYPES", "V2_TAG", "InferenceCodec", "V2Error", "add_v2_routes", "input_tensors"]

logger = logging.getLogger(__name__)

V2_TAG = "open inference protocol (v2)"
SERVER_NAME = "shipyard"

_IntDatatype = Literal["INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64"]
_FloatDatatype = Literal["FP16", "BF16", "FP32", "FP64"]
Datatype = Literal["BOOL", _IntDatatype, _FloatDatatype, "BYTES"]
"""Every tensor datatype of the protocol."""
DATATYPES: tuple[str, ...] = get_args(Datatype)
_INT_TYPES: tuple[str, ...] = get_args(_IntDatatype)
_FLOAT_TYPES: tuple[str, ...] = get_args(_FloatDatatype)

# the datatype a column's tensor is published with, and the ones it accepts (others: BYTES)
_COLUMN_DATATYPE = {"number": "FP64", "integer": "INT64", "boolean": "BOOL"}
_ACCEPTED = {
    "number": frozenset(_FLOAT_TYPES + _INT_TYPES),
    "integer": frozenset(_INT_TYPES),
    "boolean": frozenset({"BOOL"}),
}
_EXPECTED_ELEMENT = {
    **dict.fromkeys(_INT_TYPES, "an integer"),
    **dict.fromkeys(_FLOAT_TYPES, "a number"),
    "BOOL": "true or false",
    "BYTES": "a string",
}
_THREADPOOL_PARSE_BYTES = 64 * 1024  # decode larger bodies off the event loop, as /predict does
_SHOWN_ERRORS = 10  # an error message quotes at most this many problems
_SHOWN_CHARS = 80  # and at most this much of an offending value
_SHOWN_BITS = 128  # larger integers are described, not quoted


# --- the protocol's JSON objects (request validation and the OpenAPI description) ---------


class RequestInput(BaseModel):
    """One input tensor of an inference request."""

    model_config = ConfigDict(strict=True)

    name: str = Field(description="the input's name: a column of the model's Signature")
    shape: list[Annotated[int, Field(ge=0)]] = Field(
        description="[n, 1] or [n] for n rows", examples=[[2, 1]]
    )
    datatype: Datatype = Field(description="the elements' type")
    parameters: dict[str, Any] | None = None
    data: list[Any] = Field(
        description="the values, flat in row-major order or nested to match the shape; "
        "strings for BYTES; null is a missing value"
    )


class RequestOutput(BaseModel):
    """An output the client asks for."""

    model_config = ConfigDict(strict=True)

    name: str = Field(description="label or probabilities")
    parameters: dict[str, Any] | None = None


class InferenceRequest(BaseModel):
    """The body of ``POST /v2/models/{name}/infer``."""

    model_config = ConfigDict(strict=True)

    id: str | None = Field(default=None, description="echoed in the response")
    parameters: dict[str, Any] | None = None
    inputs: list[RequestInput] = Field(min_length=1, description="one tensor per input column")
    outputs: list[RequestOutput] | None = Field(
        default=None, description="the outputs to return (default: all)"
    )


class MetadataTensor(BaseModel):
    """An input or output tensor the model takes or produces; -1 is any number of rows."""

    name: str
    datatype: str
    shape: list[int]
    parameters: dict[str, Any] | None = None


class ModelMetadata(BaseModel):
    """``GET /v2/models/{name}``: what the model takes and produces."""

    name: str
    versions: list[str]
    platform: str = Field(description="shipyard-onnx or shipyard-sklearn: the live runtime")
    inputs: list[MetadataTensor]
    outputs: list[MetadataTensor]


class ServerMetadata(BaseModel):
    """``GET /v2``: the server."""

    name: str
    version: str
    extensions: list[str]


class ResponseOutput(MetadataTensor):
    """One output tensor of an inference response."""

    data: list[Any]


class InferenceResponse(BaseModel):
    """The answer of ``POST /v2/models/{name}/infer``."""

    model_name: str
    model_version: str | None = None
    id: str
    outputs: list[ResponseOutput]


class V2ErrorResponse(BaseModel):
    """The body of every V2 refusal."""

    error: str


class LiveResponse(BaseModel):
    live: bool


class ReadyResponse(BaseModel):
    ready: bool


class ModelReadyResponse(BaseModel):
    name: str
    ready: bool


class V2Error(Exception):
    """A V2 request the server refuses, answered with ``{"error": msg}``.

    Attributes:
        status_code: the HTTP status.
        headers: extra response headers (``Retry-After``).
    """

    def __init__(self, status_code: int, msg: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(msg)
        self.status_code = status_code
        self.headers = headers


# --- tensors <-> records -------------------------------------------------------------------


def input_tensors(signature: Signature) -> list[dict[str, Any]]:
    """The model's input tensors: one ``[-1, 1]`` tensor per Signature input column.

    Example:
        >>> [t["datatype"] for t in input_tensors(signature)]  # doctest: +SKIP
        ['BYTES', 'BYTES', 'FP64', 'FP64', 'FP64', 'FP64', 'INT64']
    """
    return [
        {"name": c.name, "datatype": _COLUMN_DATATYPE.get(c.kind, "BYTES"), "shape": [-1, 1]}
        for c in signature.inputs
    ]


@dataclass(frozen=True)
class DecodedRequest:
    """An inference request turned into records.

    Attributes:
        id: the request's id, if it had one.
        records: one dict per row, keyed by column name, validated by the record model.
        outputs: the output names to answer with, in order.
    """

    id: str | None
    records: list[dict[str, Any]]
    outputs: tuple[str, ...]


class InferenceCodec:
    """Turn V2 inference requests into records and predictions into V2 responses.

    Args:
        signature: the model's Signature (the input tensors).
        record_model: the record model ``/predict`` validates records with.
        max_records: the most rows one request may carry (more: 413).
        classes: the class labels (the probabilities' column order); ``None`` for regression.
        ignore_unknown: drop input tensors the model does not take instead of refusing them.
        on_ignored: called with the names of the dropped tensors of each request that had some.
    """

    def __init__(
        self,
        signature: Signature,
        record_model: type[BaseModel],
        *,
        max_records: int,
        classes: Sequence[str] | None,
        ignore_unknown: bool = False,
        on_ignored: Callable[[list[str]], None] | None = None,
    ) -> None:
        self.columns: dict[str, ColumnSchema] = {c.name: c for c in signature.inputs}
        self.max_records = max_records
        self.classes = list(classes) if classes is not None else None
        self.ignore_unknown = ignore_unknown
        self.on_ignored = on_ignored
        # the record model is built at run time, so mypy cannot treat it as a type here
        items: Any = record_model
        self._records: TypeAdapter[list[BaseModel]] = TypeAdapter(list[items])

    def output_tensors(self) -> list[dict[str, Any]]:
        """The outputs: ``label`` and, for classifiers, ``probabilities``."""
        if self.classes is None:
            return [{"name": "label", "datatype": "FP64", "shape": [-1]}]
        probabilities = {"name": "probabilities", "datatype": "FP64"}
        order = {"parameters": {"classes": self.classes}}
        return [
            {"name": "label", "datatype": "BYTES", "shape": [-1]},
            {**probabilities, "shape": [-1, len(self.classes)], **order},
        ]

    def decode(self, body: bytes) -> DecodedRequest:
        """Validate a request body and turn its tensors into records.

        Raises:
            V2Error: 400 (malformed request or tensors), 413 (too many rows), 422 (a value
                the record model refuses); the message names the tensor and the row.
        """
        request = self._parse(body)
        outputs = self._outputs(request.outputs)
        columns = self._columns(request.inputs)
        names = list(columns)
        records = [
            dict(zip(names, row, strict=True)) for row in zip(*columns.values(), strict=True)
        ]
        try:
            models = self._records.validate_python(records)
        except ValidationError as exc:
            raise V2Error(422, _join(_value_message(e) for e in exc.errors())) from None
        rows = [m.model_dump(by_alias=True) for m in models]
        return DecodedRequest(request.id, rows, outputs)

    def encode(
        self,
        request: DecodedRequest,
        results: list[dict[str, Any]],
        *,
        model: dict[str, Any],
        request_id: str,
    ) -> bytes:
        """The V2 response for ``results`` (one ``/predict`` result per record).

        Its ``id`` is the request's, else ``request_id`` (the server's id for the request).
        """
        tensors = {t["name"]: t for t in self.output_tensors()}
        outputs = []
        for name in request.outputs:
            if name == "label":
                data = [r["prediction"] for r in results]
            else:
                data = [r["probabilities"][c] for r in results for c in self.classes or ()]
            shape = [len(results) if d == -1 else d for d in tensors[name]["shape"]]
            outputs.append({**tensors[name], "shape": shape, "data": data})
        return orjson.dumps({**model, "id": request.id or request_id, "outputs": outputs})

    def _parse(self, body: bytes) -> InferenceRequest:
        try:
            return InferenceRequest.model_validate_json(body)
        except ValidationError as exc:
            errors = exc.errors(include_url=False)
        raw = _raw_json(body) if errors[0]["type"] != "json_invalid" else None
        raise V2Error(400, _join(_structure_message(e, raw) for e in errors))

    def _outputs(self, requested: list[RequestOutput] | None) -> tuple[str, ...]:
        produced = [t["name"] for t in self.output_tensors()]
        if requested is None:
            return tuple(produced)
        names = tuple(dict.fromkeys(o.name for o in requested))
        unknown = [n for n in names if n not in produced]
        if unknown:
            msg = f"unknown output {unknown[0]!r}: the model produces {produced}"
            raise V2Error(400, msg)
        return names

    def _columns(self, tensors: list[RequestInput]) -> dict[str, list[Any]]:
        """Each input column's values, in the Signature's order, all of one length."""
        given: dict[str, RequestInput] = {}
        ignored: list[str] = []
        for tensor in tensors:
            if tensor.name in given or tensor.name in ignored:
                msg = f"input {tensor.name!r} appears more than once: send each input once"
                raise V2Error(400, msg)
            if tensor.name in self.columns:
                given[tensor.name] = tensor
            elif self.ignore_unknown:
                ignored.append(tensor.name)
            else:
                msg = (
                    f"unknown input {tensor.name!r}: the model takes {list(self.columns)} "
                    "(the server runs with --strict-inputs)"
                )
                raise V2Error(400, msg)
        missing = [name for name in self.columns if name not in given]
        if missing:
            msg = (
                f"missing input {missing[0]!r} ({len(missing)} missing: {missing}): send one "
                "tensor per input of GET /v2/models/{name}; use null for a missing value"
            )
            raise V2Error(400, msg)
        columns = {name: _column(given[name], col) for name, col in self.columns.items()}
        self._check_rows(columns)
        if ignored and self.on_ignored is not None:
            self.on_ignored(ignored)
        return columns

    def _check_rows(self, columns: dict[str, list[Any]]) -> None:
        (first, values), *others = columns.items()
        n = len(values)
        for name, other in others:
            if len(other) != n:
                msg = (
                    f"input {name!r} has {len(other)} rows, input {first!r} has {n}: "
                    "every input tensor holds one value per row"
                )
                raise V2Error(400, msg)
        if n == 0:
            raise V2Error(400, "the input tensors hold no rows: send at least one")
        if n > self.max_records:
            msg = (
                f"the request holds {n} rows, more than the server's record limit of "
                f"{self.max_records} (--max-records): split it into smaller requests, or "
                "start the server with a larger --max-records"
            )
            raise V2Error(413, msg)


def _column(tensor: RequestInput, col: ColumnSchema) -> list[Any]:
    """One tensor's values as a column of rows, checked against its shape and datatype."""
    name, datatype, shape = tensor.name, tensor.datatype, tensor.shape
    accepted = _ACCEPTED.get(col.kind, frozenset({"BYTES"}))
    if datatype not in accepted:
        wanted = _COLUMN_DATATYPE.get(col.kind, "BYTES")
        msg = (
            f"input {name!r}: datatype {datatype} does not fit the model's {col.kind} column; "
            f"send {wanted}"
            + (
                f" (or one of {[t for t in DATATYPES if t in accepted]})"
                if len(accepted) > 1
                else ""
            )
        )
        raise V2Error(400, msg)
    if len(shape) not in (1, 2) or (len(shape) == 2 and shape[1] != 1):
        msg = f"input {name!r}: shape {shape} is not [n, 1] or [n]: each input is one column"
        raise V2Error(400, msg)
    values = _flatten(tensor.data, shape)
    if values is None:
        msg = f"input {name!r}: the nested data do not match the shape {shape}"
        raise V2Error(400, msg)
    if len(values) != shape[0]:
        msg = (
            f"input {name!r}: the shape {shape} holds {shape[0]} values, the data hold "
            f"{len(values)}"
        )
        raise V2Error(400, msg)
    for row, value in enumerate(values):
        if not _fits(value, datatype):
            msg = (
                f"input {name!r} ({datatype}), row {row}: found {_shown(value)}, expected "
                f"{_EXPECTED_ELEMENT[datatype]} or null"
            )
            raise V2Error(400, msg)
    return values


def _flatten(data: list[Any], shape: list[int]) -> list[Any] | None:
    """Flat data as they are; nested data when they nest exactly as ``shape``, else None."""
    if not any(isinstance(v, list) for v in data):
        return data
    flat: list[Any] = []

    def walk(value: Any, depth: int) -> bool:
        if depth == len(shape):
            flat.append(value)
            return not isinstance(value, list)
        if not isinstance(value, list) or len(value) != shape[depth]:
            return False
        return all(walk(v, depth + 1) for v in value)

    return flat if walk(data, 0) else None


def _fits(value: Any, datatype: str) -> bool:
    if value is None:
        return True
    if datatype == "BYTES":
        return isinstance(value, str)
    if isinstance(value, bool) or datatype == "BOOL":
        return isinstance(value, bool) and datatype == "BOOL"
    if datatype in _INT_TYPES:
        return isinstance(value, int)
    return isinstance(value, int | float)


# --- error messages ------------------------------------------------------------------------


def _raw_json(body: bytes) -> Any:
    """The body as plain JSON values, to name the tensor an error is in."""
    return pydantic_core.from_json(body, allow_inf_nan=True)


def _structure_message(error: ErrorDetails, raw: Any) -> str:
    kind, loc = error["type"], error["loc"]
    if kind == "json_invalid":
        return f"the body is not valid JSON ({error.get('ctx', {}).get('error')}): fix the syntax"
    if not loc:
        found = type(error["input"]).__name__
        return f"expected an inference request (a JSON object with inputs), found a {found}"
    where = _location(loc, raw)
    if kind == "missing":
        return f"{where} is required"
    return f"{where}: {error['msg']}, found {_shown(error['input'])}"


def _location(loc: tuple[int | str, ...], raw: Any) -> str:
    """``inputs[1].shape[0]``, prefixed with the tensor's name when it has one."""
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
    if len(loc) > 1 and loc[0] == "inputs" and isinstance(loc[1], int):
        try:
            name = raw["inputs"][loc[1]]["name"]
        except (KeyError, IndexError, TypeError):
            name = None
        if isinstance(name, str):
            return f"input {name!r} ({path})"
    return path


def _value_message(error: ErrorDetails) -> str:
    """A record model error as ``input 'island', row 1: what is wrong``."""
    loc = error["loc"]
    row = loc[0] if loc else "?"
    name = str(loc[1]) if len(loc) > 1 else "?"
    where = f"input {name!r}, row {row}"
    shown = _shown(error["input"])
    if error["type"] == "finite_number":
        return (
            f"{where}: found {shown}, which is not a finite number; send a finite number, "
            "or null for a missing value"
        )
    return f"{where}: {error['msg']}, found {shown}"


def _join(messages: Any) -> str:
    shown = list(messages)
    more = len(shown) - _SHOWN_ERRORS
    text = "; ".join(shown[:_SHOWN_ERRORS])
    return f"{text}; and {more} more" if more > 0 else text


def _shown(value: Any) -> str:
    """How a value is quoted: non-finite numbers by their JSON token, long values cut."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > _SHOWN_BITS:
        # never str() it: past 4,300 digits Python refuses to; count the digits exactly
        digits = int(value.bit_length() * math.log10(2)) + 1
        digits -= abs(value) < 10 ** (digits - 1)
        return f"an integer of {digits} digits"
    text = repr(value)
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 3] + "..."


# --- HTTP ----------------------------------------------------------------------------------


class _Served:
    """The V2 view of one model slot: its name and version, codec and metadata."""

    def __init__(self, slot: ModelSlot, state: ServerState) -> None:
        self.slot = slot
        self.name = slot.model_info["name"] or "model"
        self.version = slot.model_info["version"]
        package = slot.package
        self.codec = InferenceCodec(
            package.signature,
            slot.record_model,
            max_records=state.limits.max_records,
            classes=package.classes,
            ignore_unknown=state.config.extra_fields == "ignore",
            on_ignored=state.metrics.count_ignored,
        )
        self.metadata = {
            "name": self.name,
            "platform": f"shipyard-{slot.runner.runtime.name}",
            "inputs": input_tensors(package.signature),
            "outputs": self.codec.output_tensors(),
        }
        self.response_fields: dict[str, Any] = {"model_name": self.name}
        if self.version is not None:
            self.response_fields["model_version"] = self.version


class _Versions:
    """The versions a V2 request can name: the primary and the canary (the shadow never
    answers), each seen as a :class:`_Served`, rebuilt when hot reload swaps a slot."""

    def __init__(self, state: ServerState) -> None:
        self.state = state
        self._views: dict[int, _Served] = {}

    def find(self, name: str, version: str | None = None, *, routed: bool = False) -> _Served:
        """The version a request names, else a 404; without a version, the primary or, for
        a ``routed`` request, the version :meth:`ServerState.route` picks (canary share)."""
        primary = self._view(self.state.slot)
        if name != primary.name:
            msg = f"unknown model {name!r}: this server serves {primary.name!r}"
            raise V2Error(404, msg)
        if version is None:
            return self._view(self.state.route()[0]) if routed else primary
        for slot in self._answering():
            if slot.model_info["version"] == version:
                return self._view(slot)
        msg = f"unknown version {version!r} of model {name!r}: it serves {self.versions()}"
        raise V2Error(404, msg)

    def role(self, served: _Served) -> str:
        return "canary" if served.slot is self.state.canary else "primary"

    def versions(self) -> list[str]:
        versions = (slot.model_info["version"] for slot in self._answering())
        return list(dict.fromkeys(v for v in versions if v is not None))

    def metadata(self, served: _Served) -> dict[str, Any]:
        return {"name": served.name, "versions": self.versions(), **served.metadata}

    def ready(self, served: _Served | None = None) -> bool:
        """Whether ``served`` (default: every version, the shadow's too) is warmed up."""
        slots = [served.slot] if served is not None else self.state.slots()
        return all(slot.runner.ready for slot in slots)

    def _answering(self) -> list[ModelSlot]:
        canary = self.state.canary
        return [self.state.slot, *([canary] if canary is not None else [])]

    def _view(self, slot: ModelSlot) -> _Served:
        served = self._views.get(id(slot))
        if served is None or served.slot is not slot:
            live = {id(s) for s in self.state.slots()}  # forget versions a reload retired
            self._views = {key: view for key, view in self._views.items() if key in live}
            served = self._views[id(slot)] = _Served(slot, self.state)
        return served


class InferEndpoint:
    """``POST /v2/models/{name}[/versions/{v}]/infer`` as a plain ASGI handler, as /predict.

    Like ``/predict``, a request takes its version once its body has arrived and is answered
    wholly by it, even across a hot reload; without a version in the path it may be the
    canary; the shadow scores a copy. Refusals raise :class:`V2Error`, which the handler
    :func:`add_v2_routes` installs answers.
    """

    def __init__(self, state: ServerState, versions: _Versions) -> None:
        self.state = state
        self.versions = versions
        self._shadowing: set[asyncio.Task[None]] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        arrived, started = time.time(), time.perf_counter()
        state = self.state
        _check_media_type(scope)
        try:
            body = await Request(scope, receive).body()
        except ClientDisconnect:
            return  # nobody to answer
        params = scope["path_params"]
        served = self.versions.find(params["model_name"], params.get("model_version"), routed=True)
        slot = served.slot
        slot.active += 1
        try:
            if len(body) > _THREADPOOL_PARSE_BYTES:
                request, flags = await run_in_threadpool(_decode, state, served, body)
            else:
                request, flags = _decode(state, served, body)
            results = await _score(state, slot.runner, request.records)
        finally:
            slot.active -= 1
        role = self.versions.role(served)
        state.metrics.routed.labels(version=served.version or "", role=role).inc(len(results))
        if state.shadow is not None:  # scored beside, never waited for
            task = asyncio.create_task(
                scoring.shadow_score(state, state.shadow, request.records, results)
            )
            self._shadowing.add(task)
            task.add_done_callback(self._shadowing.discard)
        request_id = scoring.request_id(scope, request.id)
        payload = served.codec.encode(
            request, results, model=served.response_fields, request_id=request_id
        )
        if state.predlog is not None:  # row i is logged as REQUEST_ID-i
            latency_ms = (time.perf_counter() - started) * 1000
            version = served.version or "unversioned"
            entry = PredictionEntry(
                request_id,
                arrived,
                served.name,
                version,
                request.records,
                results,
                latency_ms,
                flags,
            )
            state.predlog.submit((entry,))
        headers = [
            *slot.headers,
            (b"x-request-id", request_id.encode()),
            (b"content-length", b"%d" % len(payload)),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": payload})


def _decode(
    state: ServerState, served: _Served, body: bytes
) -> tuple[DecodedRequest, list[str | None] | None]:
    """Decode the tensors into records, then check them against the training domain."""
    request = served.codec.decode(body)
    protect = served.slot.parser.protect  # personal-data fields: dropped or hashed
    if protect is not None:
        for record in request.records:
            protect(record)
    try:
        flags = scoring.screen(state, served.slot, request.records, is_batch=True)
    except InvalidRequestError as exc:
        raise V2Error(422, str(exc)) from None
    return request, flags


def _check_media_type(scope: Scope) -> None:
    """JSON, or no Content-Type at all (some V2 clients send none)."""
    content_type = scoring.header(scope, b"content-type")
    media = content_type.split(";", 1)[0].strip().lower()
    if media in ("", "application/json") or (
        media.startswith("application/") and media.endswith("+json")
    ):
        return
    msg = f"expected Content-Type application/json, found {content_type!r}"
    raise V2Error(415, msg)


async def _score(
    state: ServerState, runner: ModelRunner, records: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Run records through the batcher; its refusals become V2 errors (counted as /predict's)."""
    try:
        results = await runner.submit(records)
    except Overloaded as exc:
        draining = isinstance(exc, ShuttingDown)
        state.metrics.refused.labels(reason="shutting_down" if draining else "overloaded").inc()
        # the batcher words both as "at capacity"; /predict tells them apart by its type field
        msg = "the server is shutting down and admits no new work; retry" if draining else str(exc)
        raise V2Error(503, msg, {"Retry-After": str(exc.retry_after_s)}) from None
    except TimedOut as exc:
        state.metrics.refused.labels(reason="timeout").inc()
        raise V2Error(504, str(exc)) from None
    except PredictionError as exc:
        raise V2Error(422, str(exc)) from None
    except Exception as exc:
        logger.exception("the model failed on a batch of %d records", len(records))
        msg = "the model failed on this request; the server log has the details"
        raise V2Error(500, msg) from exc
    state.metrics.predictions.inc(len(records))
    return results


def _json(body: Any, status_code: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status_code, media_type="application/json")


async def _v2_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, V2Error)
    response = _json({"error": str(exc)}, exc.status_code)
    response.headers.update(exc.headers or {})
    return response


def _error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    texts = {
        400: "the request or one of its tensors is malformed; the error names it",
        404: "no such model or version on this server",
        413: "too many rows, or a body over the server's limit",
        415: "the body is not application/json",
        422: "a value the model's inputs refuse; the error names the input and the row",
        503: "the model is not ready, or the server is at capacity or draining",
        504: "the request was not answered within the batching timeout",
    }
    return {c: {"model": V2ErrorResponse, "description": texts[c]} for c in codes}


def add_v2_routes(app: FastAPI, state: ServerState) -> None:
    """Add the Open Inference Protocol (KServe V2 REST) routes to the server's app.

    Args:
        app: the app from :func:`~shipyard.serve.create_app` (or being built by it).
        state: the app's shared state (``app.shipyard``).

    Example:
        >>> app = create_app(package)  # doctest: +SKIP
        >>> add_v2_routes(app, app.shipyard)  # doctest: +SKIP
    """
    versions = _Versions(state)
    app.add_exception_handler(V2Error, _v2_error)
    _add_health_routes(app, versions)
    _add_metadata_routes(app, versions)
    _add_infer_routes(app, InferEndpoint(state, versions))


def _add_health_routes(app: FastAPI, versions: _Versions) -> None:
    not_ready: dict[int | str, dict[str, Any]] = {
        503: {"model": ReadyResponse, "description": "a version is not warmed up yet"}
    }

    @app.get(
        "/v2/health/live",
        tags=[V2_TAG],
        summary="Server live: 200 while the process runs",
        response_model=LiveResponse,
    )
    async def v2_live() -> Response:
        return _json({"live": True})

    @app.get(
        "/v2/health/ready",
        tags=[V2_TAG],
        summary="Server ready: 200 once every version is warmed up, else 503 (as /ready)",
        response_model=ReadyResponse,
        responses=not_ready,
    )
    async def v2_ready() -> Response:
        ready = versions.ready()
        return _json({"ready": ready}, 200 if ready else 503)

    def model_ready(name: str, version: str | None = None) -> Response:
        served = versions.find(name, version)
        ready = versions.ready(served if version is not None else None)
        return _json({"name": served.name, "ready": ready}, 200 if ready else 503)

    route: dict[str, Any] = {
        "tags": [V2_TAG],
        "summary": "Model ready: 200 once the model (or that version) is warmed up, else 503",
        "response_model": ModelReadyResponse,
        "responses": {**_error_responses(404), **not_ready},
    }

    @app.get("/v2/models/{model_name}/ready", **route)
    async def v2_model_ready(model_name: str) -> Response:
        return model_ready(model_name)

    @app.get("/v2/models/{model_name}/versions/{model_version}/ready", **route)
    async def v2_model_version_ready(model_name: str, model_version: str) -> Response:
        return model_ready(model_name, model_version)


def _add_metadata_routes(app: FastAPI, versions: _Versions) -> None:
    server = {"name": SERVER_NAME, "version": _server_version(), "extensions": []}

    @app.get("/v2", tags=[V2_TAG], summary="Server metadata", response_model=ServerMetadata)
    async def v2_server_metadata() -> Response:
        return _json(server)

    route: dict[str, Any] = {
        "tags": [V2_TAG],
        "summary": "Model metadata: its versions and its input and output tensors",
        "response_model": ModelMetadata,
        "responses": _error_responses(404),
    }

    @app.get("/v2/models/{model_name}", **route)
    async def v2_model_metadata(model_name: str) -> Response:
        return _json(versions.metadata(versions.find(model_name)))

    @app.get("/v2/models/{model_name}/versions/{model_version}", **route)
    async def v2_model_version_metadata(model_name: str, model_version: str) -> Response:
        return _json(versions.metadata(versions.find(model_name, model_version)))


def _add_infer_routes(app: FastAPI, endpoint: InferEndpoint) -> None:
    route: dict[str, Any] = {
        "tags": [V2_TAG],
        "summary": "Inference: one input tensor per input column in; label and, for "
        "classifiers, probabilities out",
        "response_model": InferenceResponse,
        "responses": _error_responses(400, 404, 413, 415, 422, 503, 504),
    }
    # the functions describe the routes in the OpenAPI schema; InferEndpoint serves them

    @app.post("/v2/models/{model_name}/infer", **route)
    async def v2_infer(model_name: str, request: InferenceRequest) -> None:
        raise NotImplementedError

    @app.post("/v2/models/{model_name}/versions/{model_version}/infer", **route)
    async def v2_version_infer(
        model_name: str, model_version: str, request: InferenceRequest
    ) -> None:
        raise NotImplementedError

    paths = {
        "/v2/models/{model_name}/infer",
        "/v2/models/{model_name}/versions/{model_version}/infer",
    }
    for api_route in app.routes:
        if isinstance(api_route, APIRoute) and api_route.path in paths:
            api_route.app = endpoint


def _server_version() -> str:
    # not shipyard.__version__: importing the package root would reach the training stack
    try:
        return importlib.metadata.version("shipyard")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree, not installed
        return "unknown"
