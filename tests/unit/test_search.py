"""The budgeted search: the scheduler, budgets, pruning, failures and reproducibility, on a
fake evaluation whose scores and costs are known; then the families a project file asks for."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from shipyard.errors import SpecError, TrainingError
from shipyard.spec import ParamRange, ProjectSpec, load_spec
from shipyard.train import (
    Family,
    SearchBudget,
    StopTrial,
    Trial,
    budgeted_search,
    default_catalogue,
    search_families,
    trial_folds,
)

X = ParamRange(low=0.0, high=1.0)


def _fake(
    peaks: dict[str, float], *, folds: int = 3, fold_seconds: float = 0.0
) -> tuple[list[Trial], object]:
    """An evaluation whose score is the family's peak minus the distance of ``x`` from 0.7."""
    seen: list[Trial] = []

    def evaluate(trial: Trial, report: object) -> float:
        seen.append(trial)
        x = trial.params.get("x", 0.0)
        score = peaks[trial.family] - abs(x - 0.7)
        for fold in range(folds):
            if fold_seconds:
                time.sleep(fold_seconds)
            last = fold + 1 == folds
            report(fold, score, 0.0 if last else fold_seconds)  # type: ignore[operator]
        return score

    return seen, evaluate


def test_each_family_first_tries_its_defaults_cheapest_first_then_the_search_improves() -> None:
    families = [Family("slow", {"x": X}, cost_rank=9), Family("fast", {"x": X}, cost_rank=0)]
    seen, evaluate = _fake({"slow": 0.5, "fast": 0.9})
    result = budgeted_search(
        families, evaluate, budget=SearchBudget(trials=40), greater_is_better=True, seed=1
    )
    assert [(t.family, t.params) for t in seen[:2]] == [("fast", {}), ("slow", {})]
    assert len(result.trials) == 40 and result.stopped_by == "trials"
    assert result.best.family == "fast"
    assert result.best.score is not None and result.best.score > 0.9 - 0.05  # x found near 0.7
    counts = {k: len(v) for k, v in result.by_family().items()}
    assert counts["fast"] > counts["slow"]  # the leader gets most trials, the other some
    assert counts["slow"] >= 2


def test_the_same_seed_gives_the_same_search_and_another_seed_another() -> None:
    def run(seed: int) -> list[tuple[str, dict[str, object], float | None]]:
        _, evaluate = _fake({"a": 0.8, "b": 0.7})
        families = [Family("a", {"x": X}), Family("b", {"x": X})]
        result = budgeted_search(
            families, evaluate, budget=SearchBudget(trials=15), greater_is_better=True, seed=seed
        )
        return [(t.family, t.params, t.score) for t in result.trials]

    assert run(3) == run(3)
    assert run(3) != run(4)


def test_lower_is_better_and_the_project_files_candidates_are_tried_first() -> None:
    seen, evaluate = _fake({"a": 0.0})
    result = budgeted_search(
        [Family("a", {"x": X})],
        evaluate,
        budget=SearchBudget(trials=6),
        greater_is_better=False,
        seed=0,
        starts={"a": [{"x": 0.1}, {}]},  # an empty start is the defaults, tried anyway
    )
    assert [t.params for t in seen[:2]] == [{}, {"x": 0.1}]
    assert result.best.score == min(t.score for t in result.trials if t.score is not None)


def test_a_family_without_a_space_is_tried_once_and_the_search_ends_when_all_are() -> None:
    seen, evaluate = _fake({"a": 0.5, "b": 0.6})
    result = budgeted_search(
        [Family("a", {}), Family("b", {})],
        evaluate,
        budget=SearchBudget(trials=50),
        greater_is_better=True,
    )
    assert len(seen) == 2 and result.stopped_by == "exhausted" and result.best.family == "b"


