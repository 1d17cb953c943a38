"""A search shared by several processes: the lead (``shipyard run --study NAME``) publishes a
manifest (its run, its data's fingerprint, the budget); workers (``shipyard worker --study
NAME``) wait for it, check they have the same data, and run trials until the budget is spent
or the lead is done. The manifest is an Optuna study's user attributes, in the same storage as
the families' studies (the store's database)."""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from typing import Any

from shipyard.errors import TrainingError
from shipyard.store import Store
from shipyard.train._search import SharedSearch

__all__ = ["Manifest", "SharedSession"]

_RUNNING, _DONE = "running", "done"


@dataclass(frozen=True)
class Manifest:
    """What the lead tells its workers.

    Attributes:
        run_id: the lead's run (every worker's trial is its child run).
        fingerprint: the lead's data (a worker with other data refuses to join).
        spec_hash: the lead's project file.
        deadline: the search's end, as a Unix time (``None``: a budget of trials alone).
        trials: the budget of trials (``None``: time alone).
        state: ``running`` or ``done``.
    """

    run_id: str
    fingerprint: str
    spec_hash: str
    deadline: float | None
    trials: int | None
    state: str


class SharedSession:
    """One process's handle on a shared search named ``name`` in ``store``."""

    def __init__(self, store: Store, name: str, *, lead: bool, worker: str | None = None) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        if not name or "/" in name or len(name) > 200:
            msg = f"a shared search's name must be 1-200 characters without '/', found {name!r}"
            raise TrainingError(msg)
        self.name = name
        self.lead = lead
        self.worker = worker or ("lead" if lead else f"{socket.gethostname()}-{os.getpid()}")
        self.storage = store.study_storage()
        self.search = SharedSearch(self.storage, name, self.worker, lead=lead)

    def _study(self, create: bool) -> Any:
        import optuna

        if create:
            return optuna.create_study(storage=self.storage, study_name=self.name)
        return optuna.load_study(study_name=self.name, storage=self.storage)

    def publish(
        self,
        *,
        run_id: str,
        fingerprint: str,
        spec_hash: str,
        deadline: float | None,
        trials: int | None,
    ) -> None:
        """Start the search (the lead): refuses a name already used by another search."""
        import optuna

        try:
            study = self._study(create=True)
        except optuna.exceptions.DuplicatedStudyError:
            old = self.manifest()
            who = f" by run {old.run_id} ({old.state})" if old is not None else ""
            msg = (
                f"the shared search name {self.name!r} is taken{who}; each search needs a new "
                "name (its trials are kept under it)"
            )
            raise TrainingError(msg) from None
        study.set_user_attr("state", _RUNNING)
        # one attribute, written last and at once: a worker polling meanwhile sees all or nothing
        study.set_user_attr(
            "manifest",
            {
                "run_id": run_id,
                "fingerprint": fingerprint,
                "spec_hash": spec_hash,
                "deadline": deadline,
                "trials": trials,
            },
        )

    def finish(self) -> None:
        """Tell the workers the lead is done (they start no new trial)."""
        self._study(create=False).set_user_attr("state", _DONE)

    def manifest(self) -> Manifest | None:
        """The lead's manifest, or ``None`` before the lead has published it."""
        try:
            attrs = self._study(create=False).user_attrs
        except KeyError:
            return None
        published = attrs.get("manifest")
        if not isinstance(published, dict):
            return None
        return Manifest(
            run_id=str(published["run_id"]),
            fingerprint=str(published["fingerprint"]),
            spec_hash=str(published["spec_hash"]),
            deadline=published.get("deadline"),
            trials=published.get("trials"),
            state=str(attrs.get("state", _RUNNING)),
        )

    def wait_for_lead(self, timeout: float) -> Manifest:
        """The manifest, waiting up to ``timeout`` seconds for the lead to publish it.

        Raises:
            TrainingError: no lead published one in time.
        """
        until = time.monotonic() + timeout
        while True:
            manifest = self.manifest()
            if manifest is not None:
                return manifest
            if time.monotonic() >= until:
                msg = (
                    f"no shared search {self.name!r} started within {timeout:g} s: start the "
                    f"lead with `shipyard run --study {self.name}` (same store), or wait longer"
                )
                raise TrainingError(msg)
            time.sleep(0.5)

    def lead_done(self) -> bool:
        """Whether the lead has finished its search."""
        manifest = self.manifest()
        return manifest is not None and manifest.state == _DONE
