"""The run's training step: cross-validate the project file's candidates, or search the model
families under a budget (alone or shared with other processes), then weigh an ensemble."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from shipyard.evaluate import greater_is_better
from shipyard.pipeline._context import Prepared, RunContext, build_pipeline
from shipyard.pipeline._events import Event, EventHandler
from shipyard.pipeline._report import CARD_SHARE
from shipyard.pipeline._result import CandidateResult
from shipyard.spec import ProjectSpec
from shipyard.tracking import Run, Tracker
from shipyard.train import (
    Catalogue,
    FoldEngine,
    SearchBudget,
    StopTrial,
    Trial,
    budgeted_search,
    cross_validate,
    ensemble_pipeline,
    refit_factor,
    search_families,
    select_ensemble,
    selection_score,
    trial_folds,
)
from shipyard.train._search import SharedSearch, TrialResult, shared_trials

__all__ = ["SEARCH_WAIT_SECONDS", "Trained", "search_trials", "train_candidates"]

_ENSEMBLE_POOL = 8  # the best candidates whose out-of-fold predictions an ensemble draws on
_HOLDOUT_PARTS = 3  # the parts of a one-fold search's holdout in the ensemble's nested selection

SEARCH_WAIT_SECONDS = 600.0
"""How long the lead of a shared search by trials waits for other processes' last trials."""


@dataclass(frozen=True)
class Trained:
    """What the training step gives the rest of the run.

    Attributes:
        candidates: best first (an ensemble among them when it earned its place; the best
            one's estimator is in ``prepared.estimators``).
        search: the search's summary (``None`` without a search).
        oof: the best candidate's out-of-fold predictions on the training part (for the
            decision threshold), when this process has them.
    """

    candidates: list[CandidateResult]
    search: dict[str, Any] | None
    oof: np.ndarray | None


def train_candidates(ctx: RunContext, shared: SharedSearch | None = None) -> Trained:
    """Train the run's candidates: the project file's, or a search's trials (``search:``)."""
    pool: dict[str, np.ndarray] = {}
    if ctx.spec.search is not None:
        ranked, summary = _search_all(ctx, shared, pool)
    else:
        ranked, summary = _cross_validate_all(ctx, pool), None
    return Trained(ranked, summary, pool.get(ranked[0].label))


def _cross_validate_all(ctx: RunContext, pool: dict[str, np.ndarray]) -> list[CandidateResult]:
    prepared = ctx.prepared
    results = [_cross_validate_one(ctx, i, pool) for i in range(len(ctx.spec.models))]
    ranked = _ranked(results, prepared.metric)
    members = {
        c.label: build_pipeline(ctx.spec, prepared, prepared.estimators[c.label], warn=ctx.warn)
        for c in ranked
    }
    return _with_ensemble(ctx, ranked, pool, members)


def _ranked(results: list[CandidateResult], metric: str) -> list[CandidateResult]:
    """Best first by CV mean; ties keep their order (the project file's)."""
    sign = 1.0 if greater_is_better(metric) else -1.0
    return sorted(results, key=lambda r: -sign * _finite(r.cv_mean[metric]))


