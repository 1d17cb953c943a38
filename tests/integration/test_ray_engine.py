"""The Ray engine on a real local Ray cluster, started once for the module (it takes a few
seconds): a search by trials gives the same trials, scores and model as the local engine, and
Ray Data batch prediction writes the same file as the local one."""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from _packages import penguins_package
from palmerpenguins import load_penguins

from shipyard.data import build_signature, coerce_frame, to_text
from shipyard.errors import PredictionError, ShipyardError, TrainingError
from shipyard.pipeline import predict_file, predict_file_ray, run_project
from shipyard.registry import ModelPackage
from shipyard.spec import load_spec, parse_spec
from shipyard.store import Store
from shipyard.tracking import Tracker
from shipyard.train import (
    RAY_MISSING,
    RayEngine,
    StopTrial,
    cross_validate,
    default_catalogue,
    make_pipeline,
)

pytestmark = pytest.mark.ray

PROJECT = """\
name: penguins
seed: 7
data: {source: {type: csv, path: data/penguins.csv}, target: species}
features: {exclude: [year]}
split: {cv_folds: 3}
search:
  trials: 6
  families: [logistic_regression, random_forest, extra_trees]
  spaces:
    random_forest: {n_estimators: {low: 5, high: 30, integer: true}}
    extra_trees: {n_estimators: {low: 5, high: 30, integer: true}}
"""


@pytest.fixture(scope="module")
def ray_local() -> Iterator[Any]:
    """One local Ray cluster (2 CPUs) for every test of the module."""
    if importlib.util.find_spec("ray") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI must run the Ray tests: install shipyard[ray]")
        pytest.skip("Ray is not installed (pip install 'shipyard[ray]')")
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "data").mkdir()
    load_penguins().to_csv(tmp_path / "data" / "penguins.csv", index=False)
    (tmp_path / "shipyard.yaml").write_text(PROJECT)
    return tmp_path


def _trials(store: Store, run_id: str) -> list[tuple[Any, ...]]:
    """Each trial's name, parameters, state and fold scores, in trial order."""
    with Tracker(store) as tracker:
        children = tracker.search_runs(parent_id=run_id)
        rows = []
        for child in children:
            if child.name.startswith("ensemble"):
                continue
            folds = [p.value for p in tracker.metric_history(child.id, "fold.f1_macro")]
            rows.append((child.name, child.params, child.tags.get("trial_state"), folds))
    return sorted(rows, key=lambda r: int(r[0].partition("#")[2]))


def test_a_search_by_trials_gives_the_local_engines_trials_scores_and_model(
    ray_local: Any, project: Path
) -> None:
    spec = load_spec(project / "shipyard.yaml")
    results, trials = {}, {}
    for engine in ("local", "ray"):
        with Store.open(root=project / f".shipyard-{engine}") as store:
            results[engine] = result = run_project(spec, store=store, engine=engine)  # type: ignore[arg-type]
            trials[engine] = _trials(store, result.run_id)
            with Tracker(store) as tracker:
                assert tracker.get_run(result.run_id).tags["engine"] == engine
    local, ray = results["local"], results["ray"]
    assert len(trials["local"]) == 6
    assert trials["ray"] == trials["local"]  # same parameters, states and fold scores
    assert [c.label for c in ray.candidates] == [c.label for c in local.candidates]
    assert [c.cv_mean for c in ray.candidates] == [c.cv_mean for c in local.candidates]
    assert ray.holdout == local.holdout


def test_folds_come_back_in_order_and_a_stopped_trial_drops_the_rest(ray_local: Any) -> None:
    frame = load_penguins().dropna(subset=["species"]).reset_index(drop=True)
    spec = parse_spec("name: p\ndata: {source: {type: csv, path: x}, target: species}\n")
    signature = build_signature(frame.drop(columns=["year"]), spec, "multiclass")
    x = coerce_frame(frame, signature)
    y = pd.Series(to_text(frame["species"]), dtype=object)
    estimator = default_catalogue().create("random_forest", "multiclass", seed=1, params={})
    pipeline = make_pipeline(signature, estimator)
    order = np.random.default_rng(0).permutation(len(x))
    folds = [(np.setdiff1d(order, part), part) for part in np.array_split(order, 3)]
    kwargs: dict[str, Any] = {"cv": folds, "task": "multiclass", "classes": signature.classes}
    local = cross_validate(pipeline, x, y, keep_predictions=True, **kwargs)
    with RayEngine() as engine:
        on_ray = cross_validate(pipeline, x, y, keep_predictions=True, engine=engine, **kwargs)
        assert on_ray.folds == local.folds and on_ray.mean == local.mean
        assert np.array_equal(on_ray.predictions, local.predictions, equal_nan=True)  # type: ignore[arg-type]
        seen: list[int] = []

        def stop_after_first(fold: int, scores: dict[str, float]) -> None:
            seen.append(fold)
            raise StopTrial("pruned")

        with pytest.raises(StopTrial):
            cross_validate(pipeline, x, y, on_fold=stop_after_first, engine=engine, **kwargs)
        assert seen == [0]
        again = cross_validate(pipeline, x, y, engine=engine, **kwargs)  # the actors still work
        assert again.folds == local.folds
        bad = make_pipeline(signature, estimator.set_params(n_estimators=-1))
        with pytest.raises(TrainingError, match="n_estimators"):
            cross_validate(bad, x, y, engine=engine, **kwargs)


@pytest.fixture(scope="module")
def package() -> ModelPackage:
    return penguins_package({"name": "p"})


@pytest.mark.parametrize(("source", "target"), [("csv", "parquet"), ("parquet", "csv")])
def test_ray_data_writes_what_the_local_engine_writes(
    ray_local: Any, tmp_path: Path, package: ModelPackage, source: str, target: str
) -> None:
    data = load_penguins()
    data["prediction"] = "stale"  # an input column with an output's name is replaced
    inputs = tmp_path / f"in.{source}"
    data.to_csv(inputs, index=False) if source == "csv" else data.to_parquet(inputs, index=False)
    progress: list[tuple[int, int | None]] = []
    n = predict_file_ray(
        package,
        inputs,
        tmp_path / "out" / f"ray.{target}",
        on_progress=lambda done, total: progress.append((done, total)),
    )
    assert n == predict_file(package, inputs, tmp_path / "out" / f"local.{target}") == len(data)
    read = pd.read_csv if target == "csv" else pd.read_parquet
    on_ray, local = (
        read(tmp_path / "out" / f"ray.{target}"),
        read(tmp_path / "out" / f"local.{target}"),
    )
    pd.testing.assert_frame_equal(on_ray, local)
    assert progress[-1] == (len(data), len(data) if source == "parquet" else None)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        f"local.{target}",
        f"ray.{target}",
    ]
    if source == "csv":  # an actor's error comes back as itself, naming the file
        data.drop(columns=["island"]).to_csv(tmp_path / "short.csv", index=False)
        with pytest.raises(PredictionError, match=r"short\.csv: missing input column.*island"):
            predict_file_ray(package, tmp_path / "short.csv", tmp_path / "short.parquet")
        assert not list(tmp_path.glob("*short.parquet*"))


def test_without_ray_the_error_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    with (
        pytest.raises(ShipyardError, match=r"pip install 'shipyard\[ray\]'") as caught,
        RayEngine() as engine,
    ):
        next(
            engine.fit_folds(
                None,
                pd.DataFrame(),
                pd.Series(),
                [],
                task="binary",
                classes=None,
                keep_predictions=False,
            )
        )
    assert str(caught.value) == RAY_MISSING
