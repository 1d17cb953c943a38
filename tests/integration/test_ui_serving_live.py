"""The serving page against a real ``shipyard serve`` with API keys: ``shipyard ui --server``
reads its ``/metrics`` with ``SHIPYARD_UI_SERVER_KEY`` (never shown), and shows the traffic
sent to it between two reads."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from _served import register, serving

from ui_store import package, running_ui, wait_healthy

pytestmark = [pytest.mark.http]

READ_KEY = "ui-reads-metrics-0123456789"
PREDICT_KEY = "client-predicts-0123456789"


def test_the_live_view_reads_a_real_server_with_its_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    register(tmp_path, "penguins", package(0.9))
    (tmp_path / "keys.txt").write_text(f"{READ_KEY} role=read\n{PREDICT_KEY} role=predict\n")
    monkeypatch.setenv("SHIPYARD_UI_SERVER_KEY", READ_KEY)
    with serving(tmp_path, "models:/penguins/1", "--api-keys-file", "keys.txt") as served:
        server = f"http://127.0.0.1:{served.port}"
        client = httpx.Client(
            base_url=server, timeout=10, headers={"Authorization": f"Bearer {PREDICT_KEY}"}
        )
        with client, running_ui(tmp_path, "--server", server, "--log-level", "warning") as ui:
            base = f"http://127.0.0.1:{ui.port}"
            with httpx.Client(base_url=base, timeout=10) as browser:
                wait_healthy(browser)
                page = browser.get("/serving").text
                assert f'value="{server}"' in page
                first = browser.get("/serving/live", params={"url": server}).text
                assert "Serving <strong>penguins v1</strong>" in first, first
                assert "since the server started" in first
                for _ in range(20):
                    answer = client.post("/predict", json=[{"x": 1.0}, {"x": 2.0}])
                    assert answer.status_code == 200, answer.text
                time.sleep(1.05)  # rates compare with a read at least a second old
                second = browser.get("/serving/live", params={"url": server}).text
                assert "over the last" in second
                requests = second.split("<dt>Requests/s</dt><dd>", 1)[1].split("</dd>", 1)[0]
                assert float(requests) > 1, second
                records = second.split("<dt>Records/s</dt><dd>", 1)[1].split("</dd>", 1)[0]
                assert float(records) > 2 * float(requests) * 0.9
                p50 = second.split("<dt>Latency p50</dt><dd>", 1)[1].split("</dd>", 1)[0]
                assert p50.endswith(" ms"), p50
                assert '<th scope="row">v1</th><td>primary</td><td class="num">40</td>' in second
                # the key goes to the configured server only: another URL gets none
                other = browser.get("/serving/live", params={"url": f"{server}/"}).text
                assert "over the last" in other  # the same server, its URL normalised
                for text in (page, first, second, other):
                    assert READ_KEY not in text and PREDICT_KEY not in text
    assert READ_KEY not in ui.output
