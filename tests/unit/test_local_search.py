"""A family's sampler: local steps from its defaults and then from its best trial, TPE's turns
once the family has had its share; and the scheduler's estimate for a family far behind."""

from __future__ import annotations

import math

import optuna
import pytest

from shipyard.spec import ParamRange
from shipyard.train import Family, SearchBudget, budgeted_search
from shipyard.train._local import LOCAL_TRIALS, STEP, LocalSearchSampler, start_point

optuna.logging.set_verbosity(optuna.logging.WARNING)

SPACE = {
    "rate": ParamRange(low=0.01, high=1.0, log=True),
    "leaves": ParamRange(low=2, high=256, log=True, integer=True),
    "frac": ParamRange(low=0.0, high=1.0),
}
DEFAULTS = {"rate": 0.1, "leaves": 31, "frac": 0.5}


def _unit(name: str, value: float) -> float:
    r = SPACE[name]
    assert r.low is not None and r.high is not None
    if r.log:
        return math.log(value / r.low) / math.log(r.high / r.low)
    return (value - r.low) / (r.high - r.low)


def _distance(a: dict[str, float], b: dict[str, float]) -> float:
    return math.sqrt(sum((_unit(k, a[k]) - _unit(k, b[k])) ** 2 for k in SPACE))


def _ask(study: optuna.Study) -> tuple[optuna.Trial, dict[str, float]]:
    trial = study.ask()
    params = {
        "rate": trial.suggest_float("rate", 0.01, 1.0, log=True),
        "leaves": trial.suggest_int("leaves", 2, 256, log=True),
        "frac": trial.suggest_float("frac", 0.0, 1.0),
    }
    trial.set_user_attr("params", params)
    return trial, params


def _study(seed: int = 0) -> optuna.Study:
    sampler = LocalSearchSampler(SPACE, start_point(SPACE, DEFAULTS), seed=seed)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    defaults = study.ask()  # the defaults' trial suggests nothing, as the search's does
    study.tell(defaults, 0.5)
    return study


def test_the_first_steps_start_from_the_defaults_and_a_failed_step_is_reversed() -> None:
    study = _study()
    first, a = _ask(study)
    # a step is about STEP of each range long (integers round)
    assert _distance(a, DEFAULTS) == pytest.approx(STEP * math.sqrt(3), rel=0.2)
    study.tell(first, 0.4)  # worse: the next step goes the other way from the defaults
    second, b = _ask(study)
    for name in ("rate", "frac"):
        there = _unit(name, a[name]) - _unit(name, DEFAULTS[name])
        back = _unit(name, b[name]) - _unit(name, DEFAULTS[name])
        assert back == pytest.approx(-there, abs=1e-9)
    study.tell(second, 0.45)


def test_the_search_moves_to_a_better_trial() -> None:
    study = _study()
    trial, better = _ask(study)
    study.tell(trial, 0.9)  # the new incumbent: the next step starts there
    _, nxt = _ask(study)
    assert _distance(nxt, better) == pytest.approx(STEP * math.sqrt(3), rel=0.2)


def test_the_same_seed_steps_the_same_way_and_tpe_gets_turns_later() -> None:
    def run(seed: int) -> list[dict[str, float]]:
        study = _study(seed)
        out = []
        for i in range(LOCAL_TRIALS + 6):
            trial, params = _ask(study)
            study.tell(trial, 0.5 - 0.01 * i)  # never better: steps shrink, never wander
            out.append(params)
        return out

    first = run(1)
    assert first == run(1)
    assert first != run(2)
    local = first[: LOCAL_TRIALS - 1]
    assert all(_distance(p, DEFAULTS) <= STEP * math.sqrt(3) * 1.3 for p in local)
    # after LOCAL_TRIALS finished trials, every third is TPE's, drawn from the whole space
    assert any(_distance(p, DEFAULTS) > STEP * math.sqrt(3) * 1.3 for p in first[LOCAL_TRIALS:])


