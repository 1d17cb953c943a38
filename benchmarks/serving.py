"""Benchmark: `shipyard serve` against BentoML, MLflow and a hand-written FastAPI app, under load.

Every server runs the quickstart's kind of model (numeric + categorical preprocessing and
LightGBM, on the Palmer penguins with six inputs) on loopback, one at a time, in the SAME run,
and is loaded by a lean keep-alive HTTP client (``benchmarks/_load.py``, its own process) with
C concurrent connections sending back to back: C in 1, 8, 32, 128, with one-record and
100-record requests. Reported per point: req/s (records/s), p50/p99 latency, errors.

The servers:

- ``shipyard``: exactly what users run. A ``shipyard.yaml`` (``models: [{model: lightgbm}]``)
  is trained and registered with ``shipyard run`` in a temporary SHIPYARD_HOME, then served
  with ``shipyard serve models:/penguins@production`` (``--workers N`` when the CLI has it).
- ``naive``: the FastAPI endpoint people write by hand, ``predict_proba`` on a DataFrame per
  request, one uvicorn process (``benchmarks/peers/naive_app.py``).
- ``bentoml``: BentoML 1.4 with adaptive batching (``@bentoml.api(batchable=True)``,
  ``benchmarks/peers/bentoml_service.py``); ``bentoml-nobatch`` is the same without batching.
- ``mlflow``: ``mlflow models serve --env-manager local`` on the pipeline saved with
  ``mlflow.sklearn.save_model`` (``benchmarks/peers/mlflow_save.py``).

The peers serve one fitted pipeline (joblib) built in this process; BentoML and MLflow run from
throwaway venvs (``benchmarks/_peers.py``) with the same scikit-learn/LightGBM/pandas/numpy.

Target (issue 11), at concurrency 32 with one record per request: Shipyard's req/s at least
3x BentoML-batched's, its p99 no worse than BentoML's, and no errors. ``--check`` exits 1 when
it fails (2 when BentoML could not be measured); otherwise the exit code is 0.

Run: ``python benchmarks/serving.py [--seconds 5] [--quick] [--peers naive,bentoml,mlflow]
[--json out.json] [--check]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _meta import git_describe, machine  # noqa: E402
from _peers import PeerEnv, peer_env  # noqa: E402

RECORD = {
    "island": "Biscoe",
    "bill_length_mm": 45.1,
    "bill_depth_mm": 14.5,
    "flipper_length_mm": 215.0,
    "body_mass_g": 5000.0,
    "sex": "female",
}
CONCURRENCY = (1, 8, 32, 128)
SIZES = (1, 100)
TARGET_C, TARGET_SIZE, TARGET_FACTOR = 32, 1, 3.0
ALL_PEERS = ("naive", "bentoml", "bentoml-nobatch", "mlflow")
DEFAULT_PEERS = "naive,bentoml,mlflow"
LABELS = {
    "shipyard": "Shipyard",
    "naive": "naive FastAPI",
    "bentoml": "BentoML (batched)",
    "bentoml-nobatch": "BentoML (no batching)",
    "mlflow": "MLflow models serve",
}
SHIPYARD_SPEC = """\
name: penguins
data:
  source: {type: csv, path: data/penguins.csv}
  target: species
models:
  - model: lightgbm
