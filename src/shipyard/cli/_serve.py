"""``shipyard serve`` and ``shipyard predict``: use a registered model."""

from __future__ import annotations

import enum
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from shipyard.cli._context import CliState, open_store
from shipyard.cli._render import escape
from shipyard.errors import ShipyardError
from shipyard.registry import ModelPackage, Registry, parse_model_uri

if TYPE_CHECKING:
    from shipyard.serve import ServeApp, TlsFiles

__all__ = ["TlsCertfileOption", "TlsKeyfileOption", "checked_tls", "predict", "serve"]

TlsCertfileOption = Annotated[
    Path | None,
    typer.Option(help="Serve HTTPS with this PEM certificate (chain); needs --tls-keyfile."),
]
TlsKeyfileOption = Annotated[
    Path | None, typer.Option(help="The certificate's unencrypted PEM private key.")
]


def checked_tls(certfile: Path | None, keyfile: Path | None) -> TlsFiles | None:
    """The TLS pair of ``--tls-certfile``/``--tls-keyfile``, checked now (a wrong file is an
    error before anything is served, not in every worker later); ``None`` without one."""
    from shipyard.serve import TlsFiles

    if (certfile is None) != (keyfile is None):
        msg = "give both --tls-certfile and --tls-keyfile, or neither"
        raise typer.BadParameter(msg, param_hint="--tls-certfile/--tls-keyfile")
    if certfile is None or keyfile is None:
        return None
    tls = TlsFiles(certfile, keyfile)
    tls.check()
    return tls


class OodPolicy(enum.StrEnum):
    """What the server does with inputs outside the training data (``--ood``)."""

    flag = "flag"
    reject = "reject"
    off = "off"


class Runtime(enum.StrEnum):
    """What runs the model (``--runtime``)."""

    auto = "auto"
    onnx = "onnx"
    sklearn = "sklearn"


