"""The journal: every accepted alert and every decision about it, durable before the sink responds.

``Journal`` is the interface the pipeline uses. ``SqliteJournal`` fills it for one replica; a
backend shared by several replicas (NATS JetStream, for example) implements the same methods.

An alert moves through two states: ``pending`` from the moment it is appended until its actions
are done and its notifications settled, then ``done``. At start the daemon resumes every pending
alert, and the decisions already recorded let a resumed alert skip the steps and notifications
that were completed before the process stopped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from responder.store.queue import QueuedAlert

# The kinds of decision the journal records.
ACTION = "action"
NOTIFICATION = "notification"
MATCH = "match"
IGNORED = "ignored"
SUPPRESSED = "suppressed"


@dataclass(frozen=True)
class Decision:
    """One decision about one alert: a playbook matched, an action ended, a notification went."""

    alert_id: str
    kind: str
    at_ns: int
    playbook: str = ""
    name: str = ""
    """The action or notifier name; empty for decisions about the whole alert."""
    step: int = -1
    """The position of the action in its playbook; -1 for other kinds."""
    outcome: str = ""
    reason: str = ""
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AlertRecord:
    """An alert as the journal stores it, with its decisions in the order they were made."""

    id: str
    received_ns: int
    state: str
    alert: dict[str, Any]
    decisions: list[Decision]
    finished_ns: int | None = None


@dataclass(frozen=True)
class HistoryFilter:
    """Filters of ``responder history`` and the alerts API; None means any."""

    namespace: str | None = None
    pod: str | None = None
    rule: str | None = None
    playbook: str | None = None
    since_ns: int | None = None
    until_ns: int | None = None
    limit: int = 100


@dataclass(frozen=True)
class Retention:
    """How long and how much the journal keeps of alerts that are done."""

    max_age_s: float = 7 * 24 * 3600
    """Done alerts older than this are deleted. A week covers a typical incident review."""
    max_bytes: int = 512 * 1024 * 1024
    """When the file grows past this, the oldest done alerts are deleted until it fits."""


class DecisionLog(Protocol):
    """The part of the journal that the pipeline uses: the ``Journal`` itself, or in the worker
    process its link to the sink, which owns the journal."""

    def record_soon(self, decision: Decision) -> None:
        """Queue one decision for storage without waiting; failures are logged.

        For decisions whose loss a resumed alert tolerates: every action is idempotent or checks
        its target, so a step whose record was lost in a crash runs again without harm."""

    def finish_soon(self, alert_id: str) -> None:
        """Queue marking an alert done without waiting; failures are logged."""

    async def decisions(self, alert_id: str) -> list[Decision]:
        """Return the decisions recorded for one alert, oldest first."""


class Journal(DecisionLog, Protocol):
    """Durable storage of accepted alerts and the decisions made about them."""

    async def append(self, items: list[QueuedAlert]) -> None:
        """Store ``items`` as pending. Returns only when they are durable."""

    async def pending(self) -> list[QueuedAlert]:
        """Return every alert that is not done, oldest first."""

    async def record(self, decision: Decision) -> None:
        """Store one decision durably."""

    async def finish(self, alert_id: str) -> None:
        """Mark an alert done: nothing about it remains to do."""

    async def get(self, alert_id: str) -> AlertRecord | None:
        """Return one alert with its decisions, or None."""

    async def history(self, query: HistoryFilter) -> list[AlertRecord]:
        """Return alerts that match ``query``, newest first."""

    async def prune(self, retention: Retention) -> int:
        """Delete done alerts past the retention; return how many were deleted."""

    async def close(self) -> None:
        """Flush and close."""
