"""Request size limits: how many records and bytes one request may carry, and the byte limit's
middleware, which refuses a body before it is read whole."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shipyard.serve._schema import record_size_bound

if TYPE_CHECKING:
    from shipyard.data import Signature
    from shipyard.serve._config import ServeConfig

__all__ = [
    "DEFAULT_MAX_RECORDS",
    "BodySizeLimitMiddleware",
    "BodyTooLargeError",
    "RequestLimits",
    "error_body",
    "request_limits",
]

logger = logging.getLogger(__name__)

DEFAULT_MAX_RECORDS = 10_000
_MIN_BODY_BYTES = 1 << 20  # a derived body limit is at least 1 MiB ...
_MAX_DERIVED_BODY_BYTES = 16 << 20  # ... and, unless max_records is set, at most 16 MiB


@dataclass(frozen=True)
class RequestLimits:
    """The limits one server applies to each ``POST /predict``.

    Attributes:
        max_records: the most records in one request (more: 413, ``too_many_records``).
        max_body_bytes: the largest body (larger: 413, ``body_too_large``).
        record_bytes: the most bytes one record of the model's Signature takes as JSON.
    """

    max_records: int
    max_body_bytes: int
    record_bytes: int

    def describe(self) -> str:
        """The limits in words, e.g. ``10,000 records or 3.2 MiB per request``."""
        return (
            f"{self.max_records:,} records or {self.max_body_bytes / (1 << 20):.1f} MiB per request"
        )


def request_limits(config: ServeConfig, signature: Signature) -> RequestLimits:
    """Settle the record and byte limits so that they agree, from the settings and the model.

    A limit the settings leave unset is derived from the other one with
    :func:`~shipyard.serve._schema.record_size_bound`, so that a list of ``max_records``
    records fits in ``max_body_bytes`` even with every value as long as the Signature allows:

    * neither set: 10,000 records and room for them (at least 1 MiB); a model too wide for
      10,000 records in 16 MiB gets as many records as fit in 16 MiB instead;
    * only ``max_records``: room for that many records, at least 1 MiB;
    * only ``max_body_bytes``: as many records as fit, at most 10,000 and at least 1;
    * both: as given (a warning is logged when the records may not fit in the bytes).

    Args:
        config: the server's settings.
        signature: the model's Signature.

    Returns:
        The limits the server applies.
    """
    per_record = record_size_bound(signature)
    records, body = config.max_records, config.max_body_bytes
    if records is None and body is None:
        records = max(1, min(DEFAULT_MAX_RECORDS, _MAX_DERIVED_BODY_BYTES // per_record))
    if records is None:
        assert body is not None
        records = max(1, min(DEFAULT_MAX_RECORDS, body // per_record))
    if body is None:
        body = max(_MIN_BODY_BYTES, records * per_record)
    elif records * per_record > body:
        logger.warning(
            "%d records of this model can take up to %d bytes, more than max_body_bytes=%d: "
            "a full list of records may be refused for its size",
            records,
            records * per_record,
            body,
        )
    return RequestLimits(max_records=records, max_body_bytes=body, record_bytes=per_record)


def error_body(
    msg: str, *, type_: str, field: str | None = None, loc: list[str] | None = None
) -> dict[str, Any]:
    """The server's JSON error shape for a problem with the request as a whole (``loc``
    says where: the body by default, or a header)."""
    if loc is None:
        loc = ["body", field] if field else ["body"]
    return {"detail": [{"field": field, "loc": loc, "msg": msg, "input": None, "type": type_}]}


class BodyTooLargeError(Exception):
    """A streamed request body grew past the limit.

    Raised from ``receive`` inside the app and caught by :class:`BodySizeLimitMiddleware`,
    which answers 413; it is not an HTTP exception so that no handler inside the app turns
    it into another response first.
    """

    def __init__(self, limit: int) -> None:
        super().__init__(_too_large_message(limit))


def _too_large_message(limit: int, size: int | None = None) -> str:
    found = f"found {size} bytes, more than" if size is not None else "the streamed body passed"
    return (
        f"request body too large: {found} the server's body limit of {limit} bytes "
        f"(--max-body-bytes): send fewer records per request, or start the server with a "
        f"larger --max-body-bytes"
    )


class BodySizeLimitMiddleware:
    """Refuse request bodies larger than ``max_body_bytes`` with a 413.

    A declared ``Content-Length`` over the limit is refused before anything is read; a
    chunked body is counted as it streams and refused as soon as it passes the limit.

    Args:
        app: the ASGI app to protect.
        max_body_bytes: the largest body accepted.
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body_bytes:
            logger.info("refused a %d-byte body (limit %d)", declared, self.max_body_bytes)
            msg = _too_large_message(self.max_body_bytes, declared)
            await send_json(send, 413, error_body(msg, type_="body_too_large"))
            return
        started = False
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise BodyTooLargeError(self.max_body_bytes)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLargeError as exc:
            if started:
                raise
            body = error_body(str(exc), type_="body_too_large")
            await send_json(send, 413, body)


def _content_length(scope: Scope) -> int | None:
    for key, value in scope["headers"]:
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def send_json(
    send: Send, status: int, body: dict[str, Any], headers: tuple[tuple[bytes, bytes], ...] = ()
) -> None:
    """Answer with a JSON body from plain ASGI middleware (before any app has run)."""
    payload = json.dumps(body).encode()
    head = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(payload))]
    await send({"type": "http.response.start", "status": status, "headers": [*head, *headers]})
    await send({"type": "http.response.body", "body": payload})
