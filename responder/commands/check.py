"""``responder check``: validate playbooks and print a summary; non-zero exit on any error."""

from __future__ import annotations

import sys
from pathlib import Path

from responder.act.base import load_builtin_actions
from responder.match.loader import load_playbooks
from responder.settings import load_settings


def check(paths: list[Path], *, config: Path | None) -> int:
    """Print each error, then one summary line; return 1 when anything is invalid."""
    notifiers = sorted(load_settings(config).notifiers) if config is not None else None
    report = load_playbooks(paths, registry=load_builtin_actions(), notifiers=notifiers)
    for error in report.errors:
        print(error, file=sys.stderr)
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    for loaded in report.playbooks:
        actions = ", ".join(step.spec.name for step in loaded.steps) or "no actions"
        notify = ", ".join(loaded.playbook.notify) or "nobody"
        flags = " (dry run)" if loaded.playbook.dry_run else ""
        print(f"ok  {loaded.name}{flags}: {actions}; notify {notify}  [{loaded.path}]")
    status = "invalid" if report.errors else "valid"
    print(
        f"{len(report.files)} files, {len(report.playbooks)} playbooks valid, "
        f"{len(report.errors)} errors: {status}"
    )
    if notifiers is None:
        print("notifier names not checked: pass --config to check them against the settings")
    return 1 if report.errors or not report.files else 0
