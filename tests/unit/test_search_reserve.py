"""The time a budgeted search keeps for what follows it: the refits of its best trial, the run's
last steps and, when they fit, a few more members for an ensemble."""

from __future__ import annotations

import pytest

from shipyard.pipeline._candidates import (
    CONVERSION_SECONDS,
    CONVERSION_SHARE,
    RESERVED_MEMBERS,
    SECONDS_PER_TREE,
    Member,
    _after_refit_seconds,
    _converts_in_time,
    _ensemble_seconds,
    _post_search_seconds,
    refit_seconds,
    selection_seconds,
)
from shipyard.train import refit_factor

SPLIT = {"cv_folds": 5, "test_size": 0.2, "refit_all": True}


def test_a_refit_scales_a_folds_time_to_the_rows_it_fits() -> None:
    # 5 folds: the training part is 5/4 of a fold's rows; every row is 1/0.8 of that
    on_train = 2.0 * 5 / 4
    assert refit_seconds("lightgbm", 2.0, **SPLIT) == pytest.approx(
        refit_factor("lightgbm") * on_train + refit_factor("lightgbm", True) * on_train / 0.8
    )
    just_train = {**SPLIT, "refit_all": False}
    assert refit_seconds("random_forest", 2.0, **just_train) == pytest.approx(1.5 * on_train)
    # a booster's refit on every row knows its rounds: it fits once, cheaper than its first
    assert refit_factor("lightgbm", rounds_known=True) < 1.0 < refit_factor("lightgbm")


def test_the_reserve_holds_the_best_and_the_steps_after_it() -> None:
    reserve = _post_search_seconds(Member("lightgbm", 1.0), [], 60.0, **SPLIT)
    assert reserve == pytest.approx(
        refit_seconds("lightgbm", 1.0, **SPLIT)
        + _after_refit_seconds(60.0, [Member("lightgbm", 1.0)])
    )
    # a booster's trees take longer to convert than a linear model's coefficients
    assert _after_refit_seconds(60.0, [Member("lightgbm", 1.0)]) > _after_refit_seconds(
        60.0, [Member("linear", 1.0)]
    )
    assert _after_refit_seconds(60.0, [Member("lightgbm", 1.0)]) > CONVERSION_SECONDS["lightgbm"]


def test_an_ensembles_graph_converts_every_members_trees_unless_one_has_no_converter() -> None:
    one = _after_refit_seconds(60.0, [Member("lightgbm", 1.0)])
    assert _after_refit_seconds(
        60.0, [Member("lightgbm", 1.0), Member("xgboost", 1.0)]
    ) == pytest.approx(one + CONVERSION_SECONDS["xgboost"])
    # CatBoost has no converter: the ensemble is served by the libraries, nothing converts
    with_catboost = _after_refit_seconds(
        60.0, [Member("catboost", 1.0), Member("xgboost", 1.0), Member("lightgbm", 1.0)]
    )
    assert with_catboost == pytest.approx(_after_refit_seconds(60.0, [Member("linear", 1.0)]))
    assert _ensemble_seconds([Member("catboost", 0.3), Member("xgboost", 0.1)], 60.0, **SPLIT) == (
        pytest.approx(
            refit_seconds("catboost", 0.3, **SPLIT)
            + refit_seconds("xgboost", 0.1, **SPLIT)
            + with_catboost
        )
    )


