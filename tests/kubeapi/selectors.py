"""Label and field selectors as kube-apiserver parses them for list requests."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from tests.kubeapi.resources import EVENTS, NAMESPACES, NODES, PODS, REPLICASETS, ResourceType
from tests.kubeapi.status import ApiError, bad_request

Matcher = Callable[[dict[str, Any]], bool]

_KEY = r"[A-Za-z0-9./_-]+"
_SET = re.compile(rf"^\s*({_KEY})\s+(in|notin)\s*\(([^)]*)\)\s*$")
_COMPARE = re.compile(rf"^\s*({_KEY})\s*(==|=|!=|>|<)\s*([A-Za-z0-9._-]*)\s*$")
_EXISTS = re.compile(rf"^\s*(!?)\s*({_KEY})\s*$")

# Field selectors that the registries of kube-apiserver 1.3x accept beyond metadata.name
# and metadata.namespace (from each registry's GetAttrs / field label conversion).
EXTRA_FIELD_LABELS: dict[str, tuple[str, ...]] = {
    PODS.plural: (
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.nominatedNodeName",
    ),
    NODES.plural: ("spec.unschedulable",),
    NAMESPACES.plural: ("status.phase",),
    REPLICASETS.plural: ("status.replicas",),
    EVENTS.plural: (
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
    ),
}


def _split_top_level(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [part for part in parts if part.strip()]


def _requirement(text: str) -> Callable[[dict[str, str]], bool]:
    if match := _SET.match(text):
        key, operator, raw = match.groups()
        values = {value.strip() for value in raw.split(",") if value.strip()}
        if not values:
            raise bad_request(
                "unable to parse requirement: "
                f"for '{operator}' operator, values set can't be empty"
            )
        if operator == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    if match := _COMPARE.match(text):
        key, operator, value = match.groups()
        if operator in ("=", "=="):
            return lambda labels: labels.get(key) == value
        if operator == "!=":
            return lambda labels: labels.get(key) != value
        if not value.lstrip("-").isdigit():
            raise bad_request(
                f"unable to parse requirement: for 'Gt', 'Lt' operators, the value must be an "
                f"integer: {value!r}"
            )
        bound = int(value)
        greater = operator == ">"

        def compare(labels: dict[str, str]) -> bool:
            current = labels.get(key, "")
            if not current.lstrip("-").isdigit():
                return False
            return int(current) > bound if greater else int(current) < bound

        return compare
    if match := _EXISTS.match(text):
        negated, key = match.groups()
        if negated:
            return lambda labels: key not in labels
        return lambda labels: key in labels
    raise bad_request(f"unable to parse requirement: invalid label selector: {text.strip()!r}")


def label_matcher(selector: str | None) -> Matcher:
    """Compile a `labelSelector` query value, raising 400 BadRequest if it does not parse."""
    if not selector:
        return lambda obj: True
    requirements = [_requirement(part) for part in _split_top_level(selector)]

    def matches(obj: dict[str, Any]) -> bool:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return all(requirement(labels) for requirement in requirements)

    return matches


def _field_value(obj: dict[str, Any], path: str) -> str:
    node: Any = obj
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    if isinstance(node, bool):
        return "true" if node else "false"
    return "" if node is None else str(node)


def field_matcher(resource: ResourceType, selector: str | None) -> Matcher:
    """Compile a `fieldSelector` query value for `resource`."""
    if not selector:
        return lambda obj: True
    allowed = ("metadata.name", "metadata.namespace", *EXTRA_FIELD_LABELS.get(resource.plural, ()))
    checks: list[tuple[str, bool, str]] = []
    for part in selector.split(","):
        match = re.fullmatch(r"\s*([A-Za-z.]+)\s*(==|=|!=)\s*(.*?)\s*", part)
        if not match:
            raise bad_request(f"invalid selector: '{selector}'; can't understand '{part}'")
        field, operator, value = match.groups()
        if field not in allowed:
            raise ApiError(400, "BadRequest", f"field label not supported: {field}")
        checks.append((field, operator != "!=", value))

    def matches(obj: dict[str, Any]) -> bool:
        return all((_field_value(obj, field) == value) == equal for field, equal, value in checks)

    return matches
