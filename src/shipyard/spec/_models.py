"""The project file's schema: pydantic models with ``extra="forbid"``.

Every field here is documented in ``docs/project-file.md``; a contract test keeps the two in
step.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

__all__ = [
    "AllowedValues",
    "BadNumbers",
    "CandidateSpec",
    "CsvSource",
    "DataSpec",
    "Expectation",
    "FeaturesSpec",
    "NotNull",
    "ParamRange",
    "ParquetSource",
    "ProjectSpec",
    "Range",
    "Regex",
    "RegistrySpec",
    "RowCount",
    "SearchSpec",
    "SourceSpec",
    "SplitSpec",
    "SqlSource",
    "TaskType",
    "Unique",
    "ValidationSpec",
]

TaskType = Literal["binary", "multiclass", "regression"]
FeatureKind = Literal["number", "integer", "boolean", "category", "string", "datetime"]
Severity = Literal["error", "warning"]

CLASSIFICATION_METRICS = frozenset(
    {
        "accuracy",
        "balanced_accuracy",
        "precision",
        "recall",
        "f1",
        "precision_macro",
        "recall_macro",
        "f1_macro",
        "precision_weighted",
        "recall_weighted",
        "f1_weighted",
        "roc_auc",
        "pr_auc",
        "log_loss",
    }
)
REGRESSION_METRICS = frozenset({"mae", "rmse", "r2", "mape"})


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CsvSource(_Strict):
    """A CSV file; ``path`` is relative to the project file."""

    type: Literal["csv"]
    path: str
    delimiter: str = ","
    encoding: str = "utf-8"


class ParquetSource(_Strict):
    """A Parquet file; ``path`` is relative to the project file."""

    type: Literal["parquet"]
    path: str


class SqlSource(_Strict):
    """A SQL table or query read through SQLAlchemy; exactly one of ``query`` and ``table``."""

    type: Literal["sql"]
    url: str
    query: str | None = None
    table: str | None = None

    @model_validator(mode="after")
    def _one_of_query_table(self) -> SqlSource:
        if (self.query is None) == (self.table is None):
            msg = "give exactly one of 'query' and 'table'"
            raise ValueError(msg)
        return self


SourceSpec = Annotated[CsvSource | ParquetSource | SqlSource, Field(discriminator="type")]


BadNumbers = Literal["error", "coerce"]


class DataSpec(_Strict):
    """Where the data comes from, which column is the target, and how numbers are read.

    ``on_bad_numbers`` decides what happens to the values of a column of numbers that are not
    numbers (``"unknown"``, ``"?"``, ``"100 mg"``): ``error`` (the default) stops before training
    and names them; ``coerce`` reads them as missing, in training and in every prediction.
    """

    source: SourceSpec
    target: str
    on_bad_numbers: BadNumbers = "error"


Transform = Literal["log", "sqrt", "yeo-johnson", "quantile"]
"""A numeric column's transform: ``log`` (``log1p``, for counts and amounts >= 0), ``sqrt``,
``yeo-johnson`` (a fitted power transform) or ``quantile`` (to a normal distribution)."""


class BinSpec(_Strict):
    """Cut a numeric column into ``bins`` intervals (one-hot encoded), by ``quantile`` (equal
    counts, the default), ``uniform`` (equal widths) or ``kmeans``."""

    bins: int = Field(ge=2, le=256)
    strategy: Literal["quantile", "uniform", "kmeans"] = "quantile"


class TextSpec(_Strict):
    """TF-IDF of a free-text column: the ``max_features`` most frequent terms, n-grams of 1 to
    ``ngram_max`` words, terms found in at least ``min_df`` rows."""

    max_features: int = Field(default=20_000, ge=10, le=1_000_000)
    ngram_max: int = Field(default=2, ge=1, le=3)
    min_df: int = Field(default=2, ge=1)


class SelectSpec(_Strict):
    """Feature selection after the feature transforms, fitted inside each fold: keep the ``k``
    best features by ``mutual_info`` or by a ``model``'s importances (an L1 model for linear
    tasks, trees otherwise), or drop the features with ``variance`` below ``threshold``."""

    method: Literal["mutual_info", "model", "variance"] = "model"
    k: int | None = Field(default=None, ge=1)
    threshold: float | None = Field(default=None, ge=0.0)

    @model_validator(mode="after")
    def _k_or_threshold(self) -> SelectSpec:
        if self.method == "mutual_info" and self.k is None:
            msg = "selection by mutual_info needs 'k' (how many features to keep)"
            raise ValueError(msg)
        if self.method == "variance" and self.k is not None:
            msg = "selection by variance takes a 'threshold', not 'k'"
            raise ValueError(msg)
        return self


class FeaturesSpec(_Strict):
    """Which columns are features and how to treat them.

    ``include`` empty means every column but the target and ``exclude``.
    ``types`` overrides the inferred kind of a column.
    ``pii`` names personal-data columns: a list (each dropped as soon as the data is read), or
    a mapping of column to ``drop`` or ``hash`` (replaced by a keyed hash, for joins; the key is
    ``SHIPYARD_PII_KEY``). A PII column is never a model input and never written in clear.
    """

    include: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)
    types: dict[str, FeatureKind] = Field(default_factory=dict)
    pii: dict[str, Literal["drop", "hash"]] = Field(default_factory=dict)
    transforms: dict[str, Transform] = Field(default_factory=dict)
    bins: dict[str, BinSpec] = Field(default_factory=dict)
    target_encode: list[str] = Field(default_factory=list)
    text: dict[str, TextSpec] = Field(default_factory=dict)
    select: SelectSpec | None = None

    @field_validator("bins", mode="before")
    @classmethod
    def _bins_count(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: {"bins": v} if isinstance(v, int) else v for k, v in value.items()}
        return value

    @field_validator("text", mode="before")
    @classmethod
    def _text_list(cls, value: Any) -> Any:
        if isinstance(value, list):
            if not all(isinstance(v, str) for v in value):
                msg = "expected a list of column names, or a mapping of column to TF-IDF options"
                raise ValueError(msg)
            return {name: {} for name in value}
        if isinstance(value, dict):
            return {k: {} if v is None else v for k, v in value.items()}
        return value

    @field_validator("pii", mode="before")
    @classmethod
    def _pii_list_drops(cls, value: Any) -> Any:
        if isinstance(value, list):
            if not all(isinstance(v, str) for v in value):
                msg = "expected a list of column names, or a mapping of column to drop or hash"
                raise ValueError(msg)
            return dict.fromkeys(value, "drop")
        return value

    @model_validator(mode="after")
    def _pii_is_no_feature(self) -> FeaturesSpec:
        options = {
            "features.transforms": set(self.transforms),
            "features.bins": set(self.bins),
            "features.target_encode": set(self.target_encode),
            "features.text": set(self.text),
        }
        for name in self.pii:
            for where, names in options.items():
                if name in names:
                    msg = (
                        f"column {name!r} is declared PII (features.pii) and named in {where}: "
                        "a PII column is never a model input; remove it from one of them"
                    )
                    raise ValueError(msg)
        for name in sorted(options["features.transforms"] & options["features.bins"]):
            msg = (
                f"column {name!r} is in both features.transforms and features.bins: binning "
                "after a monotone transform gives the same bins; keep one"
            )
            raise ValueError(msg)
        for name in sorted(options["features.text"] & options["features.target_encode"]):
            msg = f"column {name!r} cannot be both free text (features.text) and target-encoded"
            raise ValueError(msg)
        for name in self.pii:
            if name in self.include or name in self.types:
                where = "features.include" if name in self.include else "features.types"
                msg = (
                    f"column {name!r} is declared PII (features.pii) and named in {where}: a "
                    "PII column is never a model input; remove it from one of them"
                )
                raise ValueError(msg)
        return self


class SplitSpec(_Strict):
    """Holdout split and cross-validation.

    ``refit`` is what the registered model is fitted on once the holdout has scored it:
    ``all`` (the default) refits the winner on the training part and the holdout together, so
    that no row is wasted (the holdout metrics then describe the model fitted on the training
    part alone, a slightly pessimistic estimate); ``train`` registers the model the holdout
    scored.
    """

    strategy: Literal["random", "stratified", "time"] | None = None
    test_size: float = Field(default=0.2, gt=0.0, lt=1.0)
    time_column: str | None = None
    cv_folds: int = Field(default=5, ge=2, le=50)
    seed: int = 42
    refit: Literal["all", "train"] = "all"

    @model_validator(mode="after")
    def _time_needs_column(self) -> SplitSpec:
        if self.strategy == "time" and not self.time_column:
            msg = "strategy 'time' needs 'time_column'"
            raise ValueError(msg)
        return self


class CandidateSpec(_Strict):
    """One candidate model: a catalogue entry and its fixed parameters (a bare catalogue key,
    ``- lightgbm``, is the entry with its defaults)."""

    model: str
    name: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _bare_key(cls, value: Any) -> Any:
        return {"model": value} if isinstance(value, str) else value

    @property
    def label(self) -> str:
        """The candidate's display name (``name`` or the catalogue key)."""
        return self.name or self.model


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h)?\s*$")
_UNIT_SECONDS = {None: 1.0, "s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}


class ParamRange(_Strict):
    """The search range of one parameter: numbers between ``low`` and ``high`` (whole numbers
    when ``integer``; sampled on a log scale when ``log``), or one of ``choices``."""

    low: float | None = None
    high: float | None = None
    integer: bool = False
    log: bool = False
    choices: list[Any] | None = None

    @model_validator(mode="after")
    def _range_or_choices(self) -> ParamRange:
        if self.choices is not None:
            if not self.choices or self.low is not None or self.high is not None:
                msg = "give either 'choices' (a non-empty list) or 'low' and 'high', not both"
                raise ValueError(msg)
            return self
        if self.low is None or self.high is None or not self.low < self.high:
            msg = "a range needs 'low' < 'high' (or give 'choices')"
            raise ValueError(msg)
        if self.log and self.low <= 0:
            msg = "a log-scale range needs 'low' > 0"
            raise ValueError(msg)
        return self


class SearchSpec(_Strict):
    """Search across model families under one budget (``shipyard run`` with ``search:``).

    ``budget`` is wall-clock time for the whole search (``90s``, ``10m``, ``1h`` or seconds);
    ``trials`` caps the number of trials (either or both; a search by trials alone is
    reproducible with the same seed). ``families`` are catalogue keys (default: every family
    with a search space that fits the task); ``spaces`` override a family's parameter ranges.
    ``folds`` is how many of the ``split.cv_folds`` folds each trial runs: ``auto`` runs them
    all on a table that is small for the budget and one (a holdout) on a large one.
    """

    budget: float | None = Field(default=None, gt=0, description="seconds")
    trials: int | None = Field(default=None, ge=1)
    families: list[str] | None = None
    spaces: dict[str, dict[str, ParamRange]] = Field(default_factory=dict)
    folds: Literal["auto"] | Annotated[int, Field(ge=1, le=50)] = "auto"

    @field_validator("budget", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        if isinstance(value, str):
            match = _DURATION.match(value)
            if match is None:
                msg = f"expected a duration such as 90s, 10m or 1h, found {value!r}"
                raise ValueError(msg)
            return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        return value

    @model_validator(mode="after")
    def _some_limit(self) -> SearchSpec:
        if self.budget is None and self.trials is None:
            msg = "a search needs a 'budget' (such as 10m), 'trials', or both"
            raise ValueError(msg)
        return self


class _ExpectationBase(_Strict):
    severity: Severity = "error"


class NotNull(_ExpectationBase):
    """The column has no missing values."""

    check: Literal["not_null"]
    column: str


class Range(_ExpectationBase):
    """Every non-missing value lies in ``[min, max]`` (either bound may be omitted)."""

    check: Literal["range"]
    column: str
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _some_bound(self) -> Range:
        if self.min is None and self.max is None:
            msg = "give 'min', 'max' or both"
            raise ValueError(msg)
        if self.min is not None and self.max is not None and self.min > self.max:
            msg = f"'min' ({self.min}) is greater than 'max' ({self.max})"
            raise ValueError(msg)
        return self


class AllowedValues(_ExpectationBase):
    """Every non-missing value is one of ``values``."""

    check: Literal["allowed_values"]
    column: str
    values: list[str | int | float | bool] = Field(min_length=1)


class Unique(_ExpectationBase):
    """No non-missing value appears twice."""

    check: Literal["unique"]
    column: str


class RowCount(_ExpectationBase):
    """The dataset has between ``min`` and ``max`` rows."""

    check: Literal["row_count"]
    min: int | None = Field(default=None, ge=0)
    max: int | None = Field(default=None, ge=0)


class Regex(_ExpectationBase):
    """Every non-missing value, as a string, fully matches ``pattern``."""

    check: Literal["regex"]
    column: str
    pattern: str


Expectation = Annotated[
    NotNull | Range | AllowedValues | Unique | RowCount | Regex, Field(discriminator="check")
]


class ValidationSpec(_Strict):
    """Declared expectations, checked with the inferred schema before training."""

    expectations: list[Expectation] = Field(default_factory=list)
    max_missing_fraction: float = Field(default=0.5, ge=0.0, le=1.0)


class RegistrySpec(_Strict):
    """Where the winning model is registered and how it is promoted.

    The new version takes ``alias`` when there is no champion holding it yet, or when it beats
    the champion's holdout ``metric`` by at least ``min_improvement`` (a tie keeps the champion).
    """

    # The registry's rules for names and aliases, checked here so that a run cannot train
    # every candidate and then fail to register the winner.
    model_name: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=128
    )
    alias: str | None = Field(default="production", pattern=r"^[a-z][a-z0-9_-]{0,63}$")
    min_improvement: float = 0.0
    gate: GateSpec = Field(default_factory=lambda: GateSpec())


FairnessMeasure = Literal["demographic_parity_difference", "equalized_odds_difference"]


class GateSpec(_Strict):
    """Evidence the gate asks of a challenger before it takes the alias.

    ``bootstrap`` > 0 scores champion and challenger on the same holdout rows, resampled that
    many times (a paired bootstrap): the challenger must be better by ``min_improvement`` with
    probability ``confidence``. ``fairness`` bounds each named measure (fairlearn's, over
    ``evaluation.sensitive`` columns): a challenger above a bound is kept out.
    """

    bootstrap: int = Field(default=0, ge=0, le=100_000)
    confidence: float = Field(default=0.95, gt=0.5, lt=1.0)
    fairness: dict[FairnessMeasure, float] = Field(default_factory=dict)

    @field_validator("fairness")
    @classmethod
    def _bounds(cls, value: dict[str, float]) -> dict[str, float]:
        for name, bound in value.items():
            if not 0.0 <= bound <= 1.0:
                msg = f"fairness bound {name} must be between 0 and 1, found {bound}"
                raise ValueError(msg)
        return value


ThresholdMetric = Literal["f1", "f2", "balanced_accuracy", "mcc", "accuracy"]


class ImbalanceSpec(_Strict):
    """Imbalanced classes: ``class_weight: balanced`` weighs classes inversely to their
    frequency (for the families that take weights); ``resample`` (``over``, ``under`` or
    ``smote``, with imbalanced-learn) rebalances the training rows inside each CV fold and the
    refit only, never the rows a model is scored on; ``threshold`` tunes a binary model's
    decision threshold for that metric on out-of-fold predictions, and serving uses it."""

    class_weight: Literal["balanced"] | None = None
    resample: Literal["over", "under", "smote"] | None = None
    threshold: ThresholdMetric | None = None


class EvaluationSpec(_Strict):
    """The model card: ``sensitive`` columns (read from the data, features or not) get per-slice
    metrics and fairness measures; ``bootstrap`` resamples give the holdout metrics'
    ``confidence`` intervals (0 turns them off); ``explain`` adds permutation importance and
    a SHAP summary; ``learning_curve`` adds a learning curve."""

    sensitive: list[str] = Field(default_factory=list)
    bootstrap: int = Field(default=1000, ge=0, le=100_000)
    confidence: float = Field(default=0.95, gt=0.5, lt=1.0)
    explain: bool = True
    learning_curve: bool = True


class ColumnDriftSpec(_Strict):
    """How one column is tested for drift (``monitoring.drift.columns.NAME``).

    ``method`` names a drift test (``ks``, ``chisquare``, ``z``, ``wasserstein``,
    ``jensenshannon``, ``psi``, or a plugin's); unset, the column follows
    ``monitoring.drift.method``. ``kind`` overrides the kind read from the model's signature
    (an integer code tested as categories, say); ``ignore`` leaves the column out.
    """

    method: str | None = None
    threshold: float | None = Field(default=None, gt=0.0)
    kind: Literal["numeric", "categorical"] | None = None
    ignore: bool = False


class DriftSpec(_Strict):
    """Drift tests (``monitoring.drift``).

    ``method: auto`` chooses each column's test as Evidently's DataDriftPreset does;
    ``threshold`` replaces every test's default threshold; the dataset drifts when at least
    ``drift_share`` of the tested columns do.
    """

    method: str = "auto"
    threshold: float | None = Field(default=None, gt=0.0)
    drift_share: float = Field(default=0.5, gt=0.0, le=1.0)
    columns: dict[str, ColumnDriftSpec] = Field(default_factory=dict)


ALERT_SIGNALS = frozenset(
    {"drift_share", "prediction_drift_share", "missing_increase", "prediction_share_change"}
)
"""What an alert rule can watch, besides ``<metric>_drop`` for every metric."""


class AlertRuleSpec(_Strict):
    """One alert rule (``monitoring.alerts.rules[]``): a signal and a bound.

    Signals: ``drift_share`` (the share of drifted input columns), ``prediction_drift_share``
    (of drifted prediction columns), ``missing_increase`` (the largest rise of a column's
    missing share over the reference), ``prediction_share_change`` (the largest move of a
    class's share of the predictions) and ``<metric>_drop`` (how much worse a metric is than
    on the holdout: realised once labels arrive, estimated before).
    """

    signal: str
    above: float | None = None
    below: float | None = None
    name: str | None = Field(default=None, max_length=200)

    @model_validator(mode="after")
    def _check(self) -> AlertRuleSpec:
        metric = self.signal.removesuffix("_drop")
        known = self.signal in ALERT_SIGNALS or (
            self.signal.endswith("_drop") and metric in CLASSIFICATION_METRICS | REGRESSION_METRICS
        )
        if not known:
            choices = [*sorted(ALERT_SIGNALS), "<metric>_drop (e.g. roc_auc_drop, rmse_drop)"]
            msg = f"unknown alert signal {self.signal!r}; expected one of {choices}"
            raise ValueError(msg)
        if (self.above is None) == (self.below is None):
            msg = f"alert rule on {self.signal!r}: give exactly one of 'above' and 'below'"
            raise ValueError(msg)
        return self

    @property
    def label(self) -> str:
        """The rule's name, or its condition."""
        if self.name:
            return self.name
        return f"{self.signal} {'>' if self.above is not None else '<'} {self.threshold:g}"

    @property
    def threshold(self) -> float:
        """The bound the signal is compared with."""
        bound = self.above if self.above is not None else self.below
        assert bound is not None  # the validator requires one of them
        return bound

    def fires(self, value: float) -> bool:
        """Whether ``value`` of the signal breaks the rule."""
        return value > self.above if self.above is not None else value < self.threshold


class AlertsSpec(_Strict):
    """Alerts (``monitoring.alerts``): rules checked after each ``shipyard monitor``.

    A rule that starts firing opens an incident and notifies once; while it fires nothing more
    is sent; when it stops, the incident is resolved with one more notice. Notices go to the
    log, and to ``webhook`` (a JSON POST, retried ``retries`` times with backoff) when set.
    """

    rules: list[AlertRuleSpec] = Field(default_factory=list)
    webhook: str | None = Field(default=None, pattern=r"^https?://")
    retries: int = Field(default=3, ge=0, le=10)
    timeout_s: float = Field(default=10.0, gt=0.0)

    @model_validator(mode="after")
    def _distinct_rules(self) -> AlertsSpec:
        labels = [rule.label for rule in self.rules]
        repeated = sorted({label for label in labels if labels.count(label) > 1})
        if repeated:
            msg = (
                f"alert rules must be distinct; {repeated} appear more than once (an incident "
                "is kept per rule: give one of them a 'name')"
            )
            raise ValueError(msg)
        return self


class MonitoringSpec(_Strict):
    """Monitoring a served model (``monitoring``).

    ``reference_rows`` bounds the reference sample each registered model keeps: that many
    training rows and that many holdout predictions at most, drawn with the project's seed.
    """

    reference_rows: int = Field(default=5_000, ge=100, le=1_000_000)
    drift: DriftSpec = Field(default_factory=DriftSpec)
    alerts: AlertsSpec = Field(default_factory=AlertsSpec)


class ProjectSpec(_Strict):
    """A Shipyard project: the whole of ``shipyard.yaml``."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=100)
    data: DataSpec
    task: TaskType | None = None
    features: FeaturesSpec = Field(default_factory=FeaturesSpec)
    split: SplitSpec = Field(default_factory=SplitSpec)
    search: SearchSpec | None = None
    models: list[CandidateSpec] = Field(
        default_factory=lambda: [
            CandidateSpec(model="linear"),
            CandidateSpec(model="random_forest"),
            CandidateSpec(model="lightgbm"),
        ],
        min_length=1,
    )
    metric: str | None = None
    imbalance: ImbalanceSpec = Field(default_factory=ImbalanceSpec)
    evaluation: EvaluationSpec = Field(default_factory=EvaluationSpec)
    validation: ValidationSpec = Field(default_factory=ValidationSpec)
    registry: RegistrySpec = Field(default_factory=RegistrySpec)
    monitoring: MonitoringSpec = Field(default_factory=MonitoringSpec)
    ensemble: bool = True
    """Weigh a weighted ensemble of the best candidates (it wins only when it scores better);
    ``false``: the best single candidate is registered (one model's latency, and SHAP
    explanations, which an ensemble of whole pipelines has not)."""
    seed: int = 42

    _path: Path | None = PrivateAttr(default=None)
    _lines: dict[tuple[str | int, ...], int] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _check_consistency(self) -> ProjectSpec:
        if self.metric is not None:
            known = CLASSIFICATION_METRICS | REGRESSION_METRICS
            if self.metric not in known:
                msg = f"unknown metric {self.metric!r}; expected one of {sorted(known)}"
                raise ValueError(msg)
            if self.task == "regression" and self.metric not in REGRESSION_METRICS:
                msg = f"metric {self.metric!r} is not a regression metric"
                raise ValueError(msg)
            if self.task in ("binary", "multiclass") and self.metric in REGRESSION_METRICS:
                msg = f"metric {self.metric!r} is not a classification metric"
                raise ValueError(msg)
        if self.data.target in self.features.pii:
            msg = (
                f"the target {self.data.target!r} is declared PII (features.pii); a model cannot "
                "predict a column it never sees: remove it from features.pii"
            )
            raise ValueError(msg)
        labels = [c.label for c in self.models]
        dupes = sorted({x for x in labels if labels.count(x) > 1})
        if dupes:
            msg = (
                f"candidate names must be unique; repeated: {dupes} (set 'name' to tell them apart)"
            )
            raise ValueError(msg)
        if self.data.target in self.features.include:
            msg = f"the target {self.data.target!r} cannot also be a feature"
            raise ValueError(msg)
        for name in self.evaluation.sensitive:
            if name in self.features.pii:
                msg = (
                    f"column {name!r} is declared PII (features.pii) and sensitive "
                    "(evaluation.sensitive): per-slice metrics would write its values in the "
                    "report; remove it from one of them"
                )
                raise ValueError(msg)
            if name == self.data.target:
                msg = f"the target {name!r} cannot be a sensitive column (evaluation.sensitive)"
                raise ValueError(msg)
        binary_only = self.imbalance.threshold is not None
        if binary_only and self.task in ("multiclass", "regression"):
            msg = f"imbalance.threshold tunes a binary model's threshold; the task is {self.task}"
            raise ValueError(msg)
        if self.task == "regression" and (
            self.imbalance.class_weight is not None or self.imbalance.resample is not None
        ):
            msg = "imbalance.class_weight and imbalance.resample are for classification tasks"
            raise ValueError(msg)
        folds = None if self.search is None else self.search.folds
        if isinstance(folds, int) and folds > self.split.cv_folds:
            msg = (
                f"search.folds ({folds}) is more than the split's folds "
                f"(split.cv_folds: {self.split.cv_folds})"
            )
            raise ValueError(msg)
        return self

    @property
    def model_name(self) -> str:
        """The registered model's name (``registry.model_name``, else the project name)."""
        return self.registry.model_name or self.name

    @property
    def base_dir(self) -> Path:
        """The directory relative paths resolve against (the project file's folder)."""
        return self._path.parent if self._path is not None else Path.cwd()

    def locate(self, *path: str | int) -> str:
        """Where a field came from, as ``file:line`` (or the field path alone).

        Example: ``spec.locate("models", 1, "model")`` -> ``"shipyard.yaml:23 (models[1].model)"``.
        """
        dotted = _dotted(path)
        line = None
        for n in range(len(path), 0, -1):
            line = self._lines.get(tuple(path[:n]))
            if line is not None:
                break
        if self._path is None:
            return dotted
        where = f"{self._path}:{line}" if line is not None else str(self._path)
        return f"{where} ({dotted})"


def _dotted(path: tuple[str | int, ...]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out or "<root>"
