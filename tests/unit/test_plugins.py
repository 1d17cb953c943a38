"""Plugins: functions published under ``shipyard.*`` entry points extend the registries."""

from __future__ import annotations

from importlib.metadata import EntryPoint
from typing import Any

import numpy as np
import pandas as pd
import pytest

from shipyard import plugins
from shipyard.errors import PluginError
from shipyard.monitor import DriftMethod, DriftMethods, default_drift_methods, detect_drift
from shipyard.pipeline import (
    AlertChannels,
    LabelSources,
    default_alert_channels,
    default_label_sources,
)
from shipyard.spec import AlertsSpec, DriftSpec

SEEN: list[Any] = []


def register_mean_shift(methods: DriftMethods) -> None:
    """A plugin's drift test: the shift of the mean in reference standard deviations."""

    def mean_shift(samples: Any) -> float:
        return float(abs(samples.current.mean() - samples.reference.mean()) / samples.reference_std)

    methods.add(
        DriftMethod(
            "mean_shift", "mean shift / std", frozenset({"numeric"}), "distance", 0.2, mean_shift
        )
    )


def register_pager(channels: AlertChannels, alerts: AlertsSpec) -> None:
    SEEN.append(alerts)
    channels.add("pager", SEEN.append)


def register_bucket(sources: LabelSources) -> None:
    sources.add(
        "bucket",
        lambda s: s.startswith("bucket://"),
        lambda s, options: pd.DataFrame({"prediction_id": ["r1"], "label": [s]}),
    )


def register_broken(methods: DriftMethods) -> None:
    raise RuntimeError("incompatible with this Shipyard")


@pytest.fixture
def installed(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[EntryPoint]]:
    """Pretend packages published entry points (in this module)."""
    groups: dict[str, list[EntryPoint]] = {}

    def entry_points(*, group: str) -> list[EntryPoint]:
        return groups.get(group, [])

    monkeypatch.setattr(plugins.metadata, "entry_points", entry_points)
    SEEN.clear()
    return groups


def _point(group: str, name: str, function: str) -> EntryPoint:
    return EntryPoint(name=name, value=f"{__name__}:{function}", group=f"shipyard.{group}")


def test_a_plugins_drift_test_is_usable_by_name(installed: dict[str, list[EntryPoint]]) -> None:
    installed["shipyard.drift_methods"] = [_point("drift_methods", "mean", "register_mean_shift")]
    methods = default_drift_methods()
    assert "mean_shift" in methods and "ks" in methods
    rng = np.random.default_rng(0)
    reference = pd.DataFrame({"x": rng.normal(size=2_000)})
    current = pd.DataFrame({"x": rng.normal(0.5, 1, 2_000)})
    report = detect_drift(
        reference, current, options=DriftSpec(method="mean_shift"), methods=methods
    )
    [column] = report.columns
    assert column.method == "mean_shift" and column.drifted and column.threshold == 0.2


def test_a_plugin_that_fails_is_a_clear_error(installed: dict[str, list[EntryPoint]]) -> None:
    installed["shipyard.drift_methods"] = [_point("drift_methods", "broken", "register_broken")]
    with pytest.raises(PluginError, match="the plugin 'broken'") as info:
        default_drift_methods()
    assert "shipyard.drift_methods" in str(info.value)
    assert "incompatible with this Shipyard" in str(info.value)
    installed["shipyard.drift_methods"] = [_point("drift_methods", "gone", "no_such_function")]
    with pytest.raises(PluginError, match="the plugin 'gone'"):
        default_drift_methods()


def test_a_plugins_alert_channel_gets_the_settings_and_the_notices(
    installed: dict[str, list[EntryPoint]],
) -> None:
    installed["shipyard.alert_channels"] = [_point("alert_channels", "pager", "register_pager")]
    alerts = AlertsSpec()
    channels = default_alert_channels(alerts)
    assert channels.names() == ["log", "pager"]
    assert [alerts] == SEEN


def test_a_plugins_label_source_takes_its_locations(
    installed: dict[str, list[EntryPoint]],
) -> None:
    installed["shipyard.label_sources"] = [_point("label_sources", "bucket", "register_bucket")]
    sources = default_label_sources()
    frame = sources.read("bucket://labels/today")  # "://" would otherwise mean SQL
    assert frame["label"].tolist() == ["bucket://labels/today"]


def test_a_registry_refuses_a_second_entry_of_a_name_and_suggests_the_closest() -> None:
    registry: plugins.PluginRegistry[int] = plugins.PluginRegistry("widget")
    registry.add("alpha", 1)
    with pytest.raises(ValueError, match="a widget named 'alpha' is already registered"):
        registry.add("alpha", 2)
    assert registry.unknown("alhpa").startswith("unknown widget 'alhpa'; did you mean 'alpha'?")
    assert registry.find("beta") is None and len(registry) == 1 and list(registry) == [1]
