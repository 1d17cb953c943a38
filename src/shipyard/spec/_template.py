"""The commented starter project file written by ``shipyard init``."""

from __future__ import annotations

__all__ = ["starter_spec"]

_TEMPLATE = """\
# Shipyard project file. Every setting is documented in docs/project-file.md.
name: {name}

data:
  # csv and parquet paths are relative to this file; sql takes a SQLAlchemy URL:
  #   source: {{type: sql, url: "postgresql+psycopg://user@host/db", table: penguins}}
  source:
    type: {source_type}
    path: {path}
  target: {target}

# binary, multiclass or regression; inferred from the target when omitted.
# task: multiclass

features:
  include: []        # empty: every column but the target
  exclude: []        # e.g. [id]
  types: {{}}          # kinds: number, integer, boolean, category, string, datetime

split:
  strategy: null     # random, stratified or time (null: stratified for classification)
  test_size: 0.2
  cv_folds: 5
  seed: 42

# Candidates are cross-validated; the best by `metric` is refit and evaluated on the holdout.
models:
  - model: linear          # logistic regression / ridge
  - model: random_forest
    params: {{n_estimators: 200}}
  - model: lightgbm

# Primary metric; default f1_macro (classification) or rmse (regression).
# metric: f1_macro

validation:
  max_missing_fraction: 0.5
  expectations: []
  # - {{check: not_null, column: species}}
  # - {{check: range, column: bill_length_mm, min: 20, max: 80, severity: warning}}
  # - {{check: allowed_values, column: island, values: [Biscoe, Dream, Torgersen]}}
  # - {{check: row_count, min: 100}}

registry:
  model_name: {name}
  alias: production        # given to the new version when it beats the current holder
  min_improvement: 0.0
"""


def starter_spec(
    *, name: str = "my-project", path: str = "data.csv", target: str = "target"
) -> str:
    """Return a commented ``shipyard.yaml`` for a CSV or Parquet dataset."""
    source_type = "parquet" if path.endswith((".parquet", ".pq")) else "csv"
    return _TEMPLATE.format(name=name, path=path, target=target, source_type=source_type)
