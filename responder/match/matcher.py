"""Find the playbooks that match an alert, quickly, however many playbooks cannot match it.

Playbooks are indexed by exact rule name. Playbooks that name rules by glob or regex, and those
that name no rule, are checked once per distinct rule name and the result is cached. A cluster
raises alerts from a few dozen rules but may load hundreds of playbooks.
"""

from __future__ import annotations

import fnmatch
import math
import re
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from responder.ingest.alert import MISSING_VALUES, Alert, PodTarget
from responder.match.loader import LoadedPlaybook
from responder.match.playbook import FieldCondition, Match, RulePattern

# Distinct rule names remembered; Falco's default rules number about a hundred.
RULE_CACHE_SIZE = 4096


class Matcher:
    """An immutable index over one set of playbooks, in run order."""

    def __init__(self, playbooks: Sequence[LoadedPlaybook]) -> None:
        self.playbooks = tuple(sorted(playbooks, key=lambda loaded: loaded.sort_key))
        self._by_rule: dict[str, list[int]] = {}
        self._by_pattern: list[tuple[int, tuple[RulePattern, ...]]] = []
        self._any_rule: list[int] = []
        self._cache: OrderedDict[str, tuple[int, ...]] = OrderedDict()
        for index, loaded in enumerate(self.playbooks):
            if not loaded.playbook.enabled:
                continue
            rules = loaded.playbook.match.rules
            if not rules:
                self._any_rule.append(index)
                continue
            patterns = tuple(rule for rule in rules if isinstance(rule, RulePattern))
            for rule in rules:
                if isinstance(rule, str):
                    self._by_rule.setdefault(rule, []).append(index)
            if patterns:
                self._by_pattern.append((index, patterns))

    def __len__(self) -> int:
        return len(self.playbooks)

    def candidates(self, rule: str) -> tuple[int, ...]:
        """Return the indexes of the playbooks whose rule names admit ``rule``, in run order."""
        cached = self._cache.get(rule)
        if cached is not None:
            self._cache.move_to_end(rule)
            return cached
        found = set(self._by_rule.get(rule, ()))
        found.update(self._any_rule)
        for index, patterns in self._by_pattern:
            if any(pattern.matches(rule) for pattern in patterns):
                found.add(index)
        result = tuple(sorted(found))
        self._cache[rule] = result
        if len(self._cache) > RULE_CACHE_SIZE:
            self._cache.popitem(last=False)
        return result

    def match(self, alert: Alert) -> list[LoadedPlaybook]:
        """Return every playbook that matches ``alert``, in run order."""
        return [
            self.playbooks[index]
            for index in self.candidates(alert.rule)
            if conditions_hold(self.playbooks[index].playbook.match, alert)
        ]


def conditions_hold(match: Match, alert: Alert) -> bool:
    """Check every condition of ``match`` except the rule name, which the index has checked."""
    if match.priority is not None and not match.priority.admits(alert.priority):
        return False
    if match.sources and alert.source not in match.sources:
        return False
    if match.tags is not None:
        tags = set(alert.tags)
        if not tags.issuperset(match.tags.all_of):
            return False
        if match.tags.any_of and tags.isdisjoint(match.tags.any_of):
            return False
        if not tags.isdisjoint(match.tags.none_of):
            return False
    if match.namespaces is not None and not _namespace_admitted(match, alert):
        return False
    return all(field_holds(condition, alert) for condition in match.fields)


def _namespace_admitted(match: Match, alert: Alert) -> bool:
    assert match.namespaces is not None
    target = alert.target
    namespace = target.namespace if isinstance(target, PodTarget) else None
    if namespace is None:
        return not match.namespaces.include
    if any(fnmatch.fnmatchcase(namespace, pattern) for pattern in match.namespaces.exclude):
        return False
    if not match.namespaces.include:
        return True
    return any(fnmatch.fnmatchcase(namespace, pattern) for pattern in match.namespaces.include)


def field_holds(condition: FieldCondition, alert: Alert) -> bool:
    """Evaluate one condition on an output field. A missing field fails every test but ``absent``
    and ``not_equals``/``not_in``."""
    present = condition.field in alert.output_fields and not _missing(
        alert.output_fields[condition.field]
    )
    value = alert.output_fields.get(condition.field) if present else None
    operator = condition.operator
    if operator == "exists":
        return present
    if operator == "absent":
        return not present
    if operator == "equals":
        return present and _equal(value, condition.equals)
    if operator == "not_equals":
        return not (present and _equal(value, condition.not_equals))
    if operator == "in":
        return present and any(_equal(value, item) for item in condition.in_ or ())
    if operator == "not_in":
        return not (present and any(_equal(value, item) for item in condition.not_in or ()))
    if not present:
        return False
    if operator == "glob":
        return fnmatch.fnmatchcase(_text(value), condition.glob or "")
    if operator == "regex":
        return re.search(condition.regex or "", _text(value)) is not None
    return _compare(operator, value, condition)


def _compare(operator: str, value: Any, condition: FieldCondition) -> bool:
    number = _number(value)
    if number is None:
        return False
    bound = getattr(condition, operator)
    match operator:
        case "gt":
            return bool(number > bound)
        case "gte":
            return bool(number >= bound)
        case "lt":
            return bool(number < bound)
    return bool(number <= bound)


def _number(value: Any) -> int | float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value if not (isinstance(value, float) and math.isnan(value)) else None
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            try:
                return float(value)
            except ValueError:
                return None
    return None


def _equal(value: Any, expected: Any) -> bool:
    # Falco types fields, but a playbook author may write 0 or "0"; both mean the same number.
    if isinstance(value, bool) or isinstance(expected, bool):
        return value is expected or _text(value) == _text(expected)
    if value == expected:
        return True
    return _text(value) == _text(expected)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _missing(value: Any) -> bool:
    try:
        return value in MISSING_VALUES
    except TypeError:
        return False
