"""The project file: valid files load; typical mistakes give file:line, field and expectation."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shipyard.errors import SpecError
from shipyard.spec import ProjectSpec, load_spec, parse_spec, spec_hash, starter_spec

VALID = """\
name: penguins
data:
  source:
    type: csv
    path: data/penguins.csv
  target: species
models:
  - model: linear
  - model: lightgbm
    params: {n_estimators: 10}
metric: f1_macro
validation:
  expectations:
    - {check: range, column: bill_length_mm, min: 20, max: 80}
    - {check: not_null, column: species, severity: warning}
"""


def test_valid_file_loads(tmp_path: Path) -> None:
    path = tmp_path / "shipyard.yaml"
    path.write_text(VALID)
    spec = load_spec(path)
    assert spec.name == "penguins"
    assert spec.data.target == "species"
    assert [c.label for c in spec.models] == ["linear", "lightgbm"]
    assert spec.models[1].params == {"n_estimators": 10}
    assert spec.validation.expectations[1].severity == "warning"
    assert spec.base_dir == tmp_path.resolve()
    assert spec.locate("models", 1, "model").endswith("shipyard.yaml:9 (models[1].model)")


def test_directory_means_its_shipyard_yaml(tmp_path: Path) -> None:
    (tmp_path / "shipyard.yaml").write_text(VALID)
    assert load_spec(tmp_path).name == "penguins"


def test_defaults_fill_in() -> None:
    spec = parse_spec("name: x\ndata: {source: {type: parquet, path: a.parquet}, target: y}\n")
    assert spec.task is None and spec.metric is None
    assert [c.model for c in spec.models] == ["linear", "random_forest", "lightgbm"]
    assert spec.split.cv_folds == 5 and spec.registry.alias == "production"
    assert spec.model_name == "x"
    assert spec.data.on_bad_numbers == "error"


def test_spec_hash_is_stable_and_sensitive() -> None:
    a = parse_spec(VALID)
    assert spec_hash(a) == spec_hash(parse_spec(VALID))
    assert spec_hash(a) != spec_hash(
        parse_spec(VALID.replace("n_estimators: 10", "n_estimators: 11"))
    )


def test_starter_spec_is_valid() -> None:
    spec = parse_spec(starter_spec(name="demo", path="d.parquet", target="t"))
    assert spec.data.source.type == "parquet"
    assert spec.model_name == "demo"


MISTAKES = [
    # (what, text, line, expected fragments)
    ("missing file", None, None, ["no such project file", "shipyard init"]),
    ("empty file", "", 1, ["expected a mapping", "empty file"]),
    ("not yaml", "name: [unclosed\n", 2, ["not valid YAML"]),
    ("top-level list", "- a\n- b\n", 1, ["expected a mapping", "list"]),
    (
        "typo in a section key",
        VALID.replace("  target:", "  targt:"),
        6,
        ["data.targt", "did you mean 'target'"],
    ),
    (
        "missing target",
        VALID.replace("  target: species\n", ""),
        2,
        ["data.target", "required field is missing"],
    ),
    (
        "unknown source type",
        VALID.replace("type: csv", "type: excel"),
        4,
        ["data.source", "'excel'", "'csv'"],
    ),
    ("bad task", VALID + "task: clustering\n", 16, ["task", "'clustering'", "'binary'"]),
    (
        "bad on_bad_numbers",
        VALID.replace("  target: species\n", "  target: species\n  on_bad_numbers: drop\n"),
        7,
        ["data.on_bad_numbers", "'drop'", "'error' or 'coerce'"],
    ),
    (
        "test_size out of range",
        VALID + "split: {test_size: 1.5}\n",
        16,
        ["split.test_size", "1.5", "less than 1"],
    ),
    (
        "cv_folds not a number",
        VALID + "split: {cv_folds: many}\n",
        16,
        ["split.cv_folds", "'many'", "integer"],
    ),
    (
        "time split without column",
        VALID + "split: {strategy: time}\n",
        16,
        ["split", "time_column"],
    ),
    (
        "unknown expectation",
        VALID.replace("check: range", "check: between"),
        14,
        ["expectations[0]", "'between'", "'range'"],
    ),
    (
        "range without bounds",
        VALID.replace(", min: 20, max: 80", ""),
        14,
        ["expectations[0]", "'min', 'max'"],
    ),
    (
        "min above max",
        VALID.replace("min: 20, max: 80", "min: 80, max: 20"),
        14,
        ["greater than 'max'"],
    ),
    ("unknown metric", VALID.replace("metric: f1_macro", "metric: f2"), 1, ["unknown metric 'f2'"]),
    (
        "metric of the wrong task",
        VALID.replace("metric: f1_macro", "metric: rmse") + "task: binary\n",
        1,
        ["not a classification metric"],
    ),
    (
        "duplicate candidates",
        VALID.replace("model: lightgbm", "model: linear"),
        1,
        ["unique", "'linear'"],
    ),
    (
        "candidate typo",
        VALID.replace("  - model: linear", "  - modle: linear"),
        8,
        ["models[0].modle", "did you mean 'model'"],
    ),
    ("duplicate key", VALID + "name: again\n", 16, ["'name' appears twice"]),
    (
        "bad severity",
        VALID.replace("severity: warning", "severity: fatal"),
        15,
        ["severity", "'fatal'"],
    ),
    (
        "sql with both",
        "name: x\ndata:\n  source: {type: sql, url: 'sqlite://', table: t, query: q}\n"
        "  target: y\n",
        3,
        ["exactly one of 'query' and 'table'"],
    ),
    (
        "bad project name",
        VALID.replace("name: penguins", "name: 'my project!'"),
        1,
        ["name", "pattern"],
    ),
]


@pytest.mark.parametrize(
    ("what", "text", "line", "fragments"), MISTAKES, ids=[m[0] for m in MISTAKES]
)
def test_mistakes_name_file_line_field_and_expectation(
    tmp_path: Path, what: str, text: str | None, line: int | None, fragments: list[str]
) -> None:
    path = tmp_path / "shipyard.yaml"
    if text is not None:
        path.write_text(text)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    message = str(info.value)
    assert str(path) in message
    if line is not None:
        assert f"{path}:{line}" in message, message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in: {message}"


@settings(max_examples=60, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=8),
        lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c, max_size=3),
        max_leaves=12,
    )
)
def test_any_yaml_value_gives_spec_or_spec_error(value: object) -> None:
    """Whatever the YAML holds, loading gives a spec or a SpecError, never another exception."""
    import yaml

    text = yaml.safe_dump({"name": "x", "data": value})
    try:
        assert isinstance(parse_spec(text), ProjectSpec)
    except SpecError as exc:
        assert "<spec>:" in str(exc)


def test_environment_variables_fill_in_strings(tmp_path: Path) -> None:
    text = (
        "name: x\ndata:\n"
        "  source: {type: sql, url: 'postgresql://u:${DB_PASSWORD}@h/db', table: t}\n"
        "  target: '${TARGET:-y}'\nmodels: [{model: linear, name: 'cost$$'}]\n"
    )
    path = tmp_path / "shipyard.yaml"
    path.write_text(text)
    spec = load_spec(path, env={"DB_PASSWORD": "s3cret"})
    assert spec.data.source.url == "postgresql://u:s3cret@h/db"  # type: ignore[union-attr]
    assert spec.data.target == "y" and spec.models[0].name == "cost$"
    with pytest.raises(
        SpecError,
        match=r"shipyard.yaml:3: data.source.url: environment variable 'DB_PASSWORD' is not set",
    ):
        load_spec(path, env={})


def test_a_bare_catalogue_key_is_a_candidate_with_its_defaults(tmp_path: Path) -> None:
    text = VALID.replace("  - model: linear\n", "  - linear\n")
    (tmp_path / "shipyard.yaml").write_text(text)
    spec = load_spec(tmp_path)
    assert [(c.model, c.params) for c in spec.models] == [
        ("linear", {}),
        ("lightgbm", {"n_estimators": 10}),
    ]
    assert spec.locate("models", 0, "model").endswith("shipyard.yaml:8 (models[0].model)")
    (tmp_path / "shipyard.yaml").write_text(text.replace("  - linear\n", "  - 42\n"))
    with pytest.raises(SpecError, match=r"shipyard.yaml:8: models\[0\]"):
        load_spec(tmp_path)
