"""The input domain flags values outside what the model saw in training, field by field."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shipyard.data import ColumnSchema, Signature, profile_frame
from shipyard.model import InputDomain


def _signature() -> Signature:
    return Signature(
        inputs=(
            ColumnSchema(name="price", kind="number", dtype="float64", nullable=False),
            ColumnSchema(name="rooms", kind="integer", dtype="int64", nullable=True),
            ColumnSchema(name="city", kind="category", dtype="str", nullable=False),
            ColumnSchema(
                name="kind", kind="category", dtype="str", nullable=False, categories=("a", "b")
            ),
            ColumnSchema(name="flag", kind="boolean", dtype="bool", nullable=False),
            ColumnSchema(name="note", kind="string", dtype="str", nullable=False),
            ColumnSchema(name="seen", kind="datetime", dtype="datetime64[ns]", nullable=False),
            ColumnSchema(name="const", kind="number", dtype="float64", nullable=False),
        )
    )


@pytest.fixture(scope="module")
def domain() -> InputDomain:
    rng = np.random.default_rng(0)
    n = 200
    frame = pd.DataFrame(
        {
            "price": np.linspace(100.0, 200.0, n),  # range [100, 200], width 100
            "rooms": pd.array([None if i % 10 == 0 else i % 5 for i in range(n)], "Int64"),
            "city": pd.Series(rng.choice(["Oslo", "Bergen"], n), dtype="str"),
            "kind": pd.Series(rng.choice(["a", "b"], n), dtype="str"),
            "flag": rng.random(n) < 0.5,
            "note": pd.Series([f"text {i}" for i in range(n)], dtype="str"),
            "seen": pd.date_range("2024-01-01", periods=n, freq="h"),
            "const": np.full(n, 5.0),
        }
    )
    profile = profile_frame(frame, _signature())
    return InputDomain.from_profile(profile, _signature(), margin=0.1)


GOOD = {
    "price": 150.0,
    "rooms": 2,
    "city": "Oslo",
    "kind": "a",
    "flag": True,
    "note": "anything",
    "seen": "2030-01-01T00:00:00",
    "const": 5.0,
}


def _tags(domain: InputDomain, **change: object) -> list[str]:
    (found,) = domain.check([{**GOOD, **change}])
    return [issue.tag for issue in found]


def test_a_record_like_training_is_not_flagged(domain: InputDomain) -> None:
    assert domain.check([GOOD, {**GOOD, "price": 205.0, "rooms": None}]) == [(), ()]


def test_numbers_past_the_margin_are_flagged_on_their_side(domain: InputDomain) -> None:
    assert _tags(domain, price=211.0) == ["price:above_range"]
    assert _tags(domain, price=89.0) == ["price:below_range"]
    assert _tags(domain, price=209.0) == []  # within 10% of the width past the maximum
    assert _tags(domain, rooms=9) == ["rooms:above_range"]  # integers too
    (found,) = domain.check([{**GOOD, "price": 1000.0}])
    assert "1000" in found[0].message and "[100, 200]" in found[0].message


def test_a_constant_column_gets_a_width_from_its_value(domain: InputDomain) -> None:
    assert _tags(domain, const=5.4) == []
    assert _tags(domain, const=5.6) == ["const:above_range"]


def test_unseen_categories_and_missing_values(domain: InputDomain) -> None:
    assert _tags(domain, city="Paris") == ["city:unseen_category"]
    # kind's categories are fixed by the Signature: the request schema refuses the unseen
    assert _tags(domain, kind="z") == []
    assert _tags(domain, price=None) == ["price:missing"]
    assert _tags(domain, price=float("nan")) == ["price:missing"]
    assert _tags(domain, rooms=None) == []  # training had missing rooms
    assert _tags(domain, note="never seen", seen="1900-01-01", flag=False) == []


def test_several_fields_at_once(domain: InputDomain) -> None:
    assert sorted(_tags(domain, price=1e6, city="Paris", const=None)) == [
        "city:unseen_category",
        "const:missing",
        "price:above_range",
    ]


def test_checked_fields_and_margin(domain: InputDomain) -> None:
    assert set(domain.fields) == {"price", "rooms", "city", "kind", "flag", "seen", "const"}
    one = Signature(inputs=_signature().inputs[:1])
    profile = profile_frame(pd.DataFrame({"price": [1.0, 2.0]}), one)
    assert InputDomain.from_profile(profile, one, margin=0).check([{"price": 2.0001}]) != [()]
    with pytest.raises(ValueError, match="margin"):
        InputDomain.from_profile(profile, one, margin=-1)
