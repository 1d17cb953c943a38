"""Per-client rate limits: a token bucket per API key (per client address without keys).

``--rate-limit 50/s`` lets each client make 50 requests a second on average, in bursts of up
to ``--rate-burst`` (by default one second's worth). A request beyond it gets a 429 with
``Retry-After`` (whole seconds until a token is back) before its body is read, and is counted
per client in ``/metrics`` (``shipyard_rate_limited_total{client=...}``: the first 8 hex
digits of the key's sha256, or ``anonymous``; never a key, never an address). Probes and docs
are not limited.

Buckets live in the process that serves the request. With ``--workers N`` the kernel spreads
connections over the workers, so the command line gives each worker ``rate / N``: a client's
total is the configured rate when its connections spread evenly, and up to that when they do
not (one keep-alive connection stays with one worker). It bounds what one client can take; it
is not an exact global quota (that needs a shared store, such as Redis, across the workers).
"""

from __future__ import annotations

import math
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

from shipyard.serve._auth import digest_key, is_public, presented_key
from shipyard.serve._limits import error_body, send_json

__all__ = ["RateLimit", "RateLimitMiddleware", "client_id"]

_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(s|sec|second|m|min|minute|h|hour)\s*$")
_PER = {"s": 1.0, "sec": 1.0, "second": 1.0, "m": 60.0, "min": 60.0, "minute": 60.0}
_PER |= {"h": 3600.0, "hour": 3600.0}
_MAX_CLIENTS = 10_000  # buckets kept; the least recently seen are forgotten (and start full)


@dataclass(frozen=True)
class RateLimit:
    """A sustained rate and a burst.

    Attributes:
        per_second: requests a second, on average.
        burst: requests a client may make at once before the rate applies.
    """

    per_second: float
    burst: float

    @classmethod
    def parse(cls, text: str, burst: float | None = None) -> RateLimit:
        """``"50/s"``, ``"600/m"`` or ``"10000/h"``; the burst defaults to one second's
        worth (at least 1).

        Raises:
            ValueError: the text is not a count per unit, or it is not positive.
        """
        found = _RATE.match(text)
        if found is None or float(found.group(1)) <= 0:
            msg = f"rate limit {text!r}: expected a positive count per s, m or h, e.g. 50/s"
            raise ValueError(msg)
        rate = float(found.group(1)) / _PER[found.group(2)]
        if burst is not None and burst < 1:
            msg = f"rate burst {burst!r}: expected at least 1 request"
            raise ValueError(msg)
        return cls(rate, burst if burst is not None else max(1.0, rate))

    def per_worker(self, workers: int) -> RateLimit:
        """This limit shared by ``workers`` processes (each gets its part, burst at least 1)."""
        n = max(1, workers)
        return RateLimit(self.per_second / n, max(1.0, self.burst / n))

    def describe(self) -> str:
        """``50/s (burst 50)``."""
        return f"{self.per_second:g}/s (burst {self.burst:g})"


class _Buckets:
    """Token buckets by client, the least recently seen forgotten beyond a bound."""

    def __init__(self, limit: RateLimit, clock: Callable[[], float]) -> None:
        self.limit = limit
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, client: str) -> float:
        """Take a token for ``client``: 0 when there was one, else seconds until one is back."""
        now = self.clock()
        tokens, last = self._buckets.pop(client, (self.limit.burst, now))
        tokens = min(self.limit.burst, tokens + (now - last) * self.limit.per_second)
        wait = 0.0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) / self.limit.per_second
        self._buckets[client] = (tokens, now)
        if len(self._buckets) > _MAX_CLIENTS:
            self._buckets.popitem(last=False)
        return wait


def client_id(scope: Scope, keyed: bool) -> tuple[str, str]:
    """Who a request comes from: ``(bucket key, metrics label)``.

    With API keys, the key's digest (label: its first 8 hex digits); without, the client's
    address (label: ``anonymous``, so that addresses never reach the metrics).
    """
    if keyed:
        key = presented_key(scope)
        if key is not None:
            digest = digest_key(key)
            return digest, digest[:8]
    client = scope.get("client")
    return (client[0] if client else "unknown"), "anonymous"


class RateLimitMiddleware:
    """Answer 429 with ``Retry-After`` to a client over its rate, before its body is read.

    Args:
        app: the ASGI app to protect.
        limit: the rate and burst, per client.
        keyed: whether clients are told apart by API key (else by address).
        on_limited: called with the client's label for each refused request (metrics).
        clock: the monotonic clock (tests pass their own).
    """

    def __init__(
        self,
        app: ASGIApp,
        limit: RateLimit,
        keyed: bool,
        on_limited: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.keyed = keyed
        self._buckets = _Buckets(limit, clock)
        self._on_limited = on_limited

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or is_public(scope["path"]):
            await self.app(scope, receive, send)
            return
        bucket, label = client_id(scope, self.keyed)
        wait = self._buckets.take(bucket)
        if not wait:
            await self.app(scope, receive, send)
            return
        if self._on_limited is not None:
            self._on_limited(label)
        retry = max(1, math.ceil(wait))
        limit = self._buckets.limit
        msg = f"rate limit of {limit.describe()} per client reached; retry in {retry} s"
        await send_json(
            send,
            429,
            error_body(msg, type_="rate_limited", loc=["header"]),
            ((b"retry-after", b"%d" % retry),),
        )
