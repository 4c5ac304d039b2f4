"""The report built from a daemon's decisions: refusals, suppressions, unknown outcomes."""

from __future__ import annotations

import io
from typing import Any

from responder.drill.daemon import alert_url, daemon_report
from responder.drill.report import write_table
from responder.drill.send import Answer
from tests.drill.helpers import sample_records


def decision(
    kind: str, name: str = "", outcome: str = "", details: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "at": "2026-03-14T12:00:01.000000000Z",
        "kind": kind,
        "playbook": "drop-and-execute",
        "name": name,
        "step": 0,
        "outcome": outcome,
        "reason": "because",
        "details": details or {},
    }


def fetched() -> dict[str, dict[str, Any]]:
    decisions = [
        decision("match"),
        decision("action", "isolate_pod", "protected"),
        decision(
            "action",
            "delete_pod",
            "skipped",
            {"guard": "budget_cluster", "outcome": "budget_exhausted"},
        ),
        decision("action", "create_event", "quarantined"),
    ]
    return {
        "a": {"state": "done", "received": "2026-03-14T12:00:00Z", "decisions": decisions},
        "b": {
            "state": "done",
            "received": "2026-03-14T12:00:02Z",
            "decisions": [{**decision("suppressed"), "playbook": ""}],
        },
    }


def report_rows() -> Any:
    answers = [
        Answer(1, 202, "a", 0.01, 1),
        Answer(2, 202, "b", 0.01, 1),
        Answer(3, 400, None, 0.01, 1),
    ]
    return daemon_report(sample_records([2, 2, 2]), answers, fetched())


def test_refusals_counted() -> None:
    totals = report_rows().totals()
    assert {"budget_exhausted": 1, "protected": 1, "suppressed": 1} == totals["refusals"]


def test_unknown_outcome_counted() -> None:
    totals = report_rows().totals()
    assert 1 == totals["actions"]["quarantined"]


def test_rejected_by_status() -> None:
    totals = report_rows().totals()
    assert {"400": 1} == totals["not_accepted"]


def test_offsets_from_daemon_times() -> None:
    rows = report_rows().alerts
    assert 2.0 == rows[1].offset_s
    assert 1.0 == rows[0].actions[0].offset_s


def test_table_shows_suppression() -> None:
    out = io.StringIO()
    write_table(report_rows(), out)
    assert "suppressed: because" in out.getvalue()


def test_alert_url_keeps_prefix() -> None:
    assert "http://127.0.0.1:2804/x/api/v1/alerts/a1" == alert_url(
        "http://127.0.0.1:2804/x/", "a1"
    )