def _with_ensemble(
    ctx: RunContext,
    ranked: list[CandidateResult],
    pool: dict[str, np.ndarray],
    members: Mapping[str, Any],
    deadline: float | None = None,
) -> list[CandidateResult]:
    """Add a weighted ensemble of the best candidates (see :func:`select_ensemble`) to the
    ranking, as one more candidate with its own nested CV score and child run; it wins only
    when that score beats picking the best single candidate, scored the same way
    (:func:`shipyard.train.selection_score`; on one fold, the best one's score). ``pool``
    holds candidates' out-of-fold predictions, ``members`` their unfitted pipelines. Under a
    time budget (``deadline``, ``time.monotonic()``), only candidates whose refits fit the
    time left (the best's always) are weighed, and an ensemble whose refit (every member's)
    would still end past it is left out, and the run says so."""
    prepared, on_event = ctx.prepared, ctx.on_event
    chosen = [c for c in ranked if c.label in pool][:_ENSEMBLE_POOL]
    if not ctx.spec.ensemble:
        ctx.run.set_tags({"ensemble": "off (ensemble: false)"})
        return ranked
    if len(chosen) < 2:
        return ranked
    if deadline is not None and time.monotonic() >= deadline:
        on_event(Event("warning", "no ensemble: the budget is spent"))
        ctx.run.set_tags({"ensemble": "skipped: the budget is spent"})
        return ranked
    refit_all = ctx.spec.split.refit == "all"  # on the training part, then on every row
    cv_folds, test_size = len(prepared.folds), ctx.spec.split.test_size

    budget = ctx.spec.search.budget if ctx.spec.search is not None else None

    def time_needed(members: list[CandidateResult]) -> float:
        return _ensemble_seconds(
            [Member(c.model, _fold_seconds(c), c.trees) for c in members],
            budget or 0.0,
            cv_folds=cv_folds,
            test_size=test_size,
            refit_all=refit_all,
        )

    selecting = selection_seconds(budget or 0.0)
    if deadline is not None:  # only members whose refits fit the time left (the best's does)
        room = deadline - time.monotonic() - selecting
        affordable: list[CandidateResult] = []
        for c in chosen:
            more = [*affordable, c]
            estimate = [Member(m.model, _fold_seconds(m), m.trees) for m in more]
            fits = time_needed(more) <= room and _converts_in_time(estimate, budget or 0.0)
            if not affordable or fits:
                affordable.append(c)
        if len(affordable) < 2:
            why = "no other candidate's refit fits the time left"
            on_event(Event("warning", f"no ensemble: {why}"))
            ctx.run.set_tags({"ensemble": f"skipped: {why}"})
            return ranked
        chosen = affordable
    metric = prepared.metric
    on_event(Event("step", f"weighing an ensemble of the best {len(chosen)} candidates"))
    # the folds the candidates ran (a search on a large table runs one: its parts then stand
    # in for folds in the nested selection, and the ensemble is scored on the whole fold)
    held = [rows for _, rows in prepared.folds[: min(len(c.cv_folds) for c in chosen)]]
    pooled = len(held) == 1
    if pooled:
        held = np.array_split(held[0], _HOLDOUT_PARTS)
    choice = select_ensemble(
        {c.label: pool[c.label] for c in chosen},
        prepared.y.iloc[prepared.train_idx].to_numpy(),
        held,
        task=prepared.task,
        metric=metric,
        classes=prepared.signature.classes,
        pooled=pooled,
        deadline=None if deadline is None else time.monotonic() + selecting,
    )
    if choice is None:
        return ranked
    fit_seconds = {c.label: _fold_seconds(c) for c in chosen}
    needed = time_needed([c for c in chosen if c.label in choice.weights])
    if deadline is not None and time.monotonic() + needed > deadline:  # a slow selection
        why = (
            f"its refits and the steps after them (about {needed:.0f} s) would end past the budget"
        )
        on_event(Event("warning", f"no ensemble: {why}"))
        ctx.run.set_tags({"ensemble": f"skipped: {why}"})
        return ranked
    taken = {c.label for c in ranked}
    label = next(n for n in ("ensemble", "ensemble*", "ensemble**") if n not in taken)
    with ctx.tracker.start_run(label, project=ctx.project, parent_id=ctx.run.id) as child:
        child.log_params(
            {"model": "ensemble"} | {f"weight.{k}": round(w, 4) for k, w in choice.weights.items()}
        )
        for fold, value in enumerate(choice.fold_scores):
            child.log_metrics({f"fold.{metric}": value}, step=fold)
        child.log_metrics({f"cv.{metric}": choice.mean, f"cv.{metric}.std": choice.std})
    ensemble = CandidateResult(
        label=label,
        model="ensemble",
        run_id=child.id,
        cv_mean={metric: choice.mean},
        cv_std={metric: choice.std},
        fit_seconds=sum(fit_seconds[k] for k in choice.weights) * len(choice.fold_scores),
        cv_folds=[{metric: value} for value in choice.fold_scores],
        params=dict(choice.weights),
        trees=sum(c.trees for c in chosen if c.label in choice.weights),
    )
    prepared.estimators[label] = ensemble_pipeline(
        prepared.task, {k: members[k] for k in choice.weights}, choice.weights
    )
    total = sum(choice.weights.values())  # its out-of-fold predictions, as it averages them
    pool[label] = np.sum([w / total * pool[k] for k, w in choice.weights.items()], axis=0)
    # its nested score against picking the best single candidate, scored the same way (the
    # best one's own mean flatters it); on one fold, against that mean
    single = selection_score(
        {c.label: [f.get(metric, np.nan) for f in c.cv_folds] for c in ranked},
        greater_is_better=greater_is_better(metric),
    )
    if single is None:
        return _ranked([*ranked, ensemble], metric)
    sign = 1.0 if greater_is_better(metric) else -1.0
    wins = sign * choice.mean > sign * single
    verdict = "chosen" if wins else "not chosen"
    ctx.run.set_tags(
        {
            "ensemble": f"{verdict}: nested {metric} {choice.mean:.4f}, picking the best single "
            f"candidate {single:.4f} (its own mean {ranked[0].cv_mean[metric]:.4f})"
        }
    )
    if wins:
        return [ensemble, *ranked]
    return [ranked[0], *_ranked([*ranked[1:], ensemble], metric)]