def _first_error(exc: ValueError) -> str:
    """A pydantic error's first message, without its URL and type noise."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors()[0]
        return str(first.get("msg", exc)).removeprefix("Value error, ")
    return str(exc)


def serve(
    ctx: typer.Context,
    model_uri: Annotated[str, typer.Argument(help="models:/NAME@ALIAS or models:/NAME/VERSION")],
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port (0: any free one).")] = 8000,
    max_records: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Refuse requests with more records (413). Default: 10,000, or as many as fit "
            "in --max-body-bytes when only that is given.",
            show_default=False,
        ),
    ] = None,
    max_body_bytes: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Refuse larger request bodies (413). Default: room for --max-records records "
            "of the model's longest values, at least 1 MiB.",
            show_default=False,
        ),
    ] = None,
    graceful_timeout: Annotated[
        int,
        typer.Option(
            min=0,
            help="On SIGTERM or Ctrl-C, seconds admitted requests may take to finish.",
        ),
    ] = 30,
    runtime: Annotated[
        Runtime,
        typer.Option(help="auto: the package's ONNX graph when it has one, else sklearn."),
    ] = Runtime.auto,
    max_batch_rows: Annotated[
        int, typer.Option(min=1, help="Most rows one model call scores (micro-batching).")
    ] = 256,
    max_wait_ms: Annotated[
        float,
        typer.Option(min=0, help="How long an idle model waits for more rows (0: never)."),
    ] = 0.0,
    max_queue_rows: Annotated[
        int,
        typer.Option(min=1, help="Rows that may wait for the model; beyond, 503 + Retry-After."),
    ] = 100_000,
    timeout: Annotated[
        float, typer.Option(min=0.001, help="Seconds a request may wait for its answer (504).")
    ] = 30.0,
    strict_inputs: Annotated[
        bool,
        typer.Option(
            "--strict-inputs",
            help="Refuse a record with a field the model does not take (422) instead of "
            "ignoring the field and counting it in /metrics.",
        ),
    ] = False,
    api_keys_file: Annotated[
        Path | None,
        typer.Option(
            help="Require an API key (Authorization: Bearer KEY or X-API-Key): one key, or "
            "sha256:<hex digest>, a line. SHIPYARD_API_KEYS adds comma-separated ones.",
            show_default=False,
        ),
    ] = None,
    canary: Annotated[
        str | None,
        typer.Option(
            help="Another version (a model URI) that answers --canary-share of the requests.",
            show_default=False,
        ),
    ] = None,
    canary_share: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="The share of requests the canary answers.")
    ] = 0.1,
    shadow: Annotated[
        str | None,
        typer.Option(
            help="Another version (a model URI) that scores a copy of every request; its "
            "answers are compared and counted in /metrics, never returned.",
            show_default=False,
        ),
    ] = None,
    reload_interval: Annotated[
        float,
        typer.Option(
            min=0,
            help="Serving models:/NAME@ALIAS: seconds between looks at the alias; when it "
            "moves the server switches to its version without failing a request (0: never).",
        ),
    ] = 5.0,
    prediction_log: Annotated[
        str | None,
        typer.Option(
            envvar="SHIPYARD_PREDICTION_LOG",  # what `shipyard deploy` sets from the Secret
            help="Where every prediction is logged: a folder (Parquet; default "
            "<SHIPYARD_HOME>/predictions), a SQLAlchemy URL (a table), or 'off'.",
            show_default=False,
            show_envvar=False,  # its value may hold a password: never printed
        ),
    ] = None,
    prediction_log_buffer: Annotated[
        int,
        typer.Option(min=1, help="Predictions the log may hold unwritten; beyond, counted drops."),
    ] = 100_000,
    prediction_log_flush_seconds: Annotated[
        float, typer.Option(min=0.01, help="Seconds between two writes of the prediction log.")
    ] = 10.0,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Server processes sharing the port (default: one per core).",
            show_default=False,
        ),
    ] = None,
    rate_limit: Annotated[
        str | None,
        typer.Option(
            help="Requests each client (API key, else address) may make: 50/s, 600/m, "
            "10000/h; a 429 with Retry-After beyond it.",
            show_default=False,
        ),
    ] = None,
    rate_burst: Annotated[
        float | None,
        typer.Option(help="Requests a client may make at once (default: one second's worth)."),
    ] = None,
    ood: Annotated[
        OodPolicy,
        typer.Option(
            help="Records with inputs outside the training data (numbers past its range by "
            "more than --ood-margin, unseen categories, missing where training had none): "
            "flag (answer, count in /metrics, mark in the prediction log), reject (422 naming "
            "the field) or off.",
        ),
    ] = OodPolicy.flag,
    ood_margin: Annotated[
        float,
        typer.Option(
            min=0.0,
            help="How far past the training range a number may go before --ood counts it, "
            "as a share of the range's width.",
        ),
    ] = 0.1,
    tls_certfile: TlsCertfileOption = None,
    tls_keyfile: TlsKeyfileOption = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Serve a registered model over HTTP: POST /predict, /health, /ready, /metadata, /metrics.

    SIGTERM or Ctrl-C drains the server: no new connections, every admitted request answered,
    then exit 0 (1 when requests were still running at --graceful-timeout and were cut off).
    """
    from shipyard.serve import (
        BatchingConfig,
        RateLimit,
        ServeConfig,
        bind_socket,
        create_app,
        default_workers,
        request_limits,
        run_server,
        run_workers,
    )
    from shipyard.serve._auth import load_api_key_roles
    from shipyard.serve._follow import ModelFollower
    from shipyard.serve._predlog import PredictionLogConfig
    from shipyard.store import store_location

    state: CliState = ctx.obj
    tls = checked_tls(tls_certfile, tls_keyfile)
    roles = load_api_key_roles(file=api_keys_file, env_value=os.environ.get("SHIPYARD_API_KEYS"))
    digests = tuple(sorted(roles))
    n_workers = workers or default_workers()
    limit = None
    if rate_limit is not None:
        try:
            limit = RateLimit.parse(rate_limit, rate_burst).per_worker(n_workers)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--rate-limit/--rate-burst") from exc
    package = _load(state, model_uri)
    canary_package = _load(state, canary) if canary else None
    shadow_package = _load(state, shadow) if shadow else None

    def build() -> ServeApp:
        routed = None if canary_package is None else (canary_package, canary_share)
        return create_app(
            package, config=config, follow=follow(), canary=routed, shadow=shadow_package
        )

    def follow() -> ModelFollower | None:
        """A follower for each app (each worker process opens its own store)."""
        if reload_interval <= 0 or parse_model_uri(model_uri).alias is None:
            return None
        return ModelFollower(model_uri, lambda: open_store(state), interval_s=reload_interval)

    try:
        batching = BatchingConfig(
            max_batch_rows=max_batch_rows,
            max_wait_ms=max_wait_ms,
            max_queue_rows=max_queue_rows,
            timeout_s=timeout,
        )
        log_target = prediction_log or str(store_location(state.store_url)[1] / "predictions")
        log_buffer = PredictionLogConfig(
            max_buffer_records=prediction_log_buffer,
            flush_records=min(10_000, prediction_log_buffer),
            flush_interval_s=prediction_log_flush_seconds,
        )
        config = ServeConfig(
            max_body_bytes=max_body_bytes,
            max_records=max_records,
            runtime=runtime.value,
            batching=batching,
            extra_fields="forbid" if strict_inputs else "ignore",
            api_key_digests=digests,
            api_key_roles={d: r for d, r in roles.items() if r != "admin"},
            rate_limit=limit,
            ood=ood.value,
            ood_margin=ood_margin,
            prediction_log=None if log_target == "off" else log_target,
            prediction_log_buffer=log_buffer,
        )
        app = build()
    except ValueError as exc:  # settings that contradict each other
        raise ShipyardError(_first_error(exc)) from exc
    follow_alias = reload_interval > 0 and parse_model_uri(model_uri).alias is not None
    limits = request_limits(config, package.signature)
    sock = bind_socket(host, port)  # a busy port is an error here, before "Serving"
    bound_port = sock.getsockname()[1]
    where = f"[{host}]" if ":" in host else host
    meta = package.metadata
    state.out.print(
        f"Serving [bold]{escape(meta.get('name'))}[/] version [bold]{meta.get('version')}[/] "
        f"on {'http' if tls is None else 'https'}://{where}:{bound_port} with "
        f"{app.shipyard.runner.runtime.name}, "
        f"{n_workers} worker{'s' if n_workers > 1 else ''}"
        f"{f', {len(digests)} API key(s) required' if digests else ''}"
        f"{f', at most {rate_limit} per client' if rate_limit else ''}"
        f"{', refusing out-of-distribution inputs' if ood == OodPolicy.reject else ''}"
        f"{f', following {model_uri}' if follow_alias else ''}"
        f"{_routing_note(app)}"
        f"{escape(_log_note(config.prediction_log))} "
        f"(docs at /docs; up to {limits.describe()})"
    )
    if n_workers == 1:
        report = run_server(
            app,
            host=host,
            port=bound_port,
            sock=sock,
            log_level=log_level,
            graceful_timeout=graceful_timeout,
            tls=tls,
        )
    else:  # each worker builds its own app after the fork: no model thread crosses it
        report = run_workers(
            build,
            workers=n_workers,
            sock=sock,
            host=host,
            port=bound_port,
            log_level=log_level,
            graceful_timeout=graceful_timeout,
            tls=tls,
        )
    if not report.drained:
        msg = (
            f"the server stopped before answering everything it had admitted: "
            f"{report.describe()} at --graceful-timeout {graceful_timeout} s (or at a "
            f"second Ctrl-C)"
        )
        raise ShipyardError(msg)
    state.out.print("Stopped: every admitted request was answered.")


