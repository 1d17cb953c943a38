"""The Ray engine (``shipyard[ray]``): a trial's cross-validation folds fitted in parallel on
a pool of long-lived Ray actors.

The training rows go into Ray's object store once per run (and each fold's positions once),
each actor reads them once and keeps them, and every trial sends only its unfitted pipeline.
The folds come back in fold order, so a search's pruner sees the same running means as with
the local engine: with the same seed and a budget of trials, both engines run the same trials
to the same scores. Ray is imported only when this engine is used.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Generator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from shipyard.errors import ShipyardError, TrainingError
from shipyard.train._cv import Fold, FoldOutcome, fit_fold

__all__ = ["RAY_MISSING", "RayCluster", "RayEngine", "import_ray", "ray_cluster"]

logger = logging.getLogger(__name__)

RAY_MISSING = "the Ray engine needs `pip install 'shipyard[ray]'`"


def import_ray() -> Any:
    """Ray itself, or a clear error naming the extra to install.

    Raises:
        ShipyardError: Ray is not installed.
    """
    try:
        import ray
    except ImportError as exc:
        raise ShipyardError(RAY_MISSING) from exc
    return ray


@dataclass(frozen=True)
class RayCluster:
    """The Ray cluster a command works on.

    Attributes:
        address: the cluster's address (``None``: a local cluster this process started).
        started: whether this process connected (and so disconnects, or stops the local
            cluster it started, at the end).
        startup_seconds: how long connecting or starting took (0 when already connected).
        n_cpus: the cluster's CPUs.
    """

    address: str | None
    started: bool
    startup_seconds: float
    n_cpus: int


@contextmanager
def ray_cluster(address: str | None = None, *, num_cpus: int | None = None) -> Iterator[RayCluster]:
    """Connect to the Ray cluster at ``address``, or start a local one (this machine's CPUs,
    or ``num_cpus``), for the duration of the block; an existing connection of this process
    is used as it is and left open.

    Raises:
        ShipyardError: Ray is not installed, or the cluster cannot be reached.
    """
    ray = import_ray()
    if ray.is_initialized():
        yield RayCluster(address, False, 0.0, _cpus(ray))
        return
    started = time.perf_counter()
    try:
        ray.init(
            address=address,
            num_cpus=None if address else num_cpus,
            include_dashboard=False,
            logging_level=logging.WARNING,
            log_to_driver=False,
        )
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = f"at {address}" if address else "on this machine"
        msg = f"cannot start or reach a Ray cluster {where}: {exc}; check --address (ray status)"
        raise ShipyardError(msg) from exc
    cluster = RayCluster(address, True, time.perf_counter() - started, _cpus(ray))
    logger.info("Ray ready in %.1f s (%d CPUs)", cluster.startup_seconds, cluster.n_cpus)
    try:
        yield cluster
    finally:
        ray.shutdown()  # a cluster reached by address stays up; only this process leaves it


def _cpus(ray: Any) -> int:
    return max(int(ray.cluster_resources().get("CPU", 1)), 1)


class RayEngine:
    """Fits a trial's folds in parallel on Ray actors (one CPU each, as many as the cluster
    has CPUs, at most one per fold), reused by every trial of the run.

    Use it within :func:`ray_cluster`, and :meth:`close` it (or use it as a context manager)
    to release its actors.

    Args:
        max_actors: at most this many actors (the cluster's CPUs by default).
    """

    name = "ray"

    def __init__(self, *, max_actors: int | None = None) -> None:
        self.max_actors = max_actors
        self._actors: list[Any] = []
        self._data: tuple[pd.DataFrame, pd.Series, Any] | None = None
        self._folds: dict[int, tuple[np.ndarray, np.ndarray, Any]] = {}

    def __enter__(self) -> RayEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def fit_folds(
        self,
        pipeline: Any,
        x: pd.DataFrame,
        y: pd.Series,
        folds: Sequence[Fold],
        *,
        task: str,
        classes: Sequence[str] | None,
        keep_predictions: bool,
    ) -> Generator[FoldOutcome, None, None]:
        """Send every fold to the actors at once; yield the outcomes in fold order.

        Raises:
            TrainingError: a fold's estimator failed to fit.
        """
        ray = import_ray()
        data = self._put_data(ray, x, y)
        actors = self._pool(ray, len(folds))
        model = ray.put(pipeline)  # once per trial, read by every actor
        pending = [
            actors[i % len(actors)].fit.remote(
                model, [data], [self._put_fold(ray, fold)], task, classes, keep_predictions
            )
            for i, fold in enumerate(folds)
        ]
        try:
            for ref in pending:
                outcome = ray.get(ref)
                if isinstance(outcome, str):  # the actor's TrainingError, as its message
                    raise TrainingError(outcome)
                yield outcome
        finally:  # a stopped trial: drop the folds still queued
            for ref in pending:
                ray.cancel(ref)

    def close(self) -> None:
        """Release the actors and the run's data in the object store."""
        if self._actors:
            ray = import_ray()
            for actor in self._actors:
                ray.kill(actor)
        self._actors, self._data, self._folds = [], None, {}

    def _put_data(self, ray: Any, x: pd.DataFrame, y: pd.Series) -> Any:
        # the same frames (by identity) are put once: a run passes its training part to
        # every trial
        if self._data is None or self._data[0] is not x or self._data[1] is not y:
            self._data = (x, y, ray.put((x, y)))
            self._folds = {}
        return self._data[2]

    def _put_fold(self, ray: Any, fold: Fold) -> Any:
        train, test = fold
        kept = self._folds.get(id(train))
        if kept is None or kept[0] is not train or kept[1] is not test:
            kept = (train, test, ray.put((train, test)))
            self._folds[id(train)] = kept
        return kept[2]

    def _pool(self, ray: Any, n_folds: int) -> list[Any]:
        wanted = min(self.max_actors or _cpus(ray), max(n_folds, 1))
        if len(self._actors) < wanted:
            worker = ray.remote(num_cpus=1)(_FoldWorker)
            self._actors += [worker.remote() for _ in range(wanted - len(self._actors))]
        return self._actors[:wanted]


class _FoldWorker:
    """A Ray actor: keeps the run's rows once read, fits the folds it is sent."""

    def __init__(self) -> None:
        self._key: str | None = None
        self._frames: tuple[pd.DataFrame, pd.Series] | None = None

    def fit(
        self,
        pipeline: Any,
        data: list[Any],  # in a list, so that Ray hands over the reference, not the rows
        fold: list[Any],
        task: str,
        classes: Sequence[str] | None,
        keep: bool,
    ) -> FoldOutcome | str:
        import ray

        key = data[0].hex()
        if self._key != key or self._frames is None:
            self._key, self._frames = key, ray.get(data[0])
        x, y = self._frames
        train, test = ray.get(fold[0])
        try:
            return fit_fold(pipeline, x, y, train, test, task=task, classes=classes, keep=keep)
        except TrainingError as exc:
            return str(exc)
