"""delete_pod against the Kubernetes API test server."""

from __future__ import annotations

import asyncio
from typing import Any

from responder.act.kube import Kube
from responder.act.kubernetes.delete import DeletePodParameters, delete_pod
from responder.act.results import ActionResult, Outcome
from tests.act.helpers import NAMESPACE, POD, POD_PATH, context, pod_alert, seed_pod
from tests.kubeapi import KubeApiServer


async def run(kube: Kube, dry_run: bool = False, **params: Any) -> ActionResult:
    return await delete_pod.run(
        context(kube, dry_run=dry_run), DeletePodParameters.model_validate(params)
    )


def pod_exists(server: KubeApiServer, name: str = POD) -> bool:
    return server.get_object("Pod", name, NAMESPACE) is not None


async def test_delete_standalone(kube: Kube, kube_api: KubeApiServer) -> None:
    seed_pod(kube_api)
    result = await run(kube)
    assert Outcome.SUCCESS == result.outcome
    assert not pod_exists(kube_api)
    assert f"deleted pod {NAMESPACE}/{POD}: pod {NAMESPACE}/{POD} has no controller" == (
        result.reason
    )


async def test_delete_sends_uid_precondition(kube: Kube, kube_api: KubeApiServer) -> None:
    uid = seed_pod(kube_api)["metadata"]["uid"]
    await run(kube, grace_period_s=5)
    (request,) = kube_api.requests_to("DELETE", POD_PATH)
    assert {"uid": uid} == request.body["preconditions"]
    assert 5 == request.body["gracePeriodSeconds"]


async def test_delete_standalone_opted_out(kube: Kube, kube_api: KubeApiServer) -> None:
    seed_pod(kube_api)
    result = await run(kube, delete_standalone=False)
    assert Outcome.SKIPPED == result.outcome
    assert pod_exists(kube_api)
    assert "set delete_standalone to delete it" in result.reason


async def test_delete_daemonset_skipped(kube: Kube, kube_api: KubeApiServer) -> None:
    daemonset = kube_api.add_daemonset(NAMESPACE, "agent")
    seed_pod(kube_api, owner=daemonset)
    result = await run(kube)
    assert Outcome.SKIPPED == result.outcome
    assert pod_exists(kube_api)
    assert "belongs to DaemonSet agent; set include_daemonsets" in result.reason


async def test_delete_daemonset_opted_in(kube: Kube, kube_api: KubeApiServer) -> None:
    daemonset = kube_api.add_daemonset(NAMESPACE, "agent")
    seed_pod(kube_api, owner=daemonset)
    result = await run(kube, include_daemonsets=True)
    assert Outcome.SUCCESS == result.outcome
    assert not pod_exists(kube_api)


async def test_delete_statefulset_skipped(kube: Kube, kube_api: KubeApiServer) -> None:
    statefulset = kube_api.add_statefulset(NAMESPACE, "db", replicas=3)
    seed_pod(kube_api, owner=statefulset)
    result = await run(kube)
    assert Outcome.SKIPPED == result.outcome
    assert pod_exists(kube_api)


async def test_delete_statefulset_opted_in(kube: Kube, kube_api: KubeApiServer) -> None:
    statefulset = kube_api.add_statefulset(NAMESPACE, "db", replicas=3)
    seed_pod(kube_api, owner=statefulset)
    result = await run(kube, include_statefulsets=True)
    assert Outcome.SUCCESS == result.outcome
    assert not pod_exists(kube_api)


async def test_delete_replicaset_keeps_enough(kube: Kube, kube_api: KubeApiServer) -> None:
    replica_set = kube_api.add_replicaset(NAMESPACE, "frontend-6d5f7b9c8d", replicas=3)
    seed_pod(kube_api, owner=replica_set)
    result = await run(kube, min_healthy=2)
    assert Outcome.SUCCESS == result.outcome
    assert not pod_exists(kube_api)
    assert "keeps 2 ready pods" in result.reason


async def test_delete_replicaset_below_absolute(kube: Kube, kube_api: KubeApiServer) -> None:
    replica_set = kube_api.add_replicaset(
        NAMESPACE, "frontend-6d5f7b9c8d", replicas=3, ready_replicas=2
    )
    seed_pod(kube_api, owner=replica_set)
    result = await run(kube, min_healthy=2)
    assert Outcome.SKIPPED == result.outcome
    assert pod_exists(kube_api)
    assert [] == kube_api.requests_to("DELETE", POD_PATH)
    assert (
        f"deleting pod {NAMESPACE}/{POD} would leave 1 ready pods in ReplicaSet "
        "frontend-6d5f7b9c8d, fewer than min_healthy 2"
    ) == result.reason


async def test_delete_replicaset_below_percent(kube: Kube, kube_api: KubeApiServer) -> None:
    replica_set = kube_api.add_replicaset(
        NAMESPACE, "frontend-6d5f7b9c8d", replicas=4, ready_replicas=2
    )
    seed_pod(kube_api, owner=replica_set)
    result = await run(kube, min_healthy="50%")
    assert Outcome.SKIPPED == result.outcome
    assert pod_exists(kube_api)
    assert "fewer than min_healthy 50% of 4 replicas = 2" in result.reason


