"""``shipyard serve`` and ``shipyard predict``: use a registered model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from shipyard.cli._context import CliState, open_store
from shipyard.registry import ModelPackage, Registry

__all__ = ["predict", "serve"]


def serve(
    ctx: typer.Context,
    model_uri: Annotated[str, typer.Argument(help="models:/NAME@ALIAS or models:/NAME/VERSION")],
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
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
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Serve a registered model over HTTP: POST /predict, /health, /ready, /metadata, /metrics."""
    from shipyard.serve import ServeConfig, create_app, request_limits, run_server

    state: CliState = ctx.obj
    package = _load(state, model_uri)
    config = ServeConfig(max_body_bytes=max_body_bytes, max_records=max_records)
    app = create_app(package, config=config)
    limits = request_limits(config, package.signature)
    meta = package.metadata
    state.out.print(
        f"Serving [bold]{meta.get('name')}[/] version [bold]{meta.get('version')}[/] on "
        f"http://{host}:{port} (docs at /docs; up to {limits.describe()})"
    )
    run_server(app, host=host, port=port, log_level=log_level)


def predict(
    ctx: typer.Context,
    model_uri: Annotated[str, typer.Argument(help="models:/NAME@ALIAS or models:/NAME/VERSION")],
    input_path: Annotated[Path, typer.Argument(help="A .csv or .parquet file of records.")],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Where to write (.parquet or .csv).")
    ] = Path("predictions.parquet"),
) -> None:
    """Predict a CSV or Parquet file with a registered model."""
    from shipyard.pipeline import predict_file

    state: CliState = ctx.obj
    package = _load(state, model_uri)
    n = predict_file(package, input_path, output)
    state.out.print(f"Wrote {n:,} predictions to [bold]{output}[/]")


def _load(state: CliState, model_uri: str) -> ModelPackage:
    store = open_store(state)
    try:
        return Registry(store).load(model_uri)
    finally:
        store.close()
