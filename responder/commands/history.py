"""``responder history``: what the responder decided about past alerts, from its journal."""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

from responder.errors import ConfigError
from responder.ingest.alert import Timestamp
from responder.ingest.server import record_json
from responder.store.journal import AlertRecord, HistoryFilter
from responder.store.reading import read_history

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_moment(text: str, *, now_ns: int | None = None) -> int:
    """Parse ``30m``, ``2h``, ``7d`` (that long ago) or an RFC 3339 time into epoch nanoseconds."""
    found = _DURATION.match(text.strip())
    if found is not None:
        seconds = float(found.group(1)) * _UNIT_S[found.group(2)]
        moment = (now_ns if now_ns is not None else time.time_ns()) - int(seconds * 1e9)
        if moment < 0:
            raise ConfigError(f"invalid time {text!r}: reaches back before 1970; use less")
        return moment
    try:
        # SQLite integers end at 2**63 - 1 nanoseconds, in the year 2262.
        return min(Timestamp.parse(text.strip()).epoch_ns, 2**63 - 1)
    except ValueError:
        raise ConfigError(
            f"invalid time {text!r}: write a duration such as 30m, 2h or 7d, or an RFC 3339 "
            "time such as 2026-03-14T12:00:00Z"
        ) from None


def summary(record: AlertRecord) -> str:
    """Summarize the decisions as ``playbook/action=outcome`` pairs, or the reason nothing ran."""
    parts = [
        f"{decision.playbook}/{decision.name}={decision.outcome}"
        for decision in record.decisions
        if decision.kind in ("action", "notification")
    ]
    if parts:
        return " ".join(parts)
    for kind in ("suppressed", "ignored"):
        reasons = [decision.reason for decision in record.decisions if decision.kind == kind]
        if reasons:
            return f"{kind}: {reasons[0]}"
    return "no playbook matched" if record.state == "done" else "pending"


def history(path: Path, query: HistoryFilter, *, output: str) -> int:
    records = read_history(path, query)
    if output == "json":
        json.dump([record_json(record) for record in records], sys.stdout, indent=2)
        print()
        return 0
    print(f"{'received':<20} {'rule':<36} {'target':<40} decisions")
    for record in records:
        received = Timestamp(record.received_ns).isoformat()[:19].replace("T", " ")
        fields = record.alert.get("output_fields") or {}
        namespace = fields.get("k8s.ns.name") or fields.get("ka.target.namespace")
        pod = fields.get("k8s.pod.name") or fields.get("ka.target.name")
        target = f"{namespace}/{pod}" if namespace and pod else record.alert.get("hostname") or "-"
        rule = str(record.alert.get("rule", ""))[:36]
        print(f"{received:<20} {rule:<36} {str(target)[:40]:<40} {summary(record)}")
    print(f"{len(records)} alert{'' if len(records) == 1 else 's'}")
    return 0
