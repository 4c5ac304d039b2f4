"""The drill report: per alert, what matched and what each action did, and the totals.

The same ``DrillReport`` comes from an in-process plan (``responder.drill.plan``) or from the
decisions a running daemon recorded (``responder.drill.daemon``). It prints as a terminal table
or as JSON; ``responder.drill.html`` renders it as one self-contained HTML file.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, TextIO

# Outcomes that mean a guard rejected an action; the daemon records them on action decisions.
REFUSAL_OUTCOMES = frozenset({"protected", "budget_exhausted", "stale"})
# The outcome counted for a decision of kind ``suppressed``.
SUPPRESSED = "suppressed"


@dataclass
class ActionRow:
    """One action, or one notification, for one alert."""

    playbook: str
    name: str
    outcome: str
    reason: str = ""
    duration_s: float | None = None
    offset_s: float = 0.0
    """When it ended, in seconds since the first alert of the drill was received."""


@dataclass
class AlertRow:
    """One alert of a drill, with everything decided about it."""

    index: int
    rule: str
    priority: str
    target: str | None
    output: str
    offset_s: float
    """When it was received, in seconds since the first alert of the drill was received."""
    alert_id: str | None = None
    status: int | None = None
    """HTTP status of the daemon's response. None in a plan, or when no response came."""
    latency_s: float | None = None
    """Time from sending the alert to the daemon's response, retries after 503 included."""
    state: str = "planned"
    """``planned``, or the daemon's ``done`` or ``pending``, or ``not_accepted``."""
    error: str | None = None
    ignored: str | None = None
    suppressed: list[str] = field(default_factory=list)
    playbooks: list[str] = field(default_factory=list)
    actions: list[ActionRow] = field(default_factory=list)
    notifications: list[ActionRow] = field(default_factory=list)
    other: list[str] = field(default_factory=list)
    """Decisions of kinds this report does not know, as text, so that none is hidden."""

    @property
    def refusals(self) -> list[ActionRow]:
        return [action for action in self.actions if action.outcome in REFUSAL_OUTCOMES]


@dataclass
class DrillReport:
    """A whole drill: how it ran, and its alerts in the order they were sent or planned."""

    mode: str
    """``plan`` for an in-process plan, ``daemon`` for alerts sent to a running daemon."""
    started: str
    """The time the first alert was received, RFC 3339."""
    alerts: list[AlertRow]

    def totals(self) -> dict[str, Any]:
        return compute_totals(self.alerts)

    def to_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "started": self.started,
            "totals": self.totals(),
            "alerts": [alert_json(row) for row in self.alerts],
        }


def compute_totals(alerts: list[AlertRow]) -> dict[str, Any]:
    """Count alerts, matches, actions and refusals by outcome, and rejected alerts by status."""
    actions: Counter[str] = Counter()
    refusals: Counter[str] = Counter()
    statuses: Counter[str] = Counter()
    for row in alerts:
        for action in row.actions:
            actions[action.outcome] += 1
            if action.outcome in REFUSAL_OUTCOMES:
                refusals[action.outcome] += 1
        refusals[SUPPRESSED] += len(row.suppressed)
        if row.state == "not_accepted":
            statuses[str(row.status) if row.status is not None else "error"] += 1
    return {
        "alerts": len(alerts),
        "matched": sum(1 for row in alerts if row.playbooks),
        "ignored": sum(1 for row in alerts if row.ignored),
        "suppressed_alerts": sum(1 for row in alerts if row.suppressed),
        "actions": dict(sorted(actions.items())),
        "refusals": {key: count for key, count in sorted(refusals.items()) if count},
        "not_accepted": dict(sorted(statuses.items())),
    }


def alert_json(row: AlertRow) -> dict[str, Any]:
    document = asdict(row)
    document["refusals"] = [asdict(action) for action in row.refusals]
    return document


def write_json(report: DrillReport, stream: TextIO) -> None:
    json.dump(report.to_json(), stream, indent=2, ensure_ascii=False)
    stream.write("\n")


def action_summary(row: AlertRow) -> str:
    """Return what happened to one alert in one line, such as ``p/isolate_pod=dry_run``."""
    if row.state == "not_accepted":
        return f"not accepted: {row.error or row.status}"
    if row.ignored:
        return f"ignored: {row.ignored}"
    parts = [f"{a.playbook}/{a.name}={a.outcome}" for a in row.actions]
    parts.extend(f"suppressed: {reason}" for reason in row.suppressed)
    if parts:
        return " ".join(parts)
    if row.playbooks:
        return ", ".join(row.playbooks) + ": notify only"
    return "pending" if row.state == "pending" else "no playbook matched"


def write_table(report: DrillReport, stream: TextIO) -> None:
    """Write one line per alert, then the totals."""
    stream.write(f"{'#':>4} {'+s':>8} {'rule':<36} {'target':<36} actions\n")
    for row in report.alerts:
        target = (row.target or "-")[:36]
        rule = row.rule[:36]
        stream.write(
            f"{row.index:>4} {row.offset_s:>8.1f} {rule:<36} {target:<36} {action_summary(row)}\n"
        )
    stream.write(format_totals(report.totals()))


def format_totals(totals: dict[str, Any]) -> str:
    lines = [
        f"{totals['alerts']} alerts, {totals['matched']} matched at least one playbook, "
        f"{totals['ignored']} ignored, {totals['suppressed_alerts']} with suppressions"
    ]
    lines.append("actions: " + _counts(totals["actions"]))
    lines.append("refusals: " + _counts(totals["refusals"]))
    if totals["not_accepted"]:
        lines.append("not accepted: " + _counts(totals["not_accepted"]))
    return "\n".join(lines) + "\n"


def _counts(counts: dict[str, int]) -> str:
    if not counts:
        return "none"
    return ", ".join(f"{count} {key}" for key, count in counts.items())
