"""The ``create_event`` action: record the response as a Warning event on the alert's pod.

The event is a core/v1 Event, so ``kubectl describe pod`` and ``kubectl get events`` show it.
It sets both the fields of the legacy recorder (``firstTimestamp``, ``lastTimestamp``, ``count``,
``source``) and those of the events.k8s.io recorder (``eventTime``, ``reportingComponent``,
``reportingInstance``, ``action``). With ``eventTime`` set, the API server requires the
reporting fields and ``action``, and limits ``reason`` to 128 characters and the message to 1 KiB.
"""

from __future__ import annotations

import functools
import hashlib
import socket
from datetime import UTC, datetime
from typing import Any

from pydantic import Field

from responder.act.base import ActionContext, Parameters, PolicyRule, action
from responder.act.kubernetes.common import (
    MANAGER,
    api_failure,
    verified_pod,
)
from responder.act.kubernetes.names import DNS_SUBDOMAIN_MAX
from responder.act.results import ActionResult, Outcome
from responder.errors import KubeError
from responder.guard.target import VerifiedPod

NAME = "create_event"
MESSAGE_MAX_BYTES = 1024
REPORTING_INSTANCE_MAX = 128
EVENT_ACTION = "Respond"


class CreateEventParameters(Parameters):
    """Parameters of ``create_event``; the default message lists the steps run before it."""

    reason: str = Field(default="FalcoResponse", min_length=1, max_length=128)
    message: str | None = None


@action(
    NAME,
    parameters=CreateEventParameters,
    summary="Create a Warning event on the alert's pod that records the response.",
    rbac=(
        PolicyRule("", "pods", ("get",)),
        PolicyRule("", "events", ("create",)),
    ),
)
async def create_event(ctx: ActionContext, params: CreateEventParameters) -> ActionResult:
    found = await verified_pod(NAME, ctx)
    if isinstance(found, ActionResult):
        return found
    kube, target, verified = found
    subject = f"pod {target}"

    message = params.message if params.message is not None else default_message(ctx)
    container = ctx.alert.field("container.name")
    body = event_body(
        verified,
        reason=params.reason,
        message=message,
        container=str(container) if container is not None else None,
        now=datetime.now(UTC),
        # The step's position keeps two create_event steps of one playbook apart.
        key=f"{ctx.alert_id}/{ctx.playbook}/{len(ctx.previous)}",
    )
    event_name = body["metadata"]["name"]
    try:
        await kube.read(
            kube.core.create_namespaced_event, verified.namespace, body, dry_run=ctx.dry_run
        )
    except KubeError as error:
        if error.status == 409:
            reason = f"event {verified.namespace}/{event_name} on {subject} was already created"
            return ActionResult(NAME, Outcome.SUCCESS, reason, details={"event": event_name})
        return api_failure(
            ctx, NAME, error, verb="create", resource="events", subject=f"event for {subject}"
        )
    details = {"event": event_name}
    if ctx.dry_run:
        reason = f"would create event {verified.namespace}/{event_name} on {subject}"
        return ActionResult(NAME, Outcome.DRY_RUN, reason, details=details)
    reason = f"created event {verified.namespace}/{event_name} on {subject}"
    return ActionResult(NAME, Outcome.SUCCESS, reason, details=details)


def default_message(ctx: ActionContext) -> str:
    """Describe the alert, the playbook and the outcome of each step before this one."""
    text = f"Falco rule {ctx.alert.rule!r} matched playbook {ctx.playbook!r}"
    if ctx.previous:
        steps = ", ".join(f"{result.action} {result.outcome.value}" for result in ctx.previous)
        text = f"{text}; steps: {steps}"
    return text


def event_body(
    pod: VerifiedPod,
    *,
    reason: str,
    message: str,
    container: str | None,
    now: datetime,
    key: str,
) -> dict[str, Any]:
    """Build the Event as the kubelet's recorder would, with the events.k8s.io fields added."""
    involved: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "name": pod.name,
        "namespace": pod.namespace,
        "uid": pod.uid,
    }
    if container and container in pod.container_names:
        # The form the kubelet uses to point an event at one container of the pod.
        involved["fieldPath"] = f"spec.containers{{{container}}}"
    # Time has second precision and MicroTime microsecond precision, both in UTC.
    seconds = now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    micros = now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": _event_name(pod.name, key), "namespace": pod.namespace},
        "involvedObject": involved,
        "reason": reason,
        "message": _cut_utf8(message, MESSAGE_MAX_BYTES),
        "type": "Warning",
        "source": {"component": MANAGER},
        "firstTimestamp": seconds,
        "lastTimestamp": seconds,
        "count": 1,
        "eventTime": micros,
        "action": EVENT_ACTION,
        "reportingComponent": MANAGER,
        "reportingInstance": _reporting_instance(),
    }


def _event_name(pod: str, key: str) -> str:
    # The recorders name an event "<object>.<hex>". Here the hex comes from the alert id and the
    # playbook, so an alert resumed after a restart finds its event instead of adding a second.
    # The pod part is cut so that the name stays within 253 characters.
    suffix = "." + hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]
    base = pod[: DNS_SUBDOMAIN_MAX - len(suffix)].rstrip(".-")
    return base + suffix


@functools.cache
def _reporting_instance() -> str:
    # The events.k8s.io recorder in client-go uses "<component>-<hostname>".
    return f"{MANAGER}-{socket.gethostname()}"[:REPORTING_INSTANCE_MAX]


def _cut_utf8(text: str, max_bytes: int) -> str:
    encoded = text.encode("utf-8")
    if len(encoded) <= max_bytes:
        return text
    return encoded[: max_bytes - 3].decode("utf-8", "ignore") + "..."
