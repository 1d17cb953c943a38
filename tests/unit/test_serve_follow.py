"""The alias follower in process: swap on a move, skip a version that cannot serve."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_serve_app import RECORD, build_package

from shipyard.model import ModelPackage
from shipyard.registry import Registry
from shipyard.serve import ServeConfig
from shipyard.serve._batcher import ShuttingDown
from shipyard.serve._follow import ModelFollower
from shipyard.serve._state import ServerState
from shipyard.store import Store


class _Broken:
    """A pipeline whose every prediction fails (a version that cannot warm up)."""

    classes_ = np.array(["Adelie", "Chinstrap", "Gentoo"])

    def predict_proba(self, x: Any) -> Any:
        raise RuntimeError("broken model")


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store.from_env(None, root=tmp_path / ".shipyard")
    registry = Registry(s)
    good = build_package("multiclass")
    registry.register("penguins", good)
    registry.register("penguins", good)
    broken = ModelPackage(_Broken(), good.signature, good.task, {})
    registry.register("penguins", broken)
    registry.promote("penguins", 1, moved_by="test")
    return s


def test_follower_swaps_on_a_move_and_skips_a_version_that_cannot_serve(store: Store) -> None:
    registry = Registry(store)
    state = ServerState(registry.load("models:/penguins/1"), ServeConfig())
    follower = ModelFollower("models:/penguins@production", lambda: store, interval_s=0.01)

    async def scenario() -> None:
        state.runner.open()
        assert not await follower.check(state)  # nothing moved
        registry.promote("penguins", 2, moved_by="test")
        old = state.slot
        assert await follower.check(state)
        assert state.slot.model_info["version"] == "2" and state.reloads == 1
        assert await state.runner.submit([RECORD])  # the new slot answers
        with pytest.raises(ShuttingDown):
            await old.runner.submit([RECORD])  # the old one was retired
        registry.promote("penguins", 3, moved_by="test")
        assert not await follower.check(state)  # warm-up fails: keep version 2
        assert state.slot.model_info["version"] == "2"
        assert not await follower.check(state)  # and do not retry the same version
        await state.runner.close()

    asyncio.run(scenario())
    assert state.metadata()["reloads"] == 1


def test_only_an_alias_can_be_followed(store: Store) -> None:
    with pytest.raises(ValueError, match="only an alias"):
        ModelFollower("models:/penguins/1", lambda: store)


def test_an_outage_is_logged_once_and_its_end_once(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    registry = Registry(store)
    state = ServerState(registry.load("models:/penguins/1"), ServeConfig())
    follower = ModelFollower("models:/penguins@production", lambda: store, interval_s=0.001)
    looks = {"n": 0}

    async def flaky(_state: ServerState) -> bool:
        looks["n"] += 1
        if looks["n"] <= 20:  # the store is away for 20 looks, then back
            raise ConnectionError("the store is away")
        return False

    follower.check = flaky  # type: ignore[method-assign]

    async def scenario() -> None:
        task = asyncio.create_task(follower.run(state))
        while looks["n"] < 25:
            await asyncio.sleep(0.005)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    with caplog.at_level("WARNING", logger="shipyard.serve._follow"):
        asyncio.run(scenario())
    messages = [r.getMessage() for r in caplog.records if r.name == "shipyard.serve._follow"]
    assert len(messages) == 2, messages
    assert "failed; still serving version 1" in messages[0]
    assert "works again after 20 failed look(s)" in messages[1]
