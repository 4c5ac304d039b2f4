"""Undo ``isolate_pod`` for one pod: the ``responder release NAMESPACE/POD`` command.

The policies to delete are found by name, derived as ``isolate_pod`` derives them: the pod's own
policy always, and its workload's policy while the pod still exists and names its controller.
"""

from __future__ import annotations

from responder.act.base import PolicyRule
from responder.act.kube import Kube, nested
from responder.act.kubernetes.common import MANAGED_BY_LABEL, MANAGER, MERGE_PATCH
from responder.act.kubernetes.quarantine import (
    QUARANTINE_LABEL,
    is_managed,
    pod_policy_name,
    workload_policy_name,
)
from responder.errors import KubeError
from responder.guard.target import owner_reference
from responder.guard.workload import OwnerKind, owner_kind

# The calls release makes: read the pod, read and delete the quarantine policies, and patch the
# quarantine label away. The ClusterRole in deploy/ includes them; a test checks it.
RELEASE_RBAC = (
    PolicyRule("", "pods", ("get", "patch")),
    PolicyRule("networking.k8s.io", "networkpolicies", ("get", "delete")),
)

# The owners for which isolate_pod's workload scope creates a policy of the workload's own name.
_WORKLOAD_KINDS = frozenset({OwnerKind.REPLICA_SET, OwnerKind.STATEFUL_SET, OwnerKind.DAEMON_SET})


async def release(kube: Kube, namespace: str, pod: str, *, dry_run: bool) -> list[str]:
    """Delete the responder's quarantine policies for the pod and remove its quarantine label.

    Returns one sentence per step, in order. A policy without the label
    ``app.kubernetes.io/managed-by=falco-responder`` is not deleted, and its sentence starts
    with "refused". Raises KubeError when a request fails for any reason other than 404.
    """
    done: list[str] = []
    labels: dict[str, str] | None = None
    names = [pod_policy_name(pod)]
    try:
        found = await kube.read(kube.core.read_namespaced_pod, pod, namespace)
    except KubeError as error:
        if error.status != 404:
            raise
        done.append(f"pod {namespace}/{pod} not found; its workload's policy, if any, is kept")
    else:
        metadata = found.get("metadata") or {}
        labels = dict(metadata.get("labels") or {})
        for owner in map(owner_reference, metadata.get("ownerReferences") or []):
            if owner.controller and owner_kind(owner) in _WORKLOAD_KINDS:
                names.append(workload_policy_name(owner))

    for name in names:
        subject = f"networkpolicy {namespace}/{name}"
        try:
            policy = await kube.read(
                kube.networking.read_namespaced_network_policy, name, namespace
            )
        except KubeError as error:
            if error.status == 404:
                continue
            raise
        if not is_managed(nested(policy, "metadata", "labels")):
            done.append(
                f"refused to delete {subject}: it lacks the label {MANAGED_BY_LABEL}={MANAGER}"
            )
            continue
        try:
            await kube.read(
                kube.networking.delete_namespaced_network_policy, name, namespace, dry_run=dry_run
            )
        except KubeError as error:
            if error.status != 404:
                raise
        done.append(f"would delete {subject}" if dry_run else f"deleted {subject}")

    if labels is not None and QUARANTINE_LABEL in labels:
        body = {"metadata": {"labels": {QUARANTINE_LABEL: None}}}
        await kube.read(
            kube.core.patch_namespaced_pod,
            pod,
            namespace,
            body,
            dry_run=dry_run,
            _content_type=MERGE_PATCH,
        )
        action = "would remove" if dry_run else "removed"
        done.append(f"{action} the label {QUARANTINE_LABEL} from pod {namespace}/{pod}")
    if not done:
        done.append(f"pod {namespace}/{pod} is not isolated by the responder; nothing to release")
    return done
