"""The ``cordon_node`` action: stop new pods from being scheduled on the alert's node.

Like ``kubectl cordon``, it sets ``spec.unschedulable`` and leaves running pods alone. For a host
alert the node is the alert's hostname; for a pod alert it is the node the pod runs on.
"""

from __future__ import annotations

from responder.act.base import ActionContext, Parameters, PolicyRule, action
from responder.act.kube import nested
from responder.act.kubernetes.common import (
    MERGE_PATCH,
    api_failure,
    checked_pod,
    no_target,
    pod_subject,
    require_kube,
)
from responder.act.results import CHANGED, ActionResult, Outcome
from responder.errors import KubeError

NAME = "cordon_node"


class CordonNodeParameters(Parameters):
    """``cordon_node`` takes no parameters."""


@action(
    NAME,
    parameters=CordonNodeParameters,
    summary="Mark the alert's node unschedulable, as kubectl cordon does.",
    destructive=True,
    targets=frozenset({"pod", "node"}),
    acts_on_node=True,
    rbac=(
        PolicyRule("", "pods", ("get",)),
        PolicyRule("", "nodes", ("get", "patch")),
    ),
)
async def cordon_node(ctx: ActionContext, params: CordonNodeParameters) -> ActionResult:
    kube = require_kube(NAME, ctx)
    if isinstance(kube, ActionResult):
        return kube
    pod_target = ctx.pod
    host_target = ctx.host
    via = ""
    if host_target is not None:
        node_name = host_target.node
    elif pod_target is not None:
        subject = pod_subject(pod_target)
        verified = await checked_pod(NAME, ctx, kube, pod_target)
        if isinstance(verified, ActionResult):
            return verified
        if not verified.node_name:
            reason = f"{subject} is not scheduled on any node, so there is no node to cordon"
            return ActionResult(NAME, Outcome.SKIPPED, reason)
        node_name = verified.node_name
        via = f" where {subject} runs"
    else:
        return no_target(NAME, ctx, "a pod or a node")

    subject = f"node {node_name}"
    details = {"node": node_name}
    verb = "get"
    try:
        node = await kube.read(kube.core.read_node, node_name)
        if nested(node, "spec", "unschedulable") is True:
            reason = f"{subject}{via} was already cordoned"
            return ActionResult(NAME, Outcome.SUCCESS, reason, details={**details, CHANGED: False})
        verb = "patch"
        await kube.read(
            kube.core.patch_node,
            node_name,
            {"spec": {"unschedulable": True}},
            dry_run=ctx.dry_run,
            _content_type=MERGE_PATCH,
        )
    except KubeError as error:
        if error.status == 404:
            # Falco reports the host name, which on some clusters differs from the node name.
            reason = f"{subject} not found; is the alert's hostname the node's name?"
            return ActionResult(NAME, Outcome.TARGET_MISMATCH, reason, details=details)
        return api_failure(ctx, NAME, error, verb=verb, resource="nodes", subject=subject)

    if ctx.dry_run:
        return ActionResult(NAME, Outcome.DRY_RUN, f"would cordon {subject}{via}", details=details)
    ctx.log.info("node_cordoned", node=node_name, alert_id=ctx.alert_id)
    return ActionResult(NAME, Outcome.SUCCESS, f"cordoned {subject}{via}", details=details)