"""
QUIET_ENV = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
    "BENTOML_DO_NOT_TRACK": "true",
}

console = Console(width=None if sys.stdout.isatty() else 132)


# -- the model -------------------------------------------------------------------------------


@dataclass
class Model:
    """The fitted pipeline the peers serve, and the data the benchmark sends."""

    pipeline: Any
    columns: list[str]
    frame: Any  # the penguins, ``year`` dropped, rows with a species
    batch: list[dict[str, Any]]  # the 100 records of a 100-record request
    joblib_path: Path


def penguins() -> Any:
    """The penguins with a species, without ``year``: every server takes the same 6 inputs."""
    from palmerpenguins import load_penguins

    frame = load_penguins().dropna(subset=["species"]).drop(columns=["year"])
    return frame.reset_index(drop=True)


def build_model(tmp: Path) -> Model:
    """Fit the quickstart's kind of pipeline with LightGBM and save it with joblib once."""
    import joblib
    import pandas as pd

    from shipyard.data import build_signature, coerce_frame, to_text
    from shipyard.spec import parse_spec
    from shipyard.train import default_catalogue, make_pipeline, refit

    frame = penguins()
    spec = parse_spec("name: penguins\ndata: {source: {type: csv, path: x}, target: species}\n")
    signature = build_signature(frame, spec, "multiclass")
    estimator = default_catalogue().create("lightgbm", "multiclass", seed=0, params={})
    y = pd.Series(to_text(frame["species"]), dtype=object)
    pipeline = refit(make_pipeline(signature, estimator), coerce_frame(frame, signature), y)
    columns = list(signature.input_names)
    complete = frame[columns].dropna().sample(100, random_state=0, replace=False)
    batch = [_jsonable(r) for r in complete.to_dict(orient="records")]
    path = tmp / "model" / "pipeline.joblib"
    path.parent.mkdir(parents=True)
    joblib.dump(pipeline, path)
    return Model(pipeline, columns, frame, batch, path)


def _jsonable(record: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.item() if hasattr(v, "item") else v) for k, v in record.items()}


