"""Benchmark: Shipyard's drift detection against Evidently 0.7's data-drift report, same data.

For each size (100,000 and 1,000,000 rows, reference and current alike) the benchmark writes a
seeded data set ONCE to ``reference.parquet`` and ``current.parquet``: 20 columns, 15 float64
(normal, lognormal, uniform, an integer-valued count with thousands of values, one with NaNs,
heavy tails, a bimodal mixture, a 5-level rating, rounded values, a zero-inflated one) and 5
text columns (3 to 50 categories, one with NaNs). Three columns shift in ``current``: a mean
shift of 0.2 standard deviations, a scale change of 12% (a normed Wasserstein distance within
2% of the 0.1 threshold, above it at 100,000 rows and below it at 1,000,000: the borderline
column) and a change in the mix of a 3-category column.

Each tool then runs in a subprocess of its own (Shipyard in this interpreter's venv, Evidently
in a throwaway venv, ``benchmarks/_peers.py``) that loads both files (not timed), resets the
process's peak RSS, and times only the drift computation:

- Shipyard: ``detect_drift(reference, current)``, default options (the Evidently-compatible
  ``auto`` mode), the kinds inferred from the dtypes; run ``--repeats`` times (3), the median
  is compared (the best is shown too);
- Evidently: ``Dataset.from_pandas`` of both frames with an explicit ``DataDefinition`` (15
  numerical, 5 categorical columns), then ``Report([DataDriftPreset()], include_tests=True)
  .run(current_data=..., reference_data=...)``; 3 times at 100,000 rows, once above.

Each worker reports wall seconds, the process's peak RSS (``ru_maxrss``: loading or computing,
whichever is higher), the RSS after loading, the computation's peak (after the reset) and each
column's test, statistic and verdict. The parent prints a table per size, the ratios and every
column's verdicts side by side.

Targets at 1,000,000 rows (exit 1 when one is missed; ``--quick`` runs 100,000 rows only and
checks nothing): Evidently's time at least 30x Shipyard's, Shipyard's peak RSS at most a
quarter of Evidently's, and the same verdict on every column. ``--check`` also exits 2 when
the targets could not be checked (Evidently skipped or failed, or no 1,000,000-row run).

Usage::

    python benchmarks/drift.py                      # both sizes (first run builds the venv)
    python benchmarks/drift.py --quick              # 100,000 rows only, no target check
    python benchmarks/drift.py --skip-evidently     # Shipyard alone
    python benchmarks/drift.py --evidently-python /path/to/venv/bin/python
    python benchmarks/drift.py --json drift.json    # every number
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from rich.console import Console
from rich.table import Table

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _peers import peer_env  # noqa: E402

SIZES = (100_000, 1_000_000)
TARGET_ROWS = 1_000_000
TARGET_SPEEDUP = 30.0  # Evidently's time / Shipyard's, at least
TARGET_MEMORY = 0.25  # Shipyard's peak RSS / Evidently's, at most (see check_target)
# Two measures, both held to it: from the files (`compare_files` reads Parquet a column at a
# time; its process peak against Evidently's, which must load both frames), and on frames
# already loaded (the memory each tool adds while computing; the frames are the same bytes).
SEED = 20_240_611
WORKER_TIMEOUT_S = 3_600
QUIET_ENV = {"DO_NOT_TRACK": "1", "EVIDENTLY_DISABLE_TELEMETRY": "1"}
# Evidently's display names -> Shipyard's method names
EVIDENTLY_METHODS = {
    "Wasserstein distance (normed)": "wasserstein",
    "Jensen-Shannon distance": "jensenshannon",
    "K-S p_value": "ks",
    "chi-square p_value": "chisquare",
    "Z-test p_value": "z",
    "PSI": "psi",
}

console = Console(width=None if sys.stdout.isatty() else 120)


# -- the data --------------------------------------------------------------------------------

Generator = Callable[[np.random.Generator, int, bool], np.ndarray]


@dataclass(frozen=True)
class NumericColumn:
    """A float64 column: ``make(rng, rows, current)`` draws its values."""

    name: str
    make: Generator
    shift: str = ""


@dataclass(frozen=True)
class CategoricalColumn:
    """A text column drawn from ``labels`` with shares ``reference`` (``current`` when it
    shifts), a ``missing`` share of nulls in both samples."""

    name: str
    labels: tuple[str, ...]
    reference: tuple[float, ...]
    current: tuple[float, ...] | None = None
    missing: float = 0.0
    shift: str = ""


def _zipf(k: int, s: float) -> tuple[float, ...]:
    weights = 1.0 / np.arange(1, k + 1) ** s
    return tuple(float(w) for w in weights / weights.sum())


def _with_nans(values: np.ndarray, rng: np.random.Generator, share: float) -> np.ndarray:
    values[rng.random(values.size) < share] = np.nan
    return values


def _bimodal(rng: np.random.Generator, n: int) -> np.ndarray:
    low = rng.random(n) < 0.6
    return np.where(low, rng.normal(-2.0, 1.0, n), rng.normal(3.0, 0.5, n))


NUMERIC = (
    NumericColumn("n01_normal", lambda r, n, cur: r.normal(0.2 if cur else 0.0, 1.0, n),
                  "mean +0.2 std"),
    NumericColumn("n02_lognormal", lambda r, n, cur: r.lognormal(3.0, 0.6, n)),
    NumericColumn("n03_uniform", lambda r, n, cur: r.uniform(0.0, 100.0, n)),
    NumericColumn("n04_count", lambda r, n, cur: r.negative_binomial(5, 0.01, n).astype(float)),
    NumericColumn("n05_nans", lambda r, n, cur: _with_nans(r.normal(50, 10, n), r,
                                                           0.06 if cur else 0.03)),
    NumericColumn("n06_scale", lambda r, n, cur: r.normal(10.0, 2.0 * (1.12 if cur else 1.0), n),
                  "std x1.12 (borderline)"),
    NumericColumn("n07_exponential", lambda r, n, cur: r.exponential(2.0, n)),
    NumericColumn("n08_gamma", lambda r, n, cur: r.gamma(2.0, 3.0, n)),
    NumericColumn("n09_beta", lambda r, n, cur: r.beta(2.0, 5.0, n)),
    NumericColumn("n10_student_t", lambda r, n, cur: r.standard_t(3.0, n)),
    NumericColumn("n11_bimodal", lambda r, n, cur: _bimodal(r, n)),
    NumericColumn("n12_rating", lambda r, n, cur: r.choice(
        np.arange(1.0, 6.0), n, p=[0.05, 0.1, 0.2, 0.35, 0.3])),
    NumericColumn("n13_rounded", lambda r, n, cur: np.round(r.normal(20.0, 3.0, n), 1)),
    NumericColumn("n14_pareto", lambda r, n, cur: r.pareto(3.0, n) + 1.0),
    NumericColumn("n15_zero_inflated", lambda r, n, cur: np.where(
        r.random(n) < 0.9, 0.0, r.exponential(5.0, n))),
)  # fmt: skip

CATEGORICAL = (
    CategoricalColumn("c01_country", tuple(f"country_{i:02d}" for i in range(50)), _zipf(50, 1.1)),
    CategoricalColumn("c02_plan", ("free", "pro", "team"), (0.7, 0.25, 0.05), (0.56, 0.32, 0.12),
                      shift="mix .70/.25/.05 -> .56/.32/.12"),
    CategoricalColumn("c03_device", ("desktop", "mobile", "tablet", "tv"), (0.5, 0.4, 0.08, 0.02)),
    CategoricalColumn("c04_browser", tuple(f"browser_{c}" for c in "abcdefgh"), _zipf(8, 0.8),
                      missing=0.04),
    CategoricalColumn("c05_segment", tuple(f"segment_{i:02d}" for i in range(20)), _zipf(20, 0.3)),
)  # fmt: skip

KINDS = {c.name: "numeric" for c in NUMERIC} | {c.name: "categorical" for c in CATEGORICAL}
SHIFTED = {c.name: c.shift for c in (*NUMERIC, *CATEGORICAL) if c.shift}


def _table(rng: np.random.Generator, rows: int, current: bool) -> pa.Table:
    arrays: dict[str, pa.Array] = {}
    for numeric in NUMERIC:
        arrays[numeric.name] = pa.array(numeric.make(rng, rows, current), type=pa.float64())
    for column in CATEGORICAL:
        shares = column.current if current and column.current else column.reference
        codes = rng.choice(len(column.labels), rows, p=shares).astype(np.int32)
        missing = rng.random(rows) < column.missing if column.missing else None
        indices = pa.array(codes, mask=missing)
        labels = pa.DictionaryArray.from_arrays(indices, pa.array(column.labels))
        arrays[column.name] = labels.dictionary_decode()  # plain strings, not a pandas Categorical
    return pa.table(arrays)


def write_data(folder: Path, rows: int, seed: int = SEED) -> Path:
    """Write ``reference.parquet`` and ``current.parquet`` of ``rows`` rows into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([seed, rows])
    for name, current in (("reference", False), ("current", True)):
        pq.write_table(_table(rng, rows, current), folder / f"{name}.parquet")
    return folder


