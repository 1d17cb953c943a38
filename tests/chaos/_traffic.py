"""Traffic for the chaos tests: keep-alive clients that count every answer they get.

Each request is a list of records with its own ``X-Request-ID``, so the server gives record
``i`` the prediction id ``<request id>-<i>``: the ids answered are known exactly and can be
looked up in the prediction log afterwards.
"""

from __future__ import annotations

import http.client
import json
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from palmerpenguins import load_penguins

HEADERS = {"content-type": "application/json"}


def penguin_records(n: int) -> list[dict[str, object]]:
    """``n`` penguin records (inputs only), cycling through the dataset."""
    frame = load_penguins().drop(columns=["species", "year"])
    rows = json.loads(frame.to_json(orient="records"))
    return [rows[i % len(rows)] for i in range(n)]


@dataclass
class Tally:
    """What the clients saw: answers by status (or error name) and the prediction ids answered."""

    outcomes: Counter[str] = field(default_factory=Counter)
    answered_ids: list[str] = field(default_factory=list)
    answered_at: list[float] = field(default_factory=list)  # time.monotonic(), per record
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def answered(self) -> int:
        """Records answered with a 200."""
        return len(self.answered_ids)

    def summary(self) -> str:
        return f"answers {dict(self.outcomes)}, {self.answered} records answered"


class Load:
    """``clients`` threads, each posting ``records`` records per request on one connection.

    Args:
        port: the server's port.
        clients: concurrent connections.
        records: records per request.
        tag: prefix of the request ids (distinct per phase of a test).
    """

    def __init__(self, port: int, *, clients: int = 4, records: int = 5, tag: str = "r") -> None:
        self.port = port
        self.clients = clients
        self.body = json.dumps(penguin_records(records)).encode()
        self.records = records
        self.tally = Tally()
        self.issued = 0  # requests sent so far, answered or not
        self._issue_lock = threading.Lock()
        self._tag = tag
        self._budget: int | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self, requests: int | None = None) -> Load:
        """Start the clients; they stop after ``requests`` requests in all, or at :meth:`stop`."""
        self._budget = requests
        self._threads = [
            threading.Thread(target=self._client, args=(i,), daemon=True)
            for i in range(self.clients)
        ]
        for thread in self._threads:
            thread.start()
        return self

    def run(self, requests: int) -> Tally:
        """Send exactly ``requests`` requests and wait for every answer."""
        self.start(requests)
        self.join()
        return self.tally

    def stop(self) -> Tally:
        self._stop.set()
        self.join()
        return self.tally

    def join(self, timeout: float = 120) -> None:
        for thread in self._threads:
            thread.join(timeout)
        assert not any(t.is_alive() for t in self._threads), "a client hung"

    def _take(self) -> int | None:
        with self._issue_lock:
            n = self.issued
            if self._stop.is_set() or (self._budget is not None and n >= self._budget):
                return None
            self.issued += 1
        return n

    def _client(self, index: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            while (n := self._take()) is not None:
                request_id = f"{self._tag}-{n}"
                outcome, ids = self._post(conn, request_id)
                now = time.monotonic()
                with self.tally.lock:
                    self.tally.outcomes[outcome] += 1
                    self.tally.answered_ids.extend(ids)
                    self.tally.answered_at.extend([now] * len(ids))
                if outcome != "200":  # a broken connection: open a new one
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
                    if self._stop.is_set():
                        return
                    time.sleep(0.05)
        finally:
            conn.close()

    def _post(self, conn: http.client.HTTPConnection, request_id: str) -> tuple[str, list[str]]:
        headers = {**HEADERS, "x-request-id": request_id}
        try:
            conn.request("POST", "/predict", body=self.body, headers=headers)
            response = conn.getresponse()
            payload = response.read()
        except (OSError, http.client.HTTPException) as exc:
            return type(exc).__name__, []
        if response.status != 200:
            return str(response.status), []
        ids = [p["prediction_id"] for p in json.loads(payload)["predictions"]]
        assert ids == [f"{request_id}-{i}" for i in range(self.records)], ids
        return "200", ids


def scrape(port: int) -> str:
    """The server's ``/metrics`` text."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", "/metrics")
        return conn.getresponse().read().decode()
    finally:
        conn.close()


def metric(text: str, name: str) -> float:
    """A sample's value in a Prometheus text page (0 when absent)."""
    found = re.findall(rf"^{re.escape(name)} ([0-9.e+-]+)$", text, re.M)
    return float(found[0]) if found else 0.0


@dataclass(frozen=True)
class LogCounts:
    """The prediction log's counters in one ``/metrics`` page."""

    written: int
    dropped: int
    flush_errors: int
    pending: int

    @classmethod
    def of(cls, text: str) -> LogCounts:
        def get(name: str) -> int:
            return int(metric(text, f"shipyard_prediction_log_{name}"))

        return cls(
            get("written_total"), get("dropped_total"), get("flush_errors_total"), get("pending")
        )


def log_counts(port: int) -> LogCounts:
    return LogCounts.of(scrape(port))


def wait_for(predicate: object, timeout: float, what: str) -> float:
    """Poll ``predicate()`` until true; the seconds it took. Fails after ``timeout``."""
    assert callable(predicate)
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.05)
    return time.monotonic() - start
