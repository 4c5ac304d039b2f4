"""Helpers the Kubernetes actions share: results for API failures, and the target checks."""

from __future__ import annotations

from responder.act.base import ActionContext
from responder.act.kube import Kube
from responder.act.results import ActionResult, Outcome
from responder.errors import KubeError
from responder.guard.target import Mismatch, VerifiedPod, verify_pod
from responder.ingest.alert import PodTarget

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGER = "falco-responder"
# Patches use JSON merge patch (RFC 7386): maps merge key by key, null deletes a key, and a list
# is replaced as a whole, so the body states the end result on every resource kind.
MERGE_PATCH = "application/merge-patch+json"
# JSON patch (RFC 6902) where a whole field must be replaced, or a value tested first.
JSON_PATCH = "application/json-patch+json"


def api_failure(
    ctx: ActionContext, name: str, error: KubeError, *, verb: str, resource: str, subject: str
) -> ActionResult:
    """Log a failed API call and return the ``failed`` result that names what to grant or fix.

    ``resource`` is the RBAC resource (``pods``, ``networkpolicies``...), ``subject`` the object
    in words, such as ``pod shop/frontend``.
    """
    ctx.log.warning(
        "kubernetes_request_failed",
        action=name,
        subject=subject,
        status=error.status,
        reason=error.reason,
        error=str(error),
    )
    if error.status == 403:
        text = f"forbidden: grant {verb} on {resource} to the responder's service account"
        return failed(name, f"{text} ({verb} {subject} was rejected)", error)
    return failed(name, f"{verb} {subject} failed: {error}", error)


def failed(name: str, reason: str, error: KubeError | None = None) -> ActionResult:
    details: dict[str, object] = {}
    if error is not None:
        details = {"status": error.status, "reason": error.reason}
    return ActionResult(name, Outcome.FAILED, reason, details=details)


def no_target(name: str, ctx: ActionContext, needs: str = "a pod") -> ActionResult:
    target = ctx.target
    named = f"names {target}" if target is not None else "names no Kubernetes object"
    return ActionResult(name, Outcome.NO_TARGET, f"the alert {named}, and {name} needs {needs}")


def require_kube(name: str, ctx: ActionContext) -> Kube | ActionResult:
    """Return the client, or a ``failed`` result when the responder runs without one."""
    if ctx.kube is None:
        reason = "no Kubernetes client is configured; set a kubeconfig or run in the cluster"
        return failed(name, reason)
    return ctx.kube


def pod_subject(target: PodTarget) -> str:
    return f"pod {target.namespace}/{target.pod}"


async def checked_pod(
    name: str, ctx: ActionContext, kube: Kube, target: PodTarget
) -> VerifiedPod | ActionResult:
    """Verify the alert's pod, or return the result that ends the action.

    That is ``failed`` when the read fails, ``already_gone`` when the pod no longer exists, and
    ``target_mismatch`` when the pod of that name is not the one that raised the alert."""
    try:
        verified = await verify_pod(kube, target)
    except KubeError as error:
        subject = pod_subject(target)
        return api_failure(ctx, name, error, verb="get", resource="pods", subject=subject)
    if isinstance(verified, Mismatch):
        outcome = Outcome.ALREADY_GONE if verified.gone else Outcome.TARGET_MISMATCH
        return ActionResult(name, outcome, verified.reason)
    return verified


async def verified_pod(
    name: str, ctx: ActionContext
) -> tuple[Kube, PodTarget, VerifiedPod] | ActionResult:
    """Return the client, the alert's pod and its verified state, or the result that ends the
    action: ``no_target`` without a pod, ``failed`` without a client, or what ``checked_pod``
    returns."""
    target = ctx.pod
    if target is None:
        return no_target(name, ctx)
    kube = require_kube(name, ctx)
    if isinstance(kube, ActionResult):
        return kube
    checked = await checked_pod(name, ctx, kube, target)
    if isinstance(checked, ActionResult):
        return checked
    return kube, target, checked
