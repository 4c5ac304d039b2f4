"""Playbook tests: an alert, the playbooks to load, and what must and must not happen.

A test file contains ``tests:``, a list of cases. Each case plans its alert alone, without
Kubernetes and without notifications, exactly as ``responder replay`` plans it. ``playbooks``
in ``expect`` are the playbooks that run, in order (a matched playbook with ``stop: true`` ends
the list). ``actions`` are the actions that would act, meaning those whose outcome is ``dry_run``
or ``success``; an action rejected by a guard or without a target is not among them.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from responder.act.base import load_builtin_actions
from responder.drill.plan import ACTING_OUTCOMES, PlanOptions, plan_records
from responder.drill.record import Record, parse_line
from responder.drill.report import AlertRow
from responder.errors import ConfigError
from responder.match.loader import PLAYBOOK_SUFFIXES, LoadedPlaybook, load_playbooks

CASE_KEYS = ("name", "alert", "alert_file", "alert_line", "alert_patch", "playbooks", "expect")
EXPECT_KEYS = ("playbooks", "actions", "not_playbooks", "not_actions")


@dataclass
class Case:
    """One playbook test, read and checked for unknown keys."""

    file: Path
    name: str
    record: Record
    playbook_paths: tuple[Path, ...]
    expect: dict[str, Any]


@dataclass
class CaseResult:
    case: Case
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures


def case_files(paths: list[Path]) -> list[Path]:
    """Expand directories to the YAML files directly in them, sorted."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(
                sorted(p for p in path.iterdir() if p.suffix in PLAYBOOK_SUFFIXES and p.is_file())
            )
        elif path.is_file():
            found.append(path)
        else:
            raise ConfigError(f"{path}: not found; give test files or directories of them")
    return found


def load_cases(path: Path) -> list[Case]:
    """Read one test file. Raises ConfigError naming the file, the test and the invalid key."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"cannot read {str(path)!r}: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: invalid YAML: {error}") from None
    if not isinstance(document, dict) or not isinstance(document.get("tests"), list):
        raise ConfigError(f"{path}: expected a mapping with a list under 'tests'")
    for key in document:
        if key != "tests":
            raise ConfigError(f"{path}: unknown key {key!r}; allowed keys: tests")
    return [_case(path, number, item) for number, item in enumerate(document["tests"], 1)]


def _case(path: Path, number: int, item: object) -> Case:
    if not isinstance(item, dict):
        raise ConfigError(f"{path}: test {number}: expected a mapping")
    name = str(item.get("name") or f"test {number}")
    where = f"{path}: test {name!r}"
    _check_keys(item, CASE_KEYS, where)
    expect = item.get("expect")
    if not isinstance(expect, dict) or not expect:
        raise ConfigError(f"{where}: 'expect' is missing; give at least one of {EXPECT_KEYS}")
    _check_keys(expect, EXPECT_KEYS, f"{where}: expect")
    alert = _alert(path, item, where)
    patch = item.get("alert_patch")
    if patch is not None:
        if not isinstance(patch, dict):
            raise ConfigError(f"{where}: 'alert_patch' must be a mapping")
        alert = deep_merge(alert, patch)
    record = parse_line(json.dumps(alert), where=where)
    raw_paths = item.get("playbooks", [".."])
    if not isinstance(raw_paths, list) or not raw_paths:
        raise ConfigError(f"{where}: 'playbooks' must be a list of paths")
    paths = tuple((path.parent / str(entry)).resolve() for entry in raw_paths)
    return Case(path, name, record, paths, expect)


def _check_keys(mapping: dict[Any, Any], allowed: tuple[str, ...], where: str) -> None:
    for key in mapping:
        if key not in allowed:
            raise ConfigError(f"{where}: unknown key {key!r}; allowed keys: {', '.join(allowed)}")


def _alert(path: Path, item: dict[str, Any], where: str) -> dict[str, Any]:
    inline, source = item.get("alert"), item.get("alert_file")
    if (inline is None) == (source is None):
        raise ConfigError(f"{where}: give exactly one of 'alert' and 'alert_file'")
    if inline is not None:
        if not isinstance(inline, dict):
            raise ConfigError(f"{where}: 'alert' must be a mapping")
        return inline
    line_number = item.get("alert_line", 1)
    if not isinstance(line_number, int) or line_number < 1:
        raise ConfigError(f"{where}: 'alert_line' must be a line number, counting from 1")
    file = path.parent / str(source)
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise ConfigError(
            f"{where}: cannot read alert_file {str(file)!r}: {error.strerror}"
        ) from None
    if line_number > len(lines):
        raise ConfigError(f"{where}: {file} has {len(lines)} lines, not {line_number}")
    return parse_line(lines[line_number - 1], where=f"{file}:{line_number}").alert


def deep_merge(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """Return ``base`` with ``patch`` merged in: mappings merge, anything else replaces."""
    merged = dict(base)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


class PlaybookCache:
    """Loads each set of playbook paths once across all cases."""

    def __init__(self) -> None:
        self._sets: dict[tuple[Path, ...], list[LoadedPlaybook]] = {}

    def get(self, paths: tuple[Path, ...]) -> list[LoadedPlaybook]:
        if paths not in self._sets:
            report = load_playbooks(paths, registry=load_builtin_actions(), notifiers=None)
            if not report.ok:
                raise ConfigError("invalid playbooks:\n" + "\n".join(report.errors))
            self._sets[paths] = report.playbooks
        return self._sets[paths]


async def run_case(case: Case, cache: PlaybookCache) -> CaseResult:
    report = await plan_records([case.record], cache.get(case.playbook_paths), PlanOptions())
    return CaseResult(case, compare(case.expect, report.alerts[0]))


def compare(expect: dict[str, Any], row: AlertRow) -> list[str]:
    """Return one message with a unified diff per expectation that does not hold."""
    acting = [a for a in row.actions if a.outcome in ACTING_OUTCOMES]
    failures = []
    if "playbooks" in expect:
        failures += _diff("playbooks", list(expect["playbooks"]), row.playbooks)
    expected_actions = expect.get("actions")
    if isinstance(expected_actions, dict):
        for playbook, names in expected_actions.items():
            actual = [a.name for a in acting if a.playbook == playbook]
            failures += _diff(f"actions of {playbook}", list(names), actual)
    elif expected_actions is not None:
        failures += _diff("actions", list(expected_actions), [a.name for a in acting])
    forbidden = set(expect.get("not_playbooks") or [])
    if forbidden & set(row.playbooks):
        kept = [name for name in row.playbooks if name not in forbidden]
        failures += _diff("playbooks (not_playbooks)", kept, row.playbooks)
    forbidden = set(expect.get("not_actions") or [])
    actual_names = [a.name for a in acting]
    if forbidden & set(actual_names):
        kept = [name for name in actual_names if name not in forbidden]
        failures += _diff("actions (not_actions)", kept, actual_names)
    if failures:
        outcomes = [f"  {a.playbook}/{a.name} = {a.outcome}: {a.reason}" for a in row.actions]
        failures.append("all actions:\n" + ("\n".join(outcomes) or "  none"))
    return failures


def _diff(what: str, expected: list[Any], actual: list[Any]) -> list[str]:
    expected_lines = [str(item) for item in expected]
    actual_lines = [str(item) for item in actual]
    if expected_lines == actual_lines:
        return []
    lines = difflib.unified_diff(
        expected_lines,
        actual_lines,
        "expected",
        "actual",
        lineterm="",
        n=max(len(expected_lines), len(actual_lines)),
    )
    return [f"{what}:\n" + "\n".join(lines)]
