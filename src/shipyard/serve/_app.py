"""The prediction server's ASGI app: routes, error mapping and middleware, wired together.

Request models come from :mod:`shipyard.serve._schema`, model execution (runtime and
micro-batching) from :mod:`shipyard.serve._runner`; this module only connects them to HTTP.

``POST /predict`` is FastAPI's route for the OpenAPI description, but its requests are served
by :class:`PredictEndpoint`, a plain ASGI handler: FastAPI's per-request machinery (dependency
solving, response models) would cost more than the model itself once requests are batched.
Errors still go through the app's exception handlers, so every error body has one shape.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.types import Receive, Scope, Send

from shipyard.errors import PredictionError
from shipyard.serve import _scoring as scoring
from shipyard.serve._auth import ApiKeyMiddleware
from shipyard.serve._batcher import Overloaded, ShuttingDown, TimedOut
from shipyard.serve._config import ServeConfig
from shipyard.serve._docs import add_docs_routes
from shipyard.serve._follow import ModelFollower
from shipyard.serve._limits import (
    BodySizeLimitMiddleware,
    RequestLimits,
    error_body,
)
from shipyard.serve._metrics import METRICS_CONTENT_TYPE, MetricsMiddleware
from shipyard.serve._ratelimit import RateLimitMiddleware
from shipyard.serve._runner import ModelRunner
from shipyard.serve._schema import (
    ErrorResponse,
    InvalidRequestError,
    build_response_models,
    example_record,
    model_class_name,
)
from shipyard.serve._scoring import shadow_score
from shipyard.serve._state import ModelSlot, ServerState
from shipyard.serve._v2 import add_v2_routes
from shipyard.store import PredictionEntry

if TYPE_CHECKING:
    from shipyard.model import ModelPackage

__all__ = ["ServeApp", "create_app"]

logger = logging.getLogger(__name__)

_JSON_TYPES = ("application/json",)
_THREADPOOL_PARSE_BYTES = 64 * 1024  # parse larger bodies off the event loop


class ServeApp(FastAPI):
    """The server app: FastAPI with the record schema in the OpenAPI components.

    Attributes:
        shipyard: what the routes share (package, runner, limits, metrics).
    """

    shipyard: ServerState
    _schema_reloads: int = 0

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is not None and self._schema_reloads != self.shipyard.reloads:
            self.openapi_schema = None  # hot reload: the live version's record model
        if self.openapi_schema is None:
            self._schema_reloads = self.shipyard.reloads
            schema = super().openapi()
            model = self.shipyard.record_model
            ref = "#/components/schemas/{model}"
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components[model.__name__] = model.model_json_schema(ref_template=ref)
        return self.openapi_schema or {}


def create_app(
    package: ModelPackage,
    *,
    config: ServeConfig | None = None,
    follow: ModelFollower | None = None,
    canary: tuple[ModelPackage, float] | None = None,
    shadow: ModelPackage | None = None,
) -> ServeApp:
    """Build the prediction server's ASGI app for one model package.

    Args:
        package: the fitted model package to serve.
        config: server settings; defaults to :class:`ServeConfig`'s defaults.
        follow: follows a model alias and switches to the version it points at (hot
            reload), while the app runs.
        canary: another version and the share of requests (chosen at random) it answers.
        shadow: another version that scores a copy of every request; its answers are
            compared with the ones given and counted in ``/metrics``, never returned.

    Returns:
        A FastAPI app with ``POST /predict``, ``GET /health``, ``/ready``, ``/metadata``,
        ``/metrics`` and the API docs (``/docs``, ``/redoc``, working offline); it warms the
        model up on startup.

    Example:
        >>> app = create_app(package)  # doctest: +SKIP
        >>> run_server(app, port=8000)  # doctest: +SKIP
    """
    state = ServerState(package, config or ServeConfig())
    if canary is not None:
        state.add_canary(*canary)
    if shadow is not None:
        state.add_shadow(shadow)
    name, version = state.model_info["name"], state.model_info["version"]
    app = ServeApp(
        title=state.config.title or f"{name or 'Shipyard model'} prediction server",
        version=version or "unversioned",
        description=f"Predictions from the {package.task} model {name!r}, version {version}.",
        lifespan=_lifespan(state, follow),
        docs_url=None,  # the docs pages come from add_docs_routes, with local assets
        redoc_url=None,
    )
    app.shipyard = state
    _add_predict_route(app, state)
    _add_info_routes(app, state)
    add_v2_routes(app, state)
    add_docs_routes(app, openapi_url=app.openapi_url or "/openapi.json")
    _add_error_handlers(app)
    app.add_middleware(BodySizeLimitMiddleware, max_body_bytes=state.limits.max_body_bytes)
    if state.config.rate_limit is not None:  # inside the key check: limits count known keys
        app.add_middleware(
            RateLimitMiddleware,
            limit=state.config.rate_limit,
            keyed=bool(state.config.api_key_digests),
            on_limited=state.metrics.count_rate_limited,
        )
    if state.config.api_key_digests:  # checked before any body is read
        unauthorized = state.metrics.refused.labels(reason="unauthorized")
        app.add_middleware(
            ApiKeyMiddleware,
            digests=state.config.api_key_digests,
            on_refused=unauthorized.inc,
            roles=state.config.api_key_roles,
            on_forbidden=state.metrics.refused.labels(reason="forbidden").inc,
        )
    app.add_middleware(MetricsMiddleware, metrics=state.metrics)
    return app


def _lifespan(state: ServerState, follow: ModelFollower | None) -> Any:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if state.predlog is not None:  # its writer thread starts here, after any fork
            state.predlog.open()
        for slot in state.slots():
            slot.runner.open()
            await run_in_threadpool(slot.runner.warm_up, slot.example())
        following = asyncio.create_task(follow.run(state)) if follow is not None else None
        yield
        if following is not None:
            following.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await following
            assert follow is not None
            await run_in_threadpool(follow.close)
        # the HTTP server has drained its connections; finish anything still queued
        for slot in state.slots():
            await slot.runner.close(timeout=state.config.batching.timeout_s)
        if state.predlog is not None:  # everything logged is written before the process exits
            await run_in_threadpool(state.predlog.close, 30.0)

    return lifespan


def _request_body_openapi(state: ServerState) -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{state.record_model.__name__}"}
    many = {"type": "array", "items": ref, "minItems": 1, "maxItems": state.limits.max_records}
    example = example_record(state.package.signature)
    examples = {
        "one record": {"value": example},
        "a list of records": {"value": [example, example]},
    }
    content = {"schema": {"oneOf": [ref, many]}, "examples": examples}
    return {"requestBody": {"required": True, "content": {"application/json": content}}}


def _error_responses(limits: RequestLimits) -> dict[int | str, dict[str, Any]]:
    too_large = (
        f"the body is over {limits.max_body_bytes} bytes (type body_too_large) or the list "
        f"holds more than {limits.max_records} records (type too_many_records)"
    )
    return {
        code: {"model": ErrorResponse, "description": text}
        for code, text in (
            (413, too_large),
            (415, "the body is not application/json"),
            (422, "a record does not match the model's inputs"),
            (500, "the model failed; see the server log"),
            (503, "the server is at capacity or draining; retry after the Retry-After seconds"),
            (504, "the request was not answered within the batching timeout"),
        )
    }


def _add_predict_route(app: FastAPI, state: ServerState) -> None:
    single, batch = build_response_models(
        state.package.signature,
        prefix=model_class_name(state.model_info["name"]),
        is_classifier=state.package.is_classifier,
    )

    @app.post(
        "/predict",
        response_model=single | batch,
        responses=_error_responses(state.limits),
        openapi_extra=_request_body_openapi(state),
        summary="Predict for one record (an object) or a list of records (an array)",
        tags=["predict"],
    )
    async def predict() -> None:
        """Describes the route in the OpenAPI schema; :class:`PredictEndpoint` serves it."""
        raise NotImplementedError

    route = next(r for r in app.routes if isinstance(r, APIRoute) and r.path == "/predict")
    route.app = PredictEndpoint(state)


class PredictEndpoint:
    """``POST /predict`` as a plain ASGI handler: parse, validate, batch, answer.

    Refusals raise the exceptions the app's handlers turn into responses: 415 (content type),
    413/422 (the body), 503 with Retry-After (the queue is full or the server is draining),
    504 (no answer in time), 500 (the model failed).
    """

    def __init__(self, state: ServerState) -> None:
        self.state = state
        self._shadowing: set[asyncio.Task[None]] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        arrived, started = time.time(), time.perf_counter()
        state = self.state
        _check_media_type(scoring.header(scope, b"content-type"))
        body = await _read_body(receive)
        slot, role = state.route()  # one version answers the whole request, even across a reload
        slot.active += 1
        try:
            if len(body) > _THREADPOOL_PARSE_BYTES:
                records, is_batch, flags = await run_in_threadpool(_parse, state, slot, body)
            else:
                records, is_batch, flags = _parse(state, slot, body)
            results = await _run_model(state, records, runner=slot.runner)
        finally:
            slot.active -= 1
        state.metrics.routed.labels(version=slot.model_info["version"] or "", role=role).inc(
            len(results)
        )
        request_id = scoring.request_id(scope)
        if is_batch:
            for i, result in enumerate(results):
                result["prediction_id"] = f"{request_id}-{i}"
        else:
            results[0]["prediction_id"] = request_id
        if state.shadow is not None:  # scored beside, never waited for
            task = asyncio.create_task(shadow_score(state, state.shadow, records, results))
            self._shadowing.add(task)
            task.add_done_callback(self._shadowing.discard)
        if is_batch:
            payload = orjson.dumps({"predictions": results, "model": slot.model_info})
        else:
            payload = orjson.dumps({**results[0], "model": slot.model_info})
        if state.predlog is not None:  # appended in O(1); written by the log's own thread
            info = slot.model_info
            entry = PredictionEntry(
                request_id,
                arrived,
                info["name"] or "model",
                info["version"] or "unversioned",
                records,
                results,
                (time.perf_counter() - started) * 1000,
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


def _parse(
    state: ServerState, slot: ModelSlot, body: bytes
) -> tuple[list[dict[str, Any]], bool, list[str | None] | None]:
    """Validate the body, then check its records against the training domain."""
    records, is_batch = slot.parser.parse(body)
    return records, is_batch, scoring.screen(state, slot, records, is_batch=is_batch)


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _run_model(
    state: ServerState, records: list[dict[str, Any]], runner: ModelRunner | None = None
) -> list[dict[str, Any]]:
    """Score records through the batcher of ``runner`` (default: the live model's)."""
    try:
        results = await (runner or state.runner).submit(records)
    except ShuttingDown:
        state.metrics.refused.labels(reason="shutting_down").inc()
        raise
    except Overloaded:
        state.metrics.refused.labels(reason="overloaded").inc()
        raise
    except TimedOut:
        state.metrics.refused.labels(reason="timeout").inc()
        raise
    except PredictionError:
        raise
    except Exception as exc:
        logger.exception("the model failed on a batch of %d records", len(records))
        msg = "the model failed on this request; the server log has the details"
        raise HTTPException(status_code=500, detail=msg) from exc
    state.metrics.predictions.inc(len(records))
    return results


def _check_media_type(content_type: str) -> None:
    media = content_type.split(";", 1)[0].strip().lower()
    if media in _JSON_TYPES or (media.startswith("application/") and media.endswith("+json")):
        return
    msg = f"expected Content-Type application/json, found {content_type or 'none'!r}"
    raise HTTPException(status_code=415, detail=msg)


def _add_info_routes(app: FastAPI, state: ServerState) -> None:

    @app.get("/health", tags=["operations"], summary="Liveness: 200 while the process runs")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/ready",
        tags=["operations"],
        summary="Readiness: 200 once the model is loaded and warmed up, else 503",
        responses={503: {"description": "the model is not ready"}},
    )
    async def ready() -> JSONResponse:
        if all(slot.runner.ready for slot in state.slots()):
            return JSONResponse({"status": "ready"})
        return JSONResponse({"status": "not ready"}, status_code=503)

    @app.get("/metadata", tags=["operations"], summary="The model: name, version, signature")
    async def get_metadata() -> dict[str, Any]:
        return state.metadata()

    @app.get(
        "/metrics",
        tags=["operations"],
        summary="Prometheus metrics",
        response_class=PlainTextResponse,
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
    )
    async def metrics() -> Response:
        return Response(state.metrics.render(), media_type=METRICS_CONTENT_TYPE)


def _add_error_handlers(app: FastAPI) -> None:
    # No RequestValidationError handler: no route declares parameters for FastAPI to validate
    # (/predict parses its body with RecordParser), so FastAPI never raises one.
    app.add_exception_handler(InvalidRequestError, _invalid_request)
    app.add_exception_handler(PredictionError, _prediction_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Overloaded, _overloaded)
    app.add_exception_handler(TimedOut, _timed_out)
    app.add_exception_handler(Exception, _internal_error)


async def _invalid_request(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, InvalidRequestError)
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)


async def _prediction_error(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(error_body(str(exc), type_="prediction_error"), status_code=422)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    body = error_body(str(exc.detail), type_=f"http_{exc.status_code}")
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


async def _overloaded(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Overloaded)
    kind = "shutting_down" if isinstance(exc, ShuttingDown) else "overloaded"
    headers = {"Retry-After": str(exc.retry_after_s)}
    return JSONResponse(error_body(str(exc), type_=kind), status_code=503, headers=headers)


async def _timed_out(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(error_body(str(exc), type_="timeout"), status_code=504)


async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
    logger.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    body = error_body("internal server error; the server log has the details", type_="internal")
    return JSONResponse(body, status_code=500)
