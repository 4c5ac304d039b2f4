"""The ``delete_pod`` action: delete the alert's pod when its owner can spare it.

For a ReplicaSet pod the decision reads the ReplicaSet's ``spec.replicas`` and
``status.readyReplicas``: one GET gives both, and the RBAC stays at ``replicasets get``. Listing
pods by the selector would be fresher by the few seconds the controller takes to update the
status, but it needs ``pods list`` and a second request, and must filter out pods of other owners
whose labels happen to match.
"""

from __future__ import annotations

from kubernetes_asyncio.client import V1DeleteOptions, V1Preconditions
from pydantic import Field, field_validator

from responder.act.base import ActionContext, Parameters, PolicyRule, action
from responder.act.kube import Kube, nested
from responder.act.kubernetes.common import (
    api_failure,
    verified_pod,
)
from responder.act.results import ActionResult, Outcome
from responder.errors import KubeError
from responder.guard.target import VerifiedPod
from responder.guard.workload import (
    DeletePolicy,
    OwnerKind,
    ReplicaSetState,
    decide_delete,
    owner_kind,
    parse_min_healthy,
)

NAME = "delete_pod"


class DeletePodParameters(Parameters):
    """Parameters of ``delete_pod``."""

    grace_period_s: int | None = Field(default=None, ge=0)
    include_daemonsets: bool = False
    include_statefulsets: bool = False
    delete_standalone: bool = True
    min_healthy: int | str = 1

    @field_validator("min_healthy")
    @classmethod
    def _check_min_healthy(cls, value: int | str) -> int | str:
        return parse_min_healthy(value)

    def policy(self) -> DeletePolicy:
        return DeletePolicy(
            include_daemonsets=self.include_daemonsets,
            include_statefulsets=self.include_statefulsets,
            delete_standalone=self.delete_standalone,
            min_healthy=self.min_healthy,
        )


@action(
    NAME,
    parameters=DeletePodParameters,
    summary="Delete the alert's pod, unless its owner could not spare it.",
    destructive=True,
    rbac=(
        PolicyRule("", "pods", ("get", "delete")),
        PolicyRule("apps", "replicasets", ("get",)),
    ),
)
async def delete_pod(ctx: ActionContext, params: DeletePodParameters) -> ActionResult:
    found = await verified_pod(NAME, ctx)
    if isinstance(found, ActionResult):
        return found
    kube, target, verified = found
    subject = f"pod {target}"

    try:
        replica_set = await _read_replica_set(kube, verified)
    except KubeError as error:
        owner = verified.controller
        owner_subject = f"replicaset {target.namespace}/{owner.name if owner else '?'}"
        return api_failure(
            ctx, NAME, error, verb="get", resource="replicasets", subject=owner_subject
        )
    decision = decide_delete(verified, params.policy(), replica_set)
    details = {"uid": verified.uid, "decision": decision.reason}
    if not decision.delete:
        return ActionResult(NAME, Outcome.SKIPPED, decision.reason, details=details)

    options = V1DeleteOptions(
        grace_period_seconds=params.grace_period_s,
        # The uid verified above: a pod recreated under the same name since then is not deleted.
        preconditions=V1Preconditions(uid=verified.uid),
    )
    try:
        await kube.read(
            kube.core.delete_namespaced_pod,
            verified.name,
            verified.namespace,
            body=options,
            dry_run=ctx.dry_run,
        )
    except KubeError as error:
        if error.status == 404:
            return ActionResult(
                NAME, Outcome.ALREADY_GONE, f"pod {target} was already deleted", details=details
            )
        if error.status == 409:
            return ActionResult(
                NAME,
                Outcome.ALREADY_GONE,
                f"pod {target} was replaced by a new pod with the same name and was not "
                f"deleted: {error}",
                details=details,
            )
        return api_failure(ctx, NAME, error, verb="delete", resource="pods", subject=subject)

    if ctx.dry_run:
        reason = f"would delete pod {target}: {decision.reason}"
        return ActionResult(NAME, Outcome.DRY_RUN, reason, details=details)
    ctx.log.info("pod_deleted", target=str(target), uid=verified.uid, alert_id=ctx.alert_id)
    return ActionResult(
        NAME, Outcome.SUCCESS, f"deleted pod {target}: {decision.reason}", details=details
    )


async def _read_replica_set(kube: Kube, pod: VerifiedPod) -> ReplicaSetState | None:
    """Read the pod's ReplicaSet; None when the pod has none or the ReplicaSet is gone."""
    controller = pod.controller
    if owner_kind(controller) is not OwnerKind.REPLICA_SET or controller is None:
        return None
    try:
        replica_set = await kube.read(
            kube.apps.read_namespaced_replica_set, controller.name, pod.namespace
        )
    except KubeError as error:
        if error.status == 404:
            return None
        raise
    if nested(replica_set, "metadata", "uid") != controller.uid:
        # Same name, different object: the pod's ReplicaSet was deleted and another created.
        return None
    spec_replicas = nested(replica_set, "spec", "replicas")
    ready_replicas = nested(replica_set, "status", "readyReplicas")
    return ReplicaSetState(
        name=controller.name,
        # spec.replicas defaults to 1 when unset, as the API server does.
        replicas=1 if spec_replicas is None else int(spec_replicas),
        ready_replicas=int(ready_replicas or 0),
    )
