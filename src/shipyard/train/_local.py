"""A family's sampler: local search from its defaults first, Optuna's TPE after.

A short budget gives each family only a handful of trials. TPE starts with random draws over
the whole space, and a handful of random draws rarely beats a library's defaults (on the
12,321-row hotel table with 60 s, none of the boosting families' random trials did), while
the far corners of a space (a learning rate of 0.01 with a thousand rounds) are also the
slowest trials. FLAML starts each learner at a cheap, sound configuration and searches
*locally* from it (its CFO, a randomized direct search); this sampler does the same inside an
Optuna study, and hands over to TPE once the family has had its share:

- parameters live in the unit cube (log ranges on their log scale, choices by position);
- the *incumbent* is the family's best complete trial, its defaults until one is better;
- each proposal steps from the incumbent along a random direction, ``STEP * sqrt(dims)`` long
  (about ``STEP`` of each range); a step that does not improve is followed by the opposite
  one, then by a new direction; after ``SHRINK_AFTER`` failed pairs the step shrinks;
- after ``LOCAL_TRIALS`` finished trials, every third proposal is TPE's (global), so a longer
  budget also explores, and a better region TPE finds becomes the new incumbent.

Directions come from a generator seeded with the sampler's seed, the incumbent's number and the
pair, never from state kept between calls: a seeded search by trials replays exactly, and
processes sharing a study (each with its own seed) step in different directions from the same
incumbent.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.trial import FrozenTrial, TrialState

from shipyard.spec import ParamRange

__all__ = ["LOCAL_TRIALS", "LocalSearchSampler", "start_point"]

STEP = 0.1
"""A step's length per dimension, in the unit cube (FLAML's CFO starts at 0.1)."""

LOCAL_TRIALS = 10
"""Finished trials of a family proposed by local search before TPE gets every third."""

SHRINK_AFTER = 4
"""Failed pairs of steps (a direction and its opposite) before the step halves."""

MIN_STEP = 0.01
"""The step's floor per dimension."""

PARAMS_ATTR = "params"
"""The user attribute where the search keeps what a trial tried (a queued trial suggests
nothing to Optuna)."""