def register_shipyard(tmp: Path, frame: Any) -> tuple[Path, dict[str, str]]:
    """Train and register the model the way users do: ``shipyard run`` on a project file."""
    project = tmp / "shipyard-project"
    (project / "data").mkdir(parents=True)
    frame.to_csv(project / "data" / "penguins.csv", index=False)
    (project / "shipyard.yaml").write_text(SHIPYARD_SPEC)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHIPYARD_")}
    env.update(SHIPYARD_HOME=str(project / ".shipyard"), COLUMNS="200", **QUIET_ENV)
    console.print("[dim]shipyard run (LightGBM on the penguins) ...[/dim]")
    done = subprocess.run(
        [sys.executable, "-m", "shipyard", "run", "shipyard.yaml"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"shipyard run failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    return project, env


def shipyard_serve_options() -> set[str]:
    """The options ``shipyard serve --help`` lists (``--workers`` lands later)."""
    done = subprocess.run(
        [sys.executable, "-m", "shipyard", "serve", "--help"],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"},
    )
    options = set()
    for line in done.stdout.splitlines():  # an option row starts with its name
        words = line.replace("│", " ").replace("*", " ").split()
        if words and words[0].startswith("--"):
            options.add(words[0].rstrip(","))
    return options


def onnx_files(project: Path) -> list[Path]:
    """ONNX graphs in the registered package's files, if Shipyard stores one."""
    return sorted((project / ".shipyard").rglob("*.onnx"))


# -- bare model timings ------------------------------------------------------------------------


def _median_time(fn: Callable[[], Any], budget_s: float = 1.0, max_n: int = 2000) -> float:
    fn()
    times: list[float] = []
    stop = time.perf_counter() + budget_s
    while len(times) < 5 or (time.perf_counter() < stop and len(times) < max_n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bare_timings(model: Model, onnx: list[Path]) -> dict[str, Any]:
    """Median in-process cost of a 1-row and a 100-row prediction (ms), no server."""
    import pandas as pd

    out: dict[str, Any] = {}
    for size in SIZES:
        records = [RECORD] if size == 1 else model.batch[:size]
        frame = pd.DataFrame.from_records(records, columns=model.columns)
        out[str(size)] = {
            "predict_proba_ms": 1000
            * _median_time(lambda f=frame: model.pipeline.predict_proba(f)),
            "frame_and_predict_ms": 1000
            * _median_time(
                lambda r=records: model.pipeline.predict_proba(
                    pd.DataFrame.from_records(r, columns=model.columns)
                )
            ),
        }
    if onnx:
        out["onnx"] = _onnx_timings(onnx[0], model)
    return out


def _onnx_timings(path: Path, model: Model) -> dict[str, Any]:
    """The registered ONNX graph under onnxruntime on the same batches (per-column inputs)."""
    import numpy as np
    import pandas as pd

    try:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        dtypes = {"tensor(string)": object, "tensor(float)": np.float32}
        dtypes |= {"tensor(double)": np.float64, "tensor(int64)": np.int64}
        out: dict[str, Any] = {"file": path.name}
        for size in SIZES:
            records = [RECORD] if size == 1 else model.batch[:size]
            frame = pd.DataFrame.from_records(records, columns=model.columns)
            feed = {
                i.name: frame[i.name].to_numpy().astype(dtypes[i.type]).reshape(-1, 1)
                for i in session.get_inputs()
            }
            timed = _median_time(lambda f=feed, s=session: s.run(None, f))
            out[str(size)] = {"onnx_ms": 1000 * timed}
        return out
    except Exception as exc:  # a graph whose inputs are not one tensor per column
        return {"file": path.name, "error": f"{type(exc).__name__}: {exc}"[:300]}


# -- servers -----------------------------------------------------------------------------------


@dataclass
class Server:
    """How to start one server and what its requests look like."""

    key: str
    cmd: list[str]
    cwd: Path
    env: dict[str, str]
    wrap: Callable[[list[dict[str, Any]], bool], Any]  # (records, is_batch) -> JSON body
    batch: list[dict[str, Any]]  # the records of a multi-record request, repeated as needed
    path: str = "/predict"
    startup_timeout_s: float = 180.0
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        workers = self.info.get("workers")
        suffix = f", {workers} workers" if isinstance(workers, int) and workers > 1 else ""
        return LABELS[self.key] + suffix

    def body(self, size: int) -> bytes:
        """The JSON body of a ``size``-record request in this server's format."""
        records = [self.batch[i % len(self.batch)] for i in range(size)] if size > 1 else [RECORD]
        return json.dumps(self.wrap(records, size > 1)).encode()


def _shipyard_body(records: list[dict[str, Any]], is_batch: bool) -> Any:
    return records if is_batch else records[0]


def shipyard_server(model: Model, project: Path, env: dict[str, str], workers: int) -> Server:
    options = shipyard_serve_options()
    cmd = [sys.executable, "-m", "shipyard", "serve", "models:/penguins@production"]
    cmd += ["--log-level", "warning"]
    info: dict[str, Any] = {"serve_options": sorted(options)}
    if "--workers" in options and workers:
        cmd += ["--workers", str(workers)]
        info["workers"] = workers
    else:
        info["workers"] = "n/a (no --workers option)" if "--workers" not in options else "default"
    return Server("shipyard", cmd, project, env, _shipyard_body, model.batch, info=info)


def naive_server(model: Model) -> Server:
    script = HERE / "peers" / "naive_app.py"
    cmd = [sys.executable, str(script), str(model.joblib_path), json.dumps(model.columns)]
    env = {**os.environ, **QUIET_ENV}
    folder = model.joblib_path.parent
    return Server("naive", cmd, folder, env, _shipyard_body, model.batch, info={"workers": 1})


def bentoml_server(
    model: Model, tmp: Path, peer: PeerEnv, workers: int, *, batchable: bool
) -> Server:
    folder = tmp / ("bentoml" if batchable else "bentoml-nobatch")
    folder.mkdir()
    shutil.copy(HERE / "peers" / "bentoml_service.py", folder / "service.py")
    env = {
        **os.environ,
        **QUIET_ENV,
        "BENCH_MODEL": str(model.joblib_path),
        "BENCH_COLUMNS": json.dumps(model.columns),
        "BENCH_WORKERS": str(workers),
        "BENCH_BATCHABLE": "1" if batchable else "0",
        "BENTOML_HOME": str(tmp / "bentoml-home"),
        "PATH": f"{peer.bin}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    env.pop("VIRTUAL_ENV", None)
    cmd = [str(peer.bin / "bentoml"), "serve", "service:Penguins", "--host", "127.0.0.1"]
    key = "bentoml" if batchable else "bentoml-nobatch"
    info = {"workers": workers, "versions": peer.versions, "note": peer.note}
    wrap = _bentoml_body
    return Server(key, cmd, folder, env, wrap, model.batch, info=info)


def _bentoml_body(records: list[dict[str, Any]], is_batch: bool) -> Any:
    return {"records": records}


def _mlflow_body(records: list[dict[str, Any]], is_batch: bool) -> Any:
    return {"dataframe_records": records}


def mlflow_server(model: Model, tmp: Path, peer: PeerEnv, workers: int) -> Server:
    records_path = tmp / "mlflow-example.json"
    records_path.write_text(json.dumps(model.batch[:20]))
    model_dir = tmp / "mlflow-model"
    env = {**os.environ, **QUIET_ENV, "PATH": f"{peer.bin}{os.pathsep}{os.environ['PATH']}"}
    env.pop("VIRTUAL_ENV", None)
    script = HERE / "peers" / "mlflow_save.py"
    args = [json.dumps(model.columns), str(records_path)]
    done = subprocess.run(
        [str(peer.python), str(script), str(model.joblib_path), str(model_dir), *args],
        capture_output=True,
        text=True,
        check=False,
        env=env,
        cwd=tmp,
    )
    if done.returncode != 0:
        raise RuntimeError(f"mlflow.sklearn.save_model failed: {done.stderr.strip()[-800:]}")
    cmd = [str(peer.bin / "mlflow"), "models", "serve", "-m", str(model_dir)]
    cmd += ["--env-manager", "local", "--host", "127.0.0.1", "--workers", str(workers)]
    info = {"workers": workers, "versions": peer.versions, "note": peer.note}
    return Server(
        "mlflow", cmd, tmp, env, _mlflow_body, model.batch, path="/invocations", info=info
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def running(server: Server, logs: Path) -> Iterator[int]:
    """Start ``server`` in its own process group, wait until it answers, stop it after."""
    port = free_port()
    cmd = [*server.cmd, "--port", str(port)]
    log_path = logs / f"{server.key}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            cmd,
            cwd=server.cwd,
            env=server.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        server.info["pid"] = proc.pid
        try:
            started = time.monotonic()
            _wait_ready(server, port, proc, log_path)
            server.info["startup_s"] = round(time.monotonic() - started, 1)
            yield port
        finally:
            _stop_group(proc)


def _wait_ready(server: Server, port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + server.startup_timeout_s
    body = server.body(1)
    last = "no answer"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"exited with {proc.returncode} before answering: {_tail(log)}")
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}{server.path}",
            data=body,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as answer:
                text = answer.read()
                if answer.status == 200:
                    server.info["example_answer"] = json.loads(text)
                    return
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}: {exc.read()[:300]!r}"
        except (OSError, ValueError) as exc:
            last = f"{type(exc).__name__}: {exc}"
        time.sleep(0.25)
    raise RuntimeError(
        f"did not answer 200 within {server.startup_timeout_s:.0f} s ({last}): {_tail(log)}"
    )


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    """Stop the server and every process it started.

    SIGTERM to its process group first (the servers stop their own workers gracefully), then
    SIGKILL to whatever of the tree is left: BentoML's workers run in sessions of their own,
    so the tree is taken from ``/proc`` before signalling, not from the group alone.
    """
    tree = process_tree(proc.pid)
    for sig, wait in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        for pid in tree[1:] if sig == signal.SIGKILL else ():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if proc.poll() is not None and not any(_alive(pid) for pid in tree[1:]):
                return
            time.sleep(0.1)


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"  # a zombie has exited


def _proc_stats() -> dict[int, list[str]]:
    """pid -> the fields of ``/proc/<pid>/stat`` after the command name (Linux)."""
    out: dict[int, list[str]] = {}
    with contextlib.suppress(OSError):
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError):
                    stat = (entry / "stat").read_text()
                    out[int(entry.name)] = stat[stat.rindex(")") + 2 :].split()
    return out


def process_tree(root: int, stats: dict[int, list[str]] | None = None) -> list[int]:
    """``root`` and its live descendants, ``root`` first."""
    stats = _proc_stats() if stats is None else stats
    children: dict[int, list[int]] = {}
    for pid, fields in stats.items():
        children.setdefault(int(fields[1]), []).append(pid)  # fields: state ppid pgrp ...
    tree, todo = [root], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            tree.append(child)
            todo.append(child)
    return tree


def tree_cpu_s(root: int) -> float | None:
    """CPU seconds (user + system) used so far by the live processes of ``root``'s tree."""
    stats = _proc_stats()
    if root not in stats:
        return None
    ticks = sum(int(stats[p][11]) + int(stats[p][12]) for p in process_tree(root, stats))
    return ticks / os.sysconf("SC_CLK_TCK")


def _tail(path: Path, n: int = 12) -> str:
    try:
        lines = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return "\n  " + "\n  ".join(lines[-n:])


# -- load --------------------------------------------------------------------------------------


def load_point(
    server: Server, port: int, size: int, concurrency: int, args: argparse.Namespace, tmp: Path
) -> dict[str, Any]:
    """One point of the matrix, measured by ``_load.py`` in its own process."""
    body_path = tmp / f"body-{server.key}-{size}.json"
    if not body_path.exists():
        body_path.write_bytes(server.body(size))
    cmd = [sys.executable, str(HERE / "_load.py"), "--port", str(port), "--path", server.path]
    cmd += ["--body-file", str(body_path), "--concurrency", str(concurrency)]
    cmd += ["--seconds", str(args.seconds), "--warmup", str(args.warmup)]
    cmd += ["--timeout", str(args.timeout), "--records", str(size)]
    pid = server.info["pid"]
    cpu0, child0 = tree_cpu_s(pid), os.times()
    done = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        check=False,
        timeout=args.seconds + args.warmup + 2 * args.timeout + 60,
    )
    cpu1, child1 = tree_cpu_s(pid), os.times()
    if done.returncode != 0:
        raise RuntimeError(f"the load client failed: {done.stderr.strip()[-1500:]}")
    out: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    span = args.seconds + out["warmup"]
    out["client_cpu_share"] = (
        (child1.children_user + child1.children_system)
        - (child0.children_user + child0.children_system)
    ) / span
    if cpu0 is not None and cpu1 is not None:
        out["server_cpu_share"] = (cpu1 - cpu0) / span  # cores busy, warm-up included
    return out


# -- the run -----------------------------------------------------------------------------------


def prepare_peer(key: str, model: Model, tmp: Path, args: argparse.Namespace) -> Server:
    """Build (or reuse) the peer's venv and its server definition; raises with the reason."""
    if key == "naive":
        return naive_server(model)
    name = "bentoml" if key.startswith("bentoml") else key
    peer = peer_env(name, log=lambda m: console.print(f"[dim]{m}[/dim]"), rebuild=args.rebuild)
    if peer.python is None:
        raise RuntimeError(peer.note)
    if name == "bentoml":
        return bentoml_server(model, tmp, peer, args.peer_workers, batchable=key == "bentoml")
    return mlflow_server(model, tmp, peer, args.peer_workers)


def measure(
    server: Server, args: argparse.Namespace, tmp: Path, logs: Path
) -> dict[str, dict[str, Any]]:
    """The server's matrix: size -> concurrency -> the load client's numbers."""
    results: dict[str, dict[str, Any]] = {}
    with running(server, logs) as port:
        console.print(f"[bold]{server.label}[/] ready on :{port} in {server.info['startup_s']} s")
        for size in args.sizes:
            for c in args.concurrency:
                point = load_point(server, port, size, c, args, tmp)
                results.setdefault(str(size), {})[str(c)] = point
                console.print(
                    f"  {size:>3} rec x c={c:<3} {point['req_per_s']:>8,.0f} req/s  "
                    f"p50 {point['p50_ms']:7.1f} ms  p99 {point['p99_ms']:7.1f} ms  "
                    f"errors {point['errors']}  server CPU "
                    f"{point.get('server_cpu_share', float('nan')):.2f} cores, client "
                    f"{point['client_cpu_share']:.2f}"
                )
    server.info.pop("pid", None)
    return results


def main() -> int:
    args = parse_args()
    with tempfile.TemporaryDirectory(prefix="shipyard-serving-bench-") as tmp_name:
        tmp = Path(tmp_name)
        logs = tmp / "logs"
        logs.mkdir()
        report = run(args, tmp, logs)
    return finish(report, args)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per point")
    parser.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds per point")
    parser.add_argument(
        "--quick", action="store_true", help="only concurrency 32 with one-record requests"
    )
    parser.add_argument("--concurrency", default=",".join(map(str, CONCURRENCY)))
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="records/request")
    parser.add_argument(
        "--peers",
        default=DEFAULT_PEERS,
        help=f"comma-separated, from {', '.join(ALL_PEERS)}; 'none' for Shipyard alone",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="shipyard serve --workers N, when the CLI has it (0: Shipyard's default)",
    )
    parser.add_argument(
        "--peer-workers", type=int, default=1, help="BentoML / MLflow worker processes"
    )
    parser.add_argument("--timeout", type=float, default=30.0, help="per request, seconds")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the peers' venvs")
    parser.add_argument("--json", type=Path, help="write every number to this file")
    parser.add_argument(
        "--check", action="store_true", help="exit 1 when the issue-11 target fails"
    )
    args = parser.parse_args()
    args.concurrency = [int(c) for c in args.concurrency.split(",") if c]
    args.sizes = [int(s) for s in args.sizes.split(",") if s]
    if args.quick:
        args.concurrency, args.sizes = [TARGET_C], [TARGET_SIZE]
    peers = [p.strip() for p in args.peers.split(",") if p.strip() and p.strip() != "none"]
    unknown = sorted(set(peers) - set(ALL_PEERS))
    if unknown:
        parser.error(f"unknown peer(s) {unknown}; choose from {', '.join(ALL_PEERS)}")
    args.peers = peers
    return args


