"""The holdout's ROC and PR curve points (``curves.json``) agree with scikit-learn."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn import metrics as skm

from shipyard.evaluate import curve_points


def _binary(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.choice(["no", "yes"], size=n)
    p_yes = np.clip(np.where(y == "yes", 0.65, 0.35) + rng.normal(0, 0.2, n), 0.0, 1.0)
    return y, np.column_stack([1 - p_yes, p_yes])


def test_binary_curves_are_sklearns_for_the_positive_class() -> None:
    y, proba = _binary(150)
    points = curve_points("binary", y, proba, ["no", "yes"])
    assert points is not None and points.task == "binary" and points.n_rows == 150
    (roc,), (pr,) = points.roc, points.pr
    pos = (y == "yes").astype(int)
    fpr, tpr, _ = skm.roc_curve(pos, proba[:, 1])
    assert len(fpr) <= 200 and roc.x == pytest.approx(fpr, abs=1e-5)
    assert roc.y == pytest.approx(tpr, abs=1e-5)
    assert roc.area == pytest.approx(skm.roc_auc_score(pos, proba[:, 1]))
    assert pr.area == pytest.approx(skm.average_precision_score(pos, proba[:, 1]))
    precision, recall, _ = skm.precision_recall_curve(pos, proba[:, 1])
    assert pr.x == pytest.approx(recall, abs=1e-5) and pr.y == pytest.approx(precision, abs=1e-5)
    assert roc.label == pr.label == "yes" and roc.n_positive == int(pos.sum())


def test_long_curves_are_thinned_keeping_their_ends_and_area() -> None:
    y, proba = _binary(20_000, seed=1)
    points = curve_points("binary", y, proba, ["no", "yes"], max_points=200)
    assert points is not None
    for curve in (*points.roc, *points.pr):
        assert 100 <= len(curve.x) == len(curve.y) <= 200
    roc = points.roc[0]
    assert (roc.x[0], roc.y[0]) == (0.0, 0.0) and (roc.x[-1], roc.y[-1]) == (1.0, 1.0)
    assert list(roc.x) == sorted(roc.x)  # the points keep the curve's order
    thinned_auc = float(np.trapezoid(roc.y, roc.x))
    assert thinned_auc == pytest.approx(roc.area, abs=0.005)  # the shape survives thinning
    pos = (y == "yes").astype(int)
    assert roc.area == pytest.approx(skm.roc_auc_score(pos, proba[:, 1]))  # from every row


def test_multiclass_keeps_the_most_frequent_classes_one_vs_rest() -> None:
    rng = np.random.default_rng(2)
    labels = [f"c{j:02d}" for j in range(14)]
    weights = np.arange(14, 0, -1) / np.arange(14, 0, -1).sum()  # c00 the most frequent
    y = rng.choice(labels, size=3000, p=weights)
    proba = rng.dirichlet(np.ones(14), size=3000)
    points = curve_points("multiclass", y, proba, labels, max_classes=10)
    assert points is not None and points.n_classes == 14
    assert [c.label for c in points.roc] == labels[:10] == [c.label for c in points.pr]
    hits = (y == "c03").astype(int)
    assert points.roc[3].area == pytest.approx(skm.roc_auc_score(hits, proba[:, 3]))


def test_a_class_missing_from_the_holdout_has_no_curve() -> None:
    y = np.array(["a", "b", "a", "b", "a"])
    proba = np.array(
        [[0.8, 0.1, 0.1], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1], [0.3, 0.6, 0.1], [0.5, 0.4, 0.1]]
    )
    points = curve_points("multiclass", y, proba, ["a", "b", "c"])
    assert points is not None and [c.label for c in points.roc] == ["a", "b"]


@pytest.mark.parametrize(
    ("task", "y", "proba", "classes"),
    [
        ("regression", [1.0, 2.0], None, None),
        ("binary", ["a", "b"], None, ["a", "b"]),  # no probabilities
        ("binary", ["b", "b"], np.array([[0.2, 0.8], [0.1, 0.9]]), ["a", "b"]),  # one outcome
        ("binary", ["a", "b"], np.array([[0.2, 0.8]]), ["a", "b"]),  # rows do not match
    ],
)
def test_no_curves_where_there_is_nothing_to_draw(
    task: str, y: list[object], proba: np.ndarray | None, classes: list[str] | None
) -> None:
    assert curve_points(task, y, proba, classes) is None


def test_non_finite_scores_are_left_out() -> None:
    y, proba = _binary(60)
    proba[:5, 1] = np.nan
    points = curve_points("binary", y, proba, ["no", "yes"])
    assert points is not None and np.isfinite(points.roc[0].area)


def test_the_json_form_names_its_axes_and_stays_small() -> None:
    y, proba = _binary(50_000, seed=3)
    points = curve_points("binary", y, proba, ["no", "yes"])
    assert points is not None
    loaded = json.loads(json.dumps(points.to_dict()))
    assert loaded["format"] == 1 and loaded["task"] == "binary" and loaded["n_classes"] == 2
    (roc,), (pr,) = loaded["roc"], loaded["pr"]
    assert set(roc) == {"label", "n_positive", "fpr", "tpr", "auc"}
    assert set(pr) == {"label", "n_positive", "recall", "precision", "average_precision"}
    assert len(json.dumps(loaded)) < 20_000