class Engine(enum.StrEnum):
    """Where ``shipyard predict`` runs (``--engine``)."""

    local = "local"
    ray = "ray"


def predict(
    ctx: typer.Context,
    model_uri: Annotated[str, typer.Argument(help="models:/NAME@ALIAS or models:/NAME/VERSION")],
    input_path: Annotated[Path, typer.Argument(help="A .csv or .parquet file of records.")],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Where to write (.parquet or .csv).")
    ] = Path("predictions.parquet"),
    runtime: Annotated[
        Runtime,
        typer.Option(help="auto: the package's ONNX graph when it has one, else sklearn."),
    ] = Runtime.auto,
    chunk_rows: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Rows read, predicted and written at a time (bounds memory; default 100,000).",
            show_default=False,
        ),
    ] = None,
    engine: Annotated[
        Engine,
        typer.Option(help="local: stream the file in this process; ray: on a Ray cluster."),
    ] = Engine.local,
    address: Annotated[
        str | None,
        typer.Option(help="The Ray cluster's address (--engine ray; default: start one)."),
    ] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress bar (none when not a terminal).")
    ] = False,
) -> None:
    """Predict a CSV or Parquet file with a registered model (as the server would).

    The file is streamed in chunks of --chunk-rows rows, so memory stays bounded whatever its
    size, and the output appears only once every row is written.
    """
    state: CliState = ctx.obj
    if address is not None and engine is not Engine.ray:
        msg = "--address names a Ray cluster; add --engine ray"
        raise typer.BadParameter(msg, param_hint="--address")
    package = _load(state, model_uri)
    with _predict_progress(quiet=quiet) as on_progress:
        if engine is Engine.ray:
            predict_file_ray = _ray_engine()
            n = predict_file_ray(
                package,
                input_path,
                output,
                runtime=runtime.value,
                address=address,
                on_progress=on_progress,
            )
        else:
            from shipyard.pipeline import predict_file

            chunking = {} if chunk_rows is None else {"chunk_rows": chunk_rows}
            n = predict_file(
                package,
                input_path,
                output,
                runtime=runtime.value,
                on_progress=on_progress,
                **chunking,
            )
    state.out.print(f"Wrote {n:,} predictions to [bold]{escape(output)}[/]")


