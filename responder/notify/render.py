"""Text of a report shared by the notifiers: title, facts, actions, and plain text or HTML.

Everything in an alert comes from the monitored workload (a process name, a command line, a file
path), so an attacker chooses it. Every value is escaped for the format it goes into: Slack's
mrkdwn (``&``, ``<``, ``>``, which would otherwise form links and mentions such as
``<!channel>``) or HTML. Plain text is left as it is.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

from responder.ingest.alert import HostTarget, PodTarget
from responder.notify.base import Report

DRILL_PREFIX = "[DRILL] "
DRY_RUN_PREFIX = "[DRY RUN] "

# Three backticks inside a Slack code block would close it early; a zero-width space between
# them keeps the text readable and the block closed.
_CODE_FENCE = "```"
_BROKEN_FENCE = "`\u200b`\u200b`"


@dataclass(frozen=True)
class Fact:
    """One labelled value of a report, such as ``Namespace: payments``."""

    label: str
    value: str


def title(report: Report) -> str:
    """Build the one-line title, such as ``[DRILL] Falco Warning: Shell Spawned in Container``."""
    prefix = ""
    if report.drill:
        prefix += DRILL_PREFIX
    if report.dry_run:
        prefix += DRY_RUN_PREFIX
    return f"{prefix}Falco {priority_name(report)}: {report.alert.rule}"


def priority_name(report: Report) -> str:
    """Return the priority as Falco spells it, such as ``Warning``."""
    return report.alert.priority.name.capitalize()


def target_facts(report: Report) -> list[Fact]:
    """Describe the pod or node the alert names, or give a ``Target: none`` fact."""
    target = report.alert.target
    if isinstance(target, PodTarget):
        return [Fact("Namespace", target.namespace), Fact("Pod", target.pod)]
    if isinstance(target, HostTarget):
        return [Fact("Node", target.node)]
    return [Fact("Target", "none (the alert names no pod or node)")]


def facts(report: Report) -> list[Fact]:
    """List what identifies the alert, in the order the notifiers show it."""
    alert = report.alert
    found = [
        Fact("Rule", alert.rule),
        Fact("Priority", priority_name(report)),
        *target_facts(report),
        Fact("Source", alert.source),
        Fact("Hostname", alert.hostname or "unknown"),
        Fact("Time", alert.time.isoformat()),
        Fact("Playbook", report.playbook),
    ]
    return found


def action_lines(report: Report) -> list[str]:
    """Describe each action as ``name: outcome (reason)``, or return ``no actions``."""
    if not report.results:
        return ["no actions"]
    lines = []
    for result in report.results:
        line = f"{result.action}: {result.outcome.value}"
        if result.reason:
            line += f" ({result.reason})"
        lines.append(line)
    return lines


def cut(text: str, limit: int) -> str:
    """Shorten ``text`` to at most ``limit`` characters, ending with a visible marker.

    The marker states how many characters were dropped, such as ``… (cut, 8123 more characters)``.
    A cut never ends inside an HTML entity such as ``&amp;``, so escaped text stays valid.
    """
    if len(text) <= limit:
        return text
    # The marker's length depends on the count it prints, so shrink keep until both agree.
    keep = limit
    while True:
        marker = f"… (cut, {len(text) - keep} more characters)"
        settled = max(limit - len(marker), 0)
        if settled == keep:
            break
        keep = settled
    head = text[:keep]
    ampersand = head.rfind("&", max(len(head) - 6, 0))
    if ampersand != -1 and ";" not in head[ampersand:]:
        head = head[:ampersand]
        marker = f"… (cut, {len(text) - len(head)} more characters)"
    return (head + marker)[:limit]


def escape_mrkdwn(text: str) -> str:
    """Escape the three characters that Slack's mrkdwn reads as markup: ``&``, ``<``, ``>``."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def code_block_mrkdwn(text: str, limit: int) -> str:
    """Put ``text`` in a Slack code block of at most ``limit`` characters, escaped and cut."""
    body = escape_mrkdwn(text).replace(_CODE_FENCE, _BROKEN_FENCE)
    return f"{_CODE_FENCE}{cut(body, limit - 2 * len(_CODE_FENCE))}{_CODE_FENCE}"


def render_text(report: Report) -> str:
    """Render the report as plain text, for the mail's text part and for logs."""
    lines = [title(report), ""]
    lines += [f"{fact.label}: {fact.value}" for fact in facts(report)]
    if report.description:
        lines.append(f"Description: {report.description}")
    lines += ["", "Actions:"]
    lines += [f"  - {line}" for line in action_lines(report)]
    if report.notes:
        lines += ["", "Notes:"]
        lines += [f"  - {note}" for note in report.notes]
    lines += ["", "Output:", report.alert.output or "(empty)", ""]
    lines.append(f"Alert id: {report.alert_id}")
    return "\n".join(lines) + "\n"


def render_html(report: Report) -> str:
    """Render the report as a small HTML document with every value escaped."""
    esc = html.escape
    rows = "".join(
        f'<tr><th align="left">{esc(fact.label)}</th><td>{esc(fact.value)}</td></tr>'
        for fact in facts(report)
    )
    parts = [
        "<!DOCTYPE html>",
        '<html><head><meta charset="utf-8"></head><body>',
        f"<h2>{esc(title(report))}</h2>",
        f"<table>{rows}</table>",
    ]
    if report.description:
        parts.append(f"<p>{esc(report.description)}</p>")
    parts.append("<h3>Actions</h3><ul>")
    parts += [f"<li>{esc(line)}</li>" for line in action_lines(report)]
    parts.append("</ul>")
    if report.notes:
        parts.append("<h3>Notes</h3><ul>")
        parts += [f"<li>{esc(note)}</li>" for note in report.notes]
        parts.append("</ul>")
    parts.append("<h3>Output</h3>")
    parts.append(f"<pre>{esc(report.alert.output or '(empty)')}</pre>")
    parts.append(f"<p><small>Alert id: {esc(report.alert_id)}</small></p>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
