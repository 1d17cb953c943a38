"""One writer process of the concurrent-writer test. It opens the store, creates
``READY_FILE``, waits for ``START_FILE``, then does ``ROUNDS`` rounds of: a run with params,
metrics and an artifact; a new version of the shared model; a move of the shared alias to it;
a flush of prediction-log records; an overwrite of one artifact every writer shares. It prints
what it wrote as one JSON line. The store URL and artifact root come from the command line,
the credentials from the environment. A writer still busy ``HANG_S`` after the start dumps its
threads' stacks and exits.

Usage: ``python concurrent_writer.py STORE_URL ARTIFACT_ROOT INDEX ROUNDS READY_FILE START_FILE``
"""

from __future__ import annotations

import faulthandler
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from sklearn.dummy import DummyClassifier
from sklearn.pipeline import make_pipeline

from shipyard.data import ColumnSchema, Signature
from shipyard.registry import ModelPackage, Registry
from shipyard.serve._predlog import PredictionLog, PredictionLogConfig
from shipyard.store import PredictionEntry, SqlSink, Store
from shipyard.tracking import Tracker

MODEL = "shared"
ALIAS = "production"
RECORDS_PER_FLUSH = 20
HANG_S = 90
SHARED_PATH = "shared/latest.txt"  # every writer overwrites it: file and row must agree
SIGNATURE = Signature(
    inputs=(ColumnSchema(name="x", kind="number", dtype="float64", nullable=False),),
    classes=("a", "b"),
)


def _package(index: int, round_: int) -> ModelPackage:
    model = make_pipeline(DummyClassifier(strategy="most_frequent"))
    model.fit(pd.DataFrame({"x": [0.0, 1.0, 2.0]}), ["a", "b", "b"])
    return ModelPackage(model, SIGNATURE, "binary", {"metrics": {"writer": index, "round": round_}})


def _entries(index: int, round_: int) -> list[PredictionEntry]:
    now = datetime.now(UTC).timestamp()
    return [
        PredictionEntry(
            f"w{index}-r{round_}-{i}",
            now,
            MODEL,
            "1",
            [{"x": float(i)}],
            [{"prediction": "a"}],
            1.0,
        )
        for i in range(RECORDS_PER_FLUSH)
    ]


def main(argv: list[str]) -> int:
    url, root, index_text, rounds_text, ready_file, start_file = argv
    index, rounds = int(index_text), int(rounds_text)
    packages = [_package(index, r) for r in range(rounds)]  # fitted before the start signal
    store = Store.open(url, artifact_root=root)
    registry = Registry(store)
    config = PredictionLogConfig(flush_records=RECORDS_PER_FLUSH, flush_interval_s=0.05)
    log = PredictionLog(SqlSink(url), config)
    done: dict[str, list[object]] = {"runs": [], "versions": [], "moves": []}
    Path(ready_file).touch()
    while not Path(start_file).exists():
        time.sleep(0.01)
    faulthandler.dump_traceback_later(HANG_S, exit=True)  # a deadlock fails with its stacks
    with Tracker(store, flush_interval=0.05) as tracker:
        for round_ in range(rounds):
            with tracker.start_run(f"w{index}-r{round_}", project="concurrent") as run:
                run.log_params({"writer": index, "round": round_})
                for step in range(5):
                    run.log_metric("loss", 1 / (step + 1), step=step)
                run.log_artifact("notes.txt", f"writer {index} round {round_}".encode())
            version = registry.register(MODEL, packages[round_], run_id=run.id)
            move = registry.promote(MODEL, version.version, ALIAS, moved_by=f"w{index}")
            log.submit(_entries(index, round_))
            store.artifacts.put(SHARED_PATH, f"writer {index} round {round_}".encode())
            done["runs"].append(run.id)
            done["versions"].append(version.version)
            done["moves"].append([move.version, move.previous_version])
    closed = log.close(timeout=30)
    stats = log.stats()
    store.close()
    result = {
        **done,
        "log_closed": closed,
        "log_written": stats.n_written,
        "log_dropped": stats.n_dropped,
        "log_flush_errors": stats.n_flush_errors,
    }
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