def _ray_engine() -> Callable[..., int]:
    try:
        from shipyard.pipeline import predict_file_ray
    except ImportError as exc:
        msg = f"the Ray engine needs Ray: pip install 'shipyard[ray]' ({exc})"
        raise ShipyardError(msg) from exc
    return predict_file_ray


@contextmanager
def _predict_progress(*, quiet: bool) -> Iterator[Callable[[int, int | None], None] | None]:
    """A progress bar on stderr fed by the predict callback; ``None`` when quiet or when
    stderr is not a terminal (a log file gets no bar)."""
    console = Console(stderr=True)
    if quiet or not console.is_terminal:
        yield None
        return
    bar = Progress(
        SpinnerColumn(),
        TextColumn("predicting"),
        BarColumn(),
        TextColumn("{task.completed:,} / {task.fields[of]} rows"),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )
    task = bar.add_task("predict", total=None, of="?")

    def on_progress(done: int, total: int | None) -> None:
        of = "?" if total is None else f"{total:,}"
        bar.update(task, completed=done, total=total, of=of)

    with bar:
        yield on_progress


def _log_note(target: str | None) -> str:
    from shipyard.store import redact_url

    return ", no prediction log" if target is None else f", logging to {redact_url(target)}"


def _routing_note(app: ServeApp) -> str:
    state = app.shipyard
    note = ""
    if state.canary is not None:
        version = state.canary.model_info["version"]
        note += f", canary version {version} on {state.canary_share:.0%} of requests"
    if state.shadow is not None:
        note += f", shadow version {state.shadow.model_info['version']}"
    return note


def _load(state: CliState, model_uri: str) -> ModelPackage:
    store = open_store(state)
    try:
        return Registry(store).load(model_uri)
    finally:
        store.close()
