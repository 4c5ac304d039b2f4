"""verify_pod: the container id check across runtimes and container kinds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from responder.act.kube import Kube
from responder.guard.target import Mismatch, VerifiedPod, match_container_id, verify_pod
from responder.ingest.alert import PodTarget
from tests.act.helpers import FULL_ID, NAMESPACE, NODE, POD, SHORT_ID, seed_pod
from tests.kubeapi import KubeApiServer

TARGET = PodTarget(NAMESPACE, POD, SHORT_ID, NODE)


def pod_with(statuses_key: str, container_id: str) -> dict[str, Any]:
    """A Pod as the API server sends it, with one container status under ``statuses_key``."""
    status: dict[str, Any] = {
        "name": "app",
        "image": "i",
        "imageID": "",
        "ready": True,
        "restartCount": 0,
    }
    if container_id:
        status["containerID"] = container_id
    return {
        "metadata": {"name": POD, "namespace": NAMESPACE},
        "status": {statuses_key: [status]},
    }


@pytest.mark.parametrize("runtime", ["containerd", "cri-o", "docker"])
def test_match_runtime(runtime: str) -> None:
    found = match_container_id(pod_with("containerStatuses", f"{runtime}://{FULL_ID}"), SHORT_ID)
    assert FULL_ID == found


@pytest.mark.parametrize("key", ["initContainerStatuses", "ephemeralContainerStatuses"])
def test_match_other_containers(key: str) -> None:
    assert FULL_ID == match_container_id(pod_with(key, f"containerd://{FULL_ID}"), SHORT_ID)


def test_match_upper_case_id() -> None:
    found = match_container_id(
        pod_with("containerStatuses", f"containerd://{FULL_ID}"), "3AD7B26DED6D"
    )
    assert FULL_ID == found


def test_match_no_id_yet() -> None:
    assert match_container_id(pod_with("containerStatuses", ""), SHORT_ID) is None


def test_match_other_id() -> None:
    other = "containerd://" + "0" * 64
    assert match_container_id(pod_with("containerStatuses", other), SHORT_ID) is None


async def test_verify_returns_facts(kube: Kube, kube_api: KubeApiServer) -> None:
    replica_set = kube_api.add_replicaset(NAMESPACE, "frontend-6d5f7b9c8d")
    uid = seed_pod(kube_api, owner=replica_set, labels={"app": "frontend"})["metadata"]["uid"]
    verified = await verify_pod(kube, TARGET)
    assert isinstance(verified, VerifiedPod)
    assert uid == verified.uid
    assert NODE == verified.node_name
    assert {"app": "frontend"} == verified.labels
    assert verified.controller is not None
    assert "frontend-6d5f7b9c8d" == verified.controller.name
    assert FULL_ID == verified.container_id
    assert verified.ready


async def test_verify_terminating_pod(tmp_path: Path) -> None:
    async with KubeApiServer(graceful_pod_deletion=True) as server:
        server.add_namespace(NAMESPACE)
        server.add_node(NODE)
        seed_pod(server)
        kube = await Kube.connect(kubeconfig=server.write_kubeconfig(tmp_path / "kubeconfig"))
        try:
            await kube.call(kube.core.delete_namespaced_pod, POD, NAMESPACE)
            verified = await verify_pod(kube, TARGET)
        finally:
            await kube.close()
    assert isinstance(verified, VerifiedPod)
    assert verified.deleting


async def test_verify_without_container_id(kube: Kube, kube_api: KubeApiServer) -> None:
    seed_pod(kube_api, container_id="0" * 64)
    verified = await verify_pod(kube, PodTarget(NAMESPACE, POD))
    assert isinstance(verified, VerifiedPod)
    assert verified.container_id is None


async def test_verify_not_found(kube: Kube) -> None:
    expected = Mismatch(f"pod {NAMESPACE}/{POD} not found", gone=True)
    assert expected == await verify_pod(kube, TARGET)


@pytest.mark.parametrize("short", ["d", FULL_ID[:11], "zzzzzzzzzzzz", ""], ids=str)
def test_short_or_invalid_id_matches_nothing(short: str) -> None:
    assert (
        match_container_id(pod_with("containerStatuses", f"containerd://{FULL_ID}"), short) is None
    )
