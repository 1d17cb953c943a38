"""Training: the model catalogue, cross-validation, refitting, the budgeted search and
imbalanced classes (class weights, resampling, decision thresholds)."""

from shipyard.train._catalogue import Catalogue, CatalogueEntry, default_catalogue
from shipyard.train._cv import CVResult, cross_validate, make_pipeline, predict_evaluate, refit
from shipyard.train._ensemble import EnsembleChoice, ensemble_pipeline, select_ensemble
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
    "THRESHOLD_METRICS",
    "CVResult",
    "Catalogue",
    "CatalogueEntry",
    "ClassWeighting",
    "EnsembleChoice",
    "Family",
    "FoldSMOTE",
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
    "make_pipeline",
    "make_sampler",
    "predict_evaluate",
    "refit",
    "resampling_pipeline",
    "search_families",
    "select_ensemble",
    "strip_samplers",
    "trial_folds",
    "tune_threshold",
]