# -- the workers -----------------------------------------------------------------------------

WORKER = textwrap.dedent(
    '''
    """Load reference.parquet and current.parquet, then time one tool's drift report."""
    import gc, json, os, resource, statistics, sys, time
    from importlib import metadata
    from pathlib import Path

    import pandas as pd

    tool, data, repeats, out = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
    kinds = json.loads(sys.argv[5])
    numerical = [c for c, k in kinds.items() if k == "numeric"]
    categorical = [c for c, k in kinds.items() if k == "categorical"]


    def rss_mb():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


    def peak_mb():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


    def release_freed():
        """Hand the reader's freed buffers back to the OS (Arrow's pool, then glibc's)."""
        gc.collect()
        try:
            import pyarrow

            pyarrow.default_memory_pool().release_unused()
        except (ImportError, AttributeError):
            pass
        try:
            import ctypes

            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):
            pass


    def reset_peak():
        """Reset the peak RSS (Linux, clear_refs), so the next peak is the computation's."""
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            return False
        return True


    phases, last = {}, {}
    if tool == "shipyard-files":
        from shipyard.pipeline import compare_files

        def run():  # from the files to the verdict: Parquet read a column at a time
            return compare_files(data / "reference.parquet", data / "current.parquet")
    elif tool == "shipyard":
        from shipyard.monitor import detect_drift

        def run():
            return detect_drift(reference, current)
    if tool.startswith("shipyard"):

        def columns(report):
            return {
                c.column: {"kind": c.kind, "method": c.method, "value": c.value,
                           "threshold": c.threshold, "drifted": c.drifted}
                for c in report.columns
            }, {"n_drifted": report.n_drifted, "share": report.share_drifted,
                "drifted": report.drifted, "n_reference": report.n_reference,
                "n_current": report.n_current}
    else:
        from evidently import DataDefinition, Dataset, Report
        from evidently.presets import DataDriftPreset

        def run():
            start = time.perf_counter()
            definition = DataDefinition(
                numerical_columns=numerical, categorical_columns=categorical
            )
            ref = Dataset.from_pandas(reference, data_definition=definition)
            cur = Dataset.from_pandas(current, data_definition=definition)
            built = time.perf_counter()
            report = Report([DataDriftPreset()], include_tests=True)
            snapshot = report.run(current_data=cur, reference_data=ref)
            phases.setdefault("dataset_s", []).append(built - start)
            phases.setdefault("report_s", []).append(time.perf_counter() - built)
            last["current"] = cur
            return snapshot

        def columns(snapshot):
            result = snapshot.dict()
            status = {t["metric_config"]["metric_id"]: t["status"]
                      for t in result["tests"] if t["id"] == "drift"}
            per_column, dataset = {}, {}
            for metric in result["metrics"]:
                config = metric["config"]
                if config["type"].endswith(":ValueDrift"):
                    verdict = status.get(metric["id"])
                    column_type = last["current"].column(config["column"]).type.value
                    per_column[config["column"]] = {
                        "kind": {"num": "numeric", "cat": "categorical"}.get(column_type,
                                                                            column_type),
                        "method": config["method"],
                        "value": metric["value"], "threshold": config["threshold"],
                        "drifted": None if verdict is None else verdict == "FAIL",
                    }
                elif config["type"].endswith(":DriftedColumnsCount"):
                    dataset = {"n_drifted": int(metric["value"]["count"]),
                               "share": metric["value"]["share"],
                               "drifted": metric["value"]["share"] >= config["drift_share"]}
            return per_column, dataset

    rss_imported = rss_mb()
    if tool == "shipyard-files":  # nothing loaded first: the process peak is the measure
        reference = current = None
        peak_loading, rss_loaded, was_reset = peak_mb(), rss_imported, False
    else:
        reference = pd.read_parquet(data / "reference.parquet")
        current = pd.read_parquet(data / "current.parquet")
        peak_loading = peak_mb()
        release_freed()
        rss_loaded = rss_mb()
        was_reset = reset_peak()
    times, cpu, result = [], [], None
    for _ in range(repeats):
        result = None
        gc.collect()
        usage = resource.getrusage(resource.RUSAGE_SELF)
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
        done = resource.getrusage(resource.RUSAGE_SELF)
        cpu.append(done.ru_utime + done.ru_stime - usage.ru_utime - usage.ru_stime)
    peak_computing = peak_mb()
    per_column, dataset = columns(result)
    versions = {}
    for name in (tool, "pandas", "numpy", "scipy", "pyarrow"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    out.write_text(json.dumps({
        "tool": tool,
        "versions": versions,
        "rows": [
            dataset.get("n_reference") or len(reference),
            dataset.get("n_current") or len(current),
        ],
        "times_s": times,
        "median_s": statistics.median(times),
        "best_s": min(times),
        "cpu_s": cpu,
        "phases_s": {k: statistics.median(v) for k, v in phases.items()},
        "rss_imported_mb": rss_imported,
        "rss_loaded_mb": rss_loaded,
        "peak_loading_mb": peak_loading,
        "peak_computing_mb": peak_computing,
        "peak_reset": was_reset,
        "peak_mb": max(peak_loading, peak_computing),
        "increase_mb": peak_computing - rss_loaded if was_reset else None,
        "dtypes": {}
        if reference is None
        else {str(k): str(v) for k, v in reference.dtypes.items()},
        "columns": per_column,
        "dataset": dataset,
    }))
    '''
)


