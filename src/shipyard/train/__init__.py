"""Training: the model catalogue, cross-validation, refitting, the budgeted search and
imbalanced classes (class weights, resampling, decision thresholds); the engines that fit
cross-validation folds (in this process, or on Ray actors)."""

from shipyard.train._boosting import refit_factor
from shipyard.train._catalogue import Catalogue, CatalogueEntry, default_catalogue
from shipyard.train._cv import (
    CVResult,
    FoldOutcome,
    cross_validate,
    fit_fold,
    make_pipeline,
    predict_evaluate,
    refit,
)
from shipyard.train._engine import FoldEngine, LocalEngine
from shipyard.train._ensemble import (
    EnsembleChoice,
    ensemble_pipeline,
    select_ensemble,
    selection_score,
)
from shipyard.train._imbalance import (
    THRESHOLD_METRICS,
    ClassWeighting,
    FoldSMOTE,
    ThresholdChoice,
    apply_class_weight,
    make_sampler,
    resampling_pipeline,
    strip_samplers,
    tune_threshold,
)
from shipyard.train._ray import RAY_MISSING, RayCluster, RayEngine, import_ray, ray_cluster
from shipyard.train._search import (
    Family,
    SearchBudget,
    SearchResult,
    StopTrial,
    Trial,
    TrialResult,
    budgeted_search,
    search_families,
    trial_folds,
)

__all__ = [
    "RAY_MISSING",
    "THRESHOLD_METRICS",
    "CVResult",
    "Catalogue",
    "CatalogueEntry",
    "ClassWeighting",
    "EnsembleChoice",
    "Family",
    "FoldEngine",
    "FoldOutcome",
    "FoldSMOTE",
    "LocalEngine",
    "RayCluster",
    "RayEngine",
    "SearchBudget",
    "SearchResult",
    "StopTrial",
    "ThresholdChoice",
    "Trial",
    "TrialResult",
    "apply_class_weight",
    "budgeted_search",
    "cross_validate",
    "default_catalogue",
    "ensemble_pipeline",
    "fit_fold",
    "import_ray",
    "make_pipeline",
    "make_sampler",
    "predict_evaluate",
    "ray_cluster",
    "refit",
    "refit_factor",
    "resampling_pipeline",
    "search_families",
    "select_ensemble",
    "selection_score",
    "strip_samplers",
    "trial_folds",
    "tune_threshold",
]
