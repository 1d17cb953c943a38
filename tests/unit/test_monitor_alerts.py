"""Alert signals and rules (pure), alert channels and the webhook (against a real local
receiver), incidents and labels in a SQLite store."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError
from sklearn.dummy import DummyClassifier

from shipyard.data import ColumnSchema, Signature
from shipyard.monitor import (
    alert_signals,
    compare_performance,
    detect_drift,
    evaluate_rules,
    share_change,
)
from shipyard.pipeline import (
    AlertChannels,
    DeliveryError,
    Notice,
    apply_alerts,
    default_alert_channels,
)
from shipyard.registry import Incident, LabelStore, ModelPackage, MonitorHistory, Registry
from shipyard.spec import AlertRuleSpec, AlertsSpec
from shipyard.store import Backoff, Store
from webhook_receiver import Receiver


def _drifting_frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(0)
    reference = pd.DataFrame({"a": rng.normal(size=2_000), "b": rng.normal(size=2_000)})
    current = pd.DataFrame({"a": rng.normal(1, 1, 2_000), "b": rng.normal(size=2_000)})
    current.loc[:399, "b"] = np.nan
    return reference, current


def test_signals_measure_drift_missing_values_class_shares_and_drops() -> None:
    reference, current = _drifting_frames()
    report = detect_drift(reference, current)
    performance = compare_performance(
        "binary",
        {"accuracy": 0.9},
        y_pred=["yes"] * 10,
        proba=None,
        classes=["no", "yes"],
        y_true=["no"] * 5,
        labelled=np.arange(10) < 5,
    )
    signals = alert_signals(
        report, report, performance, ({"no": 0.5, "yes": 0.5}, {"no": 0.2, "yes": 0.8})
    )
    assert signals["drift_share"] == 0.5
    assert signals["prediction_drift_share"] == 0.5
    assert signals["missing_increase"] == pytest.approx(0.2)
    assert signals["prediction_share_change"] == pytest.approx(0.3)
    assert signals["accuracy_drop"] == pytest.approx(0.9)  # 0.9 on the holdout, 0 realised
    assert share_change({}, {}) == 0.0
    assert share_change({"a": 1.0}, {"b": 1.0}) == 1.0


def test_rules_fire_above_or_below_and_say_when_they_cannot_tell() -> None:
    rules = [
        AlertRuleSpec(signal="drift_share", above=0.3),
        AlertRuleSpec(signal="accuracy_drop", below=-0.1, name="better than ever"),
        AlertRuleSpec(signal="roc_auc_drop", above=0.05),
    ]
    outcomes = evaluate_rules(rules, {"drift_share": 0.5, "accuracy_drop": 0.0})
    assert [(o.rule.label, o.value, o.firing) for o in outcomes] == [
        ("drift_share > 0.3", 0.5, True),
        ("better than ever", 0.0, False),
        ("roc_auc_drop > 0.05", None, None),
    ]


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"signal": "drift_shares", "above": 0.3}, "unknown alert signal 'drift_shares'"),
        ({"signal": "speed_drop", "above": 0.3}, "unknown alert signal 'speed_drop'"),
        ({"signal": "drift_share"}, "exactly one of 'above' and 'below'"),
        ({"signal": "drift_share", "above": 1, "below": 0}, "exactly one of"),
    ],
)
def test_bad_rules_are_spec_errors(rule: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        AlertRuleSpec.model_validate(rule)


def test_a_webhook_must_be_http() -> None:
    with pytest.raises(ValidationError):
        AlertsSpec(webhook="ftp://example.invalid/hook")


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store.open(root=tmp_path / ".shipyard")
    sig = Signature(
        inputs=(ColumnSchema(name="a", kind="number", dtype="float64", nullable=True),),
        classes=("no", "yes"),
    )
    model = DummyClassifier().fit(pd.DataFrame({"a": [1.0, 2.0]}), ["no", "yes"])
    Registry(store).register("m", ModelPackage(model, sig, "binary", {}))
    return store


RULES = AlertsSpec(rules=[AlertRuleSpec(signal="drift_share", above=0.3)])


class Recorder:
    def __init__(self, fail: bool = False) -> None:
        self.notices: list[Notice] = []
        self.fail = fail

    def __call__(self, notice: Notice) -> None:
        if self.fail:
            raise DeliveryError("down")
        self.notices.append(notice)


def test_incidents_open_once_stay_quiet_while_firing_and_resolve_once(store: Store) -> None:
    recorder = Recorder()
    channels = AlertChannels()
    channels.add("test", recorder)
    check = MonitorHistory(store)

    def run(value: float, check_id: str) -> None:
        apply_alerts(
            store,
            RULES,
            model="m",
            version=1,
            signals={"drift_share": value},
            check_id=check_id,
            channels=channels,
        )

    run(0.1, "c0")
    run(0.5, "c1")
    run(0.6, "c2")
    run(0.1, "c3")
    run(0.1, "c4")
    assert [(n.status, n.check_id) for n in recorder.notices] == [
        ("firing", "c1"),
        ("resolved", "c3"),
    ]
    [incident] = check.incidents("m")
    assert incident.opened_check_id == "c1" and incident.resolved_check_id == "c3"
    assert incident.value == 0.1 and not incident.is_open
    assert check.undelivered("m") == []
    # firing again later opens a new incident
    run(0.9, "c5")
    assert len(check.incidents("m")) == 2 and len(check.incidents("m", open_only=True)) == 1


def test_an_undelivered_notice_is_kept_and_sent_at_the_next_check(store: Store) -> None:
    failing, working = Recorder(fail=True), Recorder()
    down, up = AlertChannels(), AlertChannels()
    down.add("hook", failing)
    up.add("hook", working)
    outcome = apply_alerts(
        store,
        RULES,
        model="m",
        version=1,
        signals={"drift_share": 0.5},
        check_id="c1",
        channels=down,
    )
    assert [n.status for n in outcome.undelivered] == ["firing"]
    assert len(MonitorHistory(store).undelivered("m")) == 1
    outcome = apply_alerts(
        store,
        RULES,
        model="m",
        version=1,
        signals={"drift_share": 0.1},
        check_id="c2",
        channels=up,
    )
    assert [n.status for n in working.notices] == ["firing", "resolved"]
    assert outcome.undelivered == () and MonitorHistory(store).undelivered("m") == []


def test_a_signal_the_check_could_not_measure_changes_nothing(store: Store) -> None:
    recorder = Recorder()
    channels = AlertChannels()
    channels.add("test", recorder)
    apply_alerts(
        store,
        RULES,
        model="m",
        version=1,
        signals={"drift_share": 0.5},
        check_id="c1",
        channels=channels,
    )
    outcome = apply_alerts(
        store, RULES, model="m", version=1, signals={}, check_id="c2", channels=channels
    )
    assert outcome.rules[0].firing is None and outcome.resolved == ()
    assert len(MonitorHistory(store).incidents("m", open_only=True)) == 1


def test_the_webhook_posts_json_retries_with_backoff_and_then_gives_up(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    receiver = Receiver(failures=2)
    waits: list[float] = []
    try:
        alerts = AlertsSpec(rules=RULES.rules, webhook=receiver.url, retries=2)
        channels = default_alert_channels(alerts, backoff=Backoff(0.25, 0.4), sleep=waits.append)
        assert channels.names() == ["log", "webhook"]
        with caplog.at_level(logging.WARNING, logger="shipyard.pipeline._alerts"):
            apply_alerts(
                store,
                alerts,
                model="m",
                version=1,
                signals={"drift_share": 0.5},
                check_id="c1",
                channels=channels,
            )
        assert waits == [0.25, 0.4]  # doubled, capped
        assert receiver.attempts == 3 and len(receiver.bodies) == 1
        body = receiver.bodies[0]
        assert body["status"] == "firing" and body["model"] == "m" and body["value"] == 0.5
        assert body["opened_at"] and body["resolved_at"] is None
        assert "alert 'drift_share > 0.3' is firing" in caplog.text
    finally:
        receiver.close()
    hopeless = Receiver(failures=100)
    try:
        alerts = AlertsSpec(rules=RULES.rules, webhook=hopeless.url, retries=1)
        channels = default_alert_channels(alerts, backoff=Backoff(0.01, 0.01), sleep=waits.append)
        outcome = apply_alerts(
            store,
            alerts,
            model="m",
            version=1,
            signals={"drift_share": 0.1},
            check_id="c2",
            channels=channels,
        )
        assert [n.status for n in outcome.undelivered] == ["resolved"]
        assert hopeless.attempts == 2
    finally:
        hopeless.close()


def test_an_unreachable_webhook_fails_delivery_naming_it_without_secrets(
    caplog: pytest.LogCaptureFixture,
) -> None:
    alerts = AlertsSpec(webhook="http://user:secret@127.0.0.1:9/hook", retries=0, timeout_s=1)
    channels = default_alert_channels(alerts)
    incident = Incident("i", "m", "r", "drift_share", 0.3, 0.0, None, None, None, 0.5, False, False)
    with caplog.at_level(logging.ERROR, logger="shipyard.pipeline._alerts"):
        failed = channels.deliver(Notice("firing", incident, 1, None))
    assert failed == ["webhook"]
    assert "127.0.0.1:9" in caplog.text and "after 1 attempt(s)" in caplog.text
    assert "secret" not in caplog.text


def test_channels_refuse_a_second_channel_of_the_same_name() -> None:
    channels = AlertChannels()
    channels.add("a", Recorder())
    with pytest.raises(ValueError, match="already registered"):
        channels.add("a", Recorder())


def test_labels_keep_the_first_of_repeats_and_report_known_and_unknown_keys(
    store: Store,
) -> None:
    labels = LabelStore(store)
    ingest = labels.add("m", ["a", "b", "a", "c"], ["yes", "no", "no", "yes"], known={"a", "b"})
    assert (ingest.n_rows, ingest.n_added, ingest.n_duplicates, ingest.n_unknown) == (4, 3, 1, 1)
    assert ingest.duplicates == ("a",) and ingest.unknown == ("c",)
    assert labels.lookup("m", "prediction_id", ["a", "b", "z"]) == {"a": "yes", "b": "no"}
    again = labels.add("m", ["a", "d"], ["no", "no"])
    assert (again.n_added, again.n_already_labelled, again.n_replaced) == (1, 1, 0)
    assert labels.lookup("m", "prediction_id", ["a"]) == {"a": "yes"}
    replaced = labels.add("m", ["a"], ["no"], replace=True)
    assert (replaced.n_added, replaced.n_replaced) == (1, 1)
    assert labels.lookup("m", "prediction_id", ["a"]) == {"a": "no"}
    labels.add("m", ["o-1"], ["yes"], key_column="order_id")
    assert labels.key_columns("m") == ["prediction_id", "order_id"]
    with pytest.raises(ValueError, match="2 keys but 1 labels"):
        labels.add("m", ["x", "y"], ["yes"])


def test_many_labels_are_looked_up_in_chunks(store: Store) -> None:
    keys = [f"k{i}" for i in range(12_000)]
    LabelStore(store).add("m", keys, ["yes"] * len(keys))
    found = LabelStore(store).lookup("m", "prediction_id", keys)
    assert len(found) == 12_000


def test_two_rules_with_one_label_are_refused() -> None:
    rule = {"signal": "drift_share", "above": 0.3}
    with pytest.raises(ValidationError, match="alert rules must be distinct"):
        AlertsSpec.model_validate({"rules": [rule, rule]})
    AlertsSpec.model_validate({"rules": [rule, {**rule, "name": "again"}]})
