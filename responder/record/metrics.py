"""Prometheus metrics. Labels carry only bounded values: rule, priority, source, playbook,
action, outcome, reason. Pod names, namespaces and alert ids go to logs, never to labels.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

# Distinct rule and source label values kept. A cluster's rules number in the hundreds at most,
# so values past this come from a broken or hostile sender and are counted under "other".
MAX_LABEL_VALUES = 512
MAX_LABEL_LENGTH = 128
OTHER = "other"

# Action calls to the Kubernetes API take milliseconds; notifications up to the timeout.
ACTION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


# The metrics that the sink process keeps. The worker process keeps every other one, and
# the sink's /metrics shows both.
SINK_FAMILIES = frozenset(
    {"responder_alerts_received", "responder_alerts_rejected", "responder_queue_depth"}
)


class Metrics:
    """The responder's metrics in a registry of their own, so that tests do not share state."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.alerts_received = Counter(
            "responder_alerts_received",
            "Alerts accepted by the HTTP sink.",
            ["rule", "priority", "source"],
            registry=r,
        )
        self.alerts_rejected = Counter(
            "responder_alerts_rejected",
            "Requests rejected by the HTTP sink, by reason.",
            ["reason"],
            registry=r,
        )
        self.alerts_ignored = Counter(
            "responder_alerts_ignored",
            "Alerts that run no response action, such as Falco's internal events, by reason.",
            ["reason"],
            registry=r,
        )
        self.playbook_matches = Counter(
            "responder_playbook_matches",
            "Playbooks matched by alerts.",
            ["playbook"],
            registry=r,
        )
        self.actions = Counter(
            "responder_actions",
            "Actions run, by action and outcome.",
            ["action", "outcome"],
            registry=r,
        )
        self.action_duration = Histogram(
            "responder_action_duration_seconds",
            "Time one action took.",
            ["action"],
            buckets=ACTION_BUCKETS,
            registry=r,
        )
        self.end_to_end = Histogram(
            "responder_alert_handling_seconds",
            "Time from an alert being received to its last action being done.",
            buckets=ACTION_BUCKETS,
            registry=r,
        )
        self.notifications = Counter(
            "responder_notifications",
            "Notifications by notifier and outcome (sent, failed, dropped).",
            ["notifier", "outcome"],
            registry=r,
        )
        self.queue_depth = Gauge(
            "responder_queue_depth",
            "Alerts accepted and not yet handled by a worker.",
            registry=r,
        )
        self._label_values: dict[str, set[str]] = {"rule": set(), "source": set()}
        self.playbooks_loaded = Gauge(
            "responder_playbooks_loaded",
            "Playbooks in the set in use.",
            registry=r,
        )

    def alert_labels(self, rule: str, priority: str, source: str) -> tuple[str, str, str]:
        """Return bounded label values for an alert: long or too many new values become "other"."""
        return (self._bounded("rule", rule), priority, self._bounded("source", source))

    def _bounded(self, label: str, value: str) -> str:
        seen = self._label_values[label]
        if len(value) > MAX_LABEL_LENGTH:
            return OTHER
        if value in seen:
            return value
        if len(seen) >= MAX_LABEL_VALUES:
            return OTHER
        seen.add(value)
        return value


def exposition(registry: CollectorRegistry, *, sink: bool) -> bytes:
    """Render the families of ``registry`` that the sink process keeps (``sink=True``), or
    those that the worker process keeps, in the Prometheus text format."""
    selected = CollectorRegistry(auto_describe=False)
    selected.register(_Selected(registry, sink=sink))
    return generate_latest(selected)


class _Selected(Collector):
    def __init__(self, registry: CollectorRegistry, *, sink: bool) -> None:
        self._registry = registry
        self._sink = sink

    def collect(self) -> Iterable[Metric]:
        return [
            metric
            for metric in self._registry.collect()
            if (metric.name in SINK_FAMILIES) == self._sink
        ]

    def describe(self) -> Iterable[Metric]:
        return []
