"""isolate_pod and release against the Kubernetes API test server."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import ValidationError

from responder.act.kube import Kube
from responder.act.kubernetes.isolate import IsolatePodParameters, isolate_pod
from responder.act.kubernetes.quarantine import pod_policy_name, workload_policy_name
from responder.act.kubernetes.release import release
from responder.act.results import ActionResult, Outcome
from responder.guard.target import OwnerReference
from tests.act.helpers import NAMESPACE, POD, POD_PATH, context, seed_pod
from tests.kubeapi import KubeApiServer
from tests.kubeapi.resources import NETWORKPOLICIES

POLICY = pod_policy_name(POD)
POLICIES_PATH = f"/apis/networking.k8s.io/v1/namespaces/{NAMESPACE}/networkpolicies*"
QUARANTINE = "falco-responder.io/quarantine"
NAME_LABEL = "kubernetes.io/metadata.name"
DNS_RULE = {
    "to": [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
        }
    ],
    "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
}


async def run(kube: Kube, dry_run: bool = False, **params: Any) -> ActionResult:
    return await isolate_pod.run(
        context(kube, dry_run=dry_run), IsolatePodParameters.model_validate(params)
    )


def stored_policy(server: KubeApiServer, name: str = POLICY) -> dict[str, Any] | None:
    return server.get_object("NetworkPolicy", name, NAMESPACE)


def pod_labels(server: KubeApiServer) -> dict[str, str]:
    pod = server.get_object("Pod", POD, NAMESPACE)
    assert pod is not None
    labels: dict[str, str] = pod["metadata"].get("labels", {})
    return labels


def writes(server: KubeApiServer) -> list[str]:
    return [f"{r.method} {r.path}" for r in server.requests if r.method != "GET"]


def test_policy_name_derived() -> None:
    assert f"falco-responder-quarantine-{POD}-" == POLICY[:-8]
    assert POLICY == pod_policy_name(POD)


def test_policy_name_long_pod() -> None:
    name = pod_policy_name("p" * 253)
    assert 253 == len(name)
    assert name != pod_policy_name("p" * 252)


def test_workload_policy_name() -> None:
    owner = OwnerReference("apps/v1", "ReplicaSet", "frontend-6d5f7b9c8d", "u", True)
    assert workload_policy_name(owner).startswith(
        "falco-responder-quarantine-replicaset-frontend-6d5f7b9c8d-"
    )


def test_cidr_invalid_at_load() -> None:
    with pytest.raises(ValidationError, match=r"invalid CIDR '10\.0\.0\.300/8'"):
        IsolatePodParameters.model_validate({"allow_cidrs": ["10.0.0.300/8"]})


def test_cidr_host_bits_at_load() -> None:
    with pytest.raises(ValidationError, match="has host bits set"):
        IsolatePodParameters.model_validate({"allow_cidrs": ["10.0.0.1/8"]})


@pytest.mark.parametrize(
    ("cidrs", "version"),
    [
        (["0.0.0.0/0"], 4),
        (["10.0.0.0/8", "::/0"], 6),
        (["0.0.0.0/1", "128.0.0.0/1"], 4),
        (["::/1", "8000::/1", "10.0.0.0/8"], 6),
    ],
)
def test_cidrs_of_everything_rejected(cidrs: list[str], version: int) -> None:
    expected = rf"together allow every IPv{version} address, so the pod would not be isolated"
    with pytest.raises(ValidationError, match=expected):
        IsolatePodParameters.model_validate({"allow_cidrs": cidrs})


def test_cidrs_of_one_family_pass() -> None:
    cidrs = ["0.0.0.0/1", "128.0.0.0/2", "fd00::/8"]
    assert cidrs == IsolatePodParameters.model_validate({"allow_cidrs": cidrs}).allow_cidrs


def test_cidr_single_address() -> None:
    params = IsolatePodParameters.model_validate({"allow_cidrs": ["10.1.2.3", "fd00::/8"]})
    assert ["10.1.2.3/32", "fd00::/8"] == params.allow_cidrs


def test_namespace_invalid_at_load() -> None:
    with pytest.raises(ValidationError, match="is not a DNS label"):
        IsolatePodParameters.model_validate({"allow_namespaces": ["Monitoring"]})


async def test_isolate_policy_spec(kube: Kube, kube_api: KubeApiServer) -> None:
    seed_pod(kube_api)
    result = await run(kube)
    policy = stored_policy(kube_api)
    assert policy is not None
    assert Outcome.SUCCESS == result.outcome
    assert {
        "podSelector": {"matchLabels": {QUARANTINE: POD}},
        "policyTypes": ["Ingress", "Egress"],
        "egress": [DNS_RULE],
    } == policy["spec"]
    assert "falco-responder" == policy["metadata"]["labels"]["app.kubernetes.io/managed-by"]
    assert f"isolated pod {NAMESPACE}/{POD} with networkpolicy {NAMESPACE}/{POLICY}" == (
        result.reason
    )


async def test_isolate_labels_pod(kube: Kube, kube_api: KubeApiServer) -> None:
    seed_pod(kube_api, labels={"app": "frontend"})
    await run(kube)
    assert {"app": "frontend", QUARANTINE: POD} == pod_labels(kube_api)


async def test_isolate_schema_valid(kube: Kube, kube_api: KubeApiServer) -> None:
    seed_pod(kube_api)
    await run(kube, allow_cidrs=["10.0.0.0/8"], allow_namespaces=["monitoring"])
    policy = stored_policy(kube_api)
    assert policy is not None
    # The server validated on create; validating the stored copy again must not raise.
    kube_api.validator.validate(NETWORKPOLICIES, policy)


async def test_isolate_without_dns(kube: Kube, kube_api: KubeApiServer) -> None:
    seed_pod(kube_api)
    await run(kube, allow_dns=False)
    policy = stored_policy(kube_api)
    assert policy is not None
    assert "egress" not in policy["spec"]


async def test_isolate_cidrs_namespaces(kube: Kube, kube_api: KubeApiServer) -> None:
    seed_pod(kube_api)
    await run(
        kube,
        allow_cidrs=["10.0.0.0/8", "192.168.1.5/32"],
        allow_namespaces=["monitoring", "logging"],
        dns_namespace="dns",
        dns_pod_labels={"app": "coredns"},
    )
    policy = stored_policy(kube_api)
    assert policy is not None
    assert [
        {
            "to": [
                {
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "dns"}},
                    "podSelector": {"matchLabels": {"app": "coredns"}},
                }
            ],
            "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
        },
        {"to": [{"ipBlock": {"cidr": "10.0.0.0/8"}}, {"ipBlock": {"cidr": "192.168.1.5/32"}}]},
        {
            "to": [
                {"namespaceSelector": {"matchLabels": {NAME_LABEL: "monitoring"}}},
                {"namespaceSelector": {"matchLabels": {NAME_LABEL: "logging"}}},
            ]
        },
    ] == policy["spec"]["egress"]


async def test_isolate_second_run_unchanged(kube: Kube, kube_api: KubeApiServer) -> None:
    seed_pod(kube_api)
    await run(kube, allow_cidrs=["10.0.0.0/8"])
    before = writes(kube_api)
    result = await run(kube, allow_cidrs=["10.0.0.0/8"])
    assert Outcome.SUCCESS == result.outcome
    assert before == writes(kube_api)
    assert "already isolated" in result.reason


async def test_isolate_updates_spec(kube: Kube, kube_api: KubeApiServer) -> None:
    seed_pod(kube_api)
    await run(kube)
    result = await run(kube, allow_dns=False)
    policy = stored_policy(kube_api)
    assert policy is not None
    assert Outcome.SUCCESS == result.outcome
    assert "egress" not in policy["spec"]
    assert "updated the existing policy" in result.reason


async def test_isolate_foreign_policy(kube: Kube, kube_api: KubeApiServer) -> None:
    seed_pod(kube_api)
    foreign = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": POLICY, "namespace": NAMESPACE},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
    }
    kube_api.put_object(foreign)
    result = await run(kube)
    policy = stored_policy(kube_api)
    assert policy is not None
    assert Outcome.CONFLICT == result.outcome
    assert {"podSelector": {}, "policyTypes": ["Ingress"]} == policy["spec"]
    assert [] == writes(kube_api)
    assert QUARANTINE not in pod_labels(kube_api)


async def test_isolate_workload_scope(kube: Kube, kube_api: KubeApiServer) -> None:
    replica_set = kube_api.add_replicaset(
        NAMESPACE,
        "frontend-6d5f7b9c8d",
        selector={"app": "frontend", "pod-template-hash": "6d5f7b9c8d"},
    )
    seed_pod(kube_api, owner=replica_set, labels={"app": "frontend"})
    owner = OwnerReference("apps/v1", "ReplicaSet", "frontend-6d5f7b9c8d", "u", True)
    name = workload_policy_name(owner)
    result = await run(kube, scope="workload")
    policy = stored_policy(kube_api, name)
    assert policy is not None
    assert Outcome.SUCCESS == result.outcome
    assert {"matchLabels": {"app": "frontend", "pod-template-hash": "6d5f7b9c8d"}} == policy[
        "spec"
    ]["podSelector"]
    assert QUARANTINE not in pod_labels(kube_api)
    assert "the pods of ReplicaSet shop/frontend-6d5f7b9c8d" in result.reason


async def test_isolate_workload_rerun_unchanged(kube: Kube, kube_api: KubeApiServer) -> None:
    replica_set = kube_api.add_replicaset(NAMESPACE, "frontend-6d5f7b9c8d")
    seed_pod(kube_api, owner=replica_set)
    await run(kube, scope="workload")
    before = writes(kube_api)
    result = await run(kube, scope="workload")
    assert before == writes(kube_api)
    assert "already isolated" in result.reason


async def test_isolate_workload_standalone(kube: Kube, kube_api: KubeApiServer) -> None:
    seed_pod(kube_api)
    result = await run(kube, scope="workload")
    assert Outcome.SUCCESS == result.outcome
    assert stored_policy(kube_api) is not None
    assert "isolated the pod alone" in result.reason


async def test_isolate_pod_not_found(kube: Kube, kube_api: KubeApiServer) -> None:
    result = await run(kube)
    assert Outcome.ALREADY_GONE == result.outcome
    assert [] == writes(kube_api)


async def test_isolate_container_mismatch(kube: Kube, kube_api: KubeApiServer) -> None:
    seed_pod(kube_api, container_id="e" * 64)
    result = await run(kube)
    assert Outcome.TARGET_MISMATCH == result.outcome
    assert [] == writes(kube_api)


async def test_isolate_dry_run(kube: Kube, kube_api: KubeApiServer) -> None:
    seed_pod(kube_api)
    result = await run(kube, dry_run=True)
    assert Outcome.DRY_RUN == result.outcome
    assert stored_policy(kube_api) is None
    assert QUARANTINE not in pod_labels(kube_api)
    assert all(r.query == {"dryRun": "All"} for r in kube_api.requests if r.method != "GET")


async def test_isolate_forbidden(kube: Kube, kube_api: KubeApiServer) -> None:
    seed_pod(kube_api)
    kube_api.fail_next("POST", POLICIES_PATH, 403)
    result = await run(kube)
    assert Outcome.FAILED == result.outcome
    assert result.reason.startswith("forbidden: grant create on networkpolicies")


async def test_isolate_label_server_error(kube: Kube, kube_api: KubeApiServer) -> None:
    seed_pod(kube_api)
    kube_api.fail_next("PATCH", POD_PATH, 500, times=None)
    result = await run(kube)
    assert Outcome.FAILED == result.outcome
    assert "500 InternalError" in result.reason
    # The policy is written, but it selects the pod by the label that failed: it isolates
    # nothing, which is why the guards give the budget token of a failed isolate back.
    policy = stored_policy(kube_api)
    assert policy is not None
    selected = policy["spec"]["podSelector"]["matchLabels"]
    assert QUARANTINE in selected
    assert QUARANTINE not in pod_labels(kube_api)


async def test_release_undoes_isolate(kube: Kube, kube_api: KubeApiServer) -> None:
    seed_pod(kube_api, labels={"app": "frontend"})
    await run(kube)
    done = await release(kube, NAMESPACE, POD, dry_run=False)
    assert stored_policy(kube_api) is None
    assert {"app": "frontend"} == pod_labels(kube_api)
    assert [
        f"deleted networkpolicy {NAMESPACE}/{POLICY}",
        f"removed the label {QUARANTINE} from pod {NAMESPACE}/{POD}",
    ] == done


async def test_release_workload(kube: Kube, kube_api: KubeApiServer) -> None:
    replica_set = kube_api.add_replicaset(NAMESPACE, "frontend-6d5f7b9c8d")
    seed_pod(kube_api, owner=replica_set)
    await run(kube, scope="workload")
    done = await release(kube, NAMESPACE, POD, dry_run=False)
    assert [] == kube_api.list_objects("NetworkPolicy", NAMESPACE)
    assert 1 == len(done)


async def test_release_refuses_foreign(kube: Kube, kube_api: KubeApiServer) -> None:
    seed_pod(kube_api)
    kube_api.put_object(
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": POLICY, "namespace": NAMESPACE},
            "spec": {"podSelector": {}},
        }
    )
    done = await release(kube, NAMESPACE, POD, dry_run=False)
    assert stored_policy(kube_api) is not None
    assert done[0].startswith(f"refused to delete networkpolicy {NAMESPACE}/{POLICY}")


async def test_release_dry_run(kube: Kube, kube_api: KubeApiServer) -> None:
    seed_pod(kube_api)
    await run(kube)
    done = await release(kube, NAMESPACE, POD, dry_run=True)
    assert stored_policy(kube_api) is not None
    assert POD == pod_labels(kube_api)[QUARANTINE]
    assert f"would delete networkpolicy {NAMESPACE}/{POLICY}" == done[0]


async def test_release_nothing(kube: Kube, kube_api: KubeApiServer) -> None:
    seed_pod(kube_api)
    done = await release(kube, NAMESPACE, POD, dry_run=False)
    assert [f"pod {NAMESPACE}/{POD} is not isolated by the responder; nothing to release"] == done


async def test_isolate_second_run_not_changed(kube: Kube, kube_api: KubeApiServer) -> None:
    seed_pod(kube_api)
    await run(kube)
    result = await run(kube)
    assert result.details["changed"] is False


async def test_isolate_concurrent_create(kube: Kube, kube_api: KubeApiServer) -> None:
    seed_pod(kube_api)
    # Both reads find no policy; the second create then meets the first one's policy.
    kube_api.delay("GET", POLICIES_PATH, 0.2, times=2)
    first, second = await asyncio.gather(run(kube), run(kube))
    assert Outcome.SUCCESS == first.outcome
    assert Outcome.SUCCESS == second.outcome
    assert stored_policy(kube_api) is not None


async def test_isolate_create_not_repeated(kube: Kube, kube_api: KubeApiServer) -> None:
    seed_pod(kube_api)
    kube_api.delay("POST", POLICIES_PATH, 6.0, times=1)
    result = await run(kube)
    assert Outcome.FAILED == result.outcome
    assert 1 == len(kube_api.requests_to("POST", POLICIES_PATH))
