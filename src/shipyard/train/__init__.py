"""Training: the model catalogue, cross-validation, refitting and the budgeted search."""

from shipyard.train._catalogue import Catalogue, CatalogueEntry, default_catalogue
from shipyard.train._cv import CVResult, cross_validate, make_pipeline, predict_evaluate, refit
from shipyard.train._ensemble import EnsembleChoice, ensemble_pipeline, select_ensemble
from shipyard.train._search import (
    Family,
    SearchBudget,
    SearchResult,
    StopTrial,
    Trial,
    TrialResult,
    budgeted_search,
    search_families,
)

__all__ = [
    "CVResult",
    "Catalogue",
    "CatalogueEntry",
    "EnsembleChoice",
    "Family",
    "SearchBudget",
    "SearchResult",
    "StopTrial",
    "Trial",
    "TrialResult",
    "budgeted_search",
    "cross_validate",
    "default_catalogue",
    "ensemble_pipeline",
    "make_pipeline",
    "predict_evaluate",
    "refit",
    "search_families",
    "select_ensemble",
]
