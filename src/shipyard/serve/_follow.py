"""Hot reload: a server started on ``models:/NAME@ALIAS`` follows the alias.

Every ``interval_s`` the follower asks the registry which version the alias points at. When
it moved (a promotion, a rollback), the follower loads that version (sha256-verified, as
always), builds a new :class:`~shipyard.serve._state.ModelSlot` beside the live one and warms
it up, all off the event loop; then it swaps the server's slot in one assignment. Requests
that had already taken the old slot finish on it; the old runner is closed once none is left
(or after the batching timeout). No request fails during the switch. A version that fails to
load or to warm up is logged and skipped: the server keeps answering with the version it has,
and tries again when the alias moves again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from starlette.concurrency import run_in_threadpool

from shipyard.registry import ModelRef, Registry, parse_model_uri
from shipyard.store import Store

if TYPE_CHECKING:
    from shipyard.serve._state import ModelSlot, ServerState

__all__ = ["ModelFollower"]

logger = logging.getLogger(__name__)
_uvicorn_logger = logging.getLogger("uvicorn.error")  # where an operator sees the server's lines

_MIN_OLD_SLOT_LIFE = 1.0  # seconds the old slot stays open after a swap, for requests in hand


class ModelFollower:
    """Follow a model alias and swap the served version when it moves.

    Args:
        uri: ``models:/NAME@ALIAS``.
        open_store: opens the metadata store the alias lives in; called in the serving
            process (after any fork), off the event loop, once.
        interval_s: seconds between two looks at the alias.

    Raises:
        ValueError: the URI does not name an alias.
    """

    def __init__(
        self, uri: str, open_store: Callable[[], Store], *, interval_s: float = 5.0
    ) -> None:
        ref = parse_model_uri(uri)
        if ref.alias is None:
            msg = f"only an alias can be followed (models:/NAME@ALIAS), not {uri}"
            raise ValueError(msg)
        self.ref = ref
        self.interval_s = interval_s
        self._open_store = open_store
        self._store: Store | None = None
        self._registry: Registry | None = None
        self._skipped: int | None = None

    async def run(self, state: ServerState) -> None:
        """Look at the alias every ``interval_s`` until cancelled.

        A failing look (the store away) is logged once, with its traceback, and its recovery
        once: an outage does not flood the log with one traceback per interval.
        """
        failing_since: float | None = None
        failures = 0
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.check(state)
            except asyncio.CancelledError:
                raise
            except Exception:
                failures += 1
                if failing_since is None:
                    failing_since = time.monotonic()
                    logger.exception(
                        "hot reload: looking at %s failed; still serving version %s, trying "
                        "again every %g s (logged again when it works)",
                        self.ref,
                        state.slot.model_info["version"],
                        self.interval_s,
                    )
                continue
            if failing_since is not None:
                logger.warning(
                    "hot reload: looking at %s works again after %d failed look(s) over %.0f s",
                    self.ref,
                    failures,
                    time.monotonic() - failing_since,
                )
                failing_since, failures = None, 0

    async def check(self, state: ServerState) -> bool:
        """Look once; swap to the alias' version if it moved. Returns whether it swapped."""
        version = await run_in_threadpool(self._resolve)
        live = state.slot.model_info["version"]
        if str(version) == live or version == self._skipped:
            return False
        _uvicorn_logger.info("%s moved to version %s: loading it", self.ref, version)
        try:
            slot = await run_in_threadpool(self._prepare, state, version)
        except Exception:
            logger.exception(
                "hot reload: version %s could not be served; keeping %s", version, live
            )
            self._skipped = version
            return False
        old = state.slot
        state.slot = slot  # the switch: one assignment, between two requests' steps
        state.reloads += 1
        state.metrics.set_model(
            name=slot.model_info["name"],
            version=slot.model_info["version"],
            runtime=slot.runner.runtime.name,
        )
        state.metrics.reloads.inc()
        _uvicorn_logger.info("Now serving %s version %s", self.ref.name, version)
        await _retire(old, state.config.batching.timeout_s)
        return True

    def _resolve(self) -> int:
        if self._registry is None:
            self._store = self._open_store()
            self._registry = Registry(self._store)
        return self._registry.resolve(self.ref).version

    def _prepare(self, state: ServerState, version: int) -> ModelSlot:
        assert self._registry is not None
        package = self._registry.load(ModelRef(name=self.ref.name, version=version))
        slot = state.build_slot(package)
        slot.runner.open()
        if not slot.runner.warm_up(slot.example()):
            msg = f"the warm-up prediction of version {version} failed"
            raise RuntimeError(msg)
        return slot

    def close(self) -> None:
        """Release the registry's store."""
        if self._store is not None:
            self._store.close()
        self._store = self._registry = None


async def _retire(old: ModelSlot, timeout_s: float) -> None:
    """Close the old slot once its requests are done (at least a moment after the swap)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        idle = old.active == 0 and old.runner.batcher.in_flight_rows == 0
        if idle and time.monotonic() - started >= _MIN_OLD_SLOT_LIFE:
            break
        await asyncio.sleep(0.05)
    await old.runner.close(timeout=timeout_s)
