"""Reading a run's artifacts back (``Run.log_artifact`` stores them under ``runs/<id>/``)."""

from __future__ import annotations

from shipyard.store import Store

__all__ = ["load_run_artifact", "run_artifact_path"]


def run_artifact_path(run_id: str, name: str) -> str:
    """Where run ``run_id``'s artifact ``name`` is stored, relative to the artifact root."""
    return f"runs/{run_id}/{name}"


def load_run_artifact(store: Store, run_id: str, name: str) -> bytes | None:
    """A run's artifact, sha256-verified (and decrypted); ``None`` when the run has none of
    that name.

    Args:
        store: the store the run is in.
        run_id: the run's full id.
        name: the artifact's name, as logged (``report.html``, ``pii_index.parquet``).

    Raises:
        ArtifactIntegrityError: the file changed after it was stored.
        EncryptionError: it is encrypted and no key, or another key, is set.
    """
    path = run_artifact_path(run_id, name)
    if not store.artifacts.exists(path):
        return None
    return store.artifacts.get(path)
