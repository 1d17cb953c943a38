"""Request body size limit, enforced before a body is read whole."""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["BodySizeLimitMiddleware", "BodyTooLargeError", "error_body"]

logger = logging.getLogger(__name__)


def error_body(msg: str, *, type_: str, field: str | None = None) -> dict[str, Any]:
    """The server's JSON error shape for a problem with the request as a whole."""
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
    found = f"{size} bytes" if size is not None else "more bytes"
    return (
        f"request body too large: found {found}, at most {limit} bytes are accepted; "
        f"send fewer records per request"
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
            await _send_json(send, 413, error_body(msg, type_="body_too_large"))
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
            await _send_json(send, 413, body)


def _content_length(scope: Scope) -> int | None:
    for key, value in scope["headers"]:
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _send_json(send: Send, status: int, body: dict[str, Any]) -> None:
    payload = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(payload))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
