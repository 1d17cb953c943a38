"""Search across model families under one budget.

One Optuna study per family (TPE sampler, median pruner on the running mean of the CV folds),
and a scheduler above them that decides which family gets the next trial. The scheduler
spends where improvement is cheapest, after FLAML's *estimated cost for improvement* (ECI):

- every family first gets one trial with its default parameters, cheapest families first
  (under a time budget, a family whose first trial would not end in time, or would take more
  than a tenth of the budget, guessed from the catalogue's cost ranks and the families tried
  so far, is left out);
- then each family's ECI is estimated from its own history: how long since it last improved,
  what a trial costs, and (for a family behind the leader) how long it would take to close
  the gap at the speed it has been improving;
- the next family is drawn at random with probability proportional to ``1 / ECI`` (seeded), so
  cheap, improving families get most trials and none is starved.

The budget is wall-clock time, trials, or both. Time is checked before every trial (a family
whose typical trial no longer fits is skipped) and between folds (a trial whose next fold
would end past the deadline is stopped), so a search ends close to its budget with the best
result so far. A search by trials alone, with the same seed, is reproducible.

The search knows nothing of tracking: :class:`TrialHook` callbacks let the pipeline record each
trial as a child run.

Several processes, on one machine or several, can share one search (:class:`SharedSearch`):
the families' studies then live in an Optuna storage that all of them reach (the store's
database), so each family's sampler learns from every process's trials, a budget of trials
counts them all, and the lead process ranks them all at the end (:func:`shared_trials`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from shipyard.errors import TrainingError
from shipyard.spec import ParamRange, ProjectSpec
from shipyard.train._catalogue import Catalogue

__all__ = [
    "Family",
    "SearchBudget",
    "SearchResult",
    "SharedSearch",
    "StopTrial",
    "Trial",
    "TrialHook",
    "TrialResult",
    "budgeted_search",
    "search_families",
    "shared_trials",
    "trial_folds",
]

logger = logging.getLogger(__name__)

_UNKNOWN_SPEED_TRIALS = 4  # a family behind that has not improved yet: worth about 4 trials
_PRUNED, _TIMEOUT = "pruned", "timeout"  # how a trial was stopped (its state)


@dataclass(frozen=True)
class Family:
    """One model family to search.

    Attributes:
        key: its catalogue key.
        space: its parameter ranges (empty: only its defaults are tried, once).
        cost_rank: its place in the first, default-parameter pass (cheaper first).
        defaults: its estimator's default parameters, where the local search starts
            (:class:`~shipyard.train._local.LocalSearchSampler`); a parameter missing here
            starts in the middle of its range.
    """

    key: str
    space: Mapping[str, ParamRange]
    cost_rank: int = 0
    defaults: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SearchBudget:
    """When the search stops: wall-clock seconds, trials, or both (the first reached)."""

    seconds: float | None = None
    trials: int | None = None

    def __post_init__(self) -> None:
        if self.seconds is None and self.trials is None:
            msg = "a search budget needs seconds, trials, or both"
            raise ValueError(msg)


@dataclass(frozen=True)
class SharedSearch:
    """A search shared by several processes through one Optuna storage.

    Attributes:
        storage: the Optuna storage every process reaches (``Store.study_storage()``).
        name: the search's name; each family's study is ``<name>/<family>``.
        worker: this process's name (recorded on its trials; seeds its samplers apart).
        lead: the lead tries each family's defaults and the project file's candidates; the
            other workers only sample, so that no trial is run twice.
    """

    storage: Any
    name: str
    worker: str
    lead: bool = True

    def study_name(self, family: str) -> str:
        """The Optuna study of one family."""
        return f"{self.name}/{family}"


@dataclass(frozen=True)
class Trial:
    """One trial handed to the evaluation function.

    Attributes:
        number: its number in the whole search, from 0 (in this process).
        family: the family's key.
        params: the parameters to try (empty: the family's defaults).
        deadline: ``time.monotonic()`` past which no fold may end; ``None``: no time limit.
        attrs: what the evaluation wants kept with the trial (a shared search stores it in
            the study, for the lead to rank every process's trials): JSON-serialisable.
    """

    number: int
    family: str
    params: dict[str, Any]
    deadline: float | None
    attrs: dict[str, Any] = field(default_factory=dict)


class StopTrial(Exception):
    """Raised by a trial's ``report`` to stop it: pruned, or out of time."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


Report = Callable[[int, float, float], None]
"""``report(fold, score, next_fold_seconds)``: a fold's score, and how long the next fold is
expected to take (``0`` after the last fold: a trial that has run every fold is complete,
whatever the time); raises :class:`StopTrial` to stop."""

Evaluate = Callable[[Trial, Report], float]
"""``evaluate(trial, report) -> mean CV score`` (``nan`` for a failed fit)."""


@dataclass(frozen=True)
class TrialResult:
    """What one trial gave.

    Attributes:
        number: its number in the search.
        family: the family's key.
        params: the parameters tried.
        score: the mean CV score (``None`` when it was stopped before its last fold).
        seconds: how long it took.
        state: ``complete``, ``pruned`` (behind the others at a fold), ``timeout`` (stopped at
            the deadline) or ``failed`` (the estimator refused; ``error`` says why).
        error: the failure, for ``failed``.
    """

    number: int
    family: str
    params: dict[str, Any]
    score: float | None
    seconds: float
    state: str
    error: str | None = None


@dataclass(frozen=True)
class SearchResult:
    """Every trial, and the best complete one.

    Attributes:
        trials: every trial, in the order they ran.
        best: the best complete trial (``None`` only for a shared search's worker that
            finished none: the lead ranks every process's trials).
        seconds: the whole search's wall time.
        stopped_by: ``time``, ``trials`` or ``exhausted`` (every family has only defaults).
    """

    trials: list[TrialResult]
    best: TrialResult | None
    seconds: float
    stopped_by: str

    def by_family(self) -> dict[str, list[TrialResult]]:
        """The trials of each family, in order."""
        out: dict[str, list[TrialResult]] = {}
        for t in self.trials:
            out.setdefault(t.family, []).append(t)
        return out


class TrialHook(Protocol):
    """Called around each trial (the pipeline records them as child runs)."""

    def __call__(self, trial: Trial, result: TrialResult | None) -> None:
        """``result`` is ``None`` when the trial starts."""
        ...


@dataclass
class _FamilyState:
    family: Family
    study: Any
    n: int = 0
    seconds: float = 0.0  # its cost so far: seconds, or folds under a budget of trials alone
    best: float = -math.inf
    first: float | None = None
    since_improved: float = 0.0  # seconds spent since its best was found
    queue: list[dict[str, Any]] = field(default_factory=list)  # fixed parameters to try first

    @property
    def exhausted(self) -> bool:
        """Nothing left to try: no space, and the fixed trials are done."""
        return not self.family.space and not self.queue

    @property
    def cost(self) -> float:
        return self.seconds / self.n if self.n else 0.0

    @property
    def speed(self) -> float:
        """How fast it has improved: score gained per second (0: not yet)."""
        gained = self.best - (self.first if self.first is not None else self.best)
        return gained / self.seconds if gained > 0 and self.seconds > 0 else 0.0

    def eci(self, leader: float, fastest: float = 0.0) -> float:
        """Estimated cost for improvement (seconds); ``fastest``: the fastest any family has
        improved (score per second; 0 when none has)."""
        if self.n == 0:
            return 0.0
        base = max(self.since_improved, self.cost)
        if self.best >= leader:
            return base
        gap = leader - self.best
        if self.speed > 0:  # it has been improving: the time to close the gap at that speed
            return max(base, gap / self.speed)
        # no speed measured yet: a few of its trials, and more the longer it has not improved
        # (twice its time so far, as FLAML doubles a stalled learner's estimate), and no less
        # than closing the gap as fast as any family has improved, so that a family far
        # behind (k-NN at R² 0.86 beside boosting at 0.96) is not tried again and again
        # because its trials are cheap
        gap_time = max(_UNKNOWN_SPEED_TRIALS * self.cost, 2.0 * self.seconds)
        if fastest > 0:
            gap_time = max(gap_time, gap / fastest)
        return max(base, gap_time)


def budgeted_search(
    families: Sequence[Family],
    evaluate: Evaluate,
    *,
    budget: SearchBudget,
    greater_is_better: bool,
    seed: int = 0,
    hook: TrialHook | None = None,
    starts: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
    reserve: Callable[[TrialResult], float] | None = None,
    shared: SharedSearch | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> SearchResult:
    """Search the families' parameter spaces under ``budget``.

    Args:
        families: the families, each with its space.
        evaluate: runs one trial (cross-validation), calling ``report`` after each fold.
        budget: wall-clock seconds and/or a number of trials.
        greater_is_better: the direction of the score.
        seed: seeds the samplers and the scheduler.
        hook: called when each trial starts and ends.
        starts: parameters to try first per family (the project file's candidates); each
            family's defaults are tried first anyway.
        reserve: the seconds to keep, out of a time budget, for what follows the search,
            given the best trial so far (its refit above all); the search ends that much
            before the budget's end. The first complete trial runs whatever the time.
        shared: share the families' studies with other processes (see :class:`SharedSearch`);
            a budget of trials then counts every process's trials.
        should_stop: asked before each trial; ``True`` ends the search (a worker whose lead
            has finished).

    Returns:
        Every trial and the best.

    Raises:
        TrainingError: no family gave a complete trial (every one failed, or the budget
            ended before any finished).
    """
    import optuna

    from shipyard.train._local import LocalSearchSampler, start_point  # imports optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if not families:
        msg = "a search needs at least one model family"
        raise TrainingError(msg)
    sign = 1.0 if greater_is_better else -1.0
    started = time.monotonic()
    deadline = None if budget.seconds is None else started + budget.seconds
    rng = random.Random(seed)
    states = []
    offset = 0 if shared is None or shared.lead else _worker_offset(shared.worker)
    for i, fam in enumerate(sorted(families, key=lambda f: f.cost_rank)):
        study = optuna.create_study(
            direction="maximize",
            sampler=LocalSearchSampler(
                fam.space, start_point(fam.space, fam.defaults), seed=seed + i + offset
            ),
            pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1),
            storage=None if shared is None else shared.storage,
            study_name=None if shared is None else shared.study_name(fam.key),
            load_if_exists=shared is not None,
        )
        # the family's defaults first, then the project file's candidates, as they are (in a
        # shared search, by the lead only)
        queue = [{}, *(dict(p) for p in (starts or {}).get(fam.key, ()) if p)]
        if shared is not None and not shared.lead:
            queue = []
        states.append(_FamilyState(fam, study, queue=queue))
    trials: list[TrialResult] = []
    best: TrialResult | None = None
    stopped_by = "trials"
    while True:
        if budget.trials is not None and _count(trials, states, shared) >= budget.trials:
            stopped_by = "trials"
            break
        if should_stop is not None and should_stop():
            stopped_by = "lead"
            break
        now = time.monotonic()
        # the search ends early enough for what follows it (the refit of the best, the run's
        # last steps); until one trial is complete, it runs on, so that there is a model
        end = None
        if deadline is not None and best is not None:
            end = deadline - (reserve(best) if reserve is not None else 0.0)
        if end is not None and now >= end:
            stopped_by = "time"
            break
        state = _next_family(
            states, rng, end, now, sampling_only=shared is not None, budget=budget.seconds
        )
        if state is None:
            stopped_by = "time" if end is not None and now < end else "exhausted"
            if all(s.exhausted for s in states):
                stopped_by = "exhausted"
            break
        result = _run_trial(
            state, len(trials), evaluate, sign, end, hook, timed=deadline, shared=shared
        )
        trials.append(result)
        if result.state == "complete" and (
            best is None or sign * float(result.score or 0.0) > sign * float(best.score or 0.0)
        ):
            best = result
    complete = [t for t in trials if t.state == "complete" and t.score is not None]
    if not complete and shared is not None and not shared.lead:
        return SearchResult(trials, None, time.monotonic() - started, stopped_by)
    if not complete:
        failed = [f"{t.family}: {t.error}" for t in trials if t.error][:3]
        why = f"; failures: {failed}" if failed else ""
        msg = (
            f"the search ran {len(trials)} trial(s) in {time.monotonic() - started:.1f} s and "
            f"none finished{why}; give it a larger budget or other families"
        )
        raise TrainingError(msg)
    assert best is not None
    return SearchResult(trials, best, time.monotonic() - started, stopped_by)


#: Above this many cells (rows x inputs) per hour of budget, or this many rows, ``folds: auto``
#: evaluates each trial on one fold: FLAML's rule for choosing a holdout over cross-validation.
HOLDOUT_CELLS_PER_HOUR = 10_000_000
HOLDOUT_ROWS = 100_000


def trial_folds(
    setting: int | str, *, cv_folds: int, n_rows: int, n_inputs: int, budget: float | None
) -> int:
    """How many of the ``cv_folds`` folds each trial runs (``search.folds``).

    ``auto``: every fold when the table is small for the budget, one (a holdout of
    ``1 / cv_folds`` of the training rows) when it has ``HOLDOUT_ROWS`` rows or more, or, under
    a time budget, more than ``HOLDOUT_CELLS_PER_HOUR`` cells per hour of it: there, a trial
    on every fold costs so much of the budget that more trials on one fold find better models.
    An integer runs that many folds (at most ``cv_folds``).
    """
    if setting != "auto":
        return max(1, min(int(setting), cv_folds))
    if n_rows >= HOLDOUT_ROWS:
        return 1
    if budget is not None and n_rows * n_inputs / 0.9 >= HOLDOUT_CELLS_PER_HOUR * budget / 3600:
        return 1
    return cv_folds


def _worker_offset(worker: str) -> int:
    """A worker's sampler seeds, apart from the lead's and each other's (stable per name)."""
    return 1_000 * (1 + int(hashlib.sha256(worker.encode()).hexdigest()[:8], 16) % 1_000_000)


def _count(
    trials: Sequence[TrialResult], states: Sequence[_FamilyState], shared: SharedSearch | None
) -> int:
    """Trials run so far: this process's, or every process's in a shared search (running
    ones included, so that two processes do not both start the last one)."""
    if shared is None:
        return len(trials)
    return sum(len(s.study.get_trials(deepcopy=False)) for s in states)


def _next_family(
    states: list[_FamilyState],
    rng: random.Random,
    deadline: float | None,
    now: float,
    *,
    sampling_only: bool = False,
    budget: float | None = None,
) -> _FamilyState | None:
    """The family to try next: untried families first (cheapest first), then drawn with
    probability ``1 / ECI`` among those whose typical trial still fits the time left.
    An untried family whose first trial, as guessed, would not end in time, or would take
    more than ``FIRST_TRIAL_SHARE`` of the whole ``budget`` (so slow that the budget holds
    only a few of its trials), is left out.
    (In a shared search, a family with nothing left to try in this process still counts as
    open only when it has a space to sample.)"""
    open_ = [s for s in states if not s.exhausted]
    if sampling_only:
        open_ = [s for s in open_ if s.queue or s.family.space]
    left = None if deadline is None else deadline - now
    for s in open_:
        if s.n == 0:
            guess = None if left is None else _first_cost(s, states)
            if guess is None or left is None:
                return s
            if guess <= left and (budget is None or guess <= FIRST_TRIAL_SHARE * budget):
                return s
    open_ = [s for s in open_ if s.n > 0]  # an untried family left now would not end in time
    if left is not None:
        open_ = [s for s in open_ if s.cost <= left]
    if not open_:
        return None
    leader = max(s.best for s in states)
    fastest = max(s.speed for s in states)
    weights = [1.0 / max(s.eci(leader, fastest), 1e-6) for s in open_]
    return rng.choices(open_, weights=weights, k=1)[0]


#: The largest share of a time budget an untried family's first trial may take (guessed).
FIRST_TRIAL_SHARE = 0.1


def _first_cost(state: _FamilyState, states: Sequence[_FamilyState]) -> float | None:
    """An untried family's first trial, in seconds, guessed from the catalogue's cost ranks
    (roughly proportional to fit time) and the costliest family tried so far; ``None`` when
    there is nothing to guess from."""
    rank = state.family.cost_rank
    measured = [t for t in states if t.n > 0 and t.family.cost_rank > 0 and t.cost > 0]
    if rank <= 0 or not measured:
        return None
    ref = max(measured, key=lambda t: t.family.cost_rank)
    return ref.cost * rank / ref.family.cost_rank


def _run_trial(
    state: _FamilyState,
    number: int,
    evaluate: Evaluate,
    sign: float,
    deadline: float | None,
    hook: TrialHook | None,
    *,
    timed: float | None,
    shared: SharedSearch | None = None,
) -> TrialResult:
    import optuna

    fam = state.family
    otrial = state.study.ask()
    try:
        params = state.queue.pop(0) if state.queue else _suggest(otrial, fam.space)
    except BaseException:
        # never leave a trial running in the study: a shared search's lead waits for those
        state.study.tell(otrial, state=optuna.trial.TrialState.FAIL)
        raise
    trial = Trial(number, fam.key, params, deadline)
    # what was tried (a queued trial suggests nothing): the local search steps from it, and
    # the lead of a shared search ranks every process's trials with it
    otrial.set_user_attr("params", _jsonable(params))
    if shared is not None:
        otrial.set_user_attr("worker", shared.worker)
    if hook is not None:
        hook(trial, None)
    started = time.monotonic()
    fold_scores: list[float] = []

    def report(fold: int, score: float, next_fold_seconds: float) -> None:
        fold_scores.append(sign * score)
        running = sum(fold_scores) / len(fold_scores)
        if math.isfinite(running):
            otrial.report(running, fold)
            if otrial.should_prune():
                raise StopTrial(_PRUNED)
        if (
            deadline is not None
            and next_fold_seconds > 0
            and time.monotonic() + next_fold_seconds > deadline
        ):
            raise StopTrial(_TIMEOUT)

    state_name, score, error = "complete", None, None
    try:
        score = float(evaluate(trial, report))
    except StopTrial as stop:
        state_name = stop.reason
    except TrainingError as exc:
        state_name, error = "failed", str(exc)
    except BaseException:  # a bug or an interrupt: recorded as failed, then raised
        state.study.tell(otrial, state=optuna.trial.TrialState.FAIL)
        raise
    seconds = time.monotonic() - started
    if state_name == "complete" and (score is None or not math.isfinite(score)):
        state_name, error = "failed", error or "the score is not a finite number"
    if shared is not None:
        otrial.set_user_attr("seconds", seconds)
        for key, value in trial.attrs.items():
            otrial.set_user_attr(key, _jsonable(value))
    if state_name == "complete":
        assert score is not None
        state.study.tell(otrial, sign * score)
    elif state_name == "failed":
        state.study.tell(otrial, state=optuna.trial.TrialState.FAIL)
    else:
        state.study.tell(otrial, state=optuna.trial.TrialState.PRUNED)
    # the scheduler's cost: seconds under a time budget; under trials alone, folds run, so
    # that the same seed makes the same choices whatever the machine's speed
    cost = seconds if timed is not None else float(max(len(fold_scores), 1))
    _account(state, cost, None if state_name != "complete" else sign * float(score or 0.0))
    result = TrialResult(number, fam.key, params, score, seconds, state_name, error)
    if hook is not None:
        hook(trial, result)
    return result


def _account(state: _FamilyState, cost: float, value: float | None) -> None:
    state.n += 1
    state.seconds += cost
    state.since_improved += cost
    if value is None:
        return
    if state.first is None:
        state.first = value
    if value > state.best:
        state.best = value
        state.since_improved = 0.0


def _jsonable(value: Any) -> Any:
    """``value`` with numpy scalars and tuples made plain, for Optuna's JSON user attrs."""
    return json.loads(
        json.dumps(value, default=lambda v: v.item() if hasattr(v, "item") else str(v))
    )


@dataclass(frozen=True)
class SharedTrial:
    """A complete trial of a shared search, from whichever process ran it.

    Attributes:
        family: the family's key.
        params: the parameters it tried.
        score: its mean CV score.
        worker: the process that ran it.
        attrs: what its evaluation kept (see :attr:`Trial.attrs`).
    """

    family: str
    params: dict[str, Any]
    score: float
    worker: str
    attrs: dict[str, Any]


def shared_trials(
    shared: SharedSearch,
    families: Sequence[Family],
    *,
    greater_is_better: bool,
    wait: float = 0.0,
) -> list[SharedTrial]:
    """Every complete trial of a shared search, from every process.

    Args:
        shared: the search.
        families: its families.
        greater_is_better: the direction of the score.
        wait: seconds to wait for other processes' running trials to end (they are left
            out if they are still running then).
    """
    import optuna

    sign = 1.0 if greater_is_better else -1.0
    studies = []
    for fam in families:
        try:
            studies.append(
                optuna.load_study(study_name=shared.study_name(fam.key), storage=shared.storage)
            )
        except KeyError:  # no process tried this family
            continue
    running = optuna.trial.TrialState.RUNNING
    until = time.monotonic() + wait
    while any(t.state == running for st in studies for t in st.get_trials(deepcopy=False)):
        if time.monotonic() >= until:
            break
        time.sleep(0.2)
    out = []
    for study in studies:
        family = study.study_name.split("/")[-1]
        for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
            attrs = dict(t.user_attrs)
            out.append(
                SharedTrial(
                    family=family,
                    params=dict(attrs.pop("params", t.params)),
                    score=sign * float(t.value if t.value is not None else math.nan),
                    worker=str(attrs.pop("worker", "")),
                    attrs=attrs,
                )
            )
    return out


def _suggest(trial: Any, space: Mapping[str, ParamRange]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for name, r in space.items():
        if r.choices is not None:
            params[name] = trial.suggest_categorical(name, r.choices)
        elif r.integer:
            assert r.low is not None and r.high is not None
            params[name] = trial.suggest_int(name, int(r.low), int(r.high), log=r.log)
        else:
            assert r.low is not None and r.high is not None
            params[name] = trial.suggest_float(name, r.low, r.high, log=r.log)
    return params


def search_families(
    spec: ProjectSpec, task: str, catalogue: Catalogue, *, n_rows: int | None = None
) -> list[Family]:
    """The families ``spec.search`` explores, each with its space: the catalogue's ranges,
    overridden by ``search.spaces``, kept to the parameters its estimator has. Without
    ``search.families``, the catalogue's searched families whose ``max_rows`` admit a
    training part of ``n_rows`` rows (SVM and k-NN stay to small tables).

    Raises:
        TrainingError: a family is unknown or does not do the task, a space names a family
            not searched or a parameter its estimator does not have (with the line).
    """
    search = spec.search
    assert search is not None
    if search.families is not None:
        keys = [(k, spec.locate("search", "families", i)) for i, k in enumerate(search.families)]
    else:
        keys = [(e.key, spec.locate("search")) for e in catalogue.searched(task, n_rows=n_rows)]
    problems: list[str] = []
    families: list[Family] = []
    for key, where in keys:
        try:
            entry = catalogue.get(key, where=where)
        except TrainingError as exc:
            problems.append(str(exc))
            continue
        if task not in entry.tasks:
            problems.append(f"{where}: model {key!r} does not support task {task!r}")
            continue
        try:
            valid = catalogue.create(key, task, seed=spec.seed, params={}, where=where)
        except TrainingError as exc:  # an optional library that is not installed
            problems.append(str(exc))
            continue
        valid = valid.get_params(deep=False)
        space = {name: r for name, r in entry.space.items() if name in valid}
        for name, r in search.spaces.get(key, {}).items():
            if name not in valid:
                where_param = spec.locate("search", "spaces", key, name)
                problems.append(f"{where_param}: {key} has no parameter {name!r}")
            space[name] = r
        families.append(Family(key, space, entry.cost_rank, defaults=valid))
    searched = {f.key for f in families} | {k for k, _ in keys}
    for key in search.spaces:
        if key not in searched:
            where = spec.locate("search", "spaces", key)
            problems.append(
                f"{where}: {key!r} is not among the searched families {sorted(searched)}"
            )
    if problems:
        raise TrainingError("; ".join(problems))
    return families
