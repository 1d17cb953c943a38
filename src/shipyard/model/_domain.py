"""The input domain: what a model saw in training, to flag records that lie outside it.

A model answers every record it is given, including records unlike anything it was trained
on: a price ten times the largest in training, a category it never saw, a value missing where
training always had one. Its answer for those is an extrapolation nobody checked.
:class:`InputDomain` is built from the package's reference profile (``profile.json``) and finds
those records, field by field, in three ways:

- ``below_range`` / ``above_range``: a number outside the training range widened by a margin
  (a share of the range's width, 10% by default, so that values just past the training
  extremes are not flagged);
- ``unseen_category``: a category or text value the training data never held (only when the
  profile lists every value seen; a column whose Signature fixes its categories refuses
  unknown ones earlier, when the request is validated);
- ``missing``: no value where the training data never lacked one.

Datetimes and booleans are not checked: time moves past the training range by design, and a
boolean has no outside. This is a guard against drifted and broken inputs, not against
crafted ones: an adversarial example is made to look in-distribution (see docs/security.md).

Example:
    >>> domain = InputDomain.from_profile(package.profile.inputs, package.signature)
    ... # doctest: +SKIP
    >>> domain.check([{"age": 430.0, "island": "Biscoe"}])  # doctest: +SKIP
    [(OutOfDomain(field='age', reason='above_range', ...),)]
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from shipyard.data import CategoricalProfile, DatasetProfile, NumericProfile, Signature

__all__ = ["DEFAULT_MARGIN", "InputDomain", "OutOfDomain", "Reason"]

DEFAULT_MARGIN = 0.1
"""How far past the training range a number may go, as a share of the range's width."""

Reason = Literal["below_range", "above_range", "unseen_category", "missing"]


@dataclass(frozen=True)
class OutOfDomain:
    """One field of one record outside the training data.

    Attributes:
        field: the input column.
        reason: ``below_range``, ``above_range``, ``unseen_category`` or ``missing``.
        message: what was found and what training held, for a person (it shows the value: a
            caller that must not echo inputs uses ``field`` and ``reason`` only).
    """

    field: str
    reason: Reason
    message: str

    @property
    def tag(self) -> str:
        """``field:reason``, the form logged in the prediction log's ``ood`` column."""
        return f"{self.field}:{self.reason}"


@dataclass(frozen=True)
class _Range:
    name: str
    low: float  # the accepted bounds: the training range widened by the margin
    high: float
    seen_low: float  # the training range, for messages
    seen_high: float


class InputDomain:
    """The fields a record is checked on, and their training domain.

    Build it with :meth:`from_profile`; :meth:`check` is then a few comparisons per field
    and record, cheap enough for the server's request path.
    """

    def __init__(
        self,
        ranges: Sequence[_Range],
        categories: Mapping[str, frozenset[str]],
        required: Sequence[str],
        margin: float,
    ) -> None:
        self._ranges = tuple(ranges)
        self._categories = dict(categories)
        self._required = tuple(required)
        self.margin = margin

    @classmethod
    def from_profile(
        cls, profile: DatasetProfile, signature: Signature, *, margin: float = DEFAULT_MARGIN
    ) -> InputDomain:
        """The domain of a model's training inputs.

        Args:
            profile: the training inputs' profile (the package's ``profile.inputs``).
            signature: the model's inputs; only these columns are checked.
            margin: how far past the training range a number may go before it is flagged,
                as a share of the range's width (``0.1``: 10%); ``0`` flags anything past
                the extremes.

        Raises:
            ValueError: ``margin`` is negative or not finite.
        """
        if not (math.isfinite(margin) and margin >= 0):
            msg = f"the out-of-distribution margin must be a number >= 0, found {margin!r}"
            raise ValueError(msg)
        ranges: list[_Range] = []
        categories: dict[str, frozenset[str]] = {}
        required: list[str] = []
        for col in signature.inputs:
            stats = profile.columns.get(col.name)
            if stats is None or stats.count == 0:
                continue  # nothing seen in training: nothing to compare with
            if stats.missing == 0 and col.kind != "string":
                required.append(col.name)
            if isinstance(stats, NumericProfile) and col.kind in ("number", "integer"):
                low, high = stats.quantiles.get("0"), stats.quantiles.get("1")
                if low is None or high is None:
                    continue
                # a constant column gets a width from its value, so it is not all-or-nothing
                width = (high - low) or max(abs(low), 1.0)
                ranges.append(
                    _Range(col.name, low - margin * width, high + margin * width, low, high)
                )
            elif (
                isinstance(stats, CategoricalProfile)
                and stats.other == 0  # the profile lists every value seen in training
                and col.kind == "category"
                and not col.categories  # else the request schema already refuses the unseen
            ):
                categories[col.name] = frozenset(stats.frequencies)
        return cls(ranges, categories, required, margin)

    @property
    def fields(self) -> list[str]:
        """The fields checked, in the Signature's order of checks (ranges, categories, missing)."""
        return list(
            dict.fromkeys([*(r.name for r in self._ranges), *self._categories, *self._required])
        )

    def check(self, records: Sequence[Mapping[str, Any]]) -> list[tuple[OutOfDomain, ...]]:
        """What lies outside the training domain, per record (an empty tuple when nothing).

        Records are as the server validated them: numbers are numbers, a missing value is
        ``None`` or an absent key.
        """
        return [self._check_one(record) for record in records]

    def _check_one(self, record: Mapping[str, Any]) -> tuple[OutOfDomain, ...]:
        found: list[OutOfDomain] = []
        for name in self._required:
            value = record.get(name)
            if value is None or (isinstance(value, float) and value != value):
                found.append(
                    OutOfDomain(name, "missing", f"{name!r} is missing; training always had it")
                )
        for r in self._ranges:
            value = record.get(r.name)
            if value is None or isinstance(value, bool):
                continue
            try:
                number = float(value)
            except (TypeError, ValueError):
                continue  # not a number: the request's validation reports it
            if number < r.low:
                found.append(OutOfDomain(r.name, "below_range", _range_message(r, number)))
            elif number > r.high:
                found.append(OutOfDomain(r.name, "above_range", _range_message(r, number)))
        for name, seen in self._categories.items():
            value = record.get(name)
            if value is not None and str(value) not in seen:
                msg = f"{name!r} is {str(value)!r}, a value training never held"
                found.append(OutOfDomain(name, "unseen_category", msg))
        return tuple(found)


def _range_message(r: _Range, number: float) -> str:
    side = "below" if number < r.low else "above"
    return (
        f"{r.name!r} is {number:g}, {side} the training range [{r.seen_low:g}, {r.seen_high:g}] "
        f"by more than the margin"
    )
