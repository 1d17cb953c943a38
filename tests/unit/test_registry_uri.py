"""Model URIs parse into references, and bad ones say what is expected."""

from __future__ import annotations

import pytest

from shipyard.errors import InvalidModelURIError
from shipyard.registry import ModelRef, parse_model_uri


@pytest.mark.parametrize(
    ("uri", "ref"),
    [
        ("models:/penguins@production", ModelRef(name="penguins", alias="production")),
        ("models:/penguins/3", ModelRef(name="penguins", version=3)),
        ("models:/my-model.v2", ModelRef(name="my-model.v2")),
        (
            "runs:/0123456789abcdef0123456789abcdef",
            ModelRef(run_id="0123456789abcdef0123456789abcdef"),
        ),
        ("runs:/abcdef12/model", ModelRef(run_id="abcdef12")),
    ],
)
def test_parse(uri: str, ref: ModelRef) -> None:
    assert parse_model_uri(uri) == ref
    assert str(parse_model_uri(str(ref))) == str(ref)


@pytest.mark.parametrize(
    "uri",
    ["penguins", "models:/", "models:/a@", "models:/a/x", "models:/a@Prod", "s3://x", "runs:/xyz"],
)
def test_bad_uri(uri: str) -> None:
    with pytest.raises(InvalidModelURIError, match="expected models:/NAME@ALIAS"):
        parse_model_uri(uri)
