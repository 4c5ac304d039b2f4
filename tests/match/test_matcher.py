"""Matching alerts to playbooks: every kind of condition, the index, and the run order."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from responder.act.base import Registry
from responder.ingest.alert import Alert
from responder.match.loader import load_playbooks
from responder.match.matcher import Matcher
from tests.samples import host_alert_document, sample_alert, sample_document

Write = Callable[..., Path]


def build(write: Write, registry: Registry, *playbooks: dict[str, Any]) -> Matcher:
    path = write(yaml.safe_dump({"playbooks": list(playbooks)}))
    report = load_playbooks([path], registry=registry)
    assert [] == report.errors
    return Matcher(report.playbooks)


def names(matcher: Matcher, alert: Alert) -> list[str]:
    return [loaded.name for loaded in matcher.match(alert)]


# Line 1 of falco-direct: "Terminal shell in container", Notice, syscall, namespace shop,
# tags T1059 container maturity_stable mitre_execution shell, proc.name bash, user.uid 0.
SHELL = sample_alert("falco-direct", 1)


@pytest.mark.parametrize(
    ("match", "expected"),
    [
        ({"rules": ["Terminal shell in container"]}, True),
        ({"rules": ["terminal shell in container"]}, False),
        ({"rules": [{"glob": "Terminal shell*"}]}, True),
        ({"rules": [{"glob": "Shell*"}]}, False),
        ({"rules": [{"regex": "Terminal .* container"}]}, True),
        ({"rules": [{"regex": "Terminal"}]}, False),
        ({"priority": ">=notice"}, True),
        ({"priority": ">=warning"}, False),
        ({"priority": "<warning"}, True),
        ({"priority": "==NOTICE"}, True),
        ({"priority": "informational"}, True),
        ({"tags": {"all_of": ["container", "shell"]}}, True),
        ({"tags": {"all_of": ["container", "network"]}}, False),
        ({"tags": {"any_of": ["network", "shell"]}}, True),
        ({"tags": {"any_of": ["network", "filesystem"]}}, False),
        ({"tags": {"none_of": ["shell"]}}, False),
        ({"sources": ["syscall"]}, True),
        ({"sources": ["k8s_audit"]}, False),
        ({"namespaces": {"include": ["sh*"]}}, True),
        ({"namespaces": {"include": ["payments"]}}, False),
        ({"namespaces": {"exclude": ["shop"]}}, False),
        ({"fields": [{"field": "proc.name", "equals": "bash"}]}, True),
        ({"fields": [{"field": "proc.name", "not_equals": "bash"}]}, False),
        ({"fields": [{"field": "proc.name", "in": ["sh", "bash"]}]}, True),
        ({"fields": [{"field": "proc.name", "not_in": ["sh", "bash"]}]}, False),
        ({"fields": [{"field": "proc.exepath", "glob": "/usr/bin/*"}]}, True),
        ({"fields": [{"field": "proc.exepath", "regex": "^/tmp/"}]}, False),
        ({"fields": [{"field": "proc.tty", "exists": True}]}, True),
        ({"fields": [{"field": "proc.pid", "exists": True}]}, False),
        ({"fields": [{"field": "proc.pid", "absent": True}]}, True),
        ({"fields": [{"field": "user.uid", "lte": 0}]}, True),
        ({"fields": [{"field": "user.uid", "gt": 0}]}, False),
        ({"fields": [{"field": "evt.time", "gte": 1773491466118273645}]}, True),
        ({"fields": [{"field": "evt.time", "gt": 1773491466118273645}]}, False),
        ({"fields": [{"field": "user.uid", "equals": "0"}]}, True),
        (
            {
                "rules": ["Terminal shell in container"],
                "fields": [
                    {"field": "proc.name", "equals": "bash"},
                    {"field": "user.uid", "gt": 0},
                ],
            },
            False,
        ),
    ],
)
def test_condition(
    write: Write, registry: Registry, match: dict[str, Any], expected: bool
) -> None:
    matcher = build(write, registry, {"name": "p", "match": match})
    assert expected == (names(matcher, SHELL) == ["p"])


def test_nineteen_digit_comparison_exact(write: Write, registry: Registry) -> None:
    # 1773491466118273645 and ...644 are one float, so only an integer compare tells them apart.
    matcher = build(
        write,
        registry,
        {"name": "p", "match": {"fields": [{"field": "evt.time", "gt": 1773491466118273644}]}},
    )
    assert ["p"] == names(matcher, SHELL)


def test_boolean_field_equals(write: Write, registry: Registry) -> None:
    matcher = build(
        write,
        registry,
        {"name": "p", "match": {"fields": [{"field": "container.privileged", "equals": False}]}},
    )
    assert ["p"] == names(matcher, sample_alert("falco-direct", 14))


@pytest.mark.parametrize("missing", [None, "<NA>", ""], ids=["null", "NA", "empty"])
def test_missing_field_is_absent(write: Write, registry: Registry, missing: object) -> None:
    document = sample_document("falco-direct", 1)
    document["output_fields"]["proc.name"] = missing
    matcher = build(
        write,
        registry,
        {"name": "absent", "match": {"fields": [{"field": "proc.name", "absent": True}]}},
        {"name": "equals", "match": {"fields": [{"field": "proc.name", "equals": "<NA>"}]}},
    )
    assert ["absent"] == names(matcher, Alert.model_validate(document))


def test_namespace_include_needs_pod(write: Write, registry: Registry) -> None:
    matcher = build(
        write,
        registry,
        {"name": "included", "match": {"namespaces": {"include": ["*"]}}},
        {"name": "excluded", "match": {"namespaces": {"exclude": ["shop"]}}},
    )
    assert ["excluded"] == names(matcher, Alert.model_validate(host_alert_document()))


def test_all_matches_in_order(write: Write, registry: Registry) -> None:
    matcher = build(
        write,
        registry,
        {"name": "late", "order": 300},
        {"name": "exact", "match": {"rules": ["Terminal shell in container"]}},
        {"name": "glob", "order": 5, "match": {"rules": [{"glob": "*shell*"}]}},
        {"name": "other", "match": {"rules": ["Clear Log Activities"]}},
    )
    assert ["glob", "exact", "late"] == names(matcher, SHELL)


def test_disabled_playbook_skipped(write: Write, registry: Registry) -> None:
    matcher = build(write, registry, {"name": "off", "enabled": False})
    assert [] == names(matcher, SHELL)


def test_index_skips_other_rules(write: Write, registry: Registry) -> None:
    playbooks = [{"name": f"p{i}", "match": {"rules": [f"Rule {i}"]}} for i in range(300)]
    playbooks.append({"name": "hit", "match": {"rules": ["Terminal shell in container"]}})
    matcher = build(write, registry, *playbooks)
    assert (300,) == matcher.candidates("Terminal shell in container")
    assert ["hit"] == names(matcher, SHELL)
