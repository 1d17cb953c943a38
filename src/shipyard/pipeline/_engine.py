"""The run's engine: where its cross-validation folds are fitted (``local`` or ``ray``)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

from shipyard.pipeline._events import Event, EventHandler
from shipyard.tracking import Run
from shipyard.train import FoldEngine, LocalEngine, RayEngine, ray_cluster

__all__ = ["ENGINES", "EngineName", "run_engine"]

EngineName = Literal["local", "ray"]
ENGINES: tuple[EngineName, ...] = ("local", "ray")


@contextmanager
def run_engine(
    name: EngineName, address: str | None, run: Run, on_event: EventHandler
) -> Iterator[FoldEngine]:
    """The engine ``name`` for the block, recorded on ``run`` (tag ``engine``; with Ray, the
    metric ``engine.startup_seconds`` and the tag ``engine.cpus``); Ray's cluster is started
    (no ``address``) or reached for the block, and left as it was found."""
    run.set_tags({"engine": name})
    if name == "local":
        yield LocalEngine()
        return
    where = address or "a local cluster"
    on_event(Event("step", f"starting Ray ({where})"))
    with ray_cluster(address) as cluster, RayEngine() as engine:
        run.log_metrics({"engine.startup_seconds": cluster.startup_seconds})
        run.set_tags(
            {"engine.cpus": str(cluster.n_cpus)} | ({"engine.address": address} if address else {})
        )
        on_event(
            Event(
                "step",
                f"Ray ready in {cluster.startup_seconds:.1f} s: {cluster.n_cpus} CPUs "
                f"({where}); each trial's folds run in parallel on up to {cluster.n_cpus} actors",
            )
        )
        yield engine