def test_room_for_an_ensembles_members_as_many_as_fit() -> None:
    alone = _post_search_seconds(Member("lightgbm", 1.0), [], 120.0, **SPLIT)
    cheap = _post_search_seconds(Member("lightgbm", 1.0), [Member("linear", 0.1)], 120.0, **SPLIT)
    # the second member's refits, and the selection's time (2% of the budget, at most 2 s)
    assert selection_seconds(120.0) == 2.0 and selection_seconds(60.0) == pytest.approx(1.2)
    assert cheap == pytest.approx(
        alone + refit_seconds("linear", 0.1, **SPLIT) + selection_seconds(120.0)
    )
    # a second member as costly as the best does not fit a third of a 60 s budget: the
    # search keeps room for the best alone, not the cap (the ensemble would not be weighed)
    best_alone = _post_search_seconds(Member("lightgbm", 2.7), [], 60.0, **SPLIT)
    with_twin = _post_search_seconds(
        Member("lightgbm", 2.7), [Member("lightgbm", 2.7)], 60.0, **SPLIT
    )
    assert best_alone < 60.0 / 3
    assert with_twin == pytest.approx(best_alone)
    # small members: room for RESERVED_MEMBERS of them, the best among them, no more
    others = [Member("catboost", 0.3)] * 10
    kept = _post_search_seconds(Member("catboost", 0.3), others, 60.0, **SPLIT)
    assert kept == pytest.approx(
        _ensemble_seconds([Member("catboost", 0.3)] * RESERVED_MEMBERS, 60.0, **SPLIT)
        + selection_seconds(60.0)
    )
    assert kept < 60.0 / 3


def test_a_boosters_conversion_scales_with_its_trees() -> None:
    # (a small budget: the card, beside the conversion, takes less than it) a few dozen
    # trees convert in a fraction of a second (119 XGBoost trees: 0.1 s), a
    # thousand in about 3 s; unknown (0): the thousand are assumed
    few = _after_refit_seconds(10.0, [Member("xgboost", 0.1, 60.0)])
    many = _after_refit_seconds(10.0, [Member("xgboost", 0.1, 2_000.0)])
    unknown = _after_refit_seconds(10.0, [Member("xgboost", 0.1)])
    assert many - few == pytest.approx(1_940 * SECONDS_PER_TREE)
    assert few < unknown < many
    assert unknown - _after_refit_seconds(10.0, [Member("linear", 0.1)]) == pytest.approx(
        CONVERSION_SECONDS["xgboost"]
    )


def test_the_reserve_never_takes_more_than_a_third_of_the_budget() -> None:
    assert _post_search_seconds(Member("lightgbm", 30.0), [], 60.0, **SPLIT) == pytest.approx(20.0)
    assert _post_search_seconds(Member("linear", 0.01), [Member("knn", 0.01)], 6.0, **SPLIT) <= 2.0


def test_an_ensemble_converts_within_its_share_of_the_budget() -> None:
    """Its conversion is most of the run's overhead: members are kept to what converts in
    CONVERSION_SHARE of the budget (3.6 s at 60 s: about 1,300 trees), the best alone always."""
    best = Member("lightgbm", 1.5, 900.0)
    assert pytest.approx(3.6) == CONVERSION_SHARE * 60.0
    assert _converts_in_time([best, Member("lightgbm", 0.5, 300.0)], 60.0)
    assert not _converts_in_time([best, Member("lightgbm", 1.5, 900.0)], 60.0)
    assert _converts_in_time([best, Member("lightgbm", 1.5, 900.0)], 600.0)
    assert _converts_in_time([Member("lightgbm", 9.0, 5_000.0)], 60.0)  # the best alone
    # nothing converts with a CatBoost member; no time budget, no limit
    assert _converts_in_time([best, Member("catboost", 1.0), Member("xgboost", 1.0, 9e3)], 60.0)
    assert _converts_in_time([best, Member("lightgbm", 1.5, 9e3)], 0.0)
    # the reserve keeps no room for a member the ensemble step would leave out, and room for
    # a smaller one after it
    big, small = Member("lightgbm", 0.2, 900.0), Member("linear", 0.05)
    alone = _post_search_seconds(best, [], 60.0, **SPLIT)
    assert _post_search_seconds(best, [big], 60.0, **SPLIT) == pytest.approx(alone)
    assert _post_search_seconds(best, [big, small], 60.0, **SPLIT) > alone
