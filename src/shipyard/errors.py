"""Shipyard's error hierarchy.

Every error a user can cause is a :class:`ShipyardError`; its message says what was found,
what was expected, where, and what to do next. Entry points (the CLI, the server) map these
to a one-line message / a 4xx response; anything else is an internal error.

::

    ShipyardError
    ├── SpecError                  the project file is missing or invalid
    ├── DataError                  a data source cannot be read
    │   └── DataValidationError    the data breaks the schema or an expectation
    ├── TrainingError              no candidate could be trained / scored
    ├── StoreError                 the metadata or artifact store failed
    │   ├── ArtifactIntegrityError an artifact's sha256 (or encrypted tag) does not match
    │   └── EncryptionError        no, a wrong or an invalid encryption key; no cryptography
    ├── TrackingError              misuse of the runs API (no active run, ...)
    ├── RegistryError              registry misuse (bad alias, bad promotion, ...)
    │   ├── ModelNotFoundError     no such model / version / alias
    │   └── InvalidModelURIError   a model URI that does not parse
    ├── PredictionError            input records do not match the model's Signature
    ├── DeployError                deployment artifacts cannot be written (existing files, ...)
    └── PluginError                an installed plugin failed to register
"""

from __future__ import annotations

__all__ = [
    "ArtifactIntegrityError",
    "DataError",
    "DataValidationError",
    "DeployError",
    "EncryptionError",
    "InvalidModelURIError",
    "ModelNotFoundError",
    "PluginError",
    "PredictionError",
    "RegistryError",
    "ShipyardError",
    "SpecError",
    "StoreError",
    "TrackingError",
    "TrainingError",
]


class ShipyardError(Exception):
    """Base class of every error a user of Shipyard can cause or act on."""


class SpecError(ShipyardError):
    """The project file (``shipyard.yaml``) is missing, malformed or invalid."""


class DataError(ShipyardError):
    """A data source cannot be read or does not hold what the project expects."""


class DataValidationError(DataError):
    """The data breaks the inferred schema or a declared expectation.

    Attributes:
        report: the :class:`shipyard.data.ValidationReport` that failed, when there is one.
    """

    def __init__(self, message: str, report: object | None = None) -> None:
        super().__init__(message)
        self.report = report


class TrainingError(ShipyardError):
    """No candidate model could be trained or scored."""


class StoreError(ShipyardError):
    """The metadata store or the artifact store failed or holds unexpected state."""


class ArtifactIntegrityError(StoreError):
    """An artifact's content does not match the sha256 recorded in the store, or its
    encrypted content fails authentication."""


class EncryptionError(StoreError):
    """Encrypted data cannot be read or written: no key, another key or an invalid key in
    ``SHIPYARD_ENCRYPTION_KEY``, or the ``cryptography`` library (``shipyard[crypto]``) is
    missing."""


class TrackingError(ShipyardError):
    """The runs API was used wrongly (no active run, unknown run id, ...)."""


class RegistryError(ShipyardError):
    """The model registry was used wrongly (bad alias, bad promotion, ...)."""


class ModelNotFoundError(RegistryError):
    """No registered model, version or alias matches the request."""


class InvalidModelURIError(RegistryError):
    """A model URI does not follow ``models:/NAME@ALIAS`` or ``models:/NAME/VERSION``."""


class PredictionError(ShipyardError):
    """Input records do not match the model's Signature."""


class DeployError(ShipyardError):
    """Deployment artifacts cannot be generated or written (a file exists, a bad setting)."""


class PluginError(ShipyardError):
    """An installed plugin (a ``shipyard.*`` entry point) failed to load or register."""