def run(args: argparse.Namespace, tmp: Path, logs: Path) -> dict[str, Any]:
    load_before = os.getloadavg()
    console.print("[dim]fitting the LightGBM pipeline for the peers ...[/dim]")
    model = build_model(tmp)
    project, env = register_shipyard(tmp, model.frame)
    onnx = onnx_files(project)
    bare = bare_timings(model, onnx)
    servers: list[Server] = [shipyard_server(model, project, env, args.workers)]
    skipped: dict[str, str] = {}
    for key in args.peers:
        try:
            servers.append(prepare_peer(key, model, tmp, args))
        except Exception as exc:
            skipped[key] = str(exc)
            console.print(f"[yellow]skipping {LABELS[key]}: {exc}[/yellow]")
    results: dict[str, Any] = {}
    for server in servers:
        try:
            results[server.key] = measure(server, args, tmp, logs)
        except Exception as exc:
            if server.key == "shipyard":
                raise SystemExit(f"Shipyard's server failed: {exc}") from exc
            skipped[server.key] = f"{type(exc).__name__}: {exc}"
            console.print(f"[yellow]{LABELS[server.key]} failed: {exc}[/yellow]")
    return {
        "meta": {
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "machine": machine(load_before),
            "git": git_describe(),
            "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "onnx_files": [p.name for p in onnx],
        },
        "servers": {s.key: {"label": s.label, **_jsonable_info(s.info)} for s in servers},
        "skipped": skipped,
        "bare_ms": bare,
        "results": results,
    }


