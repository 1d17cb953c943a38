"""Benchmark: ``shipyard predict`` streaming a large Parquet file against plain pandas.

Registers the quickstart's kind of model (numeric + categorical preprocessing and LightGBM on
the Palmer penguins without ``year``, converted to ONNX and checked as ``shipyard run`` does)
in a temporary ``SHIPYARD_HOME``, then writes a seeded Parquet file of ``--rows`` penguins
(default 10,000,000: the 344 penguins resampled with noise on the measurements, their
missing values kept, plus an ``id`` column), one row group of ``--row-group`` rows at a time,
so the file is never whole in memory.

Then, each in a subprocess of its own (so that its peak RSS is its own, read from
``os.wait4``'s ``ru_maxrss``), on the same file, the same model and the same runtime (ONNX,
what ``shipyard predict`` picks by default):

- ``shipyard predict models:/penguins/1 big.parquet -o out.parquet`` (the CLI users run:
  streaming in chunks, atomic output, no progress bar since stderr is not a terminal);
- the baseline: ``pandas.read_parquet``, the runtime's ``predict_frame`` on the whole frame,
  ``pandas.concat`` of input and predictions, ``DataFrame.to_parquet``: what one writes by hand.

Both time the whole command, interpreter start and model load included (about 1.5 s each).
The table shows rows, seconds, rows/s, peak RSS and the ratios to the baseline. Target
(issue 15): the streaming peak RSS stays under 1 GB at 10,000,000 rows; exits 1 when missed.

Usage::

    python benchmarks/batch.py                   # 10,000,000 rows, ~4 min
    python benchmarks/batch.py --rows 1000000    # a quick run
    python benchmarks/batch.py --chunk-rows 50000 --skip-baseline
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

TARGET_RSS_MB = 1024.0
NUMERIC = ("bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g")


@dataclass
class Measure:
    """One subprocess: wall seconds and peak RSS."""

    name: str
    rows: int
    seconds: float
    peak_rss_mb: float

    @property
    def rows_per_s(self) -> float:
        return self.rows / self.seconds


def register_model(home: Path) -> str:
    """Fit the quickstart's LightGBM pipeline, convert it to ONNX, register it in ``home``."""
    from palmerpenguins import load_penguins

    from shipyard.data import build_signature, coerce_frame, to_text
    from shipyard.registry import ModelPackage, Registry
    from shipyard.spec import parse_spec
    from shipyard.store import Store
    from shipyard.train import default_catalogue, make_pipeline, refit
    from shipyard.train._onnx import convert_to_onnx  # what `shipyard run` calls

    frame = load_penguins().dropna(subset=["species"]).drop(columns=["year"]).reset_index(drop=True)
    spec = parse_spec("name: penguins\ndata: {source: {type: csv, path: x}, target: species}\n")
    signature = build_signature(frame, spec, "multiclass")
    params = {"n_estimators": 150, "learning_rate": 0.05}
    estimator = default_catalogue().create("lightgbm", "multiclass", seed=0, params=params)
    y = pd.Series(to_text(frame["species"]), dtype=object)
    model = refit(make_pipeline(signature, estimator), coerce_frame(frame, signature), y)
    graph = convert_to_onnx(model, signature)
    package = ModelPackage(model, signature, "multiclass", {"name": "penguins"}, onnx=graph)
    store = Store.from_env(None, root=home)
    try:
        Registry(store).register("penguins", package)
    finally:
        store.close()
    return "models:/penguins/1"


