"""Estimator classes named by import path in ``models: - model: ...``.

Any scikit-learn compatible estimator can be a candidate without a plugin:
``model: sklearn.svm.LinearSVR`` or ``model: mypkg.models:MyModel`` (the colon form names an
attribute of the module, which may be nested: ``mypkg.models:Outer.Inner``). The class must
build without arguments and have ``fit``, ``predict``, ``get_params`` and ``set_params``; its
parameters come from the candidate's ``params``, as for any catalogue entry.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from typing import Any

from sklearn.base import is_classifier, is_regressor

from shipyard.errors import TrainingError

__all__ = ["build_imported", "estimator_kind", "import_estimator"]

_NEEDS = ("fit", "predict", "get_params", "set_params")


def import_estimator(path: str, *, where: str) -> type:
    """The estimator class at ``path``, checked.

    Raises:
        TrainingError: the module does not import, has no such name, or the name is not an
            estimator class (each says which and what to do).
    """
    module_name, name = _split(path)
    if not module_name or not name:
        msg = (
            f"{where}: {path!r} is not an import path; give 'package.module.Class' or "
            "'package.module:Class'"
        )
        raise TrainingError(msg)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        msg = (
            f"{where}: cannot import {module_name!r} for model {path!r} ({exc}); install the "
            "package that provides it, or correct the path"
        )
        raise TrainingError(msg) from exc
    found: Any = module
    for part in name.split("."):
        if not hasattr(found, part):
            names = [n for n in dir(found) if not n.startswith("_")]
            close = difflib.get_close_matches(part, names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            msg = f"{where}: {module_name!r} has no {name!r} (model {path!r}){hint}"
            raise TrainingError(msg)
        found = getattr(found, part)
    _check_estimator_class(found, path, where)
    return found


def estimator_kind(cls: type, *, path: str, where: str) -> str | None:
    """``"classifier"``, ``"regressor"`` or ``None`` (it does not say), from an instance.

    Raises:
        TrainingError: the class does not build without arguments.
    """
    try:
        probe = cls()
    except Exception as exc:  # its constructor is the user's code: any failure is theirs
        msg = (
            f"{where}: model {path!r} cannot be built without arguments ({exc}); a "
            "scikit-learn estimator gives every parameter a default"
        )
        raise TrainingError(msg) from exc
    if _quietly(is_classifier, probe):
        return "classifier"
    if _quietly(is_regressor, probe):
        return "regressor"
    return None


def build_imported(cls: type, task: str, seed: int) -> Any:
    """An instance with its defaults, seeded when it takes a ``random_state``."""
    estimator = cls()
    if "random_state" in estimator.get_params(deep=False):
        estimator.set_params(random_state=seed)
    return estimator


def _split(path: str) -> tuple[str, str]:
    if ":" in path:
        module_name, _, name = path.partition(":")
        return module_name.strip(), name.strip()
    module_name, _, name = path.rpartition(".")
    return module_name, name


def _check_estimator_class(found: Any, path: str, where: str) -> None:
    if not inspect.isclass(found):
        msg = (
            f"{where}: model {path!r} is a {type(found).__name__}, not an estimator class; "
            "name the class (such as sklearn.svm.SVC)"
        )
        raise TrainingError(msg)
    missing = [m for m in _NEEDS if not callable(getattr(found, m, None))]
    if missing:
        msg = (
            f"{where}: model {path!r} is not a scikit-learn compatible estimator: it has no "
            f"{', '.join(missing)}; subclass sklearn.base.BaseEstimator and give it fit and "
            "predict"
        )
        raise TrainingError(msg)


def _quietly(check: Any, estimator: Any) -> bool:
    """scikit-learn's type check; an estimator without tags is neither type."""
    try:
        return bool(check(estimator))
    except Exception:
        return False
