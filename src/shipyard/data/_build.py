"""Build a model's Signature from a dataset and the project spec."""

from __future__ import annotations

import logging

import pandas as pd

from shipyard.data._schema import close_matches, infer_schema, text_labels
from shipyard.data._signature import ColumnSchema, Signature
from shipyard.errors import DataError
from shipyard.spec._models import ProjectSpec

__all__ = ["build_signature"]

logger = logging.getLogger(__name__)


def build_signature(df: pd.DataFrame, spec: ProjectSpec, task: str) -> Signature:
    """Infer the Signature of the model the project trains on ``df``.

    Inputs are ``features.include`` (or every column but the target) minus
    ``features.exclude`` and ``features.pii``, in the data's column order, with
    ``features.types`` overriding the inferred kinds. A column named in ``features.text``
    that reads as a ``category`` is a ``string`` input (TF-IDF wants its words, and a server
    should take any text there, not only the values training saw). Free-text (``string``)
    columns named in neither ``features.text`` nor ``features.target_encode`` are left out of
    the inputs, with a warning: the features would not use them, and a server should not
    demand fields the model ignores; except code-like ones (:func:`_code_like`: a country,
    an agent's number), which stay, for the features to target-encode. Number inputs carry
    ``data.on_bad_numbers`` (see :class:`ColumnSchema`).

    Args:
        df: the dataset snapshot.
        spec: the project spec.
        task: ``"binary"``, ``"multiclass"`` or ``"regression"``.

    Returns:
        The Signature; ``classes`` are the sorted target labels for classification.

    Raises:
        DataError: when the target or a column named in ``features`` (include, exclude,
            types, transforms, bins, target_encode, text) is not in the data (naming the
            project file line and close matches), or when no usable input is left.
    """
    target = spec.data.target
    columns = [str(c) for c in df.columns]
    if target not in columns:
        msg = (
            f"the target column {target!r} ({spec.locate('data', 'target')}) is not in the "
            f"data; {close_matches(target, columns)}"
        )
        raise DataError(msg)
    _check_feature_names(spec, columns)
    inputs = _input_names(spec, columns)
    types = dict(spec.features.types)
    schema = infer_schema(df[[*inputs, target]], overrides=types)
    schema.update(_declared_text(df, spec, schema))
    declared = {*spec.features.text, *spec.features.target_encode}
    strings = [n for n in inputs if schema[n].kind == "string" and n not in declared]
    codes = [n for n in strings if _code_like(df[n])]
    if codes:
        logger.info(
            "column(s) %s hold short codes with too many distinct values for one-hot "
            "encoding: they are target-encoded (fitted inside each fold); declare them under "
            "features.types or features.text, or exclude them, to change this",
            codes,
        )
    text = [n for n in strings if n not in codes]
    if text:
        logger.warning(
            "free-text column(s) %s are not used as features (too many distinct values for a "
            "category); name them under features.text (TF-IDF) or features.target_encode, or "
            "declare them as 'category' under features.types, to use them; or exclude them "
            "to silence this",
            text,
        )
    used = [name for name in inputs if name not in text]
    if not used:
        msg = (
            f"every input column is free text ({text}), which is not used as a feature "
            f"unless declared: name some under features.text (TF-IDF) or declare them as "
            f"'category' under features.types ({spec.locate('features')})"
        )
        raise DataError(msg)
    classes = _classes(df[target], spec, task)
    schemas = tuple(_with_policy(schema[name], spec) for name in used)
    return Signature(inputs=schemas, target=schema[target], classes=classes)


def _declared_text(
    df: pd.DataFrame, spec: ProjectSpec, schema: dict[str, ColumnSchema]
) -> dict[str, ColumnSchema]:
    """``features.text`` columns inferred as categories, read as ``string`` instead (a kind set
    under ``features.types`` stands, and other kinds are reported by the feature options)."""
    names = [
        n
        for n in spec.features.text
        if n in schema
        and n != spec.data.target
        and n not in spec.features.types
        and schema[n].kind == "category"
    ]
    if not names:
        return {}
    return infer_schema(df[names], overrides=dict.fromkeys(names, "string"))