def _cross_validate_one(
    ctx: RunContext, index: int, pool: dict[str, np.ndarray]
) -> CandidateResult:
    cand = ctx.spec.models[index]
    estimator = ctx.prepared.estimators[cand.label]  # built and checked by preflight
    n_folds = len(ctx.prepared.folds)
    ctx.on_event(Event("candidate", f"cross-validating {cand.label}", index, len(ctx.spec.models)))
    with ctx.tracker.start_run(cand.label, project=ctx.project, parent_id=ctx.run.id) as child:
        child.log_params({"model": cand.model, **{f"param.{k}": v for k, v in cand.params.items()}})

        def on_fold(fold: int, scores: dict[str, float]) -> None:
            ctx.on_event(Event("fold", f"{cand.label}: fold {fold + 1}", fold + 1, n_folds))

        pipeline = build_pipeline(ctx.spec, ctx.prepared, estimator, warn=ctx.warn)
        result = _cross_validate_in(
            child, ctx.prepared, pipeline, cand.label, cand.model, on_fold, engine=ctx.engine
        )
    if result.predictions is not None:
        pool[cand.label] = result.predictions
    return result.candidate


@dataclass(frozen=True)
class _Validated:
    candidate: CandidateResult
    predictions: np.ndarray | None  # out of fold, for the ensemble


def _cross_validate_in(
    child: Run,
    prepared: Prepared,
    pipeline: Any,
    label: str,
    model: str,
    on_fold: Callable[[int, dict[str, float]], None],
    params: Mapping[str, Any] | None = None,
    folds: int | None = None,
    engine: FoldEngine | None = None,
) -> _Validated:
    """Cross-validate ``pipeline`` (unfitted) on the training part, recording each fold's
    metrics and the means in ``child`` (an exception from ``on_fold``, such as a stopped
    trial, ends it before the means are recorded); on the first ``folds`` folds only when
    given; the folds fitted by ``engine`` (in this process by default)."""

    def record_fold(fold: int, scores: dict[str, float]) -> None:
        child.log_metrics({f"fold.{k}": v for k, v in scores.items()}, step=fold)
        on_fold(fold, scores)

    x, y = prepared.train_part
    cv_result = cross_validate(
        pipeline,
        x,
        y,
        cv=prepared.folds if folds is None else prepared.folds[:folds],
        task=prepared.task,
        classes=prepared.signature.classes,
        on_fold=record_fold,
        keep_predictions=True,
        engine=engine,
    )
    child.log_metrics({f"cv.{k}": v for k, v in cv_result.mean.items()})
    child.log_metrics({f"cv.{k}.std": v for k, v in cv_result.std.items()})
    child.log_metrics({"fit_seconds": cv_result.fit_seconds})
    candidate = CandidateResult(
        label=label,
        model=model,
        run_id=child.id,
        cv_mean=cv_result.mean,
        cv_std=cv_result.std,
        fit_seconds=cv_result.fit_seconds,
        cv_folds=cv_result.folds,
        params=dict(params or {}),
        trees=cv_result.trees,
    )
    return _Validated(candidate, cv_result.predictions)


@dataclass(frozen=True)
class _Trials:
    """What one process's search found: its complete trials as candidates, and the
    out-of-fold predictions of the best few (for the ensemble)."""

    results: dict[str, CandidateResult]
    pool: dict[str, np.ndarray]
    outcome: Any  # the SearchResult
    folds: int  # how many folds each trial ran


