"""The shipped RBAC grants exactly what the registered actions and `responder release` declare."""

from __future__ import annotations

from typing import Any

import pytest

from responder.act.base import PolicyRule, load_builtin_actions
from responder.act.kubernetes.release import RELEASE_RBAC
from responder.guard.policy import GUARD_RBAC
from tests.deploy.manifests import find, of_kind, render

Grant = tuple[str, str, str]

# NOTE: `responder release` is a command, not a registered action, so it declares no `rbac`.
CLUSTER_SCOPED = frozenset({("", "nodes"), ("", "namespaces")})
EXAMPLE_NAMESPACES = ("shop", "payments")


def _expand(rules: tuple[PolicyRule, ...]) -> set[Grant]:
    return {(rule.api_group, rule.resource, verb) for rule in rules for verb in rule.verbs}


def _declared() -> set[Grant]:
    # The actions, release, and the guards, which read pod and namespace labels.
    grants = _expand(RELEASE_RBAC) | _expand(GUARD_RBAC)
    for spec in load_builtin_actions():
        grants |= _expand(spec.rbac)
    return grants


def _granted(role: dict[str, Any]) -> set[Grant]:
    return {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }


def _cluster_role() -> dict[str, Any]:
    return find(render("base"), "ClusterRole", "falco-responder")


def test_registry_has_actions() -> None:
    names = {spec.name for spec in load_builtin_actions()}
    expected = {
        "delete_pod",
        "label_pod",
        "annotate_pod",
        "isolate_pod",
        "cordon_node",
        "create_event",
    }
    assert expected <= names


@pytest.mark.parametrize("spec", list(load_builtin_actions()), ids=lambda spec: spec.name)
def test_action_declares_rbac(spec: Any) -> None:
    if spec.needs_kube:
        assert spec.rbac, f"{spec.name} needs Kubernetes but declares no rbac"


def test_clusterrole_grants_declared() -> None:
    missing = _declared() - _granted(_cluster_role())
    assert set() == missing


def test_clusterrole_grants_nothing_extra() -> None:
    extra = _granted(_cluster_role()) - _declared()
    assert set() == extra


def test_clusterrole_no_wildcards() -> None:
    for group, resource, verb in _granted(_cluster_role()):
        assert "*" not in (group, resource, verb)


def test_clusterrole_no_secrets() -> None:
    resources = {resource for _, resource, _ in _granted(_cluster_role())}
    assert "secrets" not in resources


def test_clusterrole_delete_only_pods_and_policies() -> None:
    deletable = {
        (group, resource)
        for group, resource, verb in _granted(_cluster_role())
        if verb in {"delete", "deletecollection"}
    }
    assert {("", "pods"), ("networking.k8s.io", "networkpolicies")} == deletable


def test_clusterrole_only_rules() -> None:
    role = _cluster_role()
    assert "aggregationRule" not in role
    for rule in role["rules"]:
        assert "nonResourceURLs" not in rule
        assert "resourceNames" not in rule


def test_clusterrolebinding_subject() -> None:
    binding = find(render("base"), "ClusterRoleBinding", "falco-responder")
    assert "falco-responder" == binding["roleRef"]["name"]
    subject = {"kind": "ServiceAccount", "name": "falco-responder", "namespace": "falco-responder"}
    assert [subject] == binding["subjects"]


def test_namespaced_drops_clusterrole() -> None:
    objects = render("overlays/namespaced")
    names = {obj["metadata"]["name"] for obj in of_kind(objects, "ClusterRole")}
    assert {"falco-responder-nodes"} == names


def test_namespaced_drops_clusterrolebinding() -> None:
    objects = render("overlays/namespaced")
    names = {obj["metadata"]["name"] for obj in of_kind(objects, "ClusterRoleBinding")}
    assert {"falco-responder-nodes"} == names


def test_namespaced_nodes_role_only_nodes() -> None:
    role = find(render("overlays/namespaced"), "ClusterRole", "falco-responder-nodes")
    expected = {grant for grant in _declared() if grant[:2] in CLUSTER_SCOPED}
    assert expected == _granted(role)


def test_namespaced_role_namespaces() -> None:
    roles = of_kind(render("overlays/namespaced"), "Role")
    assert sorted(EXAMPLE_NAMESPACES) == sorted(role["metadata"]["namespace"] for role in roles)


@pytest.mark.parametrize("namespace", EXAMPLE_NAMESPACES)
def test_namespaced_role_grants(namespace: str) -> None:
    roles = of_kind(render("overlays/namespaced"), "Role")
    (role,) = [role for role in roles if role["metadata"]["namespace"] == namespace]
    expected = {grant for grant in _declared() if grant[:2] not in CLUSTER_SCOPED}
    assert expected == _granted(role)


@pytest.mark.parametrize("namespace", EXAMPLE_NAMESPACES)
def test_namespaced_rolebinding(namespace: str) -> None:
    bindings = of_kind(render("overlays/namespaced"), "RoleBinding")
    (binding,) = [b for b in bindings if b["metadata"]["namespace"] == namespace]
    role_ref = {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "falco-responder"}
    assert role_ref == binding["roleRef"]
    subject = {"kind": "ServiceAccount", "name": "falco-responder", "namespace": "falco-responder"}
    assert [subject] == binding["subjects"]