def test_the_time_budget_is_kept_and_a_trial_past_the_deadline_is_stopped() -> None:
    _, evaluate = _fake({"a": 0.5}, folds=5, fold_seconds=0.05)
    started = time.monotonic()
    result = budgeted_search(
        [Family("a", {"x": X})],
        evaluate,
        budget=SearchBudget(seconds=1.0),
        greater_is_better=True,
    )
    elapsed = time.monotonic() - started
    assert result.stopped_by == "time"
    assert elapsed < 1.0 * 1.05 + 0.1  # within 5% (plus the scheduler's own moment)
    states = {t.state for t in result.trials}
    assert "complete" in states
    assert all(t.seconds < 0.5 for t in result.trials)


def test_pruned_and_failed_trials_are_recorded_and_never_best() -> None:
    def evaluate(trial: Trial, report: object) -> float:
        if trial.params.get("x", 0.5) > 0.8:
            msg = "the estimator refused x"
            raise TrainingError(msg)
        score = 1.0 - abs(trial.params.get("x", 0.5) - 0.2)
        for fold in range(4):
            report(fold, score if fold else score - 0.5 * (trial.number % 2), 0.0)  # type: ignore[operator]
        return score

    result = budgeted_search(
        [Family("a", {"x": X})],
        evaluate,
        budget=SearchBudget(trials=40),
        greater_is_better=True,
        seed=2,
    )
    states = {t.state for t in result.trials}
    assert {"complete", "failed"} <= states
    assert result.best.state == "complete"
    failed = [t for t in result.trials if t.state == "failed"]
    assert failed[0].error == "the estimator refused x" and failed[0].score is None


def test_no_complete_trial_is_a_clear_error() -> None:
    def evaluate(trial: Trial, report: object) -> float:
        msg = "cannot fit"
        raise TrainingError(msg)

    with pytest.raises(TrainingError, match=r"ran 2 trial\(s\).*none finished.*cannot fit"):
        budgeted_search(
            [Family("a", {}), Family("b", {})],
            evaluate,
            budget=SearchBudget(trials=5),
            greater_is_better=True,
        )
    with pytest.raises(TrainingError, match="at least one model family"):
        budgeted_search([], evaluate, budget=SearchBudget(trials=1), greater_is_better=True)
    with pytest.raises(ValueError, match="seconds, trials"):
        SearchBudget()
    assert StopTrial("pruned").reason == "pruned"


# --- the project file ------------------------------------------------------------------------


def _spec(tmp_path: Path, search: str) -> ProjectSpec:
    path = tmp_path / "shipyard.yaml"
    path.write_text(
        "name: demo\ndata:\n  source: {type: csv, path: d.csv}\n  target: label\n" + search
    )
    return load_spec(path)


def test_budgets_and_ranges_in_the_project_file(tmp_path: Path) -> None:
    assert _spec(tmp_path, "search: {budget: 90s}\n").search.budget == 90  # type: ignore[union-attr]
    assert _spec(tmp_path, "search: {budget: 10m}\n").search.budget == 600  # type: ignore[union-attr]
    assert _spec(tmp_path, "search: {budget: 1.5h}\n").search.budget == 5400  # type: ignore[union-attr]
    assert _spec(tmp_path, "search: {budget: 30}\n").search.budget == 30  # type: ignore[union-attr]
    for bad, says in (
        ("search: {budget: soon}\n", "duration such as 90s"),
        ("search: {}\n", "needs a 'budget'"),
        ("search: {trials: 0}\n", "greater than or equal to 1"),
        (
            "search: {trials: 5, spaces: {lightgbm: {num_leaves: {low: 9, high: 2}}}}\n",
            "'low' < 'high'",
        ),
        ("search: {trials: 5, spaces: {linear: {C: {low: 0, high: 2, log: true}}}}\n", "'low' > 0"),
        ("search: {trials: 5, spaces: {linear: {C: {choices: [], low: 1}}}}\n", "either 'choices'"),
    ):
        with pytest.raises(SpecError, match=says):
            _spec(tmp_path, bad)