def search_trials(
    spec: ProjectSpec,
    prepared: Prepared,
    *,
    catalogue: Catalogue,
    tracker: Tracker,
    on_event: EventHandler,
    warn: Callable[[str], None],
    budget: SearchBudget,
    parent_id: str,
    shared: SharedSearch | None = None,
    should_stop: Callable[[], bool] | None = None,
    engine: FoldEngine | None = None,
) -> _Trials:
    """Run the search's trials in this process, each a child run of ``parent_id``: the whole
    search, or a worker's share of a shared one; each trial's folds fitted by ``engine`` (in
    this process by default)."""
    search = spec.search
    assert search is not None
    metric, task = prepared.metric, prepared.task
    families = search_families(spec, task, catalogue, n_rows=len(prepared.train_idx))
    results: dict[str, CandidateResult] = {}
    pool: dict[str, np.ndarray] = {}
    n_folds = search_folds(spec, prepared)
    prefix = "" if shared is None or shared.lead else f"{shared.worker}."

    def evaluate(trial: Trial, report: Callable[[int, float, float], None]) -> float:
        label = f"{trial.family}#{prefix}{trial.number}"
        estimator = catalogue.create(
            trial.family, task, seed=spec.seed, params=trial.params, where="search"
        )
        on_event(Event("candidate", f"trial {trial.number}: {trial.family}", trial.number, 0))
        stopped: StopTrial | None = None
        with tracker.start_run(label, project=spec.name, parent_id=parent_id) as child:
            child.log_params(
                {"model": trial.family, "trial": trial.number}
                | {f"param.{k}": v for k, v in trial.params.items()}
            )
            last = [time.perf_counter()]

            def on_fold(fold: int, scores: dict[str, float]) -> None:
                now = time.perf_counter()
                seconds, last[0] = now - last[0], now
                # the next fold should take as long as this one; after the last, there is none
                report(fold, scores[metric], seconds if fold + 1 < n_folds else 0.0)

            try:
                pipeline = build_pipeline(spec, prepared, estimator, warn=warn)
                validated = _cross_validate_in(
                    child,
                    prepared,
                    pipeline,
                    label,
                    trial.family,
                    on_fold,
                    trial.params,
                    n_folds,
                    engine,
                )
            except StopTrial as stop:  # pruned or out of time: the run itself went fine
                child.set_tags({"trial_state": stop.reason})
                stopped = stop
            else:
                child.set_tags({"trial_state": "complete"})
        if stopped is not None:
            raise stopped
        candidate = validated.candidate
        results[label] = candidate
        trial.attrs.update(
            label=label,
            run_id=candidate.run_id,
            cv_mean=candidate.cv_mean,
            cv_std=candidate.cv_std,
            cv_folds=candidate.cv_folds,
            fit_seconds=candidate.fit_seconds,
            trees=candidate.trees,
        )
        if validated.predictions is not None:  # the best few stay, for the ensemble
            pool[label] = validated.predictions
            if len(pool) > _ENSEMBLE_POOL:
                ranked_now = _ranked([results[k] for k in pool], metric)
                del pool[ranked_now[-1].label]
        return candidate.cv_mean[metric]

    def reserve(best: TrialResult) -> float:  # the refits of the best and of a few more
        best_label = f"{best.family}#{prefix}{best.number}"
        others = _ranked([results[k] for k in pool if k != best_label and k in results], metric)
        if not spec.ensemble:  # no ensemble to keep room for
            others = []
        found = results.get(best_label)
        # its fits' time per fold, as for the others and the ensemble step (the trial's wall
        # time adds the folds' scoring and records: on hotel_rates 2.2 s for a 1.5 s fit)
        best_member = (
            Member(found.model, _fold_seconds(found), found.trees)
            if found is not None
            else Member(best.family, best.seconds / n_folds)
        )
        return _post_search_seconds(
            best_member,
            [Member(c.model, _fold_seconds(c), c.trees) for c in others],
            search.budget or 0.0,
            cv_folds=len(prepared.folds),
            test_size=spec.split.test_size,
            refit_all=spec.split.refit == "all",
        )

    starts: dict[str, list[dict[str, Any]]] = {}
    if "models" in spec.model_fields_set:  # the project file's candidates are tried first
        for cand in spec.models:
            starts.setdefault(cand.model, []).append(dict(cand.params))
    outcome = budgeted_search(
        families,
        evaluate,
        budget=budget,
        greater_is_better=greater_is_better(metric),
        seed=spec.seed,
        starts=starts,
        reserve=reserve,
        shared=shared,
        should_stop=should_stop,
    )
    return _Trials(results, pool, outcome, n_folds)


