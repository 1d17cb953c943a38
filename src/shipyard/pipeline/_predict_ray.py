"""Batch prediction on Ray Data (``shipyard predict --engine ray``, ``shipyard[ray]``).

The file is read by Ray Data in blocks, scored by a pool of actors that each load the model
package once (it goes into Ray's object store once), and the scored blocks come back in file
order to this process, which writes them as one file, atomically, as
:func:`shipyard.pipeline.predict_file` does. Ray is imported only here.
"""

from __future__ import annotations

import csv
import logging
import re
from pathlib import Path
from typing import Any

import pandas as pd

from shipyard import errors
from shipyard.data import PiiPolicy, Signature
from shipyard.errors import DataError, ShipyardError
from shipyard.model import RuntimeChoice
from shipyard.pipeline._output import TableWriter
from shipyard.pipeline._predict import ProgressCallback, predict_file, scored_rows
from shipyard.registry import ModelPackage
from shipyard.train import ray_cluster

__all__ = ["predict_file_ray"]

logger = logging.getLogger(__name__)

_PARQUET = (".parquet", ".pq")
_CSV = {".csv": ",", ".txt": ",", ".tsv": "\t"}
_REMOTE_ERROR = re.compile(r"shipyard\.errors\.(\w+): (.*?)(?:\n\s*\n|\Z)", re.DOTALL)
_PANDAS_NA = [  # what pandas.read_csv reads as missing by default
    *("", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND"),
    *("1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"),
]


def predict_file_ray(
    package: ModelPackage,
    input_path: str | Path,
    output_path: str | Path,
    *,
    runtime: RuntimeChoice = "auto",
    address: str | None = None,
    on_progress: ProgressCallback | None = None,
) -> int:
    """Predict every row of ``input_path`` on a Ray cluster and write the input plus
    predictions: the same columns, order and values as :func:`predict_file`.

    Args:
        package: the model package.
        input_path: a CSV, TSV or Parquet file of records (a path every Ray node can read:
            a local file on a local cluster, a shared or object-store path on a remote one).
        output_path: where to write (``.parquet`` or ``.csv``), atomically, from this process.
        runtime: ``auto``, ``onnx`` or ``sklearn``.
        address: the Ray cluster; without one, a local cluster is started with this machine's
            CPUs (a few seconds) and stopped at the end. A process already connected to Ray
            uses its connection.
        on_progress: called after each block with the rows done and the total (``None`` for
            CSV).

    Returns:
        The number of rows predicted.

    Raises:
        DataError: the input cannot be read or the output written.
        PredictionError: the rows do not match the model's Signature.
        ShipyardError: Ray is not installed, or the cluster cannot be reached.
    """
    writer = TableWriter(output_path)  # a wrong extension fails before Ray starts
    pii = package.pii_policy()  # here, where the key is: the actors get the policy itself
    path = Path(input_path)
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "does not exist"
        msg = f"{path} {what}; give a .csv or .parquet file of records"
        raise DataError(msg)
    with ray_cluster(address) as cluster:
        ray = _ray_data()
        dataset = _read(ray, path, package.signature)
        total = dataset.count() if path.suffix.lower() in _PARQUET else None
        scored = dataset.map_batches(
            _Scorer,
            fn_constructor_args=([ray.put(package)], runtime, pii),
            batch_format="pyarrow",  # converted by pyarrow, as pandas.read_parquet converts
            compute=ray.data.ActorPoolStrategy(min_size=1, max_size=cluster.n_cpus),
            num_cpus=1,
        )
        with writer:
            for batch in _batches(scored, path):
                writer.write(batch)
                if on_progress is not None:
                    on_progress(writer.n_rows, total)
    if writer.n_rows == 0:  # no rows: the local engine knows the columns of an empty output
        return predict_file(package, input_path, output_path, runtime=runtime)
    logger.info("wrote %d predictions to %s on Ray", writer.n_rows, output_path)
    return writer.n_rows


def _ray_data() -> Any:
    import ray
    import ray.data

    ray.data.DataContext.get_current().execution_options.preserve_order = True  # file order
    return ray


def _read(ray: Any, path: Path, signature: Signature) -> Any:
    suffix = path.suffix.lower()
    if suffix in _PARQUET:
        return ray.data.read_parquet(str(path.resolve()))
    if suffix in _CSV:
        return ray.data.read_csv(str(path.resolve()), **_csv_options(path, _CSV[suffix], signature))
    msg = f"{path}: cannot tell the format from the extension; expected .csv, .tsv or .parquet"
    raise DataError(msg)


def _csv_options(path: Path, delimiter: str, signature: Signature) -> dict[str, Any]:
    """Arrow's CSV options closest to ``pandas.read_csv``'s: pandas' missing-value markers,
    and the model's text, category and date inputs kept as text (Arrow would turn
    ``2024-01-31`` into a date, pandas leaves it a string)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    with path.open(encoding="utf-8", newline="") as f:
        header = next(csv.reader(f, delimiter=delimiter), [])
    texts = {c.name for c in signature.inputs if c.kind not in ("number", "integer", "boolean")}
    return {
        "parse_options": pacsv.ParseOptions(delimiter=delimiter),
        "convert_options": pacsv.ConvertOptions(
            null_values=_PANDAS_NA,
            strings_can_be_null=True,
            column_types={name: pa.string() for name in header if name in texts},
        ),
    }


def _batches(scored: Any, path: Path) -> Any:
    """The scored blocks in file order; a Shipyard error raised on an actor is raised here as
    itself (without Ray's traceback), naming the file."""
    from ray.exceptions import RayTaskError

    try:
        for batch in scored.iter_batches(batch_format="pyarrow", batch_size=None):
            yield batch.to_pandas()
    except RayTaskError as exc:
        cause = _shipyard_cause(exc)
        if cause is None:
            raise
        msg = f"{path}: {cause}"
        raise type(cause)(msg) from exc


def _shipyard_cause(exc: BaseException) -> ShipyardError | None:
    """The Shipyard error an actor raised. Ray Data keeps only its traceback's text (the
    exception object does not cross back), whose last lines are ``shipyard.errors.NAME: ...``."""
    cause = getattr(exc, "cause", None)  # kept by Ray tasks, though not by Ray Data's
    if isinstance(cause, ShipyardError):
        return cause
    found = _REMOTE_ERROR.search(str(exc))
    if found is None:
        return None
    kind = getattr(errors, found.group(1), None)
    if not (isinstance(kind, type) and issubclass(kind, ShipyardError)):
        return None
    return kind(found.group(2).strip())


class _Scorer:
    """A Ray Data actor: loads the model package once, then scores blocks as
    :func:`predict_file` scores chunks."""

    def __init__(self, package: list[Any], runtime: RuntimeChoice, pii: PiiPolicy | None) -> None:
        import ray

        self._package: ModelPackage = ray.get(package[0])
        self._model = self._package.runtime(runtime)
        self._pii = pii

    def __call__(self, block: Any) -> pd.DataFrame:
        batch = block.to_pandas()
        predictions = self._model.predict_frame(batch).to_frame()
        return scored_rows(self._package, batch, predictions, self._pii)
