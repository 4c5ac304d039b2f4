"""Builders for the action tests: a sample alert, an ActionContext, and seeded pods."""

from __future__ import annotations

import json
from typing import Any

import structlog

from responder.act.base import ActionContext
from responder.act.kube import Kube
from responder.act.results import ActionResult
from responder.ingest.alert import Alert
from tests.kubeapi import KubeApiServer

NAMESPACE = "shop"
POD = "frontend-6d5f7b9c8d-x2kqp"
NODE = "node-1"
SHORT_ID = "3ad7b26ded6d"
FULL_ID = SHORT_ID + "c4f0a1b2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4"
POD_PATH = f"/api/v1/namespaces/{NAMESPACE}/pods/{POD}"

ALERT_LINE = (
    '{"hostname":"node-1","output":"...","output_fields":{"container.id":"3ad7b26ded6d",'
    '"container.name":"frontend","evt.time":1773491466118273645,"k8s.ns.name":"shop",'
    '"k8s.pod.name":"frontend-6d5f7b9c8d-x2kqp","proc.name":"bash","user.name":"root"},'
    '"priority":"Notice","rule":"Terminal shell in container","source":"syscall",'
    '"tags":["T1059","container","shell"],"time":"2026-03-14T12:31:06.118273645Z"}'
)


def pod_alert(**fields: Any) -> Alert:
    """Return the sample pod alert, with output fields replaced by ``fields``."""
    document = json.loads(ALERT_LINE)
    document["output_fields"].update(fields)
    return Alert.model_validate(document)


def host_alert(node: str = NODE) -> Alert:
    document = json.loads(ALERT_LINE)
    document["hostname"] = node
    document["output_fields"].update(
        {
            "container.id": "host",
            "container.name": "host",
            "k8s.ns.name": None,
            "k8s.pod.name": None,
        }
    )
    return Alert.model_validate(document)


def context(
    kube: Kube | None,
    alert: Alert | None = None,
    *,
    dry_run: bool = False,
    previous: list[ActionResult] | None = None,
) -> ActionContext:
    return ActionContext(
        alert=alert or pod_alert(),
        alert_id="a1b2c3",
        playbook="shell-in-container",
        dry_run=dry_run,
        kube=kube,
        log=structlog.get_logger("test"),
        previous=list(previous or []),
    )


def seed_pod(
    server: KubeApiServer,
    name: str = POD,
    *,
    container_id: str = FULL_ID,
    **options: Any,
) -> dict[str, Any]:
    """Seed a running, ready pod in ``shop`` on ``node-1`` whose container has ``container_id``."""
    statuses = [
        {
            "name": "frontend",
            "image": "registry.k8s.io/pause:3.10",
            "imageID": "registry.k8s.io/pause@sha256:" + "0" * 64,
            "containerID": f"containerd://{container_id}",
            "ready": options.get("ready", True),
            "restartCount": 0,
            "started": True,
            "state": {"running": {"startedAt": "2026-03-14T12:00:00Z"}},
        }
    ]
    options.setdefault("node_name", NODE)
    return server.add_pod(
        NAMESPACE, name, containers=["frontend"], container_statuses=statuses, **options
    )


def seed_cluster(server: KubeApiServer) -> None:
    """Seed the namespaces and the node the sample alert refers to."""
    server.add_namespace(NAMESPACE)
    server.add_namespace("kube-system")
    server.add_node(NODE)
