"""Alerting: a check's rules open and resolve incidents, and each change is notified once.

After a check, every rule of ``monitoring.alerts`` is evaluated on the check's signals
(:func:`shipyard.monitor.evaluate_rules`). A rule that starts firing opens an incident (kept in
the store through :class:`~shipyard.registry.MonitorHistory`) and sends one ``firing`` notice;
while it keeps firing, only the incident's value is updated; when a check finds it no longer
firing, the incident is resolved with one ``resolved`` notice. A rule the check could not
measure (no labels and no estimate, say) changes nothing.

Notices go to every channel of an :class:`AlertChannels` registry: the log always, a webhook
(a JSON ``POST``) when ``monitoring.alerts.webhook`` is set. A webhook delivery is retried
``retries`` times with exponential backoff; a notice that still fails is kept undelivered in
the store and sent again at the next check, so none is lost to a receiver that was down.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import httpx

from shipyard.monitor import RuleOutcome, evaluate_rules
from shipyard.plugins import PluginRegistry, load_plugins
from shipyard.registry import Incident, MonitorHistory
from shipyard.spec import AlertsSpec
from shipyard.store import Backoff, Store, redact_url

__all__ = [
    "AlertChannels",
    "AlertOutcome",
    "DeliveryError",
    "Notice",
    "apply_alerts",
    "default_alert_channels",
]

logger = logging.getLogger(__name__)

Status = Literal["firing", "resolved"]


class DeliveryError(Exception):
    """A channel could not deliver a notice (it is retried at the next check)."""


@dataclass(frozen=True)
class Notice:
    """One incident's change, as the channels receive it.

    Attributes:
        status: ``firing`` (the incident opened) or ``resolved``.
        incident: the incident.
        model_version: the version the check looked at.
        check_id: the check that opened or resolved it (``None`` for a re-sent notice).
    """

    status: Status
    incident: Incident
    model_version: int | None
    check_id: str | None

    @property
    def text(self) -> str:
        """One line for people: what fired or resolved, where, at what value."""
        i = self.incident
        value = "-" if i.value is None else f"{i.value:.4g}"
        where = (
            i.model_name if self.model_version is None else f"{i.model_name}/{self.model_version}"
        )
        if self.status == "firing":
            return f"[shipyard] {where}: alert '{i.rule}' is firing ({i.signal} = {value})"
        return f"[shipyard] {where}: alert '{i.rule}' resolved ({i.signal} = {value})"

    def payload(self) -> dict[str, Any]:
        """The webhook's JSON body (``text`` makes it readable in Slack-style receivers)."""
        i = self.incident
        return {
            "status": self.status,
            "text": self.text,
            "model": i.model_name,
            "version": self.model_version,
            "rule": i.rule,
            "signal": i.signal,
            "threshold": i.threshold,
            "value": i.value,
            "incident_id": i.id,
            "check_id": self.check_id,
            "opened_at": _iso(i.opened_at),
            "resolved_at": _iso(i.resolved_at),
        }


Channel = Callable[[Notice], None]
"""``channel(notice)`` delivers a notice or raises :class:`DeliveryError`."""


class AlertChannels:
    """Where notices go, by name; build one per application with
    :func:`default_alert_channels`, and add your own (a pager, a chat) with :meth:`add` or
    through the ``shipyard.alert_channels`` entry-point group."""

    def __init__(self) -> None:
        self._channels: PluginRegistry[Channel] = PluginRegistry("alert channel")

    def add(self, name: str, channel: Channel) -> None:
        """Register a channel.

        Raises:
            ValueError: a channel of that name is already registered.
        """
        self._channels.add(name, channel)

    def names(self) -> list[str]:
        """The registered channels."""
        return self._channels.names()

    def deliver(self, notice: Notice) -> list[str]:
        """Send a notice to every channel.

        Returns:
            The channels that failed (each logged), empty when all delivered.
        """
        failed = []
        for name, channel in self._channels.items():
            try:
                channel(notice)
            except DeliveryError as exc:
                logger.error("alert channel %s failed: %s", name, exc)
                failed.append(name)
        return failed


