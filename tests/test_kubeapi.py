"""Tests of the Kubernetes API test server through the real kubernetes_asyncio client."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from kubernetes_asyncio import client, config
from kubernetes_asyncio.client.exceptions import ApiException

from tests.kubeapi import ApiError, KubeApiServer, container_id

NAMESPACE = "default"


@pytest_asyncio.fixture
async def api(kube_api: KubeApiServer) -> AsyncIterator[client.ApiClient]:
    configuration = client.Configuration(host=kube_api.url)
    async with client.ApiClient(configuration) as api_client:
        yield api_client


def status_body(error: ApiException) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(error.body)
    return body


def pod_manifest(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {"app": "web"}},
        "spec": {
            "containers": [
                {"name": "app", "image": "nginx:1.27"},
                {"name": "sidecar", "image": "busybox:1.36"},
            ]
        },
    }


def policy_manifest(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name},
        "spec": {
            "podSelector": {"matchLabels": {"app": "web"}},
            "policyTypes": ["Ingress", "Egress"],
        },
    }


async def test_version_get(api: client.ApiClient) -> None:
    info = await client.VersionApi(api).get_code()
    assert "v1.36.0" == info.git_version


async def test_pod_get_seeded(kube_api: KubeApiServer, api: client.ApiClient) -> None:
    kube_api.add_pod(NAMESPACE, "web-0", node_name="node-1")
    pod = await client.CoreV1Api(api).read_namespaced_pod("web-0", NAMESPACE)
    expected_id = container_id(NAMESPACE, "web-0", "app")
    assert expected_id == pod.status.container_statuses[0].container_id
    assert "node-1" == pod.spec.node_name


async def test_container_id_short_form(kube_api: KubeApiServer) -> None:
    pod = kube_api.add_pod(NAMESPACE, "web-0")
    full = pod["status"]["containerStatuses"][0]["containerID"]
    short = full.removeprefix("containerd://")[:12]
    assert 64 == len(full.removeprefix("containerd://"))
    assert full.startswith(f"containerd://{short}")


async def test_pod_get_missing(api: client.ApiClient) -> None:
    with pytest.raises(ApiException) as caught:
        await client.CoreV1Api(api).read_namespaced_pod("nope", NAMESPACE)
    body = status_body(caught.value)
    assert 404 == caught.value.status
    assert "NotFound" == body["reason"]
    assert 'pods "nope" not found' == body["message"]
    assert {"name": "nope", "kind": "pods"} == body["details"]
    assert "Status" == body["kind"]
    assert "Failure" == body["status"]


async def test_deployment_missing_details(api: client.ApiClient) -> None:
    with pytest.raises(ApiException) as caught:
        await client.AppsV1Api(api).read_namespaced_deployment("nope", NAMESPACE)
    body = status_body(caught.value)
    assert 'deployments.apps "nope" not found' == body["message"]
    assert "apps" == body["details"]["group"]


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("app=web", ["a", "b"]),
        ("app==web,tier=front", ["a"]),
        ("app!=web", ["c", "d"]),
        ("tier in (front,back)", ["a", "c"]),
        ("tier notin (front)", ["b", "c", "d"]),
        ("tier", ["a", "c"]),
        ("!tier", ["b", "d"]),
    ],
)
async def test_pod_list_label_selector(
    kube_api: KubeApiServer, api: client.ApiClient, selector: str, expected: list[str]
) -> None:
    kube_api.add_pod(NAMESPACE, "a", labels={"app": "web", "tier": "front"})
    kube_api.add_pod(NAMESPACE, "b", labels={"app": "web"})
    kube_api.add_pod(NAMESPACE, "c", labels={"app": "db", "tier": "back"})
    kube_api.add_pod(NAMESPACE, "d", labels={"app": "db"})
    pods = await client.CoreV1Api(api).list_namespaced_pod(NAMESPACE, label_selector=selector)
    assert expected == [pod.metadata.name for pod in pods.items]


async def test_pod_list_bad_selector(api: client.ApiClient) -> None:
    with pytest.raises(ApiException) as caught:
        await client.CoreV1Api(api).list_namespaced_pod(NAMESPACE, label_selector="a in b")
    assert 400 == caught.value.status


async def test_pod_list_all_namespaces(kube_api: KubeApiServer, api: client.ApiClient) -> None:
    kube_api.add_namespace("other")
    kube_api.add_pod(NAMESPACE, "a")
    kube_api.add_pod("other", "b")
    pods = await client.CoreV1Api(api).list_pod_for_all_namespaces()
    assert ["a", "b"] == [pod.metadata.name for pod in pods.items]


async def test_pod_list_field_selector(kube_api: KubeApiServer, api: client.ApiClient) -> None:
    kube_api.add_pod(NAMESPACE, "a", node_name="node-1")
    kube_api.add_pod(NAMESPACE, "b", node_name="node-2")
    pods = await client.CoreV1Api(api).list_namespaced_pod(
        NAMESPACE, field_selector="spec.nodeName=node-2"
    )
    assert ["b"] == [pod.metadata.name for pod in pods.items]


async def test_pod_list_paging(kube_api: KubeApiServer, api: client.ApiClient) -> None:
    for name in ("a", "b", "c"):
        kube_api.add_pod(NAMESPACE, name)
    core = client.CoreV1Api(api)
    first = await core.list_namespaced_pod(NAMESPACE, limit=2)
    rest = await core.list_namespaced_pod(NAMESPACE, limit=2, _continue=first.metadata._continue)
    assert ["a", "b"] == [pod.metadata.name for pod in first.items]
    assert ["c"] == [pod.metadata.name for pod in rest.items]
    assert 1 == first.metadata.remaining_item_count


async def test_pod_create_metadata(kube_api: KubeApiServer, api: client.ApiClient) -> None:
    created = await client.CoreV1Api(api).create_namespaced_pod(NAMESPACE, pod_manifest("web"))
    assert NAMESPACE == created.metadata.namespace
    assert created.metadata.uid
    assert 1 == created.metadata.generation
    assert "Pending" == created.status.phase
    stored = kube_api.get_object("Pod", "web", NAMESPACE)
    assert stored is not None
    assert created.metadata.resource_version == stored["metadata"]["resourceVersion"]


async def test_pod_create_generate_name(api: client.ApiClient) -> None:
    manifest = pod_manifest("")
    manifest["metadata"] = {"generateName": "web-"}
    created = await client.CoreV1Api(api).create_namespaced_pod(NAMESPACE, manifest)
    assert created.metadata.name.startswith("web-")
    assert 9 == len(created.metadata.name)


async def test_pod_create_exists(kube_api: KubeApiServer, api: client.ApiClient) -> None:
    kube_api.add_pod(NAMESPACE, "web")
    with pytest.raises(ApiException) as caught:
        await client.CoreV1Api(api).create_namespaced_pod(NAMESPACE, pod_manifest("web"))
    body = status_body(caught.value)
    assert 409 == caught.value.status
    assert "AlreadyExists" == body["reason"]
    assert 'pods "web" already exists' == body["message"]


async def test_pod_create_namespace_mismatch(api: client.ApiClient) -> None:
    manifest = pod_manifest("web")
    manifest["metadata"]["namespace"] = "elsewhere"
    with pytest.raises(ApiException) as caught:
        await client.CoreV1Api(api).create_namespaced_pod(NAMESPACE, manifest)
    body = status_body(caught.value)
    assert 400 == caught.value.status
    assert "BadRequest" == body["reason"]
    assert body["message"].startswith("the namespace of the provided object does not match")


async def test_pod_create_missing_namespace(api: client.ApiClient) -> None:
    with pytest.raises(ApiException) as caught:
        await client.CoreV1Api(api).create_namespaced_pod("ghost", pod_manifest("web"))
    assert 404 == caught.value.status
    assert 'namespaces "ghost" not found' == status_body(caught.value)["message"]


async def test_pod_create_wrong_kind(api: client.ApiClient) -> None:
    manifest = policy_manifest("web")
    with pytest.raises(ApiException) as caught:
        await client.CoreV1Api(api).create_namespaced_pod(NAMESPACE, manifest)
    assert 400 == caught.value.status
    assert "cannot be handled as a Pod" in status_body(caught.value)["message"]


async def test_pod_create_wrong_api_version(api: client.ApiClient) -> None:
    manifest = pod_manifest("web")
    manifest["apiVersion"] = "apps/v1"
    with pytest.raises(ApiException) as caught:
        await client.CoreV1Api(api).create_namespaced_pod(NAMESPACE, manifest)
    assert 400 == caught.value.status


async def test_pod_create_unknown_field(api: client.ApiClient) -> None:
    manifest = pod_manifest("web")
    manifest["spec"]["containers"][0]["imagex"] = "nginx"
    with pytest.raises(ApiException) as caught:
        await client.CoreV1Api(api).create_namespaced_pod(NAMESPACE, manifest)
    body = status_body(caught.value)
    assert 422 == caught.value.status
    assert "Invalid" == body["reason"]
    assert "imagex" in body["message"]
    assert body["message"].startswith('Pod "web" is invalid: spec.containers[0]')


async def test_pod_create_bad_label(api: client.ApiClient) -> None:
    manifest = pod_manifest("web", labels={"rule": "Terminal shell in container"})
    with pytest.raises(ApiException) as caught:
        await client.CoreV1Api(api).create_namespaced_pod(NAMESPACE, manifest)
    body = status_body(caught.value)
    assert 422 == caught.value.status
    assert "metadata.labels" == body["details"]["causes"][0]["field"]


async def test_pod_replace(kube_api: KubeApiServer, api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    kube_api.add_pod(NAMESPACE, "web")
    pod = await core.read_namespaced_pod("web", NAMESPACE)
    pod.metadata.labels = {"quarantine": "true"}
    replaced = await core.replace_namespaced_pod("web", NAMESPACE, pod)
    assert {"quarantine": "true"} == replaced.metadata.labels
    assert int(pod.metadata.resource_version) < int(replaced.metadata.resource_version)


async def test_pod_replace_stale(kube_api: KubeApiServer, api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    kube_api.add_pod(NAMESPACE, "web")
    pod = await core.read_namespaced_pod("web", NAMESPACE)
    await core.patch_namespaced_pod("web", NAMESPACE, {"metadata": {"labels": {"a": "b"}}})
    with pytest.raises(ApiException) as caught:
        await core.replace_namespaced_pod("web", NAMESPACE, pod)
    body = status_body(caught.value)
    assert 409 == caught.value.status
    assert "Conflict" == body["reason"]
    assert body["message"].startswith('Operation cannot be fulfilled on pods "web"')


async def test_pod_replace_missing(api: client.ApiClient) -> None:
    with pytest.raises(ApiException) as caught:
        await client.CoreV1Api(api).replace_namespaced_pod("web", NAMESPACE, pod_manifest("web"))
    assert 404 == caught.value.status


async def test_pod_replace_name_mismatch(kube_api: KubeApiServer, api: client.ApiClient) -> None:
    kube_api.add_pod(NAMESPACE, "web")
    with pytest.raises(ApiException) as caught:
        await client.CoreV1Api(api).replace_namespaced_pod("web", NAMESPACE, pod_manifest("x"))
    assert 400 == caught.value.status


async def test_pod_merge_patch(kube_api: KubeApiServer, api: client.ApiClient) -> None:
    kube_api.add_pod(NAMESPACE, "web", labels={"app": "web", "tier": "front"})
    patched = await client.CoreV1Api(api).patch_namespaced_pod(
        "web",
        NAMESPACE,
        {"metadata": {"labels": {"quarantine": "true", "tier": None}}},
        _content_type="application/merge-patch+json",
    )
    assert {"app": "web", "quarantine": "true"} == patched.metadata.labels


async def test_pod_merge_patch_replaces_lists(
    kube_api: KubeApiServer, api: client.ApiClient
) -> None:
    kube_api.add_pod(NAMESPACE, "web", containers=["app", "sidecar"])
    patch = {"spec": {"containers": [{"name": "app", "image": "nginx:2"}]}}
    patched = await client.CoreV1Api(api).patch_namespaced_pod(
        "web", NAMESPACE, patch, _content_type="application/merge-patch+json"
    )
    assert [("app", "nginx:2")] == [(item.name, item.image) for item in patched.spec.containers]


async def test_pod_strategic_patch_containers(
    kube_api: KubeApiServer, api: client.ApiClient
) -> None:
    kube_api.add_pod(NAMESPACE, "web", containers=["app", "sidecar"])
    patch = {"spec": {"containers": [{"name": "sidecar", "image": "busybox:2"}]}}
    patched = await client.CoreV1Api(api).patch_namespaced_pod("web", NAMESPACE, patch)
    images = {item.name: item.image for item in patched.spec.containers}
    assert {"app": "registry.k8s.io/pause:3.10", "sidecar": "busybox:2"} == images


async def test_pod_strategic_patch_delete_directive(
    kube_api: KubeApiServer, api: client.ApiClient
) -> None:
    kube_api.add_pod(NAMESPACE, "web", containers=["app", "sidecar"])
    patch = {"spec": {"containers": [{"name": "sidecar", "$patch": "delete"}]}}
    patched = await client.CoreV1Api(api).patch_namespaced_pod("web", NAMESPACE, patch)
    assert ["app"] == [item.name for item in patched.spec.containers]


async def test_pod_strategic_patch_null_label(
    kube_api: KubeApiServer, api: client.ApiClient
) -> None:
    kube_api.add_pod(NAMESPACE, "web", labels={"app": "web", "tier": "front"})
    patch = {"metadata": {"labels": {"tier": None}, "annotations": {"falco/rule": "shell"}}}
    patched = await client.CoreV1Api(api).patch_namespaced_pod("web", NAMESPACE, patch)
    assert {"app": "web"} == patched.metadata.labels
    assert {"falco/rule": "shell"} == patched.metadata.annotations


async def test_pod_strategic_patch_owner_merge(
    kube_api: KubeApiServer, api: client.ApiClient
) -> None:
    replicaset = kube_api.add_replicaset(NAMESPACE, "web-1")
    kube_api.add_pod(NAMESPACE, "web", owner=replicaset)
    extra = kube_api.owner_reference(("Deployment", "web"), NAMESPACE)
    extra["controller"] = False
    patch = {"metadata": {"ownerReferences": [extra]}}
    patched = await client.CoreV1Api(api).patch_namespaced_pod("web", NAMESPACE, patch)
    assert ["web-1", "web"] == [item.name for item in patched.metadata.owner_references]


async def test_pod_json_patch(kube_api: KubeApiServer, api: client.ApiClient) -> None:
    kube_api.add_pod(NAMESPACE, "web", labels={"app": "web"})
    operations = [
        {"op": "add", "path": "/metadata/annotations", "value": {}},
        {"op": "add", "path": "/metadata/annotations/falco.org~1rule", "value": "shell"},
        {"op": "replace", "path": "/metadata/labels/app", "value": "quarantined"},
    ]
    patched = await client.CoreV1Api(api).patch_namespaced_pod("web", NAMESPACE, operations)
    assert {"falco.org/rule": "shell"} == patched.metadata.annotations
    assert {"app": "quarantined"} == patched.metadata.labels


async def test_pod_json_patch_test_fails(kube_api: KubeApiServer, api: client.ApiClient) -> None:
    kube_api.add_pod(NAMESPACE, "web", labels={"app": "web"})
    operations = [{"op": "test", "path": "/metadata/labels/app", "value": "db"}]
    with pytest.raises(ApiException) as caught:
        await client.CoreV1Api(api).patch_namespaced_pod("web", NAMESPACE, operations)
    assert 422 == caught.value.status


async def test_patch_unknown_media_type(kube_api: KubeApiServer, api: client.ApiClient) -> None:
    kube_api.add_pod(NAMESPACE, "web")
    with pytest.raises(ApiException) as caught:
        await client.CoreV1Api(api).patch_namespaced_pod(
            "web", NAMESPACE, b"{}", _content_type="text/plain"
        )
    body = status_body(caught.value)
    assert 415 == caught.value.status
    assert "UnsupportedMediaType" == body["reason"]
    assert "application/strategic-merge-patch+json" in body["message"]


async def test_patch_status_ignored(kube_api: KubeApiServer, api: client.ApiClient) -> None:
    kube_api.add_pod(NAMESPACE, "web", phase="Running")
    patched = await client.CoreV1Api(api).patch_namespaced_pod(
        "web", NAMESPACE, {"status": {"phase": "Failed"}}
    )
    assert "Running" == patched.status.phase


async def test_patch_noop_keeps_version(kube_api: KubeApiServer, api: client.ApiClient) -> None:
    stored = kube_api.add_pod(NAMESPACE, "web", labels={"app": "web"})
    patched = await client.CoreV1Api(api).patch_namespaced_pod(
        "web", NAMESPACE, {"metadata": {"labels": {"app": "web"}}}
    )
    assert stored["metadata"]["resourceVersion"] == patched.metadata.resource_version


async def test_patch_invalid_result(kube_api: KubeApiServer, api: client.ApiClient) -> None:
    kube_api.add_pod(NAMESPACE, "web")
    with pytest.raises(ApiException) as caught:
        await client.CoreV1Api(api).patch_namespaced_pod(
            "web", NAMESPACE, {"spec": {"containers": [{"name": "app", "image": 5}]}}
        )
    assert 422 == caught.value.status


async def test_pod_delete(kube_api: KubeApiServer, api: client.ApiClient) -> None:
    kube_api.add_pod(NAMESPACE, "web")
    deleted = await client.CoreV1Api(api).delete_namespaced_pod(
        "web", NAMESPACE, body=client.V1DeleteOptions(grace_period_seconds=0)
    )
    assert "web" == deleted.metadata.name
    assert kube_api.get_object("pods", "web", NAMESPACE) is None
    assert 0 == kube_api.deletions[0].grace_period_seconds


async def test_pod_delete_graceful(api: client.ApiClient) -> None:
    async with KubeApiServer(graceful_pod_deletion=True) as server:
        server.add_namespace(NAMESPACE)
        server.add_pod(NAMESPACE, "web", node_name="node-1")
        configuration = client.Configuration(host=server.url)
        async with client.ApiClient(configuration) as api_client:
            deleted = await client.CoreV1Api(api_client).delete_namespaced_pod(
                "web", NAMESPACE, grace_period_seconds=10
            )
        stored = server.get_object("pods", "web", NAMESPACE)
    assert 10 == deleted.metadata.deletion_grace_period_seconds
    assert stored is not None
    assert "deletionTimestamp" in stored["metadata"]


async def test_pod_delete_uid_precondition(kube_api: KubeApiServer, api: client.ApiClient) -> None:
    kube_api.add_pod(NAMESPACE, "web")
    options = client.V1DeleteOptions(preconditions=client.V1Preconditions(uid="other"))
    with pytest.raises(ApiException) as caught:
        await client.CoreV1Api(api).delete_namespaced_pod("web", NAMESPACE, body=options)
    body = status_body(caught.value)
    assert 409 == caught.value.status
    assert "Conflict" == body["reason"]
    assert "Precondition failed: UID in precondition: other" in body["message"]
    assert kube_api.get_object("pods", "web", NAMESPACE) is not None


async def test_pod_delete_version_precondition(
    kube_api: KubeApiServer, api: client.ApiClient
) -> None:
    kube_api.add_pod(NAMESPACE, "web")
    options = client.V1DeleteOptions(preconditions=client.V1Preconditions(resource_version="1"))
    with pytest.raises(ApiException) as caught:
        await client.CoreV1Api(api).delete_namespaced_pod("web", NAMESPACE, body=options)
    assert 409 == caught.value.status


async def test_pod_delete_missing(api: client.ApiClient) -> None:
    with pytest.raises(ApiException) as caught:
        await client.CoreV1Api(api).delete_namespaced_pod("web", NAMESPACE)
    assert 404 == caught.value.status


async def test_dry_run_create(kube_api: KubeApiServer, api: client.ApiClient) -> None:
    created = await client.CoreV1Api(api).create_namespaced_pod(
        NAMESPACE, pod_manifest("web"), dry_run="All"
    )
    assert "web" == created.metadata.name
    assert kube_api.get_object("pods", "web", NAMESPACE) is None


async def test_dry_run_patch(kube_api: KubeApiServer, api: client.ApiClient) -> None:
    kube_api.add_pod(NAMESPACE, "web", labels={"app": "web"})
    patched = await client.CoreV1Api(api).patch_namespaced_pod(
        "web", NAMESPACE, {"metadata": {"labels": {"app": "x"}}}, dry_run="All"
    )
    stored = kube_api.get_object("pods", "web", NAMESPACE)
    assert stored is not None
    assert {"app": "x"} == patched.metadata.labels
    assert {"app": "web"} == stored["metadata"]["labels"]


async def test_dry_run_replace(kube_api: KubeApiServer, api: client.ApiClient) -> None:
    kube_api.add_deployment(NAMESPACE, "web", replicas=3)
    apps = client.AppsV1Api(api)
    deployment = await apps.read_namespaced_deployment("web", NAMESPACE)
    deployment.spec.replicas = 0
    await apps.replace_namespaced_deployment("web", NAMESPACE, deployment, dry_run="All")
    stored = kube_api.get_object("deployments", "web", NAMESPACE)
    assert stored is not None
    assert 3 == stored["spec"]["replicas"]


async def test_dry_run_delete(kube_api: KubeApiServer, api: client.ApiClient) -> None:
    kube_api.add_pod(NAMESPACE, "web")
    await client.CoreV1Api(api).delete_namespaced_pod("web", NAMESPACE, dry_run="All")
    assert kube_api.get_object("pods", "web", NAMESPACE) is not None


async def test_dry_run_bad_value(api: client.ApiClient) -> None:
    with pytest.raises(ApiException) as caught:
        await client.CoreV1Api(api).create_namespaced_pod(
            NAMESPACE, pod_manifest("web"), dry_run="true"
        )
    body = status_body(caught.value)
    assert 422 == caught.value.status
    assert "Invalid" == body["reason"]
    assert body["message"].startswith('CreateOptions.meta.k8s.io "" is invalid: dryRun')


async def test_namespace_get(kube_api: KubeApiServer, api: client.ApiClient) -> None:
    kube_api.add_namespace("payments", labels={"team": "pay"})
    namespace = await client.CoreV1Api(api).read_namespace("payments")
    expected = {"team": "pay", "kubernetes.io/metadata.name": "payments"}
    assert expected == namespace.metadata.labels


async def test_namespace_create_and_delete(kube_api: KubeApiServer, api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    created = await core.create_namespace({"metadata": {"name": "scratch"}})
    kube_api.add_pod("scratch", "web")
    status = await core.delete_namespace("scratch")
    assert "Active" == created.status.phase
    assert "Success" == status.status
    assert [] == kube_api.list_objects("pods", "scratch")


async def test_namespace_bad_name(api: client.ApiClient) -> None:
    with pytest.raises(ApiException) as caught:
        await client.CoreV1Api(api).create_namespace({"metadata": {"name": "a.b"}})
    assert 422 == caught.value.status


async def test_node_cordon(kube_api: KubeApiServer, api: client.ApiClient) -> None:
    kube_api.add_node("node-1")
    node = await client.CoreV1Api(api).patch_node("node-1", {"spec": {"unschedulable": True}})
    stored = kube_api.get_object("Node", "node-1")
    assert node.spec.unschedulable is True
    assert stored is not None
    assert stored["spec"]["unschedulable"] is True


async def test_node_list(kube_api: KubeApiServer, api: client.ApiClient) -> None:
    kube_api.add_node("node-1")
    kube_api.add_node("node-2", unschedulable=True)
    nodes = await client.CoreV1Api(api).list_node(field_selector="spec.unschedulable=true")
    assert ["node-2"] == [node.metadata.name for node in nodes.items]


async def test_event_create(kube_api: KubeApiServer, api: client.ApiClient) -> None:
    event = client.CoreV1Event(
        metadata=client.V1ObjectMeta(name="web.falco"),
        involved_object=client.V1ObjectReference(kind="Pod", name="web", namespace=NAMESPACE),
        reason="FalcoResponse",
        message="pod deleted",
        type="Warning",
    )
    await client.CoreV1Api(api).create_namespaced_event(NAMESPACE, event)
    stored = kube_api.get_object("Event", "web.falco", NAMESPACE)
    assert stored is not None
    assert "FalcoResponse" == stored["reason"]


async def test_event_list_by_reason(kube_api: KubeApiServer, api: client.ApiClient) -> None:
    for name, reason in (("a", "FalcoResponse"), ("b", "Scheduled")):
        kube_api.put_object(
            {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": name, "namespace": NAMESPACE},
                "involvedObject": {"kind": "Pod", "name": "web"},
                "reason": reason,
            }
        )
    events = await client.CoreV1Api(api).list_namespaced_event(
        NAMESPACE, field_selector="reason=FalcoResponse"
    )
    assert ["a"] == [event.metadata.name for event in events.items]


async def test_replicaset_read_owner(kube_api: KubeApiServer, api: client.ApiClient) -> None:
    deployment = kube_api.add_deployment(NAMESPACE, "web")
    kube_api.add_replicaset(NAMESPACE, "web-1", replicas=3, ready_replicas=2, owner=deployment)
    replicaset = await client.AppsV1Api(api).read_namespaced_replica_set("web-1", NAMESPACE)
    assert 2 == replicaset.status.ready_replicas
    assert deployment["metadata"]["uid"] == replicaset.metadata.owner_references[0].uid


async def test_statefulset_and_daemonset_read(
    kube_api: KubeApiServer, api: client.ApiClient
) -> None:
    kube_api.add_statefulset(NAMESPACE, "db", replicas=2)
    kube_api.add_daemonset(NAMESPACE, "agent", desired=3, ready=1)
    apps = client.AppsV1Api(api)
    statefulset = await apps.read_namespaced_stateful_set("db", NAMESPACE)
    daemonset = await apps.read_namespaced_daemon_set("agent", NAMESPACE)
    assert 2 == statefulset.spec.replicas
    assert 1 == daemonset.status.number_ready


async def test_deployment_patch_generation(kube_api: KubeApiServer, api: client.ApiClient) -> None:
    kube_api.add_deployment(NAMESPACE, "web", replicas=2)
    apps = client.AppsV1Api(api)
    patched = await apps.patch_namespaced_deployment("web", NAMESPACE, {"spec": {"replicas": 0}})
    assert 0 == patched.spec.replicas
    assert 2 == patched.metadata.generation


async def test_deployment_create_and_delete(
    kube_api: KubeApiServer, api: client.ApiClient
) -> None:
    apps = client.AppsV1Api(api)
    manifest = {
        "metadata": {"name": "web"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]},
            },
        },
    }
    created = await apps.create_namespaced_deployment(NAMESPACE, manifest)
    status = await apps.delete_namespaced_deployment("web", NAMESPACE)
    assert "apps/v1" == created.api_version
    assert "Success" == status.status
    assert kube_api.get_object("deployments", "web", NAMESPACE) is None


async def test_daemonset_list(kube_api: KubeApiServer, api: client.ApiClient) -> None:
    kube_api.add_daemonset(NAMESPACE, "agent", labels={"app": "falco"})
    kube_api.add_daemonset(NAMESPACE, "other")
    listed = await client.AppsV1Api(api).list_namespaced_daemon_set(
        NAMESPACE, label_selector="app=falco"
    )
    assert ["agent"] == [item.metadata.name for item in listed.items]


async def test_statefulset_replace(kube_api: KubeApiServer, api: client.ApiClient) -> None:
    kube_api.add_statefulset(NAMESPACE, "db", replicas=2)
    apps = client.AppsV1Api(api)
    statefulset = await apps.read_namespaced_stateful_set("db", NAMESPACE)
    statefulset.spec.replicas = 1
    replaced = await apps.replace_namespaced_stateful_set("db", NAMESPACE, statefulset)
    assert 1 == replaced.spec.replicas


async def test_replicaset_json_patch(kube_api: KubeApiServer, api: client.ApiClient) -> None:
    kube_api.add_replicaset(NAMESPACE, "web-1", replicas=2)
    patched = await client.AppsV1Api(api).patch_namespaced_replica_set(
        "web-1", NAMESPACE, [{"op": "replace", "path": "/spec/replicas", "value": 0}]
    )
    assert 0 == patched.spec.replicas


async def test_policy_lifecycle(kube_api: KubeApiServer, api: client.ApiClient) -> None:
    networking = client.NetworkingV1Api(api)
    await networking.create_namespaced_network_policy(NAMESPACE, policy_manifest("isolate"))
    patch = {"spec": {"podSelector": {"matchLabels": {"app": "db"}}}}
    patched = await networking.patch_namespaced_network_policy(
        "isolate", NAMESPACE, patch, _content_type="application/merge-patch+json"
    )
    listed = await networking.list_namespaced_network_policy(NAMESPACE)
    status = await networking.delete_namespaced_network_policy("isolate", NAMESPACE)
    assert {"app": "db"} == patched.spec.pod_selector.match_labels
    assert ["isolate"] == [item.metadata.name for item in listed.items]
    assert "Success" == status.status
    assert kube_api.get_object("NetworkPolicy", "isolate", NAMESPACE) is None


async def test_policy_invalid(kube_api: KubeApiServer, api: client.ApiClient) -> None:
    manifest = policy_manifest("isolate")
    manifest["spec"]["ingress"] = [{"ports": [{"port": 80, "protocol": "TCP", "portt": 1}]}]
    with pytest.raises(ApiException) as caught:
        await client.NetworkingV1Api(api).create_namespaced_network_policy(NAMESPACE, manifest)
    body = status_body(caught.value)
    assert 422 == caught.value.status
    assert "Invalid" == body["reason"]
    assert body["message"].startswith('NetworkPolicy.networking.k8s.io "isolate" is invalid')
    assert "portt" in body["message"]
    assert kube_api.get_object("NetworkPolicy", "isolate", NAMESPACE) is None


async def test_policy_missing_selector(api: client.ApiClient) -> None:
    manifest = policy_manifest("isolate")
    del manifest["spec"]["podSelector"]
    manifest["spec"]["policyTypes"] = ["Ingress"]
    manifest["spec"]["ingress"] = "all"
    with pytest.raises(ApiException) as caught:
        await client.NetworkingV1Api(api).create_namespaced_network_policy(NAMESPACE, manifest)
    assert 422 == caught.value.status


async def test_inject_forbidden(kube_api: KubeApiServer, api: client.ApiClient) -> None:
    kube_api.add_pod(NAMESPACE, "web")
    kube_api.fail_next("DELETE", "/api/v1/namespaces/*/pods/*", 403)
    with pytest.raises(ApiException) as caught:
        await client.CoreV1Api(api).delete_namespaced_pod("web", NAMESPACE)
    body = status_body(caught.value)
    assert 403 == caught.value.status
    assert "Forbidden" == body["reason"]
    assert 'cannot delete resource "pods" in API group ""' in body["message"]


async def test_inject_internal_error(kube_api: KubeApiServer, api: client.ApiClient) -> None:
    kube_api.add_pod(NAMESPACE, "web")
    kube_api.fail_next("GET", "/api/v1/namespaces/default/pods/web", 500)
    with pytest.raises(ApiException) as caught:
        await client.CoreV1Api(api).read_namespaced_pod("web", NAMESPACE)
    assert 500 == caught.value.status
    assert "InternalError" == status_body(caught.value)["reason"]


async def test_inject_once(kube_api: KubeApiServer, api: client.ApiClient) -> None:
    kube_api.add_pod(NAMESPACE, "web")
    kube_api.fail_next("GET", "*/pods/web", 500)
    core = client.CoreV1Api(api)
    with pytest.raises(ApiException):
        await core.read_namespaced_pod("web", NAMESPACE)
    pod = await core.read_namespaced_pod("web", NAMESPACE)
    assert "web" == pod.metadata.name


async def test_inject_too_many_requests(kube_api: KubeApiServer, api: client.ApiClient) -> None:
    kube_api.fail_next("*", "*", 429, retry_after=3)
    with pytest.raises(ApiException) as caught:
        await client.CoreV1Api(api).list_namespaced_pod(NAMESPACE)
    body = status_body(caught.value)
    assert 429 == caught.value.status
    assert "TooManyRequests" == body["reason"]
    assert "3" == caught.value.headers["Retry-After"]
    assert 3 == body["details"]["retryAfterSeconds"]


async def test_inject_other_method(kube_api: KubeApiServer, api: client.ApiClient) -> None:
    kube_api.add_pod(NAMESPACE, "web")
    kube_api.fail_next("DELETE", "*", 500)
    pod = await client.CoreV1Api(api).read_namespaced_pod("web", NAMESPACE)
    assert "web" == pod.metadata.name


async def test_delay_rule(kube_api: KubeApiServer, api: client.ApiClient) -> None:
    kube_api.delay("GET", "/version*", 0.2)
    started = time.monotonic()
    await client.VersionApi(api).get_code()
    assert 0.2 <= time.monotonic() - started


async def test_latency(kube_api: KubeApiServer, api: client.ApiClient) -> None:
    kube_api.latency = 0.1
    started = time.monotonic()
    await client.VersionApi(api).get_code()
    assert 0.1 <= time.monotonic() - started


async def test_request_log(kube_api: KubeApiServer, api: client.ApiClient) -> None:
    kube_api.add_pod(NAMESPACE, "web")
    await client.CoreV1Api(api).patch_namespaced_pod(
        "web", NAMESPACE, {"metadata": {"labels": {"a": "b"}}}
    )
    patches = kube_api.requests_to("PATCH", "/api/v1/namespaces/default/pods/web")
    assert 1 == len(patches)
    assert "application/strategic-merge-patch+json" == patches[0].content_type
    assert {"metadata": {"labels": {"a": "b"}}} == patches[0].body


async def test_unknown_path(api: client.ApiClient) -> None:
    with pytest.raises(ApiException) as caught:
        await api.call_api(
            "/api/v1/namespaces/default/secrets",
            "GET",
            response_types_map={},
            _return_http_data_only=True,
        )
    assert 404 == caught.value.status


async def test_token_required() -> None:
    async with KubeApiServer(token="s3cret") as server:
        configuration = client.Configuration(host=server.url)
        async with client.ApiClient(configuration) as api_client:
            with pytest.raises(ApiException) as caught:
                await client.CoreV1Api(api_client).list_namespace()
    assert 401 == caught.value.status
    assert "Unauthorized" == status_body(caught.value)["reason"]


async def test_kubeconfig_load(tmp_path: Path) -> None:
    async with KubeApiServer(token="s3cret") as server:
        server.add_namespace("falco")
        path = server.write_kubeconfig(tmp_path / "config", namespace="falco")
        configuration = client.Configuration()
        loader = await config.load_kube_config(
            config_file=str(path), client_configuration=configuration
        )
        async with client.ApiClient(configuration) as api_client:
            namespaces = await client.CoreV1Api(api_client).list_namespace()
    assert ["falco"] == [item.metadata.name for item in namespaces.items]
    assert "falco" == loader.current_context["context"]["namespace"]


async def test_seeded_objects_validated(kube_api: KubeApiServer) -> None:
    with pytest.raises(ApiError, match="is invalid"):
        kube_api.add_pod(NAMESPACE, "Bad_Name")
