"""A lean HTTP/1.1 keep-alive load generator for the serving benchmark.

C connections, each sending the same POST back to back (the next request leaves as soon as
the previous answer is read), for a warm-up and then a fixed measured window. The warm-up
lasts ``--warmup`` seconds and at least until every connection has had its first answer (or
error), so connection setup and a server's first, cold requests never count. Raw asyncio
streams (uvloop when importable): write the prebuilt request bytes, read the status line and
headers in one ``readuntil``, then ``Content-Length`` bytes (chunked bodies are read too). No
HTTP library, no per-request allocation beyond the answer, so the client stays cheap in CPU
when it shares the cores with the server under test.

Counted: every answer by status code, and connection errors (refused, reset, closed
mid-answer, timeouts) by kind; a connection that fails is reopened. Throughput is answers
completed inside the window over the window's length; latency percentiles are over requests
sent inside the window (the ones in flight at its end are awaited, so slow tails count).

Run on its own (it prints one JSON object)::

    python benchmarks/_load.py --port 8000 --body '{"x": 1}' --concurrency 32 --seconds 5
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["LoadResult", "run_load"]

_CRLF2 = b"\r\n\r\n"


@dataclass
class LoadResult:
    """What one load point measured (all times in seconds unless named ``_ms``)."""

    concurrency: int
    seconds: float
    records_per_request: int
    completed: int = 0  # answers (any status) completed inside the window
    sent: int = 0  # requests sent inside the window
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    warmup: float = 0.0  # how long the warm-up really lasted

    def summary(self) -> dict[str, Any]:
        """JSON-ready numbers: req/s, records/s, latency percentiles, statuses and errors."""
        lat = sorted(self.latencies)
        ok = sum(n for code, n in self.statuses.items() if 200 <= code < 300)
        bad_status = {str(c): n for c, n in sorted(self.statuses.items()) if not 200 <= c < 300}
        rps = self.completed / self.seconds if self.seconds > 0 else 0.0
        return {
            "concurrency": self.concurrency,
            "seconds": self.seconds,
            "records_per_request": self.records_per_request,
            "warmup": self.warmup,
            "requests": self.sent,
            "completed": self.completed,
            "ok": ok,
            "req_per_s": rps,
            "records_per_s": rps * self.records_per_request,
            "p50_ms": _pct(lat, 0.50) * 1000,
            "p95_ms": _pct(lat, 0.95) * 1000,
            "p99_ms": _pct(lat, 0.99) * 1000,
            "max_ms": (lat[-1] if lat else 0.0) * 1000,
            "mean_ms": (sum(lat) / len(lat) if lat else 0.0) * 1000,
            "statuses": {str(c): n for c, n in sorted(self.statuses.items())},
            "non_2xx": bad_status,
            "connection_errors": dict(self.errors),
            "errors": sum(bad_status.values()) + sum(self.errors.values()),
            # fewer answers than connections: the window is shorter than the latency
            "too_short": self.completed < self.concurrency,
        }


def _pct(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values (0 when empty)."""
    if not sorted_values:
        return 0.0
    rank = max(0, min(len(sorted_values) - 1, round(q * len(sorted_values) + 0.5) - 1))
    return sorted_values[rank]


def build_request(host: str, port: int, path: str, body: bytes, content_type: str) -> bytes:
    """The raw bytes of one keep-alive POST."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUser-Agent: shipyard-bench\r\n"
        f"Accept: application/json\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("ascii") + body


class _ClosedError(Exception):
    """The server closed the connection mid-answer or asked to close it."""


async def _read_answer(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Read one answer; return its status and whether the connection stays open."""
    head = await reader.readuntil(_CRLF2)
    status = int(head[9:12])
    lower = head.lower()
    keep_alive = b"\nconnection: close" not in lower
    at = lower.find(b"\ncontent-length:")
    if at >= 0:
        end = lower.index(b"\r\n", at + 1)
        length = int(lower[at + 16 : end])
        if length:
            await reader.readexactly(length)
    elif b"\ntransfer-encoding: chunked" in lower:
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0], 16)
            await reader.readexactly(size + 2)  # the chunk and its CRLF
            if size == 0:
                break
    elif status >= 200 and status not in (204, 304):
        await reader.read()  # no length: the body runs until the server closes
        keep_alive = False
    return status, keep_alive