def search_folds(spec: ProjectSpec, prepared: Prepared) -> int:
    """How many folds each of the search's trials runs (``search.folds``, see
    :func:`shipyard.train.trial_folds`)."""
    assert spec.search is not None
    return trial_folds(
        spec.search.folds,
        cv_folds=len(prepared.folds),
        n_rows=len(prepared.train_idx),
        n_inputs=prepared.x.shape[1],
        budget=spec.search.budget,
    )


def _search_all(
    ctx: RunContext, shared: SharedSearch | None, pool: dict[str, np.ndarray]
) -> tuple[list[CandidateResult], dict[str, Any]]:
    """Search the families under ``spec.search``'s budget; each trial is a child run.

    A time budget is the whole run's, from ``ctx.started``: the search ends early enough for
    the refit of its best trial and the run's last steps (ONNX conversion, report,
    registration), estimated by :func:`_post_search_seconds`. In a shared search, this process
    leads: the other processes' complete trials are ranked with its own.

    Returns:
        The complete trials as candidates, best first (the best one's estimator is added to
        ``prepared.estimators`` for the refit), and a summary of the search.
    """
    search = ctx.spec.search
    assert search is not None
    prepared, catalogue, on_event = ctx.prepared, ctx.catalogue, ctx.on_event
    metric, task = prepared.metric, prepared.task
    seconds = None
    if search.budget is not None:
        seconds = max(search.budget - (time.monotonic() - ctx.started), 0.0)
    budget = SearchBudget(seconds=seconds, trials=search.trials)
    families = search_families(ctx.spec, task, catalogue, n_rows=len(prepared.train_idx))
    limit = " and ".join(
        ([f"{search.budget:g} s"] if search.budget else [])
        + ([f"{search.trials} trials"] if search.trials else [])
    )
    with_whom = f", shared as {shared.name!r}" if shared is not None else ""
    n_folds = search_folds(ctx.spec, prepared)
    how = (
        f"{n_folds}-fold CV"
        if n_folds == len(prepared.folds)
        else "a holdout of one fold"
        if n_folds == 1
        else f"{n_folds} of {len(prepared.folds)} folds"
    )
    ctx.run.set_tags({"search.folds": str(n_folds)})
    on_event(
        Event(
            "step",
            f"searching {len(families)} model families for {limit}{with_whom}; each trial on {how}",
        )
    )
    found = search_trials(
        ctx.spec,
        prepared,
        catalogue=catalogue,
        tracker=ctx.tracker,
        on_event=on_event,
        warn=ctx.warn,
        budget=budget,
        parent_id=ctx.run.id,
        shared=shared,
        engine=ctx.engine,
    )
    outcome, results = found.outcome, dict(found.results)
    pool.update(found.pool)
    others = 0
    if shared is not None:  # every process's complete trials compete
        wait = SEARCH_WAIT_SECONDS if search.budget is None else 0.0
        for t in shared_trials(
            shared, families, greater_is_better=greater_is_better(metric), wait=wait
        ):
            label = str(t.attrs.get("label", ""))
            if not label or label in results or "cv_mean" not in t.attrs:
                continue
            others += 1
            results[label] = CandidateResult(
                label=label,
                model=t.family,
                run_id=str(t.attrs.get("run_id", "")),
                cv_mean={k: float(v) for k, v in t.attrs["cv_mean"].items()},
                cv_std={k: float(v) for k, v in t.attrs.get("cv_std", {}).items()},
                fit_seconds=float(t.attrs.get("fit_seconds", 0.0)),
                trees=float(t.attrs.get("trees", 0.0)),
                cv_folds=list(t.attrs.get("cv_folds", [])),
                params=dict(t.params),
            )
    states = Counter(t.state for t in outcome.trials)
    ctx.run.log_metrics(
        {"search.trials": len(outcome.trials), "search.seconds": outcome.seconds}
        | {f"search.{state}": n for state, n in states.items()}
        | ({"search.other_workers_trials": others} if shared is not None else {})
    )
    ctx.run.set_tags({"search.stopped_by": outcome.stopped_by})
    ranked = _ranked(list(results.values()), metric)
    best_now = ranked[0]
    from_others = f" (+{others} complete from other workers)" if shared is not None else ""
    on_event(
        Event(
            "step",
            f"search done: {len(outcome.trials)} trials in {outcome.seconds:.1f} s "
            f"({', '.join(f'{n} {s}' for s, n in sorted(states.items()))}){from_others}; "
            f"best {best_now.label} {metric} {best_now.cv_mean[metric]:.4g}",
        )
    )
    members = {
        c.label: build_pipeline(
            ctx.spec,
            prepared,
            catalogue.create(c.model, task, seed=ctx.seed, params=c.params, where="search"),
            warn=ctx.warn,
        )
        for c in ranked
        if c.label in pool
    }
    deadline = None if search.budget is None else ctx.started + search.budget
    ranked = _with_ensemble(ctx, ranked, pool, members, deadline)
    best = ranked[0]
    if best.label not in prepared.estimators:
        prepared.estimators[best.label] = catalogue.create(
            best.model, task, seed=ctx.seed, params=best.params, where="search"
        )
    summary = {
        "trials": len(outcome.trials) + others,
        "seconds": outcome.seconds,
        "stopped_by": outcome.stopped_by,
        "states": dict(states) | ({"from other workers": others} if others else {}),
        "per_family": dict(Counter(c.model for c in results.values() if c.model != "ensemble"))
        if shared is not None
        else {k: len(v) for k, v in outcome.by_family().items()},
    }
    return ranked, summary