def _jsonable_info(info: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(info, default=str))


# -- output ------------------------------------------------------------------------------------


def finish(report: dict[str, Any], args: argparse.Namespace) -> int:
    print_tables(report, args)
    report["ratios"], report["target"] = compare(report)
    print_comparison(report)
    print_overhead(report)
    machine = report["meta"]["machine"]
    console.print(
        f"[dim]machine: {machine['cpus']} CPUs, 1-min load average "
        f"{machine['loadavg_before'][0]:.1f} before and {machine['loadavg_after'][0]:.1f} after "
        "the run (the server and the load client add about 1.5): other work on the cores "
        "skews absolute numbers, so compare servers within one run.[/dim]"
    )
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, default=str))
        console.print(f"[dim]wrote {args.json}[/dim]")
    target = report["target"]
    if not args.check:
        return 0
    if target["verdict"] == "n/a":
        return 2
    return 0 if target["verdict"] == "PASS" else 1


def print_tables(report: dict[str, Any], args: argparse.Namespace) -> None:
    results, servers = report["results"], report["servers"]
    for size in args.sizes:
        unit = "one record" if size == 1 else f"{size} records"
        table = Table(
            title=f"{unit} per request: req/s, p50 / p99 ms, errors ({args.seconds:g} s per point)",
            show_lines=True,
        )
        table.add_column("server")
        for c in args.concurrency:
            table.add_column(f"c={c}", justify="right")
        for key, per_size in results.items():
            cells = []
            for c in args.concurrency:
                p = per_size.get(str(size), {}).get(str(c))
                if p is None:
                    cells.append("-")
                    continue
                rate = f"{p['req_per_s']:,.0f} req/s"
                if size > 1:
                    rate += f"\n{p['records_per_s']:,.0f} rec/s"
                err = p["errors"]
                errors = f"[red]{err} errors[/red]" if err else "0 errors"
                short = "\n[yellow]window < latency[/yellow]" if p.get("too_short") else ""
                cells.append(f"{rate}\n{p['p50_ms']:.1f} / {p['p99_ms']:.1f} ms\n{errors}{short}")
            table.add_row(servers[key]["label"], *cells)
        console.print(table)
    for key, why in report["skipped"].items():
        console.print(f"[yellow]{LABELS[key]} skipped: {why}[/yellow]")


