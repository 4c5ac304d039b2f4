"""cordon_node for host alerts and for the node of a pod."""

from __future__ import annotations

from responder.act.kube import Kube
from responder.act.kubernetes.node import CordonNodeParameters, cordon_node
from responder.act.results import Outcome
from tests.act.helpers import NAMESPACE, NODE, POD, context, host_alert, seed_pod
from tests.kubeapi import KubeApiServer

NODE_PATH = f"/api/v1/nodes/{NODE}"


def unschedulable(server: KubeApiServer, name: str = NODE) -> bool:
    node = server.get_object("Node", name)
    assert node is not None
    return bool(node["spec"].get("unschedulable"))


async def test_cordon_host_alert(kube: Kube, kube_api: KubeApiServer) -> None:
    result = await cordon_node.run(context(kube, host_alert()), CordonNodeParameters())
    (request,) = kube_api.requests_to("PATCH", NODE_PATH)
    assert Outcome.SUCCESS == result.outcome
    assert unschedulable(kube_api)
    assert {"spec": {"unschedulable": True}} == request.body
    assert f"cordoned node {NODE}" == result.reason


async def test_cordon_pod_node(kube: Kube, kube_api: KubeApiServer) -> None:
    kube_api.add_node("node-2")
    seed_pod(kube_api, node_name="node-2")
    result = await cordon_node.run(context(kube), CordonNodeParameters())
    assert Outcome.SUCCESS == result.outcome
    assert unschedulable(kube_api, "node-2")
    assert not unschedulable(kube_api, NODE)
    assert f"cordoned node node-2 where pod {NAMESPACE}/{POD} runs" == result.reason


async def test_cordon_already_cordoned(kube: Kube, kube_api: KubeApiServer) -> None:
    kube_api.add_node("node-2", unschedulable=True)
    result = await cordon_node.run(context(kube, host_alert("node-2")), CordonNodeParameters())
    assert Outcome.SUCCESS == result.outcome
    assert [] == kube_api.requests_to("PATCH", "/api/v1/nodes/*")
    assert "node node-2 was already cordoned" == result.reason


async def test_cordon_node_not_found(kube: Kube, kube_api: KubeApiServer) -> None:
    result = await cordon_node.run(context(kube, host_alert("ghost")), CordonNodeParameters())
    assert Outcome.TARGET_MISMATCH == result.outcome
    assert result.reason.startswith("node ghost not found")


async def test_cordon_pod_not_found(kube: Kube, kube_api: KubeApiServer) -> None:
    result = await cordon_node.run(context(kube), CordonNodeParameters())
    assert Outcome.ALREADY_GONE == result.outcome
    assert not unschedulable(kube_api)


async def test_cordon_pod_unscheduled(kube: Kube, kube_api: KubeApiServer) -> None:
    seed_pod(kube_api, node_name=None)
    result = await cordon_node.run(context(kube), CordonNodeParameters())
    assert Outcome.SKIPPED == result.outcome
    assert "is not scheduled on any node" in result.reason


async def test_cordon_dry_run(kube: Kube, kube_api: KubeApiServer) -> None:
    result = await cordon_node.run(
        context(kube, host_alert(), dry_run=True), CordonNodeParameters()
    )
    (request,) = kube_api.requests_to("PATCH", NODE_PATH)
    assert Outcome.DRY_RUN == result.outcome
    assert not unschedulable(kube_api)
    assert {"dryRun": "All"} == request.query


async def test_cordon_forbidden(kube: Kube, kube_api: KubeApiServer) -> None:
    kube_api.fail_next("PATCH", NODE_PATH, 403)
    result = await cordon_node.run(context(kube, host_alert()), CordonNodeParameters())
    assert Outcome.FAILED == result.outcome
    assert result.reason.startswith("forbidden: grant patch on nodes")