@dataclass
class _Window:
    """The measured window; it opens once the warm-up is over (``inf`` until then)."""

    start: float = float("inf")
    end: float = float("inf")
    waiting: int = 0  # connections still waiting for their first answer
    all_answered: asyncio.Event = field(default_factory=asyncio.Event)

    def answered_once(self) -> None:
        self.waiting -= 1
        if self.waiting == 0:
            self.all_answered.set()


async def _connection(
    host: str, port: int, request: bytes, timeout: float, window: _Window, result: LoadResult
) -> None:
    perf = time.perf_counter
    first = True
    latencies, statuses, errors = result.latencies, result.statuses, result.errors
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    while True:
        t0 = perf()
        if t0 >= window.end:
            break
        counted = t0 >= window.start
        try:
            async with asyncio.timeout(timeout):
                if writer is None:
                    reader, writer = await asyncio.open_connection(host, port)
                assert reader is not None
                writer.write(request)
                status, keep_alive = await _read_answer(reader)
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
            if counted:
                result.sent += 1
                errors[_error_kind(exc)] += 1
            if first:
                first = False
                window.answered_once()
            if writer is not None:
                writer.transport.abort()
            reader = writer = None
            await asyncio.sleep(0.01)  # no busy loop against a refusing server
            continue
        t1 = perf()
        if first:
            first = False
            window.answered_once()
        if counted:
            result.sent += 1
            latencies.append(t1 - t0)
            statuses[status] += 1
        if window.start <= t1 <= window.end:
            result.completed += 1
        if not keep_alive:
            writer.close()
            reader = writer = None
    if writer is not None:
        writer.close()


def _error_kind(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, asyncio.IncompleteReadError):
        return "closed"
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, ConnectionResetError | BrokenPipeError):
        return "reset"
    if isinstance(exc, ValueError):
        return "bad_answer"
    return type(exc).__name__


async def _run(
    host: str,
    port: int,
    request: bytes,
    *,
    concurrency: int,
    seconds: float,
    warmup: float,
    timeout: float,
    records: int,
) -> LoadResult:
    result = LoadResult(concurrency=concurrency, seconds=seconds, records_per_request=records)
    window = _Window(waiting=concurrency)
    began = time.perf_counter()
    tasks = [
        asyncio.ensure_future(_connection(host, port, request, timeout, window, result))
        for _ in range(concurrency)
    ]
    await asyncio.sleep(warmup)
    # every connection's first answer, bounded: a request times out after ``timeout`` anyway
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(window.all_answered.wait(), timeout + 5)
    window.start = time.perf_counter()
    window.end = window.start + seconds
    result.warmup = window.start - began
    await asyncio.gather(*tasks)
    return result


def run_load(
    port: int,
    body: bytes,
    *,
    host: str = "127.0.0.1",
    path: str = "/predict",
    content_type: str = "application/json",
    concurrency: int = 32,
    seconds: float = 5.0,
    warmup: float = 1.0,
    timeout: float = 30.0,
    records: int = 1,
) -> dict[str, Any]:
    """Load ``http://host:port/path`` with ``body`` and return :meth:`LoadResult.summary`."""
    request = build_request(host, port, path, body, content_type)
    coro: Coroutine[Any, Any, LoadResult] = _run(
        host,
        port,
        request,
        concurrency=concurrency,
        seconds=seconds,
        warmup=warmup,
        timeout=timeout,
        records=records,
    )
    try:
        import uvloop
    except ImportError:
        loop_name, result = "asyncio", asyncio.run(coro)
    else:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            loop_name, result = "uvloop", runner.run(coro)
    return {**result.summary(), "loop": loop_name}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/predict")
    body = parser.add_mutually_exclusive_group(required=True)
    body.add_argument("--body", help="the request body")
    body.add_argument("--body-file", type=Path, help="a file holding the request body")
    parser.add_argument("--content-type", default="application/json")
    parser.add_argument("--concurrency", "-c", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=5.0, help="measured window")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured lead-in")
    parser.add_argument("--timeout", type=float, default=30.0, help="per request, seconds")
    parser.add_argument("--records", type=int, default=1, help="records per request")
    args = parser.parse_args()
    payload = args.body.encode() if args.body is not None else args.body_file.read_bytes()
    out = run_load(
        args.port,
        payload,
        host=args.host,
        path=args.path,
        content_type=args.content_type,
        concurrency=args.concurrency,
        seconds=args.seconds,
        warmup=args.warmup,
        timeout=args.timeout,
        records=args.records,
    )
    sys.stdout.write(json.dumps(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
