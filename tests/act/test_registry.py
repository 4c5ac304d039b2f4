"""The Kubernetes actions as registered: names, destructiveness, targets and RBAC."""

from __future__ import annotations

from typing import Any

import pytest

from responder.act.base import ACTIONS, PolicyRule, load_builtin_actions
from responder.act.kube import Kube
from responder.act.results import Outcome
from tests.act.helpers import NAMESPACE, context, host_alert, pod_alert, seed_pod
from tests.kubeapi import KubeApiServer
from tests.kubeapi.handlers import parse_path

load_builtin_actions()


def rules(name: str) -> set[PolicyRule]:
    spec = ACTIONS.get(name)
    assert spec is not None
    return set(spec.rbac)


def test_registered_names() -> None:
    expected = {
        "annotate_pod",
        "cordon_node",
        "create_event",
        "delete_pod",
        "isolate_pod",
        "label_pod",
    }
    assert expected <= set(ACTIONS.names())


@pytest.mark.parametrize(
    ("name", "destructive"),
    [
        ("annotate_pod", False),
        ("cordon_node", True),
        ("create_event", False),
        ("delete_pod", True),
        ("isolate_pod", True),
        ("label_pod", False),
    ],
)
def test_destructive_flag(name: str, destructive: bool) -> None:
    spec = ACTIONS.get(name)
    assert spec is not None
    assert destructive == spec.destructive


def test_cordon_targets() -> None:
    spec = ACTIONS.get("cordon_node")
    assert spec is not None
    assert frozenset({"pod", "node"}) == spec.targets


def test_delete_rbac() -> None:
    assert {
        PolicyRule("", "pods", ("get", "delete")),
        PolicyRule("apps", "replicasets", ("get",)),
    } == rules("delete_pod")


def test_label_rbac() -> None:
    assert {PolicyRule("", "pods", ("patch",))} == rules("label_pod")


def test_annotate_rbac() -> None:
    assert {PolicyRule("", "pods", ("get", "patch"))} == rules("annotate_pod")


def test_isolate_rbac() -> None:
    assert {
        PolicyRule("", "pods", ("get", "patch")),
        PolicyRule("networking.k8s.io", "networkpolicies", ("get", "create", "patch")),
        PolicyRule("apps", "replicasets", ("get",)),
        PolicyRule("apps", "statefulsets", ("get",)),
        PolicyRule("apps", "daemonsets", ("get",)),
    } == rules("isolate_pod")


def test_cordon_rbac() -> None:
    assert {
        PolicyRule("", "pods", ("get",)),
        PolicyRule("", "nodes", ("get", "patch")),
    } == rules("cordon_node")


def test_event_rbac() -> None:
    assert {
        PolicyRule("", "pods", ("get",)),
        PolicyRule("", "events", ("create",)),
    } == rules("create_event")


VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


def used_rules(server: KubeApiServer) -> set[tuple[str, str, str]]:
    """Return (group, resource, verb) for every request the server received."""
    used = set()
    for request in server.requests:
        target = parse_path(request.path)
        verb = VERBS.get(request.method, target.verb)
        used.add((target.resource.group, target.resource.plural, verb))
    return used


def declared_rules(name: str) -> set[tuple[str, str, str]]:
    return {(rule.api_group, rule.resource, verb) for rule in rules(name) for verb in rule.verbs}


@pytest.mark.parametrize(
    ("name", "params", "scope"),
    [
        ("delete_pod", {}, "pod"),
        ("label_pod", {"set": {"a": "b"}}, "pod"),
        ("annotate_pod", {"set": {"a": "b"}}, "pod"),
        ("isolate_pod", {}, "pod"),
        ("isolate_pod", {"scope": "workload"}, "pod"),
        ("cordon_node", {}, "pod"),
        ("cordon_node", {}, "node"),
        ("create_event", {}, "pod"),
    ],
)
async def test_requests_within_rbac(
    kube: Kube, kube_api: KubeApiServer, name: str, params: dict[str, Any], scope: str
) -> None:
    replica_set = kube_api.add_replicaset(NAMESPACE, "frontend-6d5f7b9c8d", replicas=3)
    seed_pod(kube_api, owner=replica_set)
    spec = ACTIONS.get(name)
    assert spec is not None
    alert = host_alert() if scope == "node" else pod_alert()
    result = await spec.run(context(kube, alert), spec.parameters.model_validate(params))
    assert result.outcome in (Outcome.SUCCESS, Outcome.DRY_RUN)
    assert set() == used_rules(kube_api) - declared_rules(name)
