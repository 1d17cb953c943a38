"""One extension mechanism for every registry: named entries, and plugins found by entry point.

Shipyard's extension points (drift tests, alert channels, label sources) are each a
:class:`PluginRegistry` built per application by a ``default_*`` function. That function adds the
built-ins with the same :meth:`PluginRegistry.add` a plugin calls, then loads the plugins: every
function an installed package publishes under the registry's entry-point group is called with
the registry. Nothing registers at import time.

A package adds a drift test by declaring, in its ``pyproject.toml``::

    [project.entry-points."shipyard.drift_methods"]
    anderson = "my_package.drift:register"

where ``register(methods)`` calls ``methods.add(DriftMethod(...))``.

=======================  ============================================================
group                    registry
=======================  ============================================================
``shipyard.drift_methods``   :class:`shipyard.monitor.DriftMethods`
``shipyard.alert_channels``  :class:`shipyard.pipeline.AlertChannels` (``register(channels,
                             alerts)``: the alert settings come too)
``shipyard.label_sources``   :class:`shipyard.pipeline.LabelSources`
=======================  ============================================================
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Callable, Iterator
from importlib import metadata
from typing import Any, Generic, TypeVar

from shipyard.errors import PluginError

__all__ = ["PluginRegistry", "load_plugins"]

logger = logging.getLogger(__name__)

T = TypeVar("T")


class PluginRegistry(Generic[T]):
    """Entries by name, in the order they were added.

    Args:
        kind: what an entry is, for messages (``drift method``).
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def add(self, name: str, entry: T) -> None:
        """Register an entry.

        Raises:
            ValueError: an entry of that name is already registered.
        """
        if name in self._entries:
            msg = f"a {self.kind} named {name!r} is already registered"
            raise ValueError(msg)
        self._entries[name] = entry

    def find(self, name: str) -> T | None:
        """The entry called ``name``, or ``None``."""
        return self._entries.get(name)

    def unknown(self, name: str) -> str:
        """The message for a name nothing has: the closest known name and the list."""
        close = difflib.get_close_matches(name, list(self._entries), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return f"unknown {self.kind} {name!r}{hint} (known: {', '.join(sorted(self._entries))}"

    def names(self) -> list[str]:
        """The registered names, in the order they were added."""
        return list(self._entries)

    def items(self) -> list[tuple[str, T]]:
        """``(name, entry)`` pairs, in the order they were added."""
        return list(self._entries.items())

    def __iter__(self) -> Iterator[T]:
        return iter(list(self._entries.values()))

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __len__(self) -> int:
        return len(self._entries)


def load_plugins(group: str, *args: Any) -> list[str]:
    """Call every function published under the entry-point group ``shipyard.<group>``.

    Args:
        group: the group's last part (``drift_methods``).
        args: what each function receives (the registry, and any settings).

    Returns:
        The plugins' names, in the order they were called.

    Raises:
        PluginError: a plugin could not be imported or its function raised; the message
            names the package's entry point.
    """
    loaded = []
    for point in sorted(metadata.entry_points(group=f"shipyard.{group}"), key=lambda p: p.name):
        try:
            register: Callable[..., object] = point.load()
            register(*args)
        except Exception as exc:
            msg = (
                f"the plugin {point.name!r} ({point.value}, entry point group "
                f"shipyard.{group}) failed to register: {type(exc).__name__}: {exc}; upgrade "
                "or uninstall the package that provides it"
            )
            raise PluginError(msg) from exc
        logger.debug("loaded plugin %s from %s", point.name, point.value)
        loaded.append(point.name)
    return loaded