def _point(report: dict[str, Any], key: str) -> dict[str, Any] | None:
    found: dict[str, Any] | None = (
        report["results"].get(key, {}).get(str(TARGET_SIZE), {}).get(str(TARGET_C))
    )
    return found


def compare(report: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Ratios at the target point and the issue-11 target's verdict."""
    ours = _point(report, "shipyard")
    ratios: dict[str, Any] = {}
    for key in ALL_PEERS:
        peer = _point(report, key)
        if ours is None or peer is None or not peer["req_per_s"]:
            continue
        ratios[key] = {
            "req_per_s": ours["req_per_s"] / peer["req_per_s"],
            "p99": ours["p99_ms"] / peer["p99_ms"] if peer["p99_ms"] else None,
        }
    bento = _point(report, "bentoml")
    if ours is None or bento is None:
        why = "Shipyard" if ours is None else "BentoML (batched)"
        return ratios, {"verdict": "n/a", "reason": f"{why} was not measured at c=32, 1 record"}
    checks = {
        f"req/s >= {TARGET_FACTOR:g}x BentoML batched": (
            ours["req_per_s"] >= TARGET_FACTOR * bento["req_per_s"],
            f"{ours['req_per_s']:,.0f} vs {TARGET_FACTOR:g} x {bento['req_per_s']:,.0f}"
            f" = {TARGET_FACTOR * bento['req_per_s']:,.0f}",
        ),
        "p99 <= BentoML batched p99": (
            ours["p99_ms"] <= bento["p99_ms"],
            f"{ours['p99_ms']:.1f} ms vs {bento['p99_ms']:.1f} ms",
        ),
        "zero errors": (ours["errors"] == 0, f"{ours['errors']} errors"),
    }
    verdict = "PASS" if all(ok for ok, _ in checks.values()) else "FAIL"
    return ratios, {
        "verdict": verdict,
        "checks": {k: {"pass": ok, "detail": d} for k, (ok, d) in checks.items()},
    }


def print_comparison(report: dict[str, Any]) -> None:
    ours = _point(report, "shipyard")
    if ours is None:
        return
    table = Table(title=f"Shipyard / peer at c={TARGET_C}, one record per request")
    for col in (
        "peer",
        "peer req/s",
        "Shipyard req/s",
        "req/s ratio",
        "p99 ms (peer)",
        "p99 ratio",
    ):
        table.add_column(col, justify="right" if col != "peer" else "left")
    for key, r in report["ratios"].items():
        peer = _point(report, key)
        assert peer is not None
        p99 = f"{r['p99']:.2f}x" if r["p99"] is not None else "-"
        table.add_row(
            report["servers"][key]["label"],
            f"{peer['req_per_s']:,.0f}",
            f"{ours['req_per_s']:,.0f}",
            f"[bold]{r['req_per_s']:.2f}x[/]",
            f"{peer['p99_ms']:.1f}",
            p99,
        )
    if report["ratios"]:
        console.print(table)
    target = report["target"]
    if target["verdict"] == "n/a":
        console.print(f"target (issue 11): [yellow]n/a[/yellow] ({target['reason']})")
        return
    for name, check in target["checks"].items():
        mark = "[green]PASS[/green]" if check["pass"] else "[red]FAIL[/red]"
        console.print(f"  {mark} {name}: {check['detail']}")
    color = "green" if target["verdict"] == "PASS" else "red"
    console.print(
        f"target (issue 11, c={TARGET_C}, one record): [bold {color}]{target['verdict']}[/]"
    )


def print_overhead(report: dict[str, Any]) -> None:
    bare = report["bare_ms"]
    measured = {
        key: per_size
        for key, per_size in report["results"].items()
        if any("1" in per_size.get(str(size), {}) for size in SIZES)
    }
    if not measured:
        parts = [f"{size} rows {bare[str(size)]['predict_proba_ms']:.2f} ms" for size in SIZES]
        console.print(
            "bare predict_proba: " + ", ".join(parts) + " (no c=1 point measured: "
            "run without --quick to compare the servers' per-request time)"
        )
        return
    table = Table(title="Server overhead over a bare predict call (server time = 1 / req/s at c=1)")
    table.add_column("server")
    for size in SIZES:
        table.add_column(f"{size} rec: server ms/req", justify="right")
        table.add_column(f"{size} rec: x bare", justify="right")
    for key, per_size in measured.items():
        cells = []
        for size in SIZES:
            p = per_size.get(str(size), {}).get("1")
            if p is None or not p["req_per_s"]:
                cells += ["-", "-"]
                continue
            ms = 1000 / p["req_per_s"]
            cells += [f"{ms:.2f}", f"{ms / bare[str(size)]['predict_proba_ms']:.1f}x"]
        table.add_row(report["servers"][key]["label"], *cells)
    ref = ["bare predict_proba (DataFrame built)"]
    ref2 = ["bare DataFrame.from_records + predict_proba"]
    for size in SIZES:
        ref += [f"{bare[str(size)]['predict_proba_ms']:.2f}", "1.0x"]
        b = bare[str(size)]["frame_and_predict_ms"] / bare[str(size)]["predict_proba_ms"]
        ref2 += [f"{bare[str(size)]['frame_and_predict_ms']:.2f}", f"{b:.1f}x"]
    table.add_row(*ref, style="dim")
    table.add_row(*ref2, style="dim")
    onnx = bare.get("onnx")
    if onnx and "error" not in onnx:
        row = [f"bare onnxruntime ({onnx['file']})"]
        for size in SIZES:
            ms = onnx[str(size)]["onnx_ms"]
            row += [f"{ms:.2f}", f"{ms / bare[str(size)]['predict_proba_ms']:.1f}x"]
        table.add_row(*row, style="dim")
    console.print(table)
    if onnx and "error" in onnx:
        console.print(f"[yellow]ONNX {onnx['file']}: could not time it: {onnx['error']}[/yellow]")
    elif not onnx:
        console.print("[dim]the registered package has no ONNX file[/dim]")


if __name__ == "__main__":
    sys.exit(main())