def run_worker(
    python: str | Path, tool: str, data: Path, repeats: int, tmp: Path
) -> dict[str, Any]:
    """Run the worker script for ``tool`` with ``python``; its JSON, or an ``error`` entry."""
    script = tmp / "drift_worker.py"
    if not script.exists():
        script.write_text(WORKER)
    out = tmp / f"{tool}-{data.name}.json"
    cmd = [str(python), str(script), tool, str(data), str(repeats), str(out), json.dumps(KINDS)]
    start, load_before = time.perf_counter(), os.getloadavg()[0]
    try:
        done = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            check=False,
            timeout=WORKER_TIMEOUT_S,
            env={**os.environ, **QUIET_ENV},
            cwd=tmp,
        )
    except subprocess.TimeoutExpired:
        return {"tool": tool, "error": f"timed out after {WORKER_TIMEOUT_S} s"}
    if done.returncode != 0 or not out.exists():
        return {"tool": tool, "error": _tail(done.stderr) or f"exit code {done.returncode}"}
    result: dict[str, Any] = json.loads(out.read_text())
    result["process_s"] = time.perf_counter() - start
    result["loadavg"] = [load_before, os.getloadavg()[0]]
    return result


def _tail(text: str, n: int = 8) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return "\n".join(lines[-n:])