def _fold_seconds(c: CandidateResult) -> float:
    """A candidate's fit time per fold it ran."""
    return c.fit_seconds / max(len(c.cv_folds), 1)


def refit_seconds(
    family: str, fold_seconds: float, *, cv_folds: int, test_size: float, refit_all: bool
) -> float:
    """How long a candidate's refits take, given its time per fold: on the training part
    (``cv_folds / (cv_folds - 1)`` times a fold's rows) and, with ``refit_all``, on every
    row (``1 / (1 - test_size)`` times more), each :func:`~shipyard.train.refit_factor` times
    a fold's fit per row (the second with the rounds the first found)."""
    on_train = fold_seconds * cv_folds / max(cv_folds - 1, 1)
    seconds = refit_factor(family) * on_train
    if refit_all:
        seconds += refit_factor(family, rounds_known=True) * on_train / (1.0 - test_size)
    return seconds


class Member(NamedTuple):
    """A candidate as the time estimates see it: its family, its time per CV fold and its
    fold models' trees (``0``: not a booster with a converter, or not known)."""

    family: str
    fold_seconds: float
    trees: float = 0.0


def _post_search_seconds(
    best: Member,
    others: Sequence[Member],
    budget: float,
    *,
    cv_folds: int,
    test_size: float,
    refit_all: bool,
) -> float:
    """What a run needs after its search: the refits of the best trial (see
    :func:`refit_seconds`) and the run's steps after them; and room for an ensemble of the
    best and the next best of the ensemble's pool (``others``, best first), as many of them
    as fit, at most :data:`RESERVED_MEMBERS` in all (see :func:`_ensemble_seconds`). At most
    a third of the budget, so that a small budget still searches; a run whose ensemble
    cannot fit keeps no room for it (the ensemble step would not weigh it).

    Averaging a few of the best candidates is what a search's last seconds buy most reliably
    on a small table: the best trial's cross-validation score is the luckiest of many close
    ones, and an ensemble of several is less at the mercy of that luck (on churn, 5,634 rows:
    the best single trials of two runs scored 0.8517 and 0.8533 on the benchmark's holdout,
    averages of their top three to eight, equally weighted, 0.8536-0.8542)."""
    cap = budget / 3

    def seconds(members: list[Member]) -> float:
        return _ensemble_seconds(
            members, budget, cv_folds=cv_folds, test_size=test_size, refit_all=refit_all
        )

    members = [best]
    needed = seconds(members)
    for other in others[: RESERVED_MEMBERS - 1]:
        if not _converts_in_time([*members, other], budget):
            continue  # the ensemble step would leave it out
        more = seconds([*members, other]) + selection_seconds(budget)
        if more > cap:
            break
        members, needed = [*members, other], more
    return min(needed, cap)