def test_the_searched_families_and_their_spaces(tmp_path: Path) -> None:
    catalogue = default_catalogue()
    default = search_families(_spec(tmp_path, "search: {trials: 5}\n"), "binary", catalogue)
    keys = [f.key for f in default]
    base = {"linear", "random_forest", "extra_trees", "hist_gradient_boosting", "lightgbm"}
    assert set(keys) == base | {"xgboost", "catboost", "svm", "knn"}
    # SVM and k-NN cost too much on a large table: a search leaves them out
    large = search_families(
        _spec(tmp_path, "search: {trials: 5}\n"), "binary", catalogue, n_rows=50_000
    )
    assert {f.key for f in large} == base | {"xgboost", "catboost"}
    linear = next(f for f in default if f.key == "linear")
    assert set(linear.space) == {"C"}  # a classifier's linear family has no alpha
    regression = search_families(_spec(tmp_path, "search: {trials: 5}\n"), "regression", catalogue)
    assert set(next(f for f in regression if f.key == "linear").space) == {"alpha"}
    spec = _spec(
        tmp_path,
        "search:\n  trials: 5\n  families: [lightgbm, ridge]\n  spaces:\n"
        "    lightgbm: {num_leaves: {choices: [7, 15]}}\n",
    )
    families = search_families(spec, "regression", catalogue)
    assert [f.key for f in families] == ["lightgbm", "ridge"]
    assert families[0].space["num_leaves"].choices == [7, 15]
    assert "learning_rate" in families[0].space  # the rest of the default space stays
    spec = _spec(
        tmp_path,
        "search:\n  trials: 5\n  families: [lightgbm, nope, ridge]\n  spaces:\n"
        "    lightgbm: {leaves: {low: 2, high: 9}}\n"
        "    extra_trees: {max_features: {low: 0.1, high: 1}}\n",
    )
    with pytest.raises(TrainingError) as caught:
        search_families(spec, "binary", catalogue)
    message = str(caught.value)
    assert "unknown model 'nope'" in message
    assert "'ridge' does not support task 'binary'" in message
    assert "lightgbm has no parameter 'leaves'" in message
    assert "'extra_trees' is not among the searched families" in message
    assert "shipyard.yaml:" in message  # with the line


def test_the_reserve_ends_the_search_early_and_the_first_trial_always_completes() -> None:
    _, evaluate = _fake({"a": 0.5}, folds=3, fold_seconds=0.02)
    tiny = budgeted_search(
        [Family("a", {"x": X})],
        evaluate,
        budget=SearchBudget(seconds=0.001),
        greater_is_better=True,
    )
    assert [t.state for t in tiny.trials] == ["complete"]  # past the deadline, but a model
    started = time.monotonic()
    reserved = budgeted_search(
        [Family("a", {"x": X})],
        evaluate,
        budget=SearchBudget(seconds=1.0),
        greater_is_better=True,
        reserve=lambda best: 0.6,
    )
    assert reserved.stopped_by == "time"
    assert time.monotonic() - started < 0.4 + 0.15  # the search left 0.6 s of its 1 s