def evidently_repeats(rows: int) -> int:
    """Evidently is slow: 3 runs up to 100,000 rows, 1 above."""
    return 3 if rows <= 100_000 else 1


# -- comparison ------------------------------------------------------------------------------


def compare(
    ours: dict[str, Any], theirs: dict[str, Any] | None, files: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Ratios and per-column agreement of one size's results (in memory, from the files)."""
    out: dict[str, Any] = {"columns": {}, "differ": [], "kind_mismatch": []}
    if files is not None:
        out["files_differ"] = [
            name
            for name, column in ours["columns"].items()
            if files["columns"].get(name, {}).get("drifted") != column["drifted"]
        ]
    measured = [ours] if theirs is None or "error" in theirs else [ours, theirs]
    for res in measured:
        for name, kind in KINDS.items():
            got = res["columns"].get(name, {}).get("kind")
            if got != kind:
                out["kind_mismatch"].append(f"{name}: {res['tool']} tested it as {got}, not {kind}")
    if theirs is None or "error" in theirs:
        return out
    out["speedup"] = theirs["median_s"] / ours["median_s"]
    out["speedup_best"] = theirs["best_s"] / ours["best_s"]
    out["memory_ratio"] = ours["peak_mb"] / theirs["peak_mb"]
    out["computing_peak_ratio"] = ours["peak_computing_mb"] / theirs["peak_computing_mb"]
    if ours.get("increase_mb") is not None and theirs.get("increase_mb"):
        out["increase_ratio"] = max(ours["increase_mb"], 0.0) / theirs["increase_mb"]
    if files is not None:
        out["files_peak_ratio"] = files["peak_mb"] / theirs["peak_mb"]
    for name in KINDS:
        mine, other = ours["columns"].get(name, {}), theirs["columns"].get(name, {})
        method = EVIDENTLY_METHODS.get(other.get("method", ""), other.get("method"))
        values = (mine.get("value"), other.get("value"))
        diff = None
        if None not in values:
            diff = abs(values[0] - values[1]) / max(abs(values[1]), 1e-300)
        row = {
            "shipyard": mine,
            "evidently": other,
            "same_method": mine.get("method") == method,
            "same_verdict": mine.get("drifted") == other.get("drifted"),
            "relative_difference": diff,
        }
        out["columns"][name] = row
        if not row["same_verdict"] or not row["same_method"]:
            out["differ"].append(name)
    return out


def check_target(results: dict[int, dict[str, Any]]) -> tuple[str, list[str]]:
    """``PASS``, ``FAIL`` or ``n/a`` at TARGET_ROWS, and one line per check."""
    result = results.get(TARGET_ROWS)
    if result is None:
        return "n/a", [f"no {TARGET_ROWS:,}-row run"]
    theirs = result["evidently"]
    if theirs is None or "error" in theirs:
        return "n/a", ["Evidently was not measured"]
    cmp = result["compare"]
    checks = [
        (cmp["speedup"] >= TARGET_SPEEDUP,
         f"speed: Evidently / Shipyard = {cmp['speedup']:,.1f}x (at least {TARGET_SPEEDUP:g}x)"),
        (cmp.get("files_peak_ratio", float("inf")) <= TARGET_MEMORY,
         f"memory: Shipyard's peak RSS from the files / Evidently's peak RSS = "
         f"{cmp.get('files_peak_ratio', float('nan')):.3f} (at most {TARGET_MEMORY:g})"),
        (cmp.get("increase_ratio", float("inf")) <= TARGET_MEMORY,
         f"memory on loaded frames: Shipyard / Evidently memory added while computing = "
         f"{cmp.get('increase_ratio', float('nan')):.3f} (at most {TARGET_MEMORY:g})"),
        (not cmp.get("files_differ"),
         "from the files: the same verdicts as on the loaded frames"
         + (f" except {', '.join(cmp['files_differ'])}" if cmp.get("files_differ") else "")),
        (not cmp["differ"] and not cmp["kind_mismatch"],
         "verdicts: " + ("the same on every column" if not cmp["differ"]
                         else f"differ on {', '.join(cmp['differ'])}")),
    ]  # fmt: skip
    lines = [("[green]PASS[/green] " if ok else "[red]FAIL[/red] ") + text for ok, text in checks]
    return ("PASS" if all(ok for ok, _ in checks) else "FAIL"), lines


# -- output ----------------------------------------------------------------------------------


def _mb(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def print_size(rows: int, result: dict[str, Any]) -> None:
    """The size's table (one row per tool), its ratios and the per-column verdicts."""
    ours, theirs, cmp = result["shipyard"], result["evidently"], result["compare"]
    files = result.get("shipyard_files")
    table = Table(title=f"{rows:,} rows x {len(KINDS)} columns, reference and current alike")
    headers = ("tool", "runs", "median s", "best s", "CPU s", "loaded MB", "peak MB",
               "computing MB", "increase MB", "drifted")  # fmt: skip
    for column in headers:
        table.add_column(column, justify="left" if column == "tool" else "right")
    tools = (("Shipyard", ours), ("Shipyard, from the files", files), ("Evidently", theirs))
    for label, res in tools:
        if res is None:
            continue
        if "error" in res:
            table.add_row(label, "[red]failed[/red]", *["-"] * (len(headers) - 2))
            continue
        table.add_row(
            f"{label} {res['versions'].get(res['tool'], '?')}",
            str(len(res["times_s"])),
            f"{res['median_s']:,.3f}",
            f"{res['best_s']:,.3f}",
            f"{statistics.median(res['cpu_s']):,.3f}",
            "-" if res["tool"] == "shipyard-files" else _mb(res["rss_loaded_mb"]),
            _mb(res["peak_mb"]),
            "-" if res["tool"] == "shipyard-files" else _mb(res["peak_computing_mb"]),
            _mb(res["increase_mb"]),
            f"{res['dataset'].get('n_drifted', '?')} / {len(res['columns'])}",
        )
    console.print(table)
    console.print(
        "[dim]loaded: RSS with both frames in memory; peak: the worker's peak RSS (ru_maxrss, "
        "loading or computing, whichever is higher); computing: the peak RSS while computing "
        "(reset once the data is loaded); increase: computing - loaded. From the files: "
        "compare_files on the two Parquet files, nothing loaded first (a column at a time), "
        "its time including the reading. CPU s: user + system "
        "time of a run. 1-min load average before / after: "
        + "; ".join(
            f"{r['tool']} {r['loadavg'][0]:.1f} / {r['loadavg'][1]:.1f}"
            for r in (ours, theirs)
            if r is not None and "loadavg" in r
        )
        + "[/dim]"
    )
    for res in (ours, theirs):
        if res is not None and "error" not in res:
            console.print(
                f"[dim]{res['tool']} RSS, MB: {res['rss_imported_mb']:,.0f} after the imports, "
                f"{res['peak_loading_mb']:,.0f} at most while reading the Parquet files, "
                f"{res['rss_loaded_mb']:,.0f} once read (the reader's freed buffers released), "
                f"{res['peak_computing_mb']:,.0f} at most while computing[/dim]"
            )
    if theirs is not None and "error" in theirs:
        console.print(f"[yellow]Evidently failed:[/yellow]\n{theirs['error']}")
    if "speedup" in cmp:
        increase = cmp.get("increase_ratio")
        console.print(
            f"Evidently / Shipyard time: [bold]{cmp['speedup']:,.1f}x[/bold] (medians; "
            f"{cmp['speedup_best']:,.1f}x best-of). Shipyard / Evidently peak RSS: "
            f"[bold]{cmp['memory_ratio']:.3f}[/bold]; peak computing: "
            f"{cmp['computing_peak_ratio']:.3f}"
            + (f"; increase: {increase:.3f}" if increase is not None else "")
            + (
                f"; from the files, Shipyard's peak / Evidently's: "
                f"[bold]{cmp['files_peak_ratio']:.3f}[/bold]"
                if "files_peak_ratio" in cmp
                else ""
            )
        )
        phases = theirs.get("phases_s", {})
        if phases:
            console.print(
                f"[dim]Evidently's time: Dataset.from_pandas {phases['dataset_s']:.2f} s, "
                f"Report.run {phases['report_s']:.2f} s[/dim]"
            )
    for line in cmp["kind_mismatch"]:
        console.print(f"[red]kind mismatch: {line}[/red]")
    print_columns(cmp, ours)


def print_columns(cmp: dict[str, Any], ours: dict[str, Any]) -> None:
    """Every column's method, statistic and verdict for both tools."""
    table = Table(title="per column (drift: distance >= 0.1, p-value < 0.05)")
    numbers = ("Shipyard", "Evidently", "rel. diff")
    for column in ("column", "kind", "method", *numbers, "drift S / E", "shifted"):
        table.add_column(column, justify="right" if column in numbers else "left")
    for name, kind in KINDS.items():
        mine = ours["columns"].get(name, {})
        row = cmp["columns"].get(name)
        other = row["evidently"] if row else {}
        verdicts = _yes(mine.get("drifted"))
        if row:
            verdicts += f" / {_yes(other.get('drifted'))}"
        if row and not row["same_verdict"]:
            verdicts = f"[red]{verdicts} DIFFER[/red]"
        method = str(mine.get("method"))
        if row and not row["same_method"]:
            method = f"[red]{method} / {other.get('method')}[/red]"
        diff = row["relative_difference"] if row else None
        table.add_row(
            name,
            kind,
            method,
            _stat(mine.get("value")),
            _stat(other.get("value")),
            "-" if diff is None else f"{diff:.1e}",
            verdicts,
            SHIFTED.get(name, ""),
        )
    console.print(table)
    if cmp["differ"]:
        console.print(f"[red]verdicts or methods differ on: {', '.join(cmp['differ'])}[/red]")
    elif cmp["columns"]:
        console.print("[green]same method and verdict on every column[/green]")


def _yes(value: bool | None) -> str:
    return {True: "yes", False: "no", None: "-"}[value]


def _stat(value: float | None) -> str:
    return "-" if value is None else f"{value:.6g}"


# -- main ------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=list(SIZES), help="sizes to run")
    parser.add_argument("--quick", action="store_true", help="100,000 rows only, no target check")
    parser.add_argument("--skip-evidently", action="store_true", help="measure Shipyard only")
    parser.add_argument("--evidently-python", help="a Python with evidently 0.7 (no venv build)")
    parser.add_argument("--rebuild", action="store_true", help="rebuild Evidently's venv")
    parser.add_argument("--repeats", type=int, default=3, help="Shipyard's timed runs")
    parser.add_argument("--seed", type=int, default=SEED, help="the data's seed")
    parser.add_argument("--json", type=Path, help="write every number to this file")
    parser.add_argument(
        "--check", action="store_true", help="exit 2 when the targets could not be checked"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.rows = [100_000]
    return args


def evidently_python(args: argparse.Namespace) -> tuple[str | None, str]:
    """Evidently's interpreter (``None`` when skipped or not built) and a note."""
    if args.skip_evidently:
        return None, "skipped (--skip-evidently)"
    if args.evidently_python:
        return args.evidently_python, ""
    env = peer_env(
        "evidently", log=lambda m: console.print(f"[dim]{m}[/dim]"), rebuild=args.rebuild
    )
    if env.python is None:
        console.print(f"[yellow]Evidently's venv could not be built: {env.note}[/yellow]")
        return None, env.note
    return str(env.python), env.note


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; 1 when a target is missed (2 with ``--check`` when unchecked)."""
    args = parse_args(argv)
    python, note = evidently_python(args)
    if note:
        console.print(f"[dim]Evidently venv: {note}[/dim]")
    results: dict[int, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="shipyard-drift-bench-") as tmp_name:
        tmp = Path(tmp_name)
        for rows in args.rows:
            console.print(f"[dim]writing {rows:,} + {rows:,} rows to Parquet ...[/dim]")
            data = write_data(tmp / f"rows-{rows}", rows, args.seed)
            console.print(f"[dim]Shipyard, {args.repeats} runs ...[/dim]")
            ours = run_worker(sys.executable, "shipyard", data, args.repeats, tmp)
            if "error" in ours:
                raise SystemExit(f"the Shipyard worker failed:\n{ours['error']}")
            console.print(f"[dim]Shipyard from the files, {args.repeats} runs ...[/dim]")
            files = run_worker(sys.executable, "shipyard-files", data, args.repeats, tmp)
            if "error" in files:
                raise SystemExit(f"the Shipyard files worker failed:\n{files['error']}")
            theirs = None
            if python is not None:
                repeats = evidently_repeats(rows)
                console.print(f"[dim]Evidently, {repeats} run(s) ...[/dim]")
                theirs = run_worker(python, "evidently", data, repeats, tmp)
            shutil.rmtree(data)
            results[rows] = {"shipyard": ours, "shipyard_files": files, "evidently": theirs}
            results[rows]["compare"] = compare(ours, theirs, files)
            print_size(rows, results[rows])
    if args.quick:
        verdict, lines = "n/a", ["--quick: no target check"]
    else:
        verdict, lines = check_target(results)
    console.print(f"[bold]target at {TARGET_ROWS:,} rows: {verdict}[/bold]")
    for line in lines:
        console.print(f"  {line}")
    console.print(
        f"[dim]{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}, "
        f"{platform.platform()}, Python {platform.python_version()}[/dim]"
    )
    if args.json:
        report = {
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
            "evidently_venv_note": note,
            "target": {"verdict": verdict, "checks": lines},
            "results": {str(k): v for k, v in results.items()},
        }
        args.json.write_text(json.dumps(report, indent=1, default=str))
        console.print(f"[dim]wrote {args.json}[/dim]")
    if verdict == "FAIL":
        return 1
    return 2 if verdict == "n/a" and args.check and not args.quick else 0


if __name__ == "__main__":
    sys.exit(main())
