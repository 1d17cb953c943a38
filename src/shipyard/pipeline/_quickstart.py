"""``shipyard quickstart``: a project on the penguins dataset shipped in palmerpenguins."""

from __future__ import annotations

from pathlib import Path

from shipyard.errors import SpecError
from shipyard.pipeline._predict import write_table

__all__ = ["QUICKSTART_SPEC", "create_quickstart_project"]

QUICKSTART_SPEC = """\
# A Shipyard project made by `shipyard quickstart` from the Palmer penguins dataset
# (344 penguins, numeric and categorical columns with missing values).
name: penguins

data:
  source:
    type: csv
    path: data/penguins.csv
  target: species

task: multiclass
metric: f1_macro

features:
  exclude: [year]

split:
  strategy: stratified
  test_size: 0.2
  cv_folds: 5
  seed: 42

models:
  - model: logistic_regression
  - model: random_forest
    params: {n_estimators: 200, max_depth: 8}
  - model: lightgbm
    params: {n_estimators: 150, learning_rate: 0.05}

validation:
  expectations:
    - {check: row_count, min: 100}
    - {check: not_null, column: species}
    - {check: allowed_values, column: species, values: [Adelie, Chinstrap, Gentoo]}
    - {check: allowed_values, column: island, values: [Biscoe, Dream, Torgersen]}
    - {check: range, column: bill_length_mm, min: 25, max: 70}
    - {check: range, column: body_mass_g, min: 2000, max: 7000}
    - {check: allowed_values, column: sex, values: [female, male], severity: warning}

registry:
  model_name: penguins
  alias: production
"""


def create_quickstart_project(directory: str | Path, *, overwrite: bool = False) -> Path:
    """Write ``shipyard.yaml`` and ``data/penguins.csv`` into ``directory``.

    Returns:
        The project file's path.

    Raises:
        SpecError: a different ``shipyard.yaml`` is already there and ``overwrite`` is false.
    """
    import palmerpenguins  # data package; imported only for the quickstart

    root = Path(directory)
    spec_path = root / "shipyard.yaml"
    if spec_path.exists() and not overwrite and spec_path.read_text() != QUICKSTART_SPEC:
        msg = f"{spec_path} already exists; run the quickstart in an empty folder or pass --force"
        raise SpecError(msg)
    root.mkdir(parents=True, exist_ok=True)
    write_table(palmerpenguins.load_penguins(), root / "data" / "penguins.csv")
    tmp = spec_path.with_suffix(".yaml.tmp")
    tmp.write_text(QUICKSTART_SPEC, encoding="utf-8")
    tmp.replace(spec_path)
    return spec_path
