"""Loading playbooks: every mistake is reported with file, playbook and field."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from responder.act.base import Registry
from responder.match.loader import load_playbooks

Write = Callable[..., Path]

VALID = """
playbooks:
  - name: shell
    description: Label pods that ran a shell.
    match:
      rules: [Terminal shell in container, {glob: "Shell *"}, {regex: "^Run shell.*"}]
      priority: ">=notice"
      tags: {all_of: [container], any_of: [shell, process]}
      sources: [syscall]
      namespaces: {include: ["*"], exclude: [kube-system]}
      fields:
        - {field: proc.name, in: [bash, sh]}
        - {field: user.uid, lte: 0}
    actions:
      - action: label_pod
        parameters:
          set: {falco.org/rule: "{{ rule }}"}
        continue_on_failure: true
      - action: delete_pod
        parameters: {grace_period_s: 0}
    notify: [security]
    dry_run: true
"""


def test_valid_file_loads(write: Write, registry: Registry) -> None:
    report = load_playbooks([write(VALID)], registry=registry, notifiers=["security"])
    assert [] == report.errors
    assert ["shell"] == [loaded.name for loaded in report.playbooks]
    assert ["label_pod", "delete_pod"] == [step.spec.name for step in report.playbooks[0].steps]


def test_directory_loads_yaml_only(tmp_path: Path, write: Write, registry: Registry) -> None:
    write(VALID, "a.yaml")
    write(VALID.replace("name: shell", "name: other"), "b.yml")
    write("not yaml: [", "notes.txt")
    (tmp_path / "..data").mkdir()
    report = load_playbooks([tmp_path], registry=registry)
    assert [] == report.errors
    assert 2 == len(report.playbooks)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "playbooks:\n  - name: p\n    matches: {}\n",
            "playbook 'p': matches: unknown key; allowed: name, description, enabled, order, "
            "match, actions, notify, dry_run, stop",
        ),
        (
            "playbooks:\n  - name: p\n    match: {rule: [x]}\n",
            "playbook 'p': match.rule: unknown key; allowed: rules, priority, tags, sources, "
            "namespaces, fields",
        ),
        (
            "playbooks:\n  - name: p\n    actions: [{action: reboot}]\n",
            "playbook 'p': actions[0] (reboot): unknown action 'reboot'; allowed: delete_pod, "
            "label_pod",
        ),
        (
            "playbooks:\n  - name: p\n"
            "    actions: [{action: delete_pod, parameters: {grace: 1}}]\n",
            "playbook 'p': actions[0] (delete_pod): parameters.grace: unknown key; allowed: "
            "grace_period_s",
        ),
        (
            "playbooks:\n  - name: p\n    match: {priority: '>=loud'}\n",
            "playbook 'p': match.priority: invalid priority 'loud'",
        ),
        (
            "playbooks:\n  - name: p\n    match: {rules: [{regex: '('}]}\n",
            "invalid regex '('",
        ),
        (
            "playbooks:\n  - name: p\n    match: {fields: [{field: a, in: [1], glob: x}]}\n",
            "condition on 'a' needs exactly one operator (found in, glob)",
        ),
        (
            "playbooks:\n  - name: p\n    actions:\n      - action: label_pod\n"
            "        parameters: {set: {a: '{{ rules }}'}}\n",
            "unknown template name '{{ rules }}'",
        ),
        (
            "playbooks:\n  - name: p\n    notify: [pager]\n",
            "notify: unknown notifier 'pager'; configured notifiers: security",
        ),
        ("- name: p\n", "expected a mapping with a 'playbooks' list at the top level"),
        ("playbooks: [\n", "invalid YAML"),
        ("", "the file is empty"),
        ("playbooks:\n  - description: no name\n", "playbook #1: name: Field required"),
    ],
    ids=[
        "unknown-playbook-key",
        "unknown-match-key",
        "unknown-action",
        "unknown-parameter",
        "bad-priority",
        "bad-regex",
        "two-operators",
        "bad-template",
        "unknown-notifier",
        "top-level-list",
        "broken-yaml",
        "empty-file",
        "missing-name",
    ],
)
def test_errors_name_file_playbook_field(
    write: Write, registry: Registry, text: str, expected: str
) -> None:
    path = write(text)
    report = load_playbooks([path], registry=registry, notifiers=["security"])
    assert 1 <= len(report.errors)
    assert str(path) in report.errors[0]
    assert expected in report.errors[0]
    assert [] == report.playbooks


def test_schema_and_action_errors_together(write: Write, registry: Registry) -> None:
    path = write(
        """
playbooks:
  - name: shell
    match: {rules: [Terminal shell in container], colour: red}
    actions:
      - action: label_pod
        parameters: {set: {"bad key!": x}, wrong: 1}
      - action: reboot_node
      - {action: label_pod, extra: 1}
"""
    )
    report = load_playbooks([path], registry=registry)
    assert 4 == len(report.errors)
    assert "match.colour: unknown key" in report.errors[0]
    assert "actions.2.extra: unknown key" in report.errors[1]
    assert "actions[0] (label_pod): parameters.wrong: unknown key" in report.errors[2]
    assert "actions[1] (reboot_node): unknown action 'reboot_node'" in report.errors[3]


def test_duplicate_names_rejected(write: Write, registry: Registry) -> None:
    first = write(VALID, "a.yaml")
    write(VALID, "b.yaml")
    report = load_playbooks([first.parent], registry=registry)
    assert 1 == len(report.errors)
    assert "already used in" in report.errors[0]


def test_missing_path_reported(tmp_path: Path, registry: Registry) -> None:
    report = load_playbooks([tmp_path / "absent"], registry=registry)
    assert ["absent: not found"] == [error.split("/")[-1][:17] for error in report.errors]


def test_order_then_file_then_position(write: Write, registry: Registry) -> None:
    write("playbooks:\n  - {name: late, order: 200}\n  - {name: b1}\n  - {name: b2}\n", "b.yaml")
    path = write("playbooks:\n  - {name: a1}\n  - {name: first, order: 1}\n", "a.yaml")
    report = load_playbooks([path.parent], registry=registry)
    assert ["first", "a1", "b1", "b2", "late"] == [loaded.name for loaded in report.playbooks]