RESERVED_MEMBERS = 4
"""The most candidates a search keeps room to refit for an ensemble (the best among them)."""


def selection_seconds(budget: float) -> float:
    """The time an ensemble's selection may take under a time ``budget``: 2% of it, at most
    2 s (it then keeps its best so far; four candidates on churn's 4,507 rows took 1.7 s)."""
    return min(2.0, 0.02 * budget)


SECONDS_PER_TREE = 0.002
"""What converting one tree of a boosted model to ONNX takes (pure Python in onnxmltools, its
imports done: the helper process makes them while the search runs): measured on 2 cores,
1.3-1.5 ms a tree for diamonds' 5-class LightGBM of 1,330 trees, 1.9 ms for hotel_rates' 827
trees with categorical splits."""

CONVERSION_SECONDS = {"lightgbm": 3.0, "xgboost": 3.0}
"""A booster's conversion when its trees are not known: about 1,000 trees."""

UNCONVERTED = frozenset({"catboost"})
"""Families without an ONNX converter: a model with one of them in it is served by its
library, and its graph is not converted (the attempt ends at once)."""


CONVERSION_SHARE = 0.06
"""The share of a time budget an ensemble's ONNX conversion may take (the best candidate's
own conversion always may): the run waits for it after the card, so it is most of the run's
overhead (an ensemble of three LightGBMs of about 2,500 trees on hotel_rates: 5.4 s, 10% of a
60 s run)."""


def _converts_in_time(members: Sequence[Member], budget: float) -> bool:
    """Whether an ensemble of ``members`` (the best first) converts to ONNX within
    :data:`CONVERSION_SHARE` of the ``budget`` (or as fast as the best alone); always, when
    a member has no converter (nothing converts) or without a time budget."""
    if budget <= 0 or UNCONVERTED.intersection(m.family for m in members):
        return True
    allowed = max(_conversion_seconds(members[:1]), CONVERSION_SHARE * budget)
    return _conversion_seconds(members) <= allowed


def _conversion_seconds(members: Sequence[Member]) -> float:
    """The ONNX conversion of a model made of ``members`` and its check: about 1 s, plus
    each booster's trees (:data:`SECONDS_PER_TREE` each, :data:`CONVERSION_SECONDS` when
    their number is not known); none when a member has no converter."""
    if UNCONVERTED.intersection(m.family for m in members):
        return 0.0
    return 1.0 + sum(
        m.trees * SECONDS_PER_TREE if m.trees > 0 else CONVERSION_SECONDS.get(m.family, 0.0)
        for m in members
    )


def _ensemble_seconds(
    members: Sequence[Member],
    budget: float,
    *,
    cv_folds: int,
    test_size: float,
    refit_all: bool,
) -> float:
    """The refits of ``members`` (the best first; one member: the best alone) and the run's
    steps after them (:func:`_after_refit_seconds`), for the model they make together."""
    refits = sum(
        refit_seconds(
            m.family, m.fold_seconds, cv_folds=cv_folds, test_size=test_size, refit_all=refit_all
        )
        for m in members
    )
    return refits + _after_refit_seconds(budget, members)


def _after_refit_seconds(budget: float, members: Sequence[Member]) -> float:
    """The run's steps after the refits of a model made of ``members`` (one: a single
    candidate; several: an ensemble's): the ONNX conversion of its graph and its check
    (about 1 s, plus each booster's trees, :data:`SECONDS_PER_TREE` each, or
    :data:`CONVERSION_SECONDS` when their number is not known; none when a member has no
    converter; in the helper process it overlaps the model card's sections, about half the
    report's ``CARD_SHARE`` of the budget: see ``card_allowance``), then registration and
    the report (about 0.5 s, more on larger tables). Measured by ``benchmarks/training.py``
    with 60 s: 4.4 s on hotel_rates (a LightGBM of 827 trees), 4.0 s on diamonds."""
    conversion = max(_conversion_seconds(members), 1.0)
    return 0.5 + 0.01 * budget + max(conversion, 0.5 * CARD_SHARE * budget)


def _finite(value: float) -> float:
    return value if np.isfinite(value) else -np.inf
