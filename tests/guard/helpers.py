"""Builders for the guard tests: the sample alert, action specs and contexts."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import structlog

from responder.act.base import ActionContext, ActionSpec, Parameters
from responder.act.kube import Kube
from responder.act.results import ActionResult, Outcome
from responder.ingest.alert import Alert

NAMESPACE = "shop"
POD = "frontend-6d5f7b9c8d-x2kqp"
POD_PATH = f"/api/v1/namespaces/{NAMESPACE}/pods/{POD}"
NAMESPACE_PATH = f"/api/v1/namespaces/{NAMESPACE}"
PLAYBOOK = "shell-in-container"
LABEL = "falco-responder.io/protected"

ALERT_LINE = (
    '{"hostname":"node-1","output":"...","output_fields":{"container.id":"3ad7b26ded6d",'
    '"container.name":"frontend","evt.time":1773491466118273645,"k8s.ns.name":"shop",'
    '"k8s.pod.name":"frontend-6d5f7b9c8d-x2kqp","proc.cmdline":"bash","proc.name":"bash",'
    '"proc.pid":4242,"user.name":"root"},"priority":"Notice",'
    '"rule":"Terminal shell in container","source":"syscall","tags":["container","shell"],'
    '"time":"2026-03-14T12:31:06.118273645Z"}'
)


def make_alert(fields: Mapping[str, Any] | None = None, **top: Any) -> Alert:
    """Return the sample alert with output fields replaced by ``fields`` and top-level keys by
    ``top``."""
    document = json.loads(ALERT_LINE)
    document["output_fields"].update(fields or {})
    document.update(top)
    return Alert.model_validate(document)


def in_namespace(namespace: str, pod: str = POD) -> Alert:
    return make_alert({"k8s.ns.name": namespace, "k8s.pod.name": pod})


def host_alert() -> Alert:
    """Return the sample alert raised on the node itself, outside any container."""
    return make_alert({"container.id": "host", "k8s.ns.name": None, "k8s.pod.name": None})


async def _never_run(context: ActionContext, parameters: Any) -> ActionResult:
    raise AssertionError("the guard tests never run an action")


def make_spec(name: str = "delete_pod", *, destructive: bool = True) -> ActionSpec[Parameters]:
    return ActionSpec(
        name=name,
        parameters=Parameters,
        run=_never_run,
        summary="test action",
        destructive=destructive,
    )


DELETE = make_spec()
LABEL_POD = make_spec("label_pod", destructive=False)
CORDON = ActionSpec(
    name="cordon_node",
    parameters=Parameters,
    run=_never_run,
    summary="test action",
    destructive=True,
    targets=frozenset({"pod", "node"}),
    acts_on_node=True,
)
NODE = "node-1"


def make_context(
    alert: Alert | None = None, *, kube: Kube | None = None, dry_run: bool = False
) -> ActionContext:
    return ActionContext(
        alert=alert or make_alert(),
        alert_id="a1b2c3",
        playbook=PLAYBOOK,
        dry_run=dry_run,
        kube=kube,
        log=structlog.get_logger("test"),
    )


def result(outcome: Outcome, name: str = DELETE.name) -> ActionResult:
    return ActionResult(name, outcome, "done by the test")