def default_alert_channels(
    alerts: AlertsSpec,
    *,
    backoff: Backoff | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> AlertChannels:
    """The log, the webhook when ``alerts.webhook`` is set, and the installed plugins'
    channels (each ``register(channels, alerts)`` of the ``shipyard.alert_channels`` group).

    Args:
        alerts: the alert settings (webhook URL, retries, timeout).
        backoff: the wait before each webhook retry (default 0.5 s, doubling to 8 s).
        sleep: how to wait (tests pass a recorder).
    """
    channels = AlertChannels()
    channels.add("log", _log_notice)
    if alerts.webhook is not None:
        channels.add(
            "webhook",
            _Webhook(
                alerts.webhook,
                alerts.retries,
                alerts.timeout_s,
                backoff or Backoff(0.5, 8.0),
                sleep,
            ),
        )
    load_plugins("alert_channels", channels, alerts)
    return channels


def _log_notice(notice: Notice) -> None:
    level = logging.WARNING if notice.status == "firing" else logging.INFO
    logger.log(level, "%s", notice.text)


@dataclass
class _Webhook:
    url: str
    retries: int
    timeout_s: float
    backoff: Backoff
    sleep: Callable[[float], None]

    def __call__(self, notice: Notice) -> None:
        delay, last = self.backoff.initial, ""
        for attempt in range(self.retries + 1):
            if attempt:
                self.sleep(delay)
                delay = min(2 * delay, self.backoff.maximum)
            try:
                response = httpx.post(self.url, json=notice.payload(), timeout=self.timeout_s)
            except httpx.HTTPError as exc:
                last = f"{type(exc).__name__}: {exc}"
                continue
            if response.is_success:
                return
            last = f"HTTP {response.status_code}"
        msg = (
            f"the webhook at {redact_url(self.url)} did not accept the {notice.status} notice "
            f"of '{notice.incident.rule}' after {self.retries + 1} attempt(s) ({last}); it "
            "will be sent again at the next check"
        )
        raise DeliveryError(msg)


@dataclass(frozen=True)
class AlertOutcome:
    """What a check's alert rules did.

    Attributes:
        rules: each rule's verdict on the check.
        opened: incidents this check opened.
        resolved: incidents this check resolved.
        ongoing: incidents still open and still firing.
        undelivered: notices that some channel failed to deliver (sent again next time).
    """

    rules: tuple[RuleOutcome, ...]
    opened: tuple[Incident, ...] = field(default=())
    resolved: tuple[Incident, ...] = field(default=())
    ongoing: tuple[Incident, ...] = field(default=())
    undelivered: tuple[Notice, ...] = field(default=())

    @property
    def firing(self) -> bool:
        """Whether any rule fires."""
        return any(r.firing for r in self.rules)


def apply_alerts(
    store: Store,
    alerts: AlertsSpec,
    *,
    model: str,
    version: int,
    signals: Mapping[str, float],
    check_id: str | None,
    channels: AlertChannels | None = None,
) -> AlertOutcome:
    """Evaluate the rules on a check's signals; open, update and resolve incidents; notify.

    Args:
        store: the metadata store (incidents are kept there).
        alerts: the rules and the webhook.
        model: the registered model.
        version: the version the check looked at.
        signals: the check's signals (:func:`shipyard.monitor.alert_signals`).
        check_id: the recorded check.
        channels: where notices go (:func:`default_alert_channels`).
    """
    channels = channels or default_alert_channels(alerts)
    history = MonitorHistory(store)
    outcomes = evaluate_rules(alerts.rules, signals)
    # notices a receiver missed last time go first, so they arrive in order
    undelivered = [
        notice
        for incident in history.undelivered(model)
        for notice in _resend(history, channels, incident, version)
    ]
    open_by_rule = {i.rule: i for i in history.incidents(model, open_only=True)}
    opened, resolved, ongoing = [], [], []
    for outcome in outcomes:
        rule, incident = outcome.rule, open_by_rule.get(outcome.rule.label)
        if outcome.firing is None or outcome.value is None:
            continue
        if outcome.firing and incident is None:
            incident = history.open_incident(
                model,
                rule=rule.label,
                signal=rule.signal,
                threshold=rule.threshold,
                value=outcome.value,
                check_id=check_id,
            )
            opened.append(incident)
            undelivered += _notify(history, channels, "firing", incident, version, check_id)
        elif outcome.firing and incident is not None:
            ongoing.append(history.update_incident(incident.id, value=outcome.value))
        elif incident is not None:
            incident = history.update_incident(
                incident.id, value=outcome.value, resolve=True, resolved_check_id=check_id
            )
            resolved.append(incident)
            undelivered += _notify(history, channels, "resolved", incident, version, check_id)
    return AlertOutcome(
        tuple(outcomes), tuple(opened), tuple(resolved), tuple(ongoing), tuple(undelivered)
    )


def _notify(
    history: MonitorHistory,
    channels: AlertChannels,
    status: Status,
    incident: Incident,
    version: int | None,
    check_id: str | None,
) -> list[Notice]:
    notice = Notice(status, incident, version, check_id)
    if channels.deliver(notice):
        return [notice]
    if status == "firing":
        history.update_incident(incident.id, open_notified=True)
    else:
        history.update_incident(incident.id, resolve_notified=True)
    return []


def _resend(
    history: MonitorHistory, channels: AlertChannels, incident: Incident, version: int
) -> list[Notice]:
    missed = []
    if not incident.open_notified:
        missed += _notify(history, channels, "firing", incident, version, None)
    if incident.resolved_at is not None and not incident.resolve_notified:
        missed += _notify(history, channels, "resolved", incident, version, None)
    return missed


def _iso(epoch: float | None) -> str | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC).isoformat()
