"""Per-client rate limits: token buckets per API key (else per address), 429 with Retry-After
before the body is read, counted per client in /metrics; probes never limited."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from test_serve_app import RECORD, _samples, build_package

from shipyard.model import ModelPackage
from shipyard.serve import RateLimit, ServeConfig, create_app
from shipyard.serve._auth import digest_key
from shipyard.serve._ratelimit import RateLimitMiddleware, _Buckets

KEY = "k-0123456789abcdef"
OTHER = "k-fedcba9876543210"


@pytest.fixture(scope="module")
def package() -> ModelPackage:
    return build_package("multiclass")


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_rates_parse_and_split_over_workers() -> None:
    assert RateLimit.parse("50/s") == RateLimit(50.0, 50.0)
    assert RateLimit.parse("600/m", burst=20) == RateLimit(10.0, 20)
    assert RateLimit.parse("3600 / hour") == RateLimit(1.0, 1.0)
    assert RateLimit.parse("50/s").per_worker(2) == RateLimit(25.0, 25.0)
    assert RateLimit.parse("1/m").per_worker(4).burst == 1.0  # a burst never below one
    for bad in ("50", "0/s", "-1/s", "5/day", "fast"):
        with pytest.raises(ValueError, match="expected a positive count per s, m or h"):
            RateLimit.parse(bad)
    with pytest.raises(ValueError, match="at least 1 request"):
        RateLimit.parse("5/s", burst=0.5)


def test_a_bucket_refills_at_the_rate_up_to_the_burst() -> None:
    clock = Clock()
    buckets = _Buckets(RateLimit(2.0, 3.0), clock)
    assert [buckets.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("a") == pytest.approx(0.5)  # the next token in half a second
    assert buckets.take("b") == 0.0  # clients have buckets of their own
    clock.now += 0.5
    assert buckets.take("a") == 0.0
    clock.now += 100  # a long pause refills to the burst, not beyond
    assert [buckets.take("a") for _ in range(4)][-1] > 0


def _app(package: ModelPackage, clock: Clock, keys: bool) -> TestClient:
    digests = (digest_key(KEY), digest_key(OTHER)) if keys else ()
    config = ServeConfig(api_key_digests=digests, rate_limit=RateLimit(1.0, 2.0))
    app = create_app(package, config=config)
    for middleware in app.user_middleware:  # the test's clock, not the wall's
        if middleware.cls is RateLimitMiddleware:
            middleware.kwargs["clock"] = clock
    return TestClient(app)


def test_each_key_gets_its_rate_and_then_a_429_with_retry_after(package: ModelPackage) -> None:
    clock = Clock()
    with _app(package, clock, keys=True) as client:
        one = [client.post("/predict", json=RECORD, headers={"x-api-key": KEY}) for _ in range(3)]
        other = client.post("/predict", json=RECORD, headers={"x-api-key": OTHER})
        nokey = client.post("/predict", json=RECORD)  # refused for its key first: a 401
        probes = [client.get("/health").status_code for _ in range(5)]
        clock.now += 1.0
        again = client.post("/predict", json=RECORD, headers={"x-api-key": KEY})
        client.headers["x-api-key"] = OTHER
        samples = _samples(client)
    assert [r.status_code for r in one] == [200, 200, 429]
    limited = one[2]
    assert limited.headers["retry-after"] == "1"
    assert limited.json()["detail"][0]["type"] == "rate_limited"
    assert "1/s (burst 2) per client" in limited.json()["detail"][0]["msg"]
    assert other.status_code == 200 and nokey.status_code == 401
    assert probes == [200] * 5 and again.status_code == 200
    assert samples["shipyard_rate_limited_total", (("client", digest_key(KEY)[:8]),)] == 1
    assert samples["shipyard_requests_refused_total", (("reason", "rate_limited"),)] == 1
    assert KEY not in str(samples)


def test_without_keys_clients_are_told_apart_by_address(package: ModelPackage) -> None:
    clock = Clock()
    with _app(package, clock, keys=False) as client:
        codes = [client.post("/predict", json=RECORD).status_code for _ in range(3)]
        clock.now += 10  # /metrics is limited like any path but the probes and docs
        samples = _samples(client)
    assert codes == [200, 200, 429]
    assert samples["shipyard_rate_limited_total", (("client", "anonymous"),)] == 1
