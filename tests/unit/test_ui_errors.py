"""The web UI's failures: every error is a page (or plain text) saying what happened, with
the right status; value formatting; the filter grammar's edges."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from shipyard.errors import StoreError
from shipyard.store import Store
from shipyard.tracking import Tracker
from shipyard.ui import UiAuth, create_app
from shipyard.ui import _runs as ui_runs
from shipyard.ui._app import View
from shipyard.ui._filters import parse_conditions, parse_run_query
from shipyard.ui._format import fmt_bytes, fmt_duration, fmt_float, fmt_time, iso_time


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(root=tmp_path / "sy") as opened:
        yield opened


@pytest.fixture
def client(store: Store) -> Iterator[TestClient]:
    with TestClient(create_app(store, auth=UiAuth()), raise_server_exceptions=False) as c:
        yield c


def test_an_internal_error_is_a_500_page_without_details(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(ui_runs, "page_runs", broken)
    response = client.get("/runs")
    assert response.status_code == 500
    assert "something went wrong" in response.text and "secret internals" not in response.text
    assert "secret internals" in caplog.text  # the traceback goes to the log


def test_an_unreachable_store_is_a_503_page(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def down(*_args: object, **_kwargs: object) -> None:
        raise StoreError("cannot connect to the metadata store at postgresql://db")

    monkeypatch.setattr(ui_runs, "page_runs", down)
    response = client.get("/runs")
    assert response.status_code == 503 and "cannot connect to the metadata store" in response.text


def test_an_artifact_changed_on_disk_is_refused_with_409(client: TestClient, store: Store) -> None:
    with Tracker(store) as tracker, tracker.start_run("r") as run:
        run.log_artifact("notes.txt", b"original")
    path = Path(store.artifacts.root) / "runs" / run.id / "notes.txt"
    path.write_bytes(b"tampered")
    response = client.get(f"/runs/{run.id}/artifacts/notes.txt")
    assert response.status_code == 409 and "sha256" in response.text.lower()
    assert "tampered" not in response.text


def test_wrong_methods_and_missing_static_files(client: TestClient) -> None:
    response = client.get("/models/m/promote")
    assert response.status_code == 405 and "method not allowed" in response.text
    missing = client.get("/static/nope.js")
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("text/plain")


def test_the_error_page_falls_back_to_plain_text(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_templates(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("template broken")

    monkeypatch.setattr(View, "render", no_templates)
    response = client.get("/runs/" + "0" * 32)
    assert response.status_code == 404
    assert response.text.startswith("Not found: no run with id")


def test_values_are_formatted_for_people() -> None:
    assert fmt_float(None) == "-" and fmt_float("n/a") == "n/a"
    assert fmt_float(float("nan")) == "nan" and fmt_float(float("inf")) == "inf"
    assert fmt_float(0.123456) == "0.1235" and fmt_float(-2500.5) == "-2,500.50"
    assert fmt_time(None) == "-" and fmt_time(0.0, seconds=True) == "1970-01-01 00:00:00"
    assert iso_time(None) == "" and iso_time(0.0) == "1970-01-01T00:00:00+00:00"
    assert fmt_duration(None) == "-" and fmt_duration(59.94) == "59.9 s"
    assert fmt_duration(3600) == "1 h 0 min" and fmt_duration(61) == "1 min 1 s"
    assert fmt_bytes(512) == "512 B" and fmt_bytes(1536) == "1.5 KiB"
    assert fmt_bytes(5 * 1024**2) == "5.0 MiB" and fmt_bytes(3 * 1024**4) == "3072.0 GiB"


def test_the_filter_grammar_edges() -> None:
    assert parse_conditions("") == {"params": {}, "tags": {}, "metrics": []}
    both = parse_conditions("param.note = 'a and b'\nloss<=1e-3; metric.f1 == 1")
    assert both["params"] == {"note": "a and b"}
    assert both["metrics"] == [("loss", "<=", 0.001), ("f1", "==", 1.0)]
    assert parse_conditions("tag.x == y")["tags"] == {"x": "y"}
    with pytest.raises(ValueError, match="too long"):
        parse_conditions("a > 1 and " * 300)
    with pytest.raises(ValueError, match="cannot read 'a >'"):
        parse_conditions("a >")
    query = parse_run_query({"after": "2026-01-02T03:04+02:00", "offset": "9" * 13})
    assert query.kwargs["started_after"] == pytest.approx(1767315840.0)
    assert "offset" in query.errors
    assert parse_run_query({}).link() == "?"


def test_a_changed_report_of_a_run_is_named_and_the_page_still_shows(
    client: TestClient, store: Store
) -> None:
    with Tracker(store) as tracker, tracker.start_run("r") as run:
        run.log_artifact("validation.json", b'{"ok": true, "results": []}')
        run.log_artifact("evaluation.json", b"not json")
    (Path(store.artifacts.root) / "runs" / run.id / "validation.json").write_bytes(b"{}")
    page = client.get(f"/runs/{run.id}")
    assert page.status_code == 200
    assert "validation.json could not be read" in page.text
    assert "evaluation.json could not be read" in page.text
    assert 'id="validation-h"' not in page.text and 'id="confusion-h"' not in page.text
