"""Turn a Signature (and the project's feature options) into one sklearn transformer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sklearn.compose import ColumnTransformer
from sklearn.impute import MissingIndicator, SimpleImputer
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import (
    KBinsDiscretizer,
    OneHotEncoder,
    OrdinalEncoder,
    PowerTransformer,
    QuantileTransformer,
    StandardScaler,
    TargetEncoder,
)

from shipyard.data import Signature
from shipyard.errors import TrainingError
from shipyard.features._datetime import DatetimeFeatures
from shipyard.features._nonnegative import NonNegativeTransform
from shipyard.features._options import NUMERIC_KINDS, check_feature_options
from shipyard.features._select import build_selector
from shipyard.features._text import text_pipeline
from shipyard.spec import BinSpec, FeaturesSpec

__all__ = ["MISSING_CATEGORY", "build_features", "native_category_columns"]

MISSING_CATEGORY = "__missing__"
"""Missing categorical values become this category of their own."""

_TRANSFORMS = ("log", "sqrt", "yeo-johnson", "quantile")
_TARGET_TYPES = {"binary": "binary", "multiclass": "multiclass", "regression": "continuous"}
_N_QUANTILES = 200  # sklearn's 1000 exceeds many a CV fold's rows (and warns there)
_SPARSE_THRESHOLD = 0.3  # sklearn's default: a mostly-empty output (TF-IDF) stays sparse


def build_features(
    signature: Signature,
    options: FeaturesSpec | None = None,
    *,
    task: str | None = None,
    seed: int = 42,
    linear: bool = False,
    dense: bool = False,
    native_categories: bool = False,
) -> ColumnTransformer | Pipeline:
    """Build the feature transformer for a Signature's inputs and the project's options.

    Without options: numeric and boolean columns get median imputation (with missing-value
    indicators) and scaling; categories get missing values as a category of their own, then
    one-hot encoding that ignores categories unseen in training; datetimes become calendar
    parts, imputed and scaled. ``string`` (free-text) columns are dropped unless named in
    ``features.text`` or ``features.target_encode``.

    Options (``features.*`` in the project file):

    - ``transforms``: ``log`` (``log1p``) and ``sqrt`` take columns of values >= 0 (fitting
      refuses a negative training value, naming the column; a negative value at prediction is
      clipped to 0); ``yeo-johnson`` is a fitted power transform of any sign; ``quantile``
      maps to a normal distribution. Each is followed by the numeric imputation and scaling.
    - ``bins``: median imputation, then ``bins`` intervals by ``strategy``, one-hot encoded;
      plus a missing-value indicator for each binned column the Signature says is nullable.
    - ``target_encode``: sklearn's ``TargetEncoder`` (missing values as a category), whose
      ``fit_transform`` cross-fits (each row encoded by a model of the other rows), then
      scaling. It learns from ``y``, so it is fitted inside each CV fold with the rest.
    - ``text``: TF-IDF per column (see :func:`shipyard.features._text.text_pipeline`), missing
      text as ``""``; the output is then sparse unless ``dense``.
    - ``select``: the transformer becomes ``Pipeline([("columns", <ColumnTransformer>),
      ("select", <selector>)])``, so that selection by ``mutual_info`` or ``model`` is fitted
      inside each fold too.

    Args:
        signature: the model's inputs; the frame given to ``fit``/``transform`` must have
            these columns with the dtypes of :func:`shipyard.data.coerce_frame`.
        options: the project's ``features`` section; ``None`` for the defaults.
        task: ``binary``, ``multiclass`` or ``regression``; needed by ``target_encode`` (else
            inferred from ``y``) and ``select`` by ``mutual_info``/``model`` (else taken from
            the Signature: classes mean classification, a numeric target regression).
        seed: the random state of target encoding's folds, quantiles and selection.
        linear: the estimator is a linear model: selection by ``model`` uses an L1 model
            (logistic regression or Lasso) instead of trees.
        dense: always output a dense array (for estimators that refuse sparse input, such as
            HistGradientBoosting), at the cost of memory with large TF-IDF vocabularies.
        native_categories: the estimator splits on categories itself (LightGBM): the category
            columns and the code-like ``string`` columns no option names
            (:func:`native_category_columns`) become the output's first columns, one each,
            as category numbers (missing values a category of their own, a category unseen in
            training ``-1``, which LightGBM treats as missing), instead of one-hot and target
            encoding. Ignored with ``select`` (which would move the columns).

    Returns:
        A ``ColumnTransformer``, or a ``Pipeline`` of it and a selector with ``select``.

    Raises:
        TrainingError: an option does not apply to the Signature (each problem named by its
            field, see :func:`check_feature_options`), selection needs a task that is not
            known, or no input column is usable.
    """
    options = options or FeaturesSpec()
    problems = check_feature_options(signature, options)
    if problems:
        msg = "feature options do not apply to the data: " + "; ".join(map(str, problems))
        raise TrainingError(msg)
    task = task or _task_of(signature)
    native = native_categories and options.select is None
    branches = _branches(signature, options, task=task, seed=seed, native=native)
    if not branches:
        msg = (
            f"no usable feature columns among {signature.input_names}: every input is free "
            "text; name some under features.text (TF-IDF) or declare them as 'category' "
            "under features.types"
        )
        raise TrainingError(msg)
    columns = ColumnTransformer(
        branches,
        remainder="drop",
        verbose_feature_names_out=True,
        sparse_threshold=0.0 if dense else _SPARSE_THRESHOLD,
    )
    if options.select is None:
        return columns
    if task is None and options.select.method != "variance":
        msg = (
            f"features.select by {options.select.method!r} needs the task (classification or "
            "regression) to score features against the target; pass task="
        )
        raise TrainingError(msg)
    selector = build_selector(options.select, task or "", seed=seed, linear=linear)
    return Pipeline([("columns", columns), ("select", selector)])


def _task_of(signature: Signature) -> str | None:
    if signature.classes is not None:
        return "binary" if len(signature.classes) == 2 else "multiclass"
    if signature.target is not None and signature.target.kind in NUMERIC_KINDS:
        return "regression"
    return None


def native_category_columns(signature: Signature, options: FeaturesSpec | None = None) -> list[str]:
    """The inputs that ``build_features(..., native_categories=True)`` hands to the estimator
    as category numbers, in the order of its first output columns: the category columns and
    the code-like ``string`` columns that no option names."""
    options = options or FeaturesSpec()
    special = {*options.transforms, *options.bins, *options.target_encode, *options.text}
    return [
        c.name
        for c in signature.inputs
        if c.kind in ("category", "string") and c.name not in special
    ]


def _branches(
    signature: Signature, options: FeaturesSpec, *, task: str | None, seed: int, native: bool
) -> list[tuple[str, Any, list[str]]]:
    kinds = {c.name: c.kind for c in signature.inputs}
    names = signature.input_names
    special = {*options.transforms, *options.bins, *options.target_encode, *options.text}
    plain = {
        k: [n for n in names if kinds[n] == k and n not in special] for k in set(kinds.values())
    }
    steps: list[tuple[str, Any, list[str]]] = []
    if native:  # first, so that they are the output's first columns
        cols = native_category_columns(signature, options)
        if cols:
            steps.append(("native_category", _native_categorical(), cols))
        plain["category"] = []
    numeric = plain.get("number", []) + plain.get("integer", []) + plain.get("boolean", [])
    if numeric:
        steps.append(("numeric", _numeric(), numeric))
    for transform in _TRANSFORMS:
        cols = [n for n in names if options.transforms.get(n) == transform]
        if cols:
            steps.append((transform.replace("-", "_"), _transformed(transform, seed), cols))
    for strategy in ("quantile", "uniform", "kmeans"):
        binned = [(n, options.bins[n]) for n in names if n in options.bins]
        cols = [n for n, b in binned if b.strategy == strategy]
        if cols:
            spec = [b for _, b in binned if b.strategy == strategy]
            steps.append((f"bins_{strategy}", _binned(spec, seed), cols))
    nullable = [c.name for c in signature.inputs if c.name in options.bins and c.nullable]
    if nullable:  # every column the data may miss, so that the output's width is fixed
        steps.append(("bins_missing", MissingIndicator(features="all"), nullable))
    if plain.get("category"):
        steps.append(("category", _categorical(), plain["category"]))
    encoded = [n for n in names if n in options.target_encode]
    if encoded:
        steps.append(("target", _target_encoded(task, seed), encoded))
    if plain.get("datetime"):
        pipe = make_pipeline(DatetimeFeatures(), *_numeric_steps())
        steps.append(("datetime", pipe, plain["datetime"]))
    for i, name in enumerate(n for n in names if n in options.text):
        label = f"text_{name}" if "__" not in name else f"text_{i}"
        steps.append((label, text_pipeline(options.text[name]), [name]))
    return steps


def _numeric() -> Pipeline:
    return make_pipeline(*_numeric_steps())


def _numeric_steps() -> list[SimpleImputer | StandardScaler]:
    return [
        SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
        StandardScaler(),
    ]


def _transformed(transform: str, seed: int) -> Pipeline:
    first: Any
    if transform in ("log", "sqrt"):
        first = NonNegativeTransform(func=transform)
    elif transform == "yeo-johnson":
        first = PowerTransformer(method="yeo-johnson", standardize=True)
    else:
        first = QuantileTransformer(
            n_quantiles=_N_QUANTILES, output_distribution="normal", random_state=seed
        )
    return make_pipeline(first, *_numeric_steps())


def _binned(specs: Sequence[BinSpec], seed: int) -> Pipeline:
    bins = KBinsDiscretizer(
        n_bins=[b.bins for b in specs],
        encode="onehot-dense",
        strategy=specs[0].strategy,
        quantile_method="averaged_inverted_cdf",
        random_state=seed,
    )
    return make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True), bins)


def _categorical() -> Pipeline:
    return make_pipeline(
        SimpleImputer(strategy="constant", fill_value=MISSING_CATEGORY),
        OneHotEncoder(handle_unknown="ignore", sparse_output=False),
    )


def _native_categorical() -> Pipeline:
    return make_pipeline(
        SimpleImputer(strategy="constant", fill_value=MISSING_CATEGORY),
        OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1),
    )


def _target_encoded(task: str | None, seed: int) -> Pipeline:
    target_type = _TARGET_TYPES.get(task or "", "auto")
    splitter = KFold if task in ("regression", None) else StratifiedKFold
    folds = splitter(n_splits=5, shuffle=True, random_state=seed)
    return make_pipeline(
        SimpleImputer(strategy="constant", fill_value=MISSING_CATEGORY),
        TargetEncoder(target_type=target_type, cv=folds),
        StandardScaler(),
    )
