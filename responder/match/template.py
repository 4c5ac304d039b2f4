"""A safe template syntax for action parameters: ``{{ name }}`` and nothing else.

Templates substitute values from the alert and never evaluate code. The names are::

    rule  priority  source  hostname  time  namespace  pod  node  container_id  alert_id
    output_fields.<field name as Falco prints it, such as proc.name or proc.aname[2]>

A missing value renders as the empty string. An unknown name is a load-time error, so that a typo
in a playbook is caught by ``responder check`` and not when the first alert arrives.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from responder.ingest.alert import MISSING_VALUES, Alert, HostTarget, PodTarget

_PLACEHOLDER = re.compile(r"\{\{\s*(.*?)\s*\}\}")
_FIELD_PREFIX = "output_fields."
NAMES = (
    "rule",
    "priority",
    "source",
    "hostname",
    "time",
    "namespace",
    "pod",
    "node",
    "container_id",
    "alert_id",
)


def check_template(text: str) -> None:
    """Raise ValueError naming the placeholder when ``text`` uses an unknown name."""
    for found in _PLACEHOLDER.finditer(text):
        name = found.group(1)
        if name in NAMES:
            continue
        if name.startswith(_FIELD_PREFIX) and len(name) > len(_FIELD_PREFIX):
            continue
        allowed = ", ".join(NAMES)
        raise ValueError(
            f"unknown template name {found.group(0)!r}: use one of {allowed}, "
            "or output_fields.<field> such as {{ output_fields.proc.name }}"
        )
    stray = _PLACEHOLDER.sub("", text)
    if "{{" in stray or "}}" in stray:
        raise ValueError(f"unbalanced braces in template {text!r}: write {{{{ name }}}}")


def check_templates(value: Any) -> None:
    """Check every string inside a parameters value (strings, lists and mappings)."""
    if isinstance(value, str):
        check_template(value)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            check_templates(key)
            check_templates(item)
    elif isinstance(value, list | tuple):
        for item in value:
            check_templates(item)


def template_values(alert: Alert, alert_id: str) -> dict[str, str]:
    """Return the named values of one alert, as strings."""
    target = alert.target
    values = {
        "rule": alert.rule,
        "priority": str(alert.priority),
        "source": alert.source,
        "hostname": alert.hostname or "",
        "time": alert.time.isoformat(),
        "namespace": "",
        "pod": "",
        "node": "",
        "container_id": "",
        "alert_id": alert_id,
    }
    if isinstance(target, PodTarget):
        values["namespace"] = target.namespace
        values["pod"] = target.pod
        values["container_id"] = target.container_id or ""
    elif isinstance(target, HostTarget):
        values["node"] = target.node
    return values


def render(value: Any, alert: Alert, values: Mapping[str, str]) -> Any:
    """Substitute placeholders in every string inside ``value``; other values pass unchanged."""
    if isinstance(value, str):
        if "{{" not in value:
            return value
        return _PLACEHOLDER.sub(lambda found: _lookup(found.group(1), alert, values), value)
    if isinstance(value, Mapping):
        return {render(k, alert, values): render(v, alert, values) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [render(item, alert, values) for item in value]
    return value


def _lookup(name: str, alert: Alert, values: Mapping[str, str]) -> str:
    if name.startswith(_FIELD_PREFIX):
        field = alert.output_fields.get(name[len(_FIELD_PREFIX) :])
        if isinstance(field, bool):
            return "true" if field else "false"
        if isinstance(field, list):
            return ",".join(str(item) for item in field)
        try:
            missing = field in MISSING_VALUES
        except TypeError:
            missing = False
        return "" if missing else str(field)
    return values.get(name, "")
