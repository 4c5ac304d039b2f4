"""Read back what a running daemon decided about the alerts of a drill, from its alerts API.

``GET /api/v1/alerts/{id}`` returns an alert with its decisions once the journal has them. The
daemon finishes alerts in its own time, so each is polled until it is ``done`` or the wait ends.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any

import aiohttp
from yarl import URL

from responder.drill.record import Record
from responder.drill.report import SUPPRESSED, ActionRow, AlertRow, DrillReport
from responder.drill.send import Answer, Sleep
from responder.ingest.alert import Timestamp

NANOSECONDS = 1_000_000_000
POLL_INTERVAL_S = 0.2


def alert_url(base: str, alert_id: str) -> str:
    """Return the alerts API address of ``alert_id`` on the daemon that ``base`` points to."""
    url = URL(base)
    path = url.path.rstrip("/")
    return str(url.with_path(f"{path}/api/v1/alerts/{alert_id}").with_query(None))


async def fetch_records(
    base: str,
    alert_ids: Sequence[str],
    *,
    token: str | None = None,
    wait_s: float = 30.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Sleep = asyncio.sleep,
) -> dict[str, dict[str, Any]]:
    """Fetch each alert until it is done or ``wait_s`` has passed; return what was last seen.

    An alert that the API does not return (404, or an error) is left out of the result.
    """
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    found: dict[str, dict[str, Any]] = {}
    waiting = list(alert_ids)
    deadline = clock() + wait_s
    async with aiohttp.ClientSession(headers=headers) as session:
        while waiting:
            still = []
            for alert_id in waiting:
                document = await _get(session, alert_url(base, alert_id))
                if document is not None:
                    found[alert_id] = document
                if document is None or document.get("state") != "done":
                    still.append(alert_id)
            waiting = still
            if not waiting or clock() >= deadline:
                break
            await sleep(POLL_INTERVAL_S)
    return found


async def _get(session: aiohttp.ClientSession, url: str) -> dict[str, Any] | None:
    try:
        async with session.get(url) as response:
            if response.status != 200:
                return None
            document = await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return None
    return document if isinstance(document, dict) else None


def daemon_report(
    records: Sequence[Record], answers: Sequence[Answer], fetched: dict[str, dict[str, Any]]
) -> DrillReport:
    """Build the report of a drill sent to a daemon from the responses and the fetched alerts."""
    received = [
        _received_ns(record, answer, fetched)
        for record, answer in zip(records[: len(answers)], answers, strict=True)
    ]
    first_ns = min(received) if received else 0
    rows = [
        _row(record, answer, fetched.get(answer.alert_id or ""), received_ns, first_ns)
        for record, answer, received_ns in zip(
            records[: len(answers)], answers, received, strict=True
        )
    ]
    started = Timestamp(first_ns).isoformat() if rows else ""
    return DrillReport("daemon", started, rows)


def _received_ns(record: Record, answer: Answer, fetched: dict[str, dict[str, Any]]) -> int:
    document = fetched.get(answer.alert_id or "")
    if document is not None:
        return _parse_time(document.get("received"), record.received_ns)
    return record.received_ns


def _row(
    record: Record,
    answer: Answer,
    document: dict[str, Any] | None,
    received_ns: int,
    first_ns: int,
) -> AlertRow:
    alert = record.parsed()
    target = alert.target
    row = AlertRow(
        index=answer.index,
        rule=alert.rule,
        priority=str(alert.priority),
        target=str(target) if target is not None else None,
        output=alert.output,
        offset_s=(received_ns - first_ns) / NANOSECONDS,
        alert_id=answer.alert_id,
        status=answer.status,
        latency_s=round(answer.latency_s, 6),
        error=answer.error,
    )
    if not answer.accepted:
        row.state = "not_accepted"
        return row
    if document is None:
        row.state = "unknown"
        row.other.append("the alerts API did not return this alert; is the journal on?")
        return row
    row.state = str(document.get("state", "unknown"))
    for decision in document.get("decisions") or []:
        if isinstance(decision, dict):
            _add_decision(row, decision, first_ns)
    return row


def _add_decision(row: AlertRow, decision: dict[str, Any], first_ns: int) -> None:
    kind = str(decision.get("kind", ""))
    playbook = str(decision.get("playbook", ""))
    name = str(decision.get("name", ""))
    reason = str(decision.get("reason", ""))
    details = decision.get("details")
    details = details if isinstance(details, dict) else {}
    at_ns = _parse_time(decision.get("at"), first_ns)
    if kind == "match":
        if playbook not in row.playbooks:
            row.playbooks.append(playbook)
    elif kind in ("action", "notification"):
        outcome = str(decision.get("outcome", ""))
        # A guard's refusal may carry its intended outcome in details.
        if "guard" in details and isinstance(details.get("outcome"), str):
            outcome = details["outcome"]
        duration = details.get("duration_s")
        action = ActionRow(
            playbook=playbook,
            name=name,
            outcome=outcome,
            reason=reason,
            duration_s=float(duration) if isinstance(duration, int | float) else None,
            offset_s=(at_ns - first_ns) / NANOSECONDS,
        )
        (row.actions if kind == "action" else row.notifications).append(action)
    elif kind == "ignored":
        row.ignored = reason or "ignored"
    elif kind == SUPPRESSED:
        where = f"{playbook}: " if playbook else ""
        row.suppressed.append(f"{where}{reason or decision.get('outcome') or 'suppressed'}")
    else:
        row.other.append(f"{kind}: {playbook}/{name} {decision.get('outcome', '')} {reason}")


def _parse_time(value: object, default_ns: int) -> int:
    if not isinstance(value, str):
        return default_ns
    try:
        return Timestamp.parse(value).epoch_ns
    except ValueError:
        return default_ns