async def test_delete_replicaset_percent_allows(kube: Kube, kube_api: KubeApiServer) -> None:
    replica_set = kube_api.add_replicaset(
        NAMESPACE, "frontend-6d5f7b9c8d", replicas=4, ready_replicas=3
    )
    seed_pod(kube_api, owner=replica_set)
    result = await run(kube, min_healthy="50%")
    assert Outcome.SUCCESS == result.outcome
    assert not pod_exists(kube_api)


async def test_delete_unready_pod_not_counted(kube: Kube, kube_api: KubeApiServer) -> None:
    replica_set = kube_api.add_replicaset(
        NAMESPACE, "frontend-6d5f7b9c8d", replicas=2, ready_replicas=1
    )
    seed_pod(kube_api, owner=replica_set, ready=False)
    result = await run(kube, min_healthy=1)
    assert Outcome.SUCCESS == result.outcome
    assert "keeps 1 ready pods" in result.reason


async def test_delete_replicaset_gone(kube: Kube, kube_api: KubeApiServer) -> None:
    seed_pod(kube_api, owner=("ReplicaSet", "frontend-6d5f7b9c8d"))
    result = await run(kube, min_healthy=5)
    assert Outcome.SUCCESS == result.outcome
    assert "which is gone" in result.reason


async def test_delete_already_gone(kube: Kube, kube_api: KubeApiServer) -> None:
    seed_pod(kube_api)
    kube_api.fail_next("DELETE", POD_PATH, 404)
    result = await run(kube)
    assert Outcome.ALREADY_GONE == result.outcome
    assert f"pod {NAMESPACE}/{POD} was already deleted" == result.reason


async def test_delete_recreated_pod_kept(kube: Kube, kube_api: KubeApiServer) -> None:
    seed_pod(kube_api)
    # Hold the DELETE at the server while a pod of the same name replaces the verified one.
    kube_api.delay("DELETE", POD_PATH, 0.5, times=1)
    task = asyncio.create_task(run(kube))
    for _ in range(200):
        if kube_api.requests_to("DELETE", POD_PATH):
            break
        await asyncio.sleep(0.01)
    kube_api.remove_object("Pod", POD, NAMESPACE)
    new_uid = seed_pod(kube_api)["metadata"]["uid"]
    result = await task
    stored = kube_api.get_object("Pod", POD, NAMESPACE)
    assert stored is not None
    assert Outcome.ALREADY_GONE == result.outcome
    assert new_uid == stored["metadata"]["uid"]
    assert "was replaced by a new pod with the same name" in result.reason


async def test_delete_container_mismatch(kube: Kube, kube_api: KubeApiServer) -> None:
    seed_pod(kube_api, container_id="f" * 64)
    result = await run(kube)
    assert Outcome.TARGET_MISMATCH == result.outcome
    assert pod_exists(kube_api)
    assert [] == kube_api.requests_to("DELETE", POD_PATH)
    assert "container 3ad7b26ded6d is not a container of pod" in result.reason


async def test_delete_pod_not_found(kube: Kube, kube_api: KubeApiServer) -> None:
    result = await run(kube)
    assert Outcome.ALREADY_GONE == result.outcome
    assert f"pod {NAMESPACE}/{POD} not found" == result.reason


async def test_delete_dry_run(kube: Kube, kube_api: KubeApiServer) -> None:
    seed_pod(kube_api)
    result = await run(kube, dry_run=True)
    (request,) = kube_api.requests_to("DELETE", POD_PATH)
    assert Outcome.DRY_RUN == result.outcome
    assert pod_exists(kube_api)
    assert {"dryRun": "All"} == request.query
    assert ["All"] == request.body["dryRun"]
    assert result.reason.startswith(f"would delete pod {NAMESPACE}/{POD}")


async def test_delete_forbidden(kube: Kube, kube_api: KubeApiServer) -> None:
    seed_pod(kube_api)
    kube_api.fail_next("DELETE", POD_PATH, 403)
    result = await run(kube)
    assert Outcome.FAILED == result.outcome
    assert result.reason.startswith("forbidden: grant delete on pods")
    assert 403 == result.details["status"]


async def test_delete_server_error(kube: Kube, kube_api: KubeApiServer) -> None:
    seed_pod(kube_api)
    kube_api.fail_next("GET", POD_PATH, 500, times=None)
    result = await run(kube)
    assert Outcome.FAILED == result.outcome
    assert "500 InternalError" in result.reason
    assert "injected failure" in result.reason
    assert pod_exists(kube_api)


async def test_delete_no_pod_target(kube: Kube) -> None:
    alert = pod_alert(**{"k8s.pod.name": None})
    result = await delete_pod.run(context(kube, alert), DeletePodParameters())
    assert Outcome.NO_TARGET == result.outcome


async def test_delete_without_client() -> None:
    result = await delete_pod.run(context(None), DeletePodParameters())
    assert Outcome.FAILED == result.outcome
    assert "no Kubernetes client is configured" in result.reason
