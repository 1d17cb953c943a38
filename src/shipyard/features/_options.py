"""Check a project's feature options (``features.transforms``, ``bins``, ``target_encode``,
``text``) against the Signature they will be applied to, before anything is trained."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from shipyard.data import ColumnSchema, Signature
from shipyard.data._schema import close_matches
from shipyard.spec import FeaturesSpec

__all__ = ["FeatureOptionProblem", "check_feature_options"]

NUMERIC_KINDS = frozenset({"number", "integer"})
ENCODABLE_KINDS = frozenset({"category", "string"})
NON_NEGATIVE_TRANSFORMS = frozenset({"log", "sqrt"})


@dataclass(frozen=True)
class FeatureOptionProblem:
    """One mistake in the feature options.

    Attributes:
        field: the option's path in the project file, e.g. ``("features", "transforms", "x")``
            (``ProjectSpec.locate(*field)`` turns it into ``file:line``).
        message: what is wrong and what to do, naming the column.
    """

    field: tuple[str | int, ...]
    message: str

    @property
    def dotted(self) -> str:
        """The field as ``features.transforms.x`` (list items as ``features.target_encode[0]``)."""
        out = ""
        for part in self.field:
            out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
        return out

    def __str__(self) -> str:
        return f"{self.dotted}: {self.message}"


def check_feature_options(
    signature: Signature, options: FeaturesSpec | None
) -> list[FeatureOptionProblem]:
    """Find the feature options that cannot apply to ``signature``'s inputs.

    A column named in an option must be a model input of the right kind: ``transforms`` and
    ``bins`` take ``number``/``integer`` columns (``log`` and ``sqrt`` only values >= 0, as far
    as the Signature's observed minimum tells), ``target_encode`` takes ``category`` or
    ``string`` columns, and ``text`` takes ``string`` (free-text) columns.

    Args:
        signature: the model's inputs (from :func:`shipyard.data.build_signature`).
        options: the project's ``features`` section; ``None`` has nothing to check.

    Returns:
        The problems, in the options' order; empty when every option applies.

    Example:
        >>> from shipyard.data import ColumnSchema
        >>> c = ColumnSchema(name="city", kind="category", dtype="object", nullable=False)
        >>> problems = check_feature_options(
        ...     Signature(inputs=(c,)), FeaturesSpec(transforms={"city": "log"})
        ... )
        >>> print(problems[0])  # doctest: +ELLIPSIS
        features.transforms.city: column 'city' is a category column; ...
    """
    if options is None:
        return []
    return list(_problems(signature, options))


def _problems(signature: Signature, options: FeaturesSpec) -> Iterator[FeatureOptionProblem]:
    inputs = {c.name: c for c in signature.inputs}
    where: tuple[str | int, ...]
    for name, transform in options.transforms.items():
        where = ("features", "transforms", name)
        col = inputs.get(name)
        if col is None:
            yield FeatureOptionProblem(where, _not_an_input(name, signature))
        elif col.kind not in NUMERIC_KINDS:
            yield FeatureOptionProblem(where, _not_numeric(col, f"the {transform!r} transform"))
        elif transform in NON_NEGATIVE_TRANSFORMS and col.minimum is not None and col.minimum < 0:
            yield FeatureOptionProblem(where, _negative(col, transform))
    for name in options.bins:
        where = ("features", "bins", name)
        col = inputs.get(name)
        if col is None:
            yield FeatureOptionProblem(where, _not_an_input(name, signature))
        elif col.kind not in NUMERIC_KINDS:
            yield FeatureOptionProblem(where, _not_numeric(col, "binning"))
    for i, name in enumerate(options.target_encode):
        where = ("features", "target_encode", i)
        col = inputs.get(name)
        if col is None:
            yield FeatureOptionProblem(where, _not_an_input(name, signature))
        elif col.kind not in ENCODABLE_KINDS:
            msg = (
                f"column {name!r} is a {col.kind} column; target encoding applies to category "
                f"or free-text (string) columns: declare it as 'category' under features.types "
                "to encode its values as labels (e.g. integer codes), or remove it"
            )
            yield FeatureOptionProblem(where, msg)
    for name in options.text:
        where = ("features", "text", name)
        col = inputs.get(name)
        if col is None:
            yield FeatureOptionProblem(where, _not_an_input(name, signature))
        elif col.kind != "string":
            msg = (
                f"column {name!r} is a {col.kind} column; TF-IDF applies to free-text columns: "
                f"declare it as 'string' under features.types, or remove it from features.text"
            )
            yield FeatureOptionProblem(where, msg)


def _not_an_input(name: str, signature: Signature) -> str:
    if signature.target is not None and name == signature.target.name:
        return f"column {name!r} is the target; a feature option applies to an input column"
    hint = close_matches(name, signature.input_names)
    return (
        f"column {name!r} is not a model input (not in the data, the target, excluded by "
        f"features.include/exclude, or PII); {hint}"
    )


def _not_numeric(col: ColumnSchema, what: str) -> str:
    return (
        f"column {col.name!r} is a {col.kind} column; {what} applies to number and integer "
        "columns: remove the option, or declare the column's type under features.types"
    )


def _negative(col: ColumnSchema, transform: str) -> str:
    func = "log1p" if transform == "log" else "the square root"
    return (
        f"column {col.name!r} has negative values (minimum {col.minimum:g}) and the "
        f"{transform!r} transform ({func}) needs values >= 0: use 'yeo-johnson', which takes "
        "any sign, or fix the data"
    )