def test_a_shared_search_counts_every_process_trials_and_ranks_them_all(tmp_path: Path) -> None:
    import optuna

    from shipyard.train._search import SharedSearch, shared_trials

    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'optuna.db'}")
    families = [Family("a", {"x": X}), Family("b", {"x": X}, cost_rank=1)]
    lead = SharedSearch(storage, "s1", "lead", lead=True)
    worker = SharedSearch(storage, "s1", "w1", lead=False)

    def evaluate_as(name: str) -> object:
        _, inner = _fake({"a": 0.9, "b": 0.6})

        def evaluate(trial: Trial, report: object) -> float:
            trial.attrs["label"] = f"{trial.family}#{name}.{trial.number}"
            return inner(trial, report)  # type: ignore[operator]

        return evaluate

    first = budgeted_search(
        families,
        evaluate_as("lead"),
        budget=SearchBudget(trials=6),
        greater_is_better=True,
        seed=3,
        shared=lead,
    )
    # the worker joins: the budget of 10 counts the lead's 6, and it never reruns the defaults
    second = budgeted_search(
        families,
        evaluate_as("w1"),
        budget=SearchBudget(trials=10),
        greater_is_better=True,
        seed=3,
        shared=worker,
    )
    assert len(first.trials) == 6 and len(second.trials) == 4
    assert all(t.params for t in second.trials)  # sampled, not the defaults again
    studies = [optuna.load_study(study_name=f"s1/{k}", storage=storage) for k in ("a", "b")]
    assert sum(len(st.trials) for st in studies) == 10  # in the shared storage, every one
    found = shared_trials(lead, families, greater_is_better=True)  # the complete ones
    complete = [t for t in first.trials + second.trials if t.state == "complete"]
    assert len(found) == len(complete)
    assert sorted(t.score for t in found) == pytest.approx(sorted(t.score for t in complete))
    assert {t.worker for t in found} == {"lead", "w1"}
    assert {t.attrs["label"].split("#")[1].split(".")[0] for t in found} == {"lead", "w1"}
    # a worker stops as soon as it is told the lead is done
    stopped = budgeted_search(
        families,
        evaluate_as("w2"),
        budget=SearchBudget(trials=50),
        greater_is_better=True,
        seed=3,
        shared=SharedSearch(storage, "s1", "w2", lead=False),
        should_stop=lambda: True,
    )
    assert stopped.trials == [] and stopped.stopped_by == "lead" and stopped.best is None


def test_a_shared_search_needs_a_new_name_and_a_lead(tmp_path: Path) -> None:
    from shipyard.pipeline._shared import SharedSession
    from shipyard.store import Store

    with Store.open(root=tmp_path / ".shipyard") as store:
        lead = SharedSession(store, "s1", lead=True)
        lead.publish(run_id="r1", fingerprint="f", spec_hash="h", deadline=None, trials=5)
        assert (tmp_path / ".shipyard" / "optuna.db").exists()  # beside the store, apart
        worker = SharedSession(store, "s1", lead=False)
        manifest = worker.wait_for_lead(1.0)
        assert (manifest.run_id, manifest.trials, manifest.state) == ("r1", 5, "running")
        assert not worker.lead_done()
        lead.finish()
        assert worker.lead_done()
        with pytest.raises(TrainingError, match="'s1' is taken by run r1"):
            SharedSession(store, "s1", lead=True).publish(
                run_id="r2", fingerprint="f", spec_hash="h", deadline=None, trials=5
            )
        with pytest.raises(TrainingError, match="no shared search 'nope' started within"):
            SharedSession(store, "nope", lead=False).wait_for_lead(0.1)
        with pytest.raises(TrainingError, match="without '/'"):
            SharedSession(store, "a/b", lead=True)


def test_a_worker_never_sees_a_half_published_manifest(tmp_path: Path) -> None:
    """The lead's study exists before its manifest is written: a worker polling in between
    waits (CI once caught a worker reading run_id before the fingerprint was set)."""
    from shipyard.pipeline._shared import SharedSession
    from shipyard.store import Store

    with Store.open(root=tmp_path / ".shipyard") as store:
        lead = SharedSession(store, "s1", lead=True)
        study = lead._study(create=True)
        study.set_user_attr("state", "running")
        worker = SharedSession(store, "s1", lead=False)
        assert worker.manifest() is None
        with pytest.raises(TrainingError, match="no shared search 's1' started within"):
            worker.wait_for_lead(0.1)


def test_a_family_whose_first_trial_would_not_fit_the_time_left_is_left_out() -> None:
    # "slow" ranks 50 times "fast": after fast's first trial (about 0.1 s), slow's first would
    # take about 5 s, far past a 1.5 s budget; the search gives its time to "fast" instead
    families = [Family("fast", {"x": X}, cost_rank=1), Family("slow", {"x": X}, cost_rank=50)]
    seen, evaluate = _fake({"fast": 0.9, "slow": 0.95}, folds=2, fold_seconds=0.05)
    result = budgeted_search(
        families, evaluate, budget=SearchBudget(seconds=1.5), greater_is_better=True, seed=0
    )
    assert {t.family for t in seen} == {"fast"} and len(seen) >= 5
    assert result.stopped_by == "time"
    # with time enough, the slow family's defaults run too
    seen, evaluate = _fake({"fast": 0.9, "slow": 0.95}, folds=2, fold_seconds=0.0)
    budgeted_search(
        families, evaluate, budget=SearchBudget(seconds=3.0), greater_is_better=True, seed=0
    )
    assert "slow" in {t.family for t in seen}


