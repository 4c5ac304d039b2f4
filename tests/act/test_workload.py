"""The owner-aware delete decision, without a server."""

from __future__ import annotations

import pytest

from responder.guard.target import OwnerReference, VerifiedPod
from responder.guard.workload import (
    DeletePolicy,
    OwnerKind,
    ReplicaSetState,
    decide_delete,
    owner_kind,
    parse_min_healthy,
    required_ready,
)


def owner(kind: str, api_version: str = "apps/v1", name: str = "web") -> OwnerReference:
    return OwnerReference(api_version, kind, name, "uid-1", True)


def pod(
    controller: OwnerReference | None = None, *, ready: bool = True, deleting: bool = False
) -> VerifiedPod:
    owners = (controller,) if controller else ()
    return VerifiedPod(
        "shop",
        "web-1",
        "uid-pod",
        "node-1",
        owner_references=owners,
        ready=ready,
        deleting=deleting,
    )


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        (None, OwnerKind.STANDALONE),
        (owner("ReplicaSet"), OwnerKind.REPLICA_SET),
        (owner("StatefulSet"), OwnerKind.STATEFUL_SET),
        (owner("DaemonSet"), OwnerKind.DAEMON_SET),
        (owner("Node", "v1"), OwnerKind.STATIC),
        (owner("Job", "batch/v1"), OwnerKind.OTHER),
        (owner("ReplicaSet", "example.com/v1"), OwnerKind.OTHER),
    ],
)
def test_owner_kind(reference: OwnerReference | None, expected: OwnerKind) -> None:
    assert expected == owner_kind(reference)


def test_owner_kind_ignores_non_controller() -> None:
    reference = OwnerReference("apps/v1", "ReplicaSet", "web", "u", False)
    assert pod(None).controller is None
    assert VerifiedPod("shop", "p", "u", None, owner_references=(reference,)).controller is None


@pytest.mark.parametrize(
    ("value", "expected"), [(0, 0), (3, 3), ("2", 2), ("50%", "50%"), (" 100% ", "100%")]
)
def test_min_healthy_valid(value: int | str, expected: int | str) -> None:
    assert expected == parse_min_healthy(value)


@pytest.mark.parametrize("value", [-1, "101%", "half", "50 %", "%", "1.5"])
def test_min_healthy_invalid(value: int | str) -> None:
    with pytest.raises(ValueError, match="invalid min_healthy"):
        parse_min_healthy(value)


@pytest.mark.parametrize(
    ("min_healthy", "replicas", "expected"),
    [(2, 10, 2), ("50%", 4, 2), ("50%", 3, 2), ("34%", 3, 2), ("0%", 5, 0), ("100%", 0, 0)],
)
def test_required_ready(min_healthy: int | str, replicas: int, expected: int) -> None:
    assert expected == required_ready(min_healthy, replicas)


def test_decide_standalone() -> None:
    assert decide_delete(pod(), DeletePolicy(), None).delete


def test_decide_standalone_opted_out() -> None:
    assert not decide_delete(pod(), DeletePolicy(delete_standalone=False), None).delete


def test_decide_static_pod() -> None:
    decision = decide_delete(pod(owner("Node", "v1", "node-1")), DeletePolicy(), None)
    assert not decision.delete
    assert "static pod of node node-1" in decision.reason


def test_decide_job_pod() -> None:
    decision = decide_delete(pod(owner("Job", "batch/v1")), DeletePolicy(), None)
    assert decision.delete
    assert "belongs to Job web, which recreates it" in decision.reason


def test_decide_replicaset_boundary() -> None:
    state = ReplicaSetState("web", replicas=3, ready_replicas=3)
    assert decide_delete(pod(owner("ReplicaSet")), DeletePolicy(min_healthy=2), state).delete
    assert not decide_delete(pod(owner("ReplicaSet")), DeletePolicy(min_healthy=3), state).delete


def test_decide_terminating_not_counted() -> None:
    state = ReplicaSetState("web", replicas=2, ready_replicas=1)
    terminating = pod(owner("ReplicaSet"), deleting=True)
    assert decide_delete(terminating, DeletePolicy(min_healthy=1), state).delete