def _with_policy(col: ColumnSchema, spec: ProjectSpec) -> ColumnSchema:
    """A number input keeps ``data.on_bad_numbers``, so that prediction reads it the same way."""
    policy = spec.data.on_bad_numbers
    if col.kind not in ("number", "integer") or policy == col.on_bad_numbers:
        return col
    return col.model_copy(update={"on_bad_numbers": policy})


def _check_feature_names(spec: ProjectSpec, columns: list[str]) -> None:
    features = spec.features
    named: list[tuple[str, tuple[str | int, ...]]] = []
    named += [(n, ("features", "include", i)) for i, n in enumerate(features.include)]
    named += [(n, ("features", "exclude", i)) for i, n in enumerate(features.exclude)]
    named += [(n, ("features", "types", n)) for n in features.types]
    named += [(n, ("features", "transforms", n)) for n in features.transforms]
    named += [(n, ("features", "bins", n)) for n in features.bins]
    named += [(n, ("features", "target_encode", i)) for i, n in enumerate(features.target_encode)]
    named += [(n, ("features", "text", n)) for n in features.text]
    for name, path in named:
        if name not in columns:
            msg = (
                f"column {name!r} ({spec.locate(*path)}) is not in the data; "
                f"{close_matches(name, columns)}"
            )
            raise DataError(msg)


def _input_names(spec: ProjectSpec, columns: list[str]) -> list[str]:
    target = spec.data.target
    include = set(spec.features.include) or set(columns)
    exclude = {*spec.features.exclude, *spec.features.pii, target}
    inputs = [c for c in columns if c in include and c not in exclude]
    if not inputs:
        msg = (
            f"no input columns are left after features.include/exclude "
            f"({spec.locate('features')}); the data has {columns} and the target is {target!r}"
        )
        raise DataError(msg)
    return inputs


def _classes(y: pd.Series, spec: ProjectSpec, task: str) -> tuple[str, ...] | None:
    if task not in ("binary", "multiclass"):
        return None
    labels = tuple(text_labels(y))
    if len(labels) < 2:  # no task fits: the data (or the source's filter) is at fault
        found = f"a single class {labels[0]!r}" if labels else "no class (every value is missing)"
        msg = (
            f"the target {y.name!r} has {found}; a classifier needs at least two: check the "
            f"data, data.target ({spec.locate('data', 'target')}) or the source's filter"
        )
        raise DataError(msg)
    if (task == "binary") != (len(labels) == 2):
        shown = list(labels[:10]) + (["..."] if len(labels) > 10 else [])
        other = "binary" if len(labels) == 2 else "multiclass (or regression, for numbers)"
        msg = (
            f"task {task!r} ({spec.locate('task')}) does not fit the target {y.name!r}, which "
            f"has {len(labels)} classes {shown}; set task to {other}, or check the target"
        )
        raise DataError(msg)
    return labels


#: A ``string`` column is code-like when at most this share of its values has a space...
CODE_SPACED_SHARE = 0.1
#: ... its values are this long at most on average...
CODE_MEAN_LENGTH = 24
#: ... and it has at most this share of distinct values (more reads as an identifier).
CODE_DISTINCT_SHARE = 0.2


def _code_like(series: pd.Series) -> bool:
    """Whether a ``string`` column holds codes (short single tokens that repeat: countries,
    agents, product codes), a category with many values, rather than free text or ids."""
    present = series.dropna()
    if present.empty:
        return False
    texts = present.astype(str)
    if texts.nunique() > CODE_DISTINCT_SHARE * len(texts):
        return False
    return bool(
        texts.str.contains(r"\s", regex=True).mean() <= CODE_SPACED_SHARE
        and texts.str.len().mean() <= CODE_MEAN_LENGTH
    )