def write_penguins(path: Path, n_rows: int, row_group: int, seed: int = 0) -> None:
    """``n_rows`` resampled penguins, written one row group at a time."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from palmerpenguins import load_penguins

    base = load_penguins().drop(columns=["species", "year"])
    rng = np.random.default_rng(seed)
    writer = None
    try:
        for start in range(0, n_rows, row_group):
            n = min(row_group, n_rows - start)
            part = base.iloc[rng.integers(0, len(base), n)].reset_index(drop=True)
            for name in NUMERIC:
                part[name] = part[name] * rng.normal(1.0, 0.02, n)
            part.insert(0, "id", np.arange(start, start + n, dtype="int64"))
            table = pa.Table.from_pandas(part, preserve_index=False)
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()


def measured(name: str, rows: int, command: list[str], env: dict[str, str]) -> Measure:
    """Run ``command``; its wall time and peak RSS (``ru_maxrss`` from ``os.wait4``)."""
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        msg = f"{name} failed with exit code {process.returncode}: {' '.join(command)}"
        raise SystemExit(msg)
    return Measure(name, rows, seconds, usage.ru_maxrss / 1024)  # Linux: KiB


def baseline(home: str, uri: str, source: str, output: str, runtime: str) -> None:
    """The hand-written way: the whole file in memory, one predict, one write."""
    from shipyard.registry import Registry
    from shipyard.store import Store

    store = Store.from_env(None, root=Path(home))
    try:
        package = Registry(store).load(uri)
    finally:
        store.close()
    frame = pd.read_parquet(source)
    predictions = package.runtime(runtime).predict_frame(frame).to_frame()
    pd.concat([frame, predictions], axis=1).to_parquet(output, index=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--row-group", type=int, default=500_000, help="input row group size")
    parser.add_argument("--chunk-rows", type=int, default=None, help="shipyard predict's")
    parser.add_argument("--runtime", default="auto", choices=["auto", "onnx", "sklearn"])
    parser.add_argument("--skip-baseline", action="store_true")
    parser.add_argument("--baseline-child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.baseline_child:
        baseline(*args.baseline_child, runtime=args.runtime)
        return 0

    with tempfile.TemporaryDirectory(prefix="shipyard-batch-") as tmp:
        folder = Path(tmp)
        home = folder / ".shipyard"
        env = {**os.environ, "SHIPYARD_HOME": str(home)}
        uri = register_model(home)
        source = folder / "big.parquet"
        started = time.perf_counter()
        write_penguins(source, args.rows, args.row_group)
        size_mb = source.stat().st_size / 2**20
        print(
            f"input: {args.rows:,} rows, {size_mb:,.0f} MB Parquet "
            f"(written in {time.perf_counter() - started:.1f} s); runtime {args.runtime}"
        )

        shipyard = [sys.executable, "-m", "shipyard", "predict", uri, str(source)]
        shipyard += ["-o", str(folder / "streamed.parquet"), "--runtime", args.runtime]
        if args.chunk_rows is not None:
            shipyard += ["--chunk-rows", str(args.chunk_rows)]
        results = [measured("shipyard predict (streaming)", args.rows, shipyard, env)]
        if not args.skip_baseline:
            child = [sys.executable, __file__, "--runtime", args.runtime, "--baseline-child"]
            child += [str(home), uri, str(source), str(folder / "pandas.parquet")]
            results.append(measured("pandas read_parquet + predict", args.rows, child, env))
            same = _same_predictions(folder / "streamed.parquet", folder / "pandas.parquet")
            print(f"identical predictions: {same}")
    return _report(results)


def _same_predictions(a: Path, b: Path) -> bool:
    import pyarrow.parquet as pq

    left = pq.ParquetFile(a).iter_batches(batch_size=1_000_000, columns=["prediction"])
    right = pq.ParquetFile(b).iter_batches(batch_size=1_000_000, columns=["prediction"])
    return all(x.equals(y) for x, y in zip(left, right, strict=True))


def _report(results: list[Measure]) -> int:
    base = results[-1] if len(results) > 1 else None
    print()
    print(f"{'':<32}{'rows':>12}{'s':>9}{'rows/s':>12}{'peak RSS MB':>13}{'time x':>8}{'RSS x':>7}")
    for m in results:
        ratios = ("", "")
        if base is not None:
            ratios = (f"{m.seconds / base.seconds:.2f}", f"{m.peak_rss_mb / base.peak_rss_mb:.2f}")
        print(
            f"{m.name:<32}{m.rows:>12,}{m.seconds:>9.1f}{m.rows_per_s:>12,.0f}"
            f"{m.peak_rss_mb:>13,.0f}{ratios[0]:>8}{ratios[1]:>7}"
        )
    streamed = results[0]
    ok = streamed.peak_rss_mb < TARGET_RSS_MB
    verdict = "PASS" if ok else "MISS"
    print(
        f"\n{verdict}: streaming peak RSS {streamed.peak_rss_mb:,.0f} MB "
        f"(target < {TARGET_RSS_MB:,.0f} MB at {streamed.rows:,} rows)"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
