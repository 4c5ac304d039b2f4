"""Decide from a pod's owner whether deleting it is safe, without calling the API server.

A pod's controller recreates it after a delete, except for a standalone pod, which is gone for
good, and a static pod, whose mirror object the kubelet recreates at once while the containers
keep running. For a ReplicaSet the number of ready pods left after the delete is compared with
``min_healthy``, in the way a PodDisruptionBudget's ``minAvailable`` is.
"""

from __future__ import annotations

import enum
import math
import re
from dataclasses import dataclass

from responder.guard.target import OwnerReference, VerifiedPod

_PERCENT = re.compile(r"^(?P<value>\d{1,3})%$")


class OwnerKind(enum.StrEnum):
    """The kind of a pod's controller, grouped as the delete decision needs."""

    STANDALONE = "standalone"
    REPLICA_SET = "ReplicaSet"
    STATEFUL_SET = "StatefulSet"
    DAEMON_SET = "DaemonSet"
    # Pods created by the kubelet from a manifest on the node; the API object is only a mirror.
    STATIC = "Node"
    OTHER = "other"


@dataclass(frozen=True)
class DeletePolicy:
    """The owner-related parameters of ``delete_pod``."""

    include_daemonsets: bool = False
    include_statefulsets: bool = False
    delete_standalone: bool = True
    min_healthy: int | str = 1


@dataclass(frozen=True)
class ReplicaSetState:
    """A ReplicaSet's spec.replicas and the status.readyReplicas its controller last wrote."""

    name: str
    replicas: int
    ready_replicas: int


@dataclass(frozen=True)
class Decision:
    """A delete decision and the sentence that explains it."""

    delete: bool
    reason: str


def owner_kind(controller: OwnerReference | None) -> OwnerKind:
    """Classify the pod by its controller owner reference."""
    if controller is None:
        return OwnerKind.STANDALONE
    if controller.api_version == "apps/v1":
        for kind in (OwnerKind.REPLICA_SET, OwnerKind.STATEFUL_SET, OwnerKind.DAEMON_SET):
            if controller.kind == kind.value:
                return kind
    if controller.api_version == "v1" and controller.kind == "Node":
        return OwnerKind.STATIC
    return OwnerKind.OTHER


def parse_min_healthy(value: int | str) -> int | str:
    """Validate ``min_healthy``: a count of zero or more, or a percentage such as "50%"."""
    if isinstance(value, bool):
        raise ValueError(f"invalid min_healthy {value!r}: expected a count or a percentage")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"invalid min_healthy {value}: must be zero or more")
        return value
    text = value.strip()
    if text.isdigit():
        return int(text)
    found = _PERCENT.match(text)
    if found is None or int(found.group("value")) > 100:
        raise ValueError(
            f"invalid min_healthy {value!r}: expected a count such as 2 "
            "or a percentage from 0% to 100% such as '50%'"
        )
    return text


def required_ready(min_healthy: int | str, replicas: int) -> int:
    """Return the ready pods to keep; a percentage of ``replicas`` is rounded up, as in a PDB."""
    if isinstance(min_healthy, int):
        return min_healthy
    percent = int(min_healthy.rstrip("%"))
    return math.ceil(replicas * percent / 100)


def decide_delete(
    pod: VerifiedPod, policy: DeletePolicy, replica_set: ReplicaSetState | None
) -> Decision:
    """Decide whether ``delete_pod`` may delete ``pod``.

    ``replica_set`` is the pod's ReplicaSet as read from the API server, or None when the pod
    has no ReplicaSet or the ReplicaSet is gone.
    """
    controller = pod.controller
    kind = owner_kind(controller)
    if kind is OwnerKind.STANDALONE:
        if policy.delete_standalone:
            return Decision(True, f"pod {pod} has no controller")
        return Decision(
            False,
            f"pod {pod} has no controller and would not be recreated; "
            "set delete_standalone to delete it",
        )
    assert controller is not None
    owner = f"{controller.kind} {controller.name}"
    if kind is OwnerKind.DAEMON_SET and not policy.include_daemonsets:
        return Decision(
            False, f"pod {pod} belongs to {owner}; set include_daemonsets to delete it"
        )
    if kind is OwnerKind.STATEFUL_SET and not policy.include_statefulsets:
        return Decision(
            False, f"pod {pod} belongs to {owner}; set include_statefulsets to delete it"
        )
    if kind is OwnerKind.STATIC:
        return Decision(
            False,
            f"pod {pod} is a static pod of node {controller.name}; deleting its mirror object "
            "does not stop its containers",
        )
    if kind is OwnerKind.REPLICA_SET:
        return _decide_replica_set(pod, policy, controller, replica_set)
    return Decision(True, f"pod {pod} belongs to {owner}, which recreates it")


def _decide_replica_set(
    pod: VerifiedPod,
    policy: DeletePolicy,
    controller: OwnerReference,
    replica_set: ReplicaSetState | None,
) -> Decision:
    if replica_set is None:
        return Decision(True, f"pod {pod} belongs to ReplicaSet {controller.name}, which is gone")
    needed = required_ready(policy.min_healthy, replica_set.replicas)
    # The controller does not count a pod that is not ready or already terminating, so
    # deleting such a pod leaves the ready count as it is.
    counted = pod.ready and not pod.deleting
    left = replica_set.ready_replicas - (1 if counted else 0)
    threshold = f"min_healthy {policy.min_healthy}"
    if isinstance(policy.min_healthy, str):
        threshold = f"{threshold} of {replica_set.replicas} replicas = {needed}"
    if left < needed:
        return Decision(
            False,
            f"deleting pod {pod} would leave {left} ready pods in ReplicaSet "
            f"{replica_set.name}, fewer than {threshold}",
        )
    return Decision(
        True,
        f"pod {pod} belongs to ReplicaSet {replica_set.name}, which keeps {left} ready pods "
        f"({threshold})",
    )