@pytest.mark.parametrize(
    ("setting", "rows", "inputs", "budget", "expected"),
    [
        ("auto", 5_000, 20, 60.0, 5),  # 111k cells / 0.9 < 167k per minute: every fold
        ("auto", 12_000, 30, 60.0, 1),  # 400k cells: large for a minute, a holdout
        ("auto", 12_000, 30, 600.0, 5),  # ... and small for ten minutes
        ("auto", 100_000, 2, None, 1),  # 100,000 rows: a holdout whatever the budget
        ("auto", 50_000, 200, None, 5),  # a budget of trials alone: folds, below 100k rows
        (3, 12_000, 30, 60.0, 3),  # a number is taken as it is
        (9, 100, 3, None, 5),  # ... up to the split's folds
    ],
)
def test_trial_folds_follow_the_table_size_for_the_budget(
    setting: int | str, rows: int, inputs: int, budget: float | None, expected: int
) -> None:
    got = trial_folds(setting, cv_folds=5, n_rows=rows, n_inputs=inputs, budget=budget)
    assert got == expected


def test_search_folds_in_the_project_file(tmp_path: Path) -> None:
    path = tmp_path / "shipyard.yaml"
    base = "name: p\ndata: {source: {type: csv, path: d.csv}, target: y}\n"
    path.write_text(base + "search: {budget: 1m, folds: 2}\n")
    assert load_spec(path).search is not None and load_spec(path).search.folds == 2  # type: ignore[union-attr]
    path.write_text(base + "search: {budget: 1m}\n")
    assert load_spec(path).search.folds == "auto"  # type: ignore[union-attr]
    path.write_text(base + "split: {cv_folds: 3}\nsearch: {budget: 1m, folds: 4}\n")
    with pytest.raises(SpecError, match=r"search.folds \(4\) is more than the split's folds"):
        load_spec(path)
    path.write_text(base + "search: {budget: 1m, folds: 0}\n")
    with pytest.raises(SpecError, match="folds"):
        load_spec(path)


def test_a_family_whose_first_trial_would_take_a_tenth_of_the_budget_is_left_out() -> None:
    # "slow" ranks 10 times "fast": after fast's first trial (about 0.1 s), slow's first would
    # take about 1 s, which fits the 3 s budget but is a third of it
    families = [Family("fast", {"x": X}, cost_rank=1), Family("slow", {"x": X}, cost_rank=10)]
    seen, evaluate = _fake({"fast": 0.9, "slow": 0.95}, folds=2, fold_seconds=0.05)
    budgeted_search(
        families, evaluate, budget=SearchBudget(seconds=3.0), greater_is_better=True, seed=0
    )
    assert {t.family for t in seen} == {"fast"}


def test_a_trial_that_ran_its_last_fold_is_complete_whatever_the_time() -> None:
    """One fold per trial (a holdout): "slow"'s fold ends past the deadline, but the trial is
    done, so it is complete (and the search then stops), never thrown away as a timeout."""
    families = [Family("fast", {"x": X}, cost_rank=0), Family("slow", {"x": X}, cost_rank=0)]

    def evaluate(trial: Trial, report: object) -> float:
        time.sleep(0.4 if trial.family == "slow" else 0.01)
        score = 0.95 if trial.family == "slow" else 0.9
        report(0, score, 0.0)  # type: ignore[operator]
        return score

    result = budgeted_search(
        families, evaluate, budget=SearchBudget(seconds=0.2), greater_is_better=True, seed=0
    )
    assert [(t.family, t.state) for t in result.trials][:2] == [
        ("fast", "complete"),
        ("slow", "complete"),
    ]
    assert result.best is not None and result.best.family == "slow"