def start_point(space: Mapping[str, ParamRange], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """Each parameter of ``space`` at the estimator's default (``defaults``), clipped into its
    range; a default that is not a number in a numeric range (``None``, ``"sqrt"``) or not among
    the choices takes the range's middle.

    Example:
        >>> space = {"lr": ParamRange(low=0.01, high=1.0, log=True),
        ...          "l1": ParamRange(low=0.001, high=10.0, log=True),
        ...          "k": ParamRange(choices=["a", "b"])}
        >>> start_point(space, {"lr": 0.1, "l1": 0.0, "k": None})
        {'lr': 0.1, 'l1': 0.001, 'k': 'b'}
    """
    out: dict[str, Any] = {}
    for name, r in space.items():
        value = defaults.get(name)
        if r.choices is not None:
            out[name] = value if value in r.choices else r.choices[len(r.choices) // 2]
            continue
        assert r.low is not None and r.high is not None
        if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
            out[name] = _from_unit(r, 0.5)
        else:
            clipped = min(max(float(value), r.low), r.high)
            out[name] = round(clipped) if r.integer else clipped
    return out


class LocalSearchSampler(optuna.samplers.BaseSampler):
    """Local search around a family's best trial, TPE now and then once it has had its share.

    Args:
        space: the family's parameter ranges (the names its trials suggest).
        start: where the search starts: the parameters of its default trial
            (:func:`start_point`); a trial without a parameter (the defaults' trial, which
            suggests none) counts as being there.
        seed: seeds the directions and TPE.
        minimize: the study's direction (a search maximizes its signed score).
    """

    def __init__(
        self,
        space: Mapping[str, ParamRange],
        start: Mapping[str, Any],
        *,
        seed: int,
        minimize: bool = False,
    ) -> None:
        self._space = dict(space)
        self._start = {name: _to_unit(r, start[name]) for name, r in self._space.items()}
        self._seed = seed
        self._minimize = minimize
        self._tpe = optuna.samplers.TPESampler(seed=seed, n_startup_trials=5)
        self._proposals: dict[int, dict[str, Any] | None] = {}

    def reseed_rng(self) -> None:
        """Optuna calls this in forked workers; the directions are seeded per step."""
        self._tpe.reseed_rng()

    def infer_relative_search_space(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        """None: every parameter is sampled on its own (:meth:`sample_independent`)."""
        return {}

    def sample_relative(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        search_space: dict[str, BaseDistribution],
    ) -> dict[str, Any]:
        """Nothing: see :meth:`sample_independent`."""
        return {}

    def sample_independent(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        """The local step's value for ``param_name``, or TPE's on its turns."""
        if trial.number not in self._proposals:
            self._proposals[trial.number] = self._propose(study, trial.number)
        proposal = self._proposals[trial.number]
        if proposal is None or param_name not in proposal:
            return self._tpe.sample_independent(study, trial, param_name, param_distribution)
        return proposal[param_name]

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        """TPE's hook (it keeps nothing we need)."""
        self._tpe.before_trial(study, trial)

    def after_trial(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Any,
    ) -> None:
        """Forget the finished trial's proposal; TPE's hook."""
        self._proposals.pop(trial.number, None)
        self._tpe.after_trial(study, trial, state, values)

    def _propose(self, study: optuna.Study, number: int) -> dict[str, Any] | None:
        """The local step for trial ``number``; ``None`` on TPE's turns."""
        finished = sorted(
            (
                t
                for t in study.get_trials(
                    deepcopy=False,
                    states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL),
                )
                if t.number != number
            ),
            key=lambda t: t.number,
        )
        n = len(finished)
        if n >= LOCAL_TRIALS and n % 3 == 2:
            return None
        incumbent = self._incumbent(finished)
        centre = self._start if incumbent is None else self._point(incumbent)
        after = [t for t in finished if incumbent is None or t.number > incumbent.number]
        pair, opposite = divmod(len(after), 2)
        dims = len(self._space)
        rng = np.random.default_rng(  # entropy must be non-negative: 0 for the defaults
            [self._seed & 0xFFFFFFFF, 0 if incumbent is None else incumbent.number + 1, pair]
        )
        direction = rng.standard_normal(dims)
        direction /= max(float(np.linalg.norm(direction)), 1e-12)
        step = max(STEP * 0.5 ** (pair // SHRINK_AFTER), MIN_STEP) * math.sqrt(dims)
        sign = -1.0 if opposite else 1.0
        out: dict[str, Any] = {}
        for (name, r), d in zip(self._space.items(), direction, strict=True):
            unit = min(max(centre[name] + sign * step * float(d), 0.0), 1.0)
            out[name] = _from_unit(r, unit)
        return out

    def _incumbent(self, finished: list[FrozenTrial]) -> FrozenTrial | None:
        complete = [
            t
            for t in finished
            if t.state == TrialState.COMPLETE and t.value is not None and math.isfinite(t.value)
        ]
        if not complete:
            return None
        sign = -1.0 if self._minimize else 1.0
        return max(complete, key=lambda t: (sign * float(t.value or 0.0), -t.number))

    def _point(self, trial: FrozenTrial) -> dict[str, float]:
        given = trial.user_attrs.get(PARAMS_ATTR) or trial.params
        point = dict(self._start)
        for name, r in self._space.items():
            if name in given:
                try:
                    point[name] = _to_unit(r, given[name])
                except (TypeError, ValueError):
                    continue  # a project file's value of another type: start there
        return point


def _to_unit(r: ParamRange, value: Any) -> float:
    """``value``'s place in ``r``, from 0 to 1 (clipped)."""
    if r.choices is not None:
        index = r.choices.index(value) if value in r.choices else len(r.choices) // 2
        return (index + 0.5) / len(r.choices)
    assert r.low is not None and r.high is not None
    v = min(max(float(value), r.low), r.high)
    if r.log:
        return (math.log(v) - math.log(r.low)) / (math.log(r.high) - math.log(r.low))
    return (v - r.low) / (r.high - r.low)


def _from_unit(r: ParamRange, unit: float) -> Any:
    """The value at ``unit`` (0 to 1) of ``r``: a choice, a whole number or a float."""
    if r.choices is not None:
        return r.choices[min(int(unit * len(r.choices)), len(r.choices) - 1)]
    assert r.low is not None and r.high is not None
    if r.log:
        value = math.exp(math.log(r.low) + unit * (math.log(r.high) - math.log(r.low)))
    else:
        value = r.low + unit * (r.high - r.low)
    value = min(max(value, r.low), r.high)
    return round(value) if r.integer else value
