"""``shipyard deploy``: write a registered model's deployment files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from shipyard import __version__
from shipyard.cli._context import CliState, open_store
from shipyard.cli._render import escape, table
from shipyard.deploy import PredictionLog, Target, render, spec_for, write_files
from shipyard.errors import DeployError
from shipyard.registry import Registry

__all__ = ["deploy"]


def deploy(
    ctx: typer.Context,
    model_uri: Annotated[str, typer.Argument(help="models:/NAME@ALIAS or models:/NAME/VERSION")],
    target: Annotated[
        Target,
        typer.Option(
            help="docker: a Dockerfile; k8s: also Kubernetes manifests; compose: also a "
            "docker compose file with PostgreSQL. Every target gets a Grafana dashboard and "
            "a CI workflow."
        ),
    ],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="The folder to write the files into.")
    ],
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing files.")] = False,
    image: Annotated[
        str | None,
        typer.Option(
            help="Image name with its registry (default: shipyard-NAME).", show_default=False
        ),
    ] = None,
    tag: Annotated[
        str | None, typer.Option(help="Image tag (default: vVERSION).", show_default=False)
    ] = None,
    port: Annotated[int, typer.Option(min=1, max=65535, help="The server's port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Server processes per container.")] = 1,
    replicas: Annotated[int, typer.Option(min=1, help="k8s: the Deployment's replicas.")] = 2,
    min_replicas: Annotated[int, typer.Option(min=1, help="k8s: the autoscaler's floor.")] = 2,
    max_replicas: Annotated[int, typer.Option(min=1, help="k8s: the autoscaler's ceiling.")] = 10,
    target_cpu: Annotated[
        int, typer.Option(min=1, max=100, help="k8s: the CPU utilisation (%) autoscaling aims at.")
    ] = 70,
    cpu_request: Annotated[str, typer.Option(help="k8s: CPU request.")] = "500m",
    cpu_limit: Annotated[str, typer.Option(help="k8s: CPU limit.")] = "1",
    memory_request: Annotated[str, typer.Option(help="k8s: memory request.")] = "512Mi",
    memory_limit: Annotated[str, typer.Option(help="k8s: memory limit.")] = "1Gi",
    secret_name: Annotated[
        str | None,
        typer.Option(
            help="k8s: the Secret holding store-url (and artifact-root, api-keys), referenced "
            "by name (default: shipyard-NAME-secrets).",
            show_default=False,
        ),
    ] = None,
    store_url_env: Annotated[
        str, typer.Option(help="The environment variable the store URL is read from.")
    ] = "SHIPYARD_STORE_URL",
    api_keys: Annotated[
        bool,
        typer.Option(
            "--api-keys",
            help="The server requires API keys (SHIPYARD_API_KEYS from the Secret or the "
            "environment); the ServiceMonitor presents one to scrape /metrics.",
        ),
    ] = False,
    prediction_log: Annotated[
        PredictionLog,
        typer.Option(
            help="Where the server logs predictions for `shipyard monitor`: store: a table in "
            "the store's database (every replica, outlives pods); folder: Parquet under "
            "SHIPYARD_HOME/predictions in the container; off.",
        ),
    ] = PredictionLog.store,
    wheel: Annotated[
        Path | None,
        typer.Option(
            help="Install this built Shipyard wheel in the image (copied into the folder) "
            "instead of the release shipyard==VERSION from PyPI.",
            show_default=False,
            exists=True,
            dir_okay=False,
        ),
    ] = None,
) -> None:
    """Write a Dockerfile, Kubernetes manifests or a compose file, a Grafana dashboard and a
    CI workflow for a registered model (the server fetches it by URI from the store at start).
    """
    state: CliState = ctx.obj
    if wheel is not None and wheel.suffix != ".whl":
        msg = f"--wheel takes a built wheel (a .whl file), not {wheel}"
        raise DeployError(msg)
    store = open_store(state)
    try:
        spec = spec_for(
            Registry(store),
            model_uri,
            shipyard_version=__version__,
            wheel=None if wheel is None else wheel.name,
            image=image or "",
            tag=tag or "",
            port=port,
            workers=workers,
            replicas=replicas,
            min_replicas=min_replicas,
            max_replicas=max_replicas,
            target_cpu_percent=target_cpu,
            resources={
                "cpu_request": cpu_request,
                "cpu_limit": cpu_limit,
                "memory_request": memory_request,
                "memory_limit": memory_limit,
            },
            store_url_env=store_url_env,
            secret_name=secret_name or "",
            api_keys=api_keys,
            prediction_log=prediction_log,
        )
    finally:
        store.close()
    deploy_dir = output.as_posix() if not output.is_absolute() else output.name
    files = render(spec, target, deploy_dir=deploy_dir)
    if wheel is not None:
        files[wheel.name] = wheel.read_bytes()
    written = write_files(files, output, force=force)
    rows = [(escape(w.path.relative_to(output).as_posix()), f"{w.size:,}") for w in written]
    state.out.print(table(None, ["file", "bytes"], rows))
    state.out.print(
        f"Wrote {len(written)} files for [bold]{escape(spec.model_uri)}[/] (version "
        f"{spec.model_version} now; the server fetches it from the store at start) to "
        f"[bold]{escape(output)}[/] ({target.value})"
    )
    state.out.print(f"Image: [bold]{escape(spec.image_ref)}[/]  (docker build -t ... {output})")
    if target is Target.k8s:
        hint = (
            f"kubectl create secret generic {spec.secret} --from-literal=store-url=... "
            "[--from-literal=artifact-root=s3://...]"
        )
        state.out.print(f"Create the Secret first: {escape(hint)}")
