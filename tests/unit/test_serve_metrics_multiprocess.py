"""Several workers' metrics add up: ServeMetrics in prometheus_client's multiprocess mode.

Multiprocess mode is a switch for the whole process, so each case runs in a child process.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from shipyard.serve._metrics import forget_worker

_WORKER = """
import sys
from shipyard.serve._metrics import ServeMetrics, use_multiprocess_metrics
from shipyard.serve._predlog import PredictionLogStats

path = sys.argv[1]
use_multiprocess_metrics(path)
m = ServeMetrics(name="penguins", version="1", runtime="onnx")
queue = [5]
m.watch_queue(lambda: queue[0])
stats = [PredictionLogStats(n_written=3, n_dropped=1, n_flush_errors=0, n_pending=2)]
m.watch_prediction_log(lambda: stats[0])
m.predictions.inc(7)
m.observe_batch(7, 2, 0.01)
if sys.argv[2] == "reload":
    m.set_model(name="penguins", version="2", runtime="onnx")
    stats[0] = PredictionLogStats(n_written=6, n_dropped=1, n_flush_errors=0, n_pending=0)
    queue[0] = 0
sys.stdout.write(m.render().decode())
"""


def _worker(path: Path, *args: str) -> str:
    code = textwrap.dedent(_WORKER)
    done = subprocess.run(
        [sys.executable, "-c", code, str(path), *args],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout


def test_two_workers_are_added_up(tmp_path: Path) -> None:
    _worker(tmp_path, "first")
    text = _worker(tmp_path, "reload")
    assert "shipyard_predictions_total 14.0" in text
    assert "shipyard_prediction_log_written_total 9.0" in text  # 3, then 6 after the reload
    assert "shipyard_prediction_log_dropped_total 2.0" in text
    # the live gauges are those of both processes until the first is marked dead
    assert "shipyard_queue_rows 5.0" in text
    assert "shipyard_prediction_log_pending 2.0" in text
    # the reloaded worker dropped version 1; the other (not marked dead) still serves it
    assert 'shipyard_model_info{name="penguins",runtime="onnx",version="1"} 1.0' in text
    assert 'shipyard_model_info{name="penguins",runtime="onnx",version="2"} 1.0' in text


def test_a_dead_worker_keeps_its_counts_and_loses_its_gauges(tmp_path: Path) -> None:
    _worker(tmp_path, "first")
    (first,) = (int(p.stem.split("_")[-1]) for p in tmp_path.glob("counter_*.db"))
    forget_worker(first, str(tmp_path))
    text = _worker(tmp_path, "reload")
    assert "shipyard_predictions_total 14.0" in text
    assert "shipyard_queue_rows 0.0" in text
    assert "shipyard_prediction_log_pending 0.0" in text
    assert 'version="1"' not in text  # zeroed by the reload, the other worker gone
    assert 'shipyard_model_info{name="penguins",runtime="onnx",version="2"} 1.0' in text
