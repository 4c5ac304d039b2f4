"""Shared rendering of reports: titles, facts, cutting and escaping."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from responder.act.results import ActionResult, Outcome
from responder.notify import render
from responder.notify.base import Report


def test_title_plain(report: Report) -> None:
    assert "Falco Warning: Shell Spawned in Container" == render.title(report)


def test_title_drill_prefix(make_report: Callable[..., Report]) -> None:
    base = make_report()
    drill = make_report(alert=base.alert.model_copy(update={"drill": True}))

    assert "[DRILL] Falco Warning: Shell Spawned in Container" == render.title(drill)


def test_title_drill_and_dry_run(make_report: Callable[..., Report]) -> None:
    base = make_report()
    both = make_report(alert=base.alert.model_copy(update={"drill": True}), dry_run=True)

    assert render.title(both).startswith("[DRILL] [DRY RUN] Falco Warning")


def test_facts_pod_target(report: Report) -> None:
    facts = {fact.label: fact.value for fact in render.facts(report)}

    assert "payments" == facts["Namespace"]
    assert "payments-api-7c9b5d4f6-qwz8m" == facts["Pod"]
    assert "node-2" == facts["Hostname"]
    assert "2026-03-14T12:53:50.660104421Z" == facts["Time"]
    assert "quarantine-shell" == facts["Playbook"]
    assert "syscall" == facts["Source"]


def test_facts_node_target(make_report: Callable[..., Report]) -> None:
    base = make_report()
    fields = {**base.alert.output_fields, "container.id": "host"}
    on_host = make_report(alert=base.alert.model_copy(update={"output_fields": fields}))

    facts = {fact.label: fact.value for fact in render.facts(on_host)}
    assert "node-2" == facts["Node"]
    assert "Pod" not in facts


def test_facts_no_target(make_report: Callable[..., Report]) -> None:
    base = make_report()
    cloud = make_report(alert=base.alert.model_copy(update={"source": "aws_cloudtrail"}))

    labels = [fact.label for fact in render.facts(cloud)]
    assert "Target" in labels
    assert "Namespace" not in labels


def test_action_lines_without_reason(make_report: Callable[..., Report]) -> None:
    report = make_report(results=(ActionResult("kill_process", Outcome.FAILED, ""),))

    assert ["kill_process: failed"] == render.action_lines(report)


def test_action_lines_none_run(make_report: Callable[..., Report]) -> None:
    assert ["no actions"] == render.action_lines(make_report(results=()))


def test_cut_short_text_unchanged() -> None:
    assert "short" == render.cut("short", 10)


@pytest.mark.parametrize("limit", [60, 150, 2000, 3000])
def test_cut_fits_limit(limit: int) -> None:
    text = "y" * 10_000

    result = render.cut(text, limit)

    assert limit == len(result)
    head = result[: result.index("…")]
    dropped = int(result.rsplit("(cut, ", 1)[1].split(" ")[0])
    assert len(text) == len(head) + dropped


def test_cut_not_inside_entity() -> None:
    text = render.escape_mrkdwn("<" * 500)

    result = render.cut(text, 100)

    head = result[: result.index("…")]
    assert head.endswith("&lt;")
    assert len(result) <= 100


def test_escape_mrkdwn() -> None:
    assert "&lt;!here&gt; &amp;amp;" == render.escape_mrkdwn("<!here> &amp;")


def test_code_block_fits_limit() -> None:
    block = render.code_block_mrkdwn("z" * 5000, 300)

    assert len(block) <= 300
    assert block.startswith("```")
    assert block.endswith("```")


def test_render_text_sections(report: Report) -> None:
    text = render.render_text(report)

    assert text.startswith("Falco Warning: Shell Spawned in Container\n")
    assert "Namespace: payments\n" in text
    assert "  - label_pod: success (labelled payments/" in text
    assert "  - guard: namespace payments is allowed\n" in text
    assert "cmdline=sh -c id; uname -a" in text
    assert "Description: Isolate pods that spawn an interactive shell.\n" in text


def test_render_html_escapes(make_report: Callable[..., Report]) -> None:
    base = make_report()
    hostile = base.alert.model_copy(update={"output": '"><img src=x onerror=alert(1)>'})

    html = render.render_html(make_report(alert=hostile, notes=("<b>note</b>",)))

    assert "<img" not in html
    assert "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;" in html
    assert "<li>&lt;b&gt;note&lt;/b&gt;</li>" in html
