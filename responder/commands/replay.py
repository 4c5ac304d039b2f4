"""``responder replay FILE --dry-run``: show what recorded alerts would trigger; run nothing."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from responder.daemon import load_playbook_set
from responder.errors import ConfigError
from responder.ingest.alert import Alert
from responder.match.matcher import Matcher
from responder.settings import load_settings


def read_alerts(path: Path) -> list[Alert]:
    """Read alerts from JSONL: one alert per line, or a record ``{"alert": {...}, ...}``."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise ConfigError(f"cannot read {str(path)!r}: {error.strerror}") from None
    alerts = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            document = json.loads(line)
            if isinstance(document, dict) and isinstance(document.get("alert"), dict):
                document = document["alert"]
            alerts.append(Alert.model_validate(document))
        except (json.JSONDecodeError, ValidationError) as error:
            first = str(error).splitlines()[0]
            raise ConfigError(f"{path}:{number}: not a Falco alert: {first}") from None
    return alerts


def plan(alerts: list[Alert], matcher: Matcher) -> list[dict[str, Any]]:
    """Return, for each alert, the playbooks that match and the actions they would run."""
    rows = []
    for alert in alerts:
        target = alert.target
        row: dict[str, Any] = {
            "rule": alert.rule,
            "priority": str(alert.priority),
            "source": alert.source,
            "target": str(target) if target is not None else None,
            "ignored": alert.is_internal,
            "playbooks": [],
        }
        if not alert.is_internal:
            for loaded in matcher.match(alert):
                row["playbooks"].append(
                    {
                        "name": loaded.name,
                        "actions": [step.spec.name for step in loaded.steps],
                        "notify": list(loaded.playbook.notify),
                        "dry_run": loaded.playbook.dry_run,
                    }
                )
                if loaded.playbook.stop:
                    break
        rows.append(row)
    return rows


def replay(path: Path, config: Path | None, overrides: dict[str, Any], *, output: str) -> int:
    settings = load_settings(config, **overrides)
    # Without a settings file there are no notifiers to check names against; a plan sends nothing.
    report = load_playbook_set(settings, check_notifiers=config is not None)
    if not report.ok:
        raise ConfigError("invalid playbooks:\n" + "\n".join(f"  {e}" for e in report.errors))
    rows = plan(read_alerts(path), Matcher(report.playbooks))
    if output == "json":
        json.dump(rows, sys.stdout, indent=2)
        print()
        return 0
    print(f"{'#':>3}  {'rule':<40} {'target':<40} playbooks → actions")
    for number, row in enumerate(rows, start=1):
        if row["ignored"]:
            outcome = "ignored (internal or test event)"
        elif not row["playbooks"]:
            outcome = "no match"
        else:
            outcome = "; ".join(
                f"{p['name']} → {', '.join(p['actions']) or 'notify only'}"
                for p in row["playbooks"]
            )
        target = row["target"] or "-"
        print(f"{number:>3}  {row['rule'][:40]:<40} {target[:40]:<40} {outcome}")
    matched = sum(1 for row in rows if row["playbooks"])
    print(f"{len(rows)} alerts, {matched} matched at least one playbook")
    return 0