def test_defaults_outside_a_range_or_not_numbers_start_inside_it() -> None:
    space = {"alpha": ParamRange(low=1e-3, high=10.0, log=True), "c": ParamRange(choices=[1, 2])}
    assert start_point(space, {"alpha": 0.0, "c": 2}) == {"alpha": 1e-3, "c": 2}
    middle = start_point(space, {"alpha": None, "c": "x"})
    assert middle["alpha"] == pytest.approx(math.sqrt(1e-3 * 10.0))
    assert middle["c"] == 2


def test_from_good_defaults_a_dozen_local_trials_beat_a_dozen_of_tpe() -> None:
    """The case the sampler exists for: defaults near the optimum, a dozen trials, where TPE's
    first draws are random over the whole space."""
    target = {"rate": 0.2, "leaves": 60, "frac": 0.7}

    def best_after(sampler: optuna.samplers.BaseSampler) -> float:
        study = optuna.create_study(direction="maximize", sampler=sampler)
        study.tell(study.ask(), -_distance(DEFAULTS, target))  # the defaults' trial
        for _ in range(12):
            trial, params = _ask(study)
            study.tell(trial, -_distance(params, target))
        return study.best_value

    seeds = range(5)
    local = [
        best_after(LocalSearchSampler(SPACE, start_point(SPACE, DEFAULTS), seed=s)) for s in seeds
    ]
    tpe = [best_after(optuna.samplers.TPESampler(seed=s, n_startup_trials=5)) for s in seeds]
    assert sum(local) / len(local) > sum(tpe) / len(tpe)
    assert min(local) > -_distance(DEFAULTS, target)  # it always improved on the defaults


def test_a_cheap_family_far_behind_gets_few_trials() -> None:
    """k-NN at R² 0.86 beside boosting at 0.96: its trials are cheap, but the gap is large for
    the speed any family has improved at, so it is not drawn again and again."""

    def evaluate(trial, report):  # type: ignore[no-untyped-def]
        x = trial.params.get("x", 0.3)
        peak = {"boost": 0.96, "knn": 0.86}[trial.family]
        value = peak - 0.05 * abs(x - 0.7)
        report(0, value, 0.0)
        return value

    x = {"x": ParamRange(low=0.0, high=1.0)}
    families = [Family("knn", x, cost_rank=1), Family("boost", x, cost_rank=2)]
    result = budgeted_search(
        families, evaluate, budget=SearchBudget(trials=40), greater_is_better=True, seed=0
    )
    counts = {k: len(v) for k, v in result.by_family().items()}
    assert counts["boost"] >= 4 * counts["knn"]
    assert counts["knn"] >= 1


def test_a_study_with_no_finished_trial_steps_from_the_defaults() -> None:
    """A shared search's worker samples before any trial has finished (the lead runs the
    defaults): the first step starts at them."""
    sampler = LocalSearchSampler(SPACE, start_point(SPACE, DEFAULTS), seed=7)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    _, params = _ask(study)
    assert _distance(params, DEFAULTS) == pytest.approx(STEP * math.sqrt(3), rel=0.2)


def test_a_trial_that_crashes_is_not_left_running(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug inside a trial propagates, and the trial is recorded as failed, not running (a
    shared search's lead waits for running trials)."""
    studies: list[optuna.Study] = []
    create = optuna.create_study

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        studies.append(create(*args, **kwargs))
        return studies[-1]

    def evaluate(trial, report):  # type: ignore[no-untyped-def]
        if trial.params:
            raise RuntimeError("a bug")
        report(0, 0.5, 0.0)
        return 0.5

    monkeypatch.setattr(optuna, "create_study", spy)
    with pytest.raises(RuntimeError, match="a bug"):
        budgeted_search(
            [Family("f", {"x": ParamRange(low=0.0, high=1.0)})],
            evaluate,
            budget=SearchBudget(trials=3),
            greater_is_better=True,
            seed=0,
        )
    states = [t.state for t in studies[0].get_trials(deepcopy=False)]
    assert states == [optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL]
