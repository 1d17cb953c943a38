"""``shipyard.tracking.page_runs``: the web UI's runs query (paging, filters, sorts, count)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from shipyard.errors import TrackingError
from shipyard.store import Store
from shipyard.tracking import (
    PAGE_SIZE,
    RunPage,
    Tracker,
    metric_histories,
    page_runs,
    run_projects,
    view_run,
)
from ui_store import N_CHURN, Filled, fill

N_TOP = N_CHURN + 3  # the churn runs, the failed and killed ones, the search


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, Filled]]:
    with Store.open(root=tmp_path_factory.mktemp("ui") / "sy") as store:
        yield store, fill(store)


def _page(store: Store, **kwargs: object) -> RunPage:
    with store.connect() as conn:
        return page_runs(conn, **kwargs)  # type: ignore[arg-type]


def _names(page: RunPage) -> list[str]:
    return [r.name for r in page.runs]


def test_the_first_page_is_the_newest_top_level_runs_with_the_total(
    filled: tuple[Store, Filled],
) -> None:
    store, _ = filled
    page = _page(store)
    assert page.total == N_TOP and page.offset == 0 and page.limit == PAGE_SIZE
    assert len(page.runs) == PAGE_SIZE
    assert _names(page)[:3] == ["search", "stopped", "broken"]  # children never listed
    assert page.prev_offset is None and page.next_offset == PAGE_SIZE
    assert page.last_offset == PAGE_SIZE
    first = page.runs[3]
    assert first.params["model"] and "accuracy" in first.metrics and first.tags["team"]


def test_pages_follow_each_other_without_gaps_or_repeats(filled: tuple[Store, Filled]) -> None:
    store, _ = filled
    seen: list[str] = []
    offset: int | None = 0
    while offset is not None:
        page = _page(store, offset=offset, limit=20)
        seen += [r.id for r in page.runs]
        offset = page.next_offset
    assert len(seen) == len(set(seen)) == N_TOP
    last = _page(store, offset=60, limit=20)
    assert last.prev_offset == 40 and last.next_offset is None and len(last.runs) == 3
    assert _page(store, offset=500).runs == []


def test_children_of_a_run_and_every_run(filled: tuple[Store, Filled]) -> None:
    store, runs = filled
    trials = _page(store, parent_id=runs.search)
    assert trials.total == 5 and {r.id for r in trials.runs} == set(runs.trials)
    assert _page(store, parent_id=...).total == N_TOP + 5


def test_filters_by_project_status_and_start_time(filled: tuple[Store, Filled]) -> None:
    store, runs = filled
    assert _page(store, project="penguins").total == 1
    assert _page(store, project="churn").total == N_CHURN + 2
    assert _names(_page(store, status="failed")) == ["broken"]
    assert _names(_page(store, status="killed")) == ["stopped"]
    with store.connect() as conn:
        middle = view_run(conn, runs.churn[30])
    after = _page(store, project="churn", started_after=middle.start_time, limit=100)
    assert [r.name for r in after.runs][-1] == "churn-030"
    assert after.total == N_CHURN - 30 + 2
    before = _page(store, started_before=middle.start_time, limit=100)
    assert before.total == 30 and _names(before)[0] == "churn-029"


def test_filters_by_param_tag_and_metric_conditions(filled: tuple[Store, Filled]) -> None:
    store, _ = filled
    lightgbm = _page(store, params={"model": "lightgbm"}, limit=100)
    assert lightgbm.total == N_CHURN // 3
    assert all(r.params["model"] == "lightgbm" for r in lightgbm.runs)
    both = _page(store, params={"model": "lightgbm"}, tags={"team": "risk"}, limit=100)
    assert both.total == 10 and all(r.tags["team"] == "risk" for r in both.runs)
    good = _page(store, metrics=[("accuracy", ">", 0.7)], limit=100)
    assert good.total == 19 and all(r.metrics["accuracy"] > 0.7 for r in good.runs)
    band = _page(store, metrics=[("metric.accuracy", ">=", 0.6), ("accuracy", "<", 0.65)])
    assert sorted(r.metrics["accuracy"] for r in band.runs) == pytest.approx(
        [0.6 + i / 200 for i in range(10)]
    )
    assert _page(store, params={"model": "nope"}).total == 0
    assert _page(store, tags={"team": "risk"}, metrics=[("log_loss", "<=", 0.5)]).total == 5


def test_both_ways_of_finding_a_filtered_page_give_the_same_runs(
    filled: tuple[Store, Filled],
) -> None:
    """A frequent condition walks the runs in order, a rare one collects the matches: the
    same runs either way, on every page."""
    store, _ = filled
    for conditions in ({"metrics": [("accuracy", ">", 0.51)]}, {"tags": {"team": "growth"}}):
        pages = [
            _page(store, offset=o, limit=7, order_by="name DESC", **conditions) for o in (0, 7, 14)
        ]
        names = [n for page in pages for n in _names(page)]
        whole = _names(_page(store, limit=100, order_by="name DESC", **conditions))
        assert names == whole[:21]


def test_sorts_by_columns_duration_and_any_metric(filled: tuple[Store, Filled]) -> None:
    store, runs = filled
    by_name = _names(_page(store, order_by="name ASC", limit=100))
    assert by_name == sorted(by_name)
    best = _page(store, order_by="metric.accuracy DESC", limit=100)
    values = [r.metrics.get("accuracy") for r in best.runs]
    assert best.runs[0].name == "churn-059"
    assert values[: N_CHURN - 1] == sorted(values[: N_CHURN - 1], reverse=True)
    lacking = [r for r in best.runs if "accuracy" not in r.metrics]  # last, newest first
    assert [r.name for r in lacking] == ["search", "stopped", "churn-007"]
    assert lacking[-1].id == runs.no_accuracy
    assert values.index(None) == N_CHURN  # 59 churn runs and the failed one have it
    worst = _page(store, order_by="metric.accuracy", limit=3)
    assert _names(worst) == ["broken", "churn-000", "churn-001"]
    durations = [r.duration for r in _page(store, order_by="duration DESC", limit=100).runs]
    assert durations == sorted(durations, reverse=True)


def test_a_metric_sort_pages_through_the_runs_lacking_it(filled: tuple[Store, Filled]) -> None:
    store, _ = filled
    ordered = [r.id for r in _page(store, order_by="metric.loss DESC", limit=100).runs]
    paged = [
        r.id
        for offset in range(0, N_TOP, 4)
        for r in _page(store, order_by="metric.loss DESC", offset=offset, limit=4).runs
    ]
    assert paged == ordered and len(set(paged)) == N_TOP
    first = _page(store, order_by="metric.loss DESC", limit=6)
    assert [("loss" in r.metrics) for r in first.runs] == [True] * 6
    tail = _page(store, order_by="metric.loss DESC", offset=4, limit=4)
    assert [("loss" in r.metrics) for r in tail.runs] == [True, True, False, False]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"status": "sleeping"}, "unknown run status"),
        ({"order_by": "colour"}, "cannot order by"),
        ({"order_by": "metric.accuracy sideways"}, "cannot order by"),
        ({"order_by": "duration up"}, "cannot order by"),
        ({"metrics": [("accuracy", "~", 1.0)]}, "unknown operator"),
        ({"offset": -1}, "offset -1 is negative"),
        ({"limit": 0}, "page size 0"),
        ({"limit": 501}, "page size 501"),
    ],
)
def test_bad_arguments_name_the_problem(
    filled: tuple[Store, Filled], kwargs: dict[str, object], message: str
) -> None:
    store, _ = filled
    with pytest.raises(TrackingError, match=message):
        _page(store, **kwargs)


def test_projects_histories_and_one_run(filled: tuple[Store, Filled]) -> None:
    store, runs = filled
    with store.connect() as conn:
        assert run_projects(conn) == ["churn", "penguins"]
        histories = metric_histories(conn, runs.churn[10])
        assert [p.step for p in histories["loss"]] == [0, 1, 2, 3, 4]
        assert set(histories) == {"accuracy", "log_loss", "loss"}
        assert set(metric_histories(conn, runs.churn[10], ["loss"])) == {"loss"}
        assert view_run(conn, runs.failed[:8]).error == "ValueError: bad <input>"
        with pytest.raises(TrackingError, match="no run with id"):
            view_run(conn, "f" * 32)


def test_a_dead_runs_process_is_shown_crashed_without_writing(tmp_path: Path) -> None:
    with Store.open(root=tmp_path) as store:
        tracker = Tracker(store, heartbeat_interval=0.01, stale_after=0.05)
        run = tracker.start_run("orphan")
        import sqlalchemy as sa

        from shipyard.store import tables

        with store.begin() as conn:  # the owner is another process, long gone
            conn.execute(
                sa.update(tables.runs)
                .where(tables.runs.c.id == run.id)
                .values(pid=2**22 + 7, pid_started="1", heartbeat_at=1.0)
            )
        with store.connect() as conn:
            shown = page_runs(conn).runs[0]
            assert view_run(conn, run.id).status == "crashed"
        assert shown.status == "crashed" and shown.error
        with store.connect() as conn:  # nothing was recorded
            status = conn.execute(
                sa.select(tables.runs.c.status).where(tables.runs.c.id == run.id)
            ).scalar_one()
        assert status == "running"
        run.end()
        tracker.close()
