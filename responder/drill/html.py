"""Render a drill report as one self-contained HTML file, to attach to a review.

Everything is inline: the CSS, and the timeline as SVG drawn here. Nothing is loaded from
elsewhere, so the file reads the same offline and years later. Every string that comes from an
alert or a daemon passes through ``html.escape``, because alert output contains whatever the
process on the node wrote.
"""

from __future__ import annotations

from html import escape
from typing import Any

from responder.drill.report import SUPPRESSED, DrillReport, action_summary

# Colours of the timeline by outcome; an outcome not listed gets OTHER_COLOUR.
COLOURS = {
    "alert": "#555555",
    "success": "#2e7d32",
    "dry_run": "#1565c0",
    "failed": "#c62828",
    "not_run": "#9e9e9e",
    "skipped": "#757575",
    "no_target": "#8d6e63",
    "protected": "#ef6c00",
    "budget_exhausted": "#f9a825",
    "stale": "#6a1b9a",
    SUPPRESSED: "#ad1457",
    "ignored": "#bdbdbd",
}
OTHER_COLOUR = "#00838f"

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
h1 { font-size: 1.4em; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td.output { max-width: 40em; font-family: monospace; font-size: 0.85em; word-break: break-all; }
svg text { font-size: 11px; font-family: system-ui, sans-serif; }
"""

WIDTH = 900
LANE_HEIGHT = 22
LEFT = 140


def render_html(report: DrillReport, *, title: str = "falco-responder drill") -> str:
    """Return the whole HTML document."""
    totals = report.totals()
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(title)}</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f"<p>Mode: {escape(report.mode)}. First alert received: {escape(report.started)}.</p>",
        "<h2>Timeline</h2>",
        timeline_svg(report),
        "<h2>Totals</h2>",
        _totals_table(totals),
        "<h2>Alerts</h2>",
        _alerts_table(report),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def timeline_svg(report: DrillReport) -> str:
    """Draw alerts and actions over time: one lane per outcome, x in seconds since the first."""
    points: list[tuple[str, float, str]] = []
    for row in report.alerts:
        label = f"#{row.index} {row.rule} {row.target or ''}"
        points.append(("alert", row.offset_s, label))
        if row.ignored:
            points.append(("ignored", row.offset_s, f"{label}: {row.ignored}"))
        for reason in row.suppressed:
            points.append((SUPPRESSED, row.offset_s, f"{label}: {reason}"))
        for action in row.actions:
            text = f"{label}: {action.playbook}/{action.name} {action.outcome} {action.reason}"
            points.append((action.outcome, action.offset_s, text))
    lanes = list(dict.fromkeys(["alert", *sorted({lane for lane, _, _ in points} - {"alert"})]))
    span_s = max((offset for _, offset, _ in points), default=0.0) or 1.0
    height = LANE_HEIGHT * (len(lanes) + 1) + 10
    plot = WIDTH - LEFT - 20
    shapes = [
        f'<svg width="{WIDTH}" height="{height}" '
        f'role="img" aria-label="timeline of alerts and actions">'
    ]
    for number, lane in enumerate(lanes):
        y = LANE_HEIGHT * (number + 1)
        shapes.append(f'<text x="4" y="{y + 4}">{escape(lane)}</text>')
        shapes.append(f'<line x1="{LEFT}" y1="{y}" x2="{WIDTH - 20}" y2="{y}" stroke="#e0e0e0"/>')
    for lane, offset, text in points:
        x = LEFT + plot * offset / span_s
        y = LANE_HEIGHT * (lanes.index(lane) + 1)
        colour = COLOURS.get(lane, OTHER_COLOUR)
        shapes.append(
            f'<circle cx="{x:.1f}" cy="{y}" r="5" fill="{colour}" fill-opacity="0.8">'
            f"<title>{escape(f'+{offset:.2f} s {text}')}</title></circle>"
        )
    axis_y = LANE_HEIGHT * (len(lanes) + 1)
    for tick in range(5):
        seconds = span_s * tick / 4
        x = LEFT + plot * tick / 4
        shapes.append(f'<text x="{x:.1f}" y="{axis_y + 6}">+{seconds:.1f} s</text>')
    shapes.append("</svg>")
    return "\n".join(shapes)


def _totals_table(totals: dict[str, Any]) -> str:
    rows = [
        ("alerts", totals["alerts"]),
        ("matched at least one playbook", totals["matched"]),
        ("ignored", totals["ignored"]),
        ("with suppressions", totals["suppressed_alerts"]),
    ]
    rows += [(f"actions {outcome}", count) for outcome, count in totals["actions"].items()]
    rows += [(f"refusals {outcome}", count) for outcome, count in totals["refusals"].items()]
    rows += [(f"not accepted {status}", n) for status, n in totals["not_accepted"].items()]
    cells = "".join(f"<tr><th>{escape(name)}</th><td>{count}</td></tr>" for name, count in rows)
    return f"<table>{cells}</table>"


def _alerts_table(report: DrillReport) -> str:
    header = (
        "<tr><th>#</th><th>+s</th><th>rule</th><th>priority</th><th>target</th>"
        "<th>playbooks</th><th>actions</th><th>status</th><th>output</th></tr>"
    )
    lines = [f"<table>{header}"]
    for row in report.alerts:
        actions = "<br>".join(
            escape(
                f"{a.playbook}/{a.name} = {a.outcome}"
                + (f" ({a.duration_s * 1000:.0f} ms)" if a.duration_s is not None else "")
                + (f": {a.reason}" if a.reason else "")
            )
            for a in row.actions
        )
        notes = [*row.suppressed, *row.other]
        if row.ignored or not row.actions:
            notes.insert(0, action_summary(row))
        escaped_notes = [escape(note) for note in notes]
        status = row.state if row.status is None else f"{row.state} ({row.status})"
        if row.latency_s is not None:
            status += f", answered in {row.latency_s * 1000:.0f} ms"
        cells = [
            str(row.index),
            f"{row.offset_s:.2f}",
            escape(row.rule),
            escape(row.priority),
            escape(row.target or "-"),
            escape(", ".join(row.playbooks) or "-"),
            "<br>".join([actions, *escaped_notes] if actions else escaped_notes),
            escape(status),
        ]
        body = "".join(f"<td>{cell}</td>" for cell in cells)
        lines.append(f'<tr>{body}<td class="output">{escape(row.output)}</td></tr>')
    lines.append("</table>")
    return "\n".join(lines)
