"""The admission policies admit the rendered Deployment and reject a root, limitless one.

No Gatekeeper or Kyverno runs here, so the checks below evaluate the policies in Python: the
Gatekeeper check mirrors the rego of deploy/admission/gatekeeper-template.yaml and takes its
match and parameters from the Constraint; the Kyverno check interprets the ClusterPolicy's own
validate pattern (maps, lists, =() anchors and wildcard strings, the subset the policy uses).
"""

from __future__ import annotations

import copy
import fnmatch
from typing import Any

import pytest

from tests.deploy.manifests import containers, find, pod_spec, render, workloads

ROOT_DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "rooted", "namespace": "shop"},
    "spec": {
        "selector": {"matchLabels": {"app": "rooted"}},
        "template": {
            "metadata": {"labels": {"app": "rooted"}},
            "spec": {
                "initContainers": [{"name": "setup", "image": "busybox:1.36"}],
                "containers": [{"name": "app", "image": "nginx:1.27"}],
            },
        },
    },
}


def _constraint() -> dict[str, Any]:
    return find(render("admission"), "K8sRequireNonRoot", "require-non-root")


def _kyverno_policy() -> dict[str, Any]:
    return find(render("admission"), "ClusterPolicy", "require-cpu-memory-limits")


# Gatekeeper ---------------------------------------------------------------------------------


def _constraint_matches(constraint: dict[str, Any], obj: dict[str, Any]) -> bool:
    match = constraint["spec"]["match"]
    kinds = {
        (group, kind)
        for entry in match["kinds"]
        for group in entry["apiGroups"]
        for kind in entry["kinds"]
    }
    group = obj["apiVersion"].rpartition("/")[0]
    namespace = obj["metadata"].get("namespace", "")
    return (group, obj["kind"]) in kinds and namespace not in match.get("excludedNamespaces", [])


def _effective(spec: dict[str, Any], container: dict[str, Any], field: str) -> Any:
    container_context = container.get("securityContext", {})
    if field in container_context:
        return container_context[field]
    return spec.get("securityContext", {}).get(field)


def _exempt(image: str, patterns: list[str]) -> bool:
    for pattern in patterns:
        if pattern.endswith("*") and image.startswith(pattern[:-1]):
            return True
        if pattern == image:
            return True
    return False


def gatekeeper_violations(constraint: dict[str, Any], obj: dict[str, Any]) -> list[str]:
    """Return the names of the containers that K8sRequireNonRoot would report."""
    if not _constraint_matches(constraint, obj):
        return []
    exempt_images = constraint["spec"].get("parameters", {}).get("exemptImages", [])
    spec = pod_spec(obj)
    violations = []
    for container in containers(spec):
        if _exempt(container["image"], exempt_images):
            continue
        user = _effective(spec, container, "runAsUser")
        non_root = _effective(spec, container, "runAsNonRoot")
        if not ((user != 0 and non_root is True) or (user is not None and user > 0)):
            violations.append(container["name"])
    return violations


# Kyverno ------------------------------------------------------------------------------------


def _matches_pattern(value: Any, pattern: Any) -> bool:
    if isinstance(pattern, dict):
        if not isinstance(value, dict):
            return False
        for key, sub_pattern in pattern.items():
            if key.startswith("=(") and key.endswith(")"):
                # Conditional anchor: checked only when the key is present.
                name = key[2:-1]
                if name in value and not _matches_pattern(value[name], sub_pattern):
                    return False
                continue
            if key not in value or not _matches_pattern(value[key], sub_pattern):
                return False
        return True
    if isinstance(pattern, list):
        # A one-element list pattern applies to every element of the value.
        (element_pattern,) = pattern
        return isinstance(value, list) and all(_matches_pattern(v, element_pattern) for v in value)
    if isinstance(pattern, str):
        return value is not None and fnmatch.fnmatchcase(str(value), pattern)
    return value == pattern


def kyverno_admits(policy: dict[str, Any], obj: dict[str, Any]) -> bool:
    """Apply each rule's pattern to the pod, or to the pod template as Kyverno's autogen does."""
    target = {"spec": pod_spec(obj)}
    for rule in policy["spec"]["rules"]:
        kinds = {k for entry in rule["match"]["any"] for k in entry["resources"]["kinds"]}
        assert {"Pod"} == kinds, "the check below assumes Pod rules extended by autogen"
        excluded = {
            namespace
            for entry in rule.get("exclude", {}).get("any", [])
            for namespace in entry["resources"].get("namespaces", [])
        }
        if obj["metadata"].get("namespace") in excluded:
            continue
        if not _matches_pattern(target, rule["validate"]["pattern"]):
            return False
    return True


# Tests --------------------------------------------------------------------------------------


def _workload_id(item: tuple[str, dict[str, Any]]) -> str:
    return f"{item[0]}:{item[1]['kind']}/{item[1]['metadata']['name']}"


@pytest.mark.parametrize("item", list(workloads()), ids=_workload_id)
def test_gatekeeper_admits_rendered(item: tuple[str, dict[str, Any]]) -> None:
    assert _constraint_matches(_constraint(), item[1])
    assert [] == gatekeeper_violations(_constraint(), item[1])


@pytest.mark.parametrize("item", list(workloads()), ids=_workload_id)
def test_kyverno_admits_rendered(item: tuple[str, dict[str, Any]]) -> None:
    assert kyverno_admits(_kyverno_policy(), item[1])


def test_gatekeeper_rejects_root() -> None:
    assert ["setup", "app"] == gatekeeper_violations(_constraint(), ROOT_DEPLOYMENT)


def test_kyverno_rejects_limitless() -> None:
    assert kyverno_admits(_kyverno_policy(), ROOT_DEPLOYMENT) is False


def test_gatekeeper_rejects_uid_zero() -> None:
    deployment = copy.deepcopy(find(render("base"), "Deployment", "falco-responder"))
    pod_spec(deployment)["containers"][0]["securityContext"]["runAsUser"] = 0
    assert ["responder"] == gatekeeper_violations(_constraint(), deployment)


def test_gatekeeper_pod_level_suffices() -> None:
    deployment = copy.deepcopy(ROOT_DEPLOYMENT)
    pod_spec(deployment)["securityContext"] = {"runAsNonRoot": True}
    assert [] == gatekeeper_violations(_constraint(), deployment)


def test_gatekeeper_container_overrides_pod() -> None:
    deployment = copy.deepcopy(ROOT_DEPLOYMENT)
    pod_spec(deployment)["securityContext"] = {"runAsNonRoot": True}
    pod_spec(deployment)["containers"][0]["securityContext"] = {"runAsNonRoot": False}
    assert ["app"] == gatekeeper_violations(_constraint(), deployment)


def test_gatekeeper_skips_falco_namespace() -> None:
    deployment = copy.deepcopy(ROOT_DEPLOYMENT)
    deployment["metadata"]["namespace"] = "falco"
    assert [] == gatekeeper_violations(_constraint(), deployment)


def test_kyverno_rejects_init_without_limits() -> None:
    deployment = copy.deepcopy(find(render("base"), "Deployment", "falco-responder"))
    pod_spec(deployment)["initContainers"] = [{"name": "init", "image": "busybox:1.36"}]
    assert kyverno_admits(_kyverno_policy(), deployment) is False


def test_kyverno_rejects_missing_cpu_limit() -> None:
    deployment = copy.deepcopy(find(render("base"), "Deployment", "falco-responder"))
    del pod_spec(deployment)["containers"][0]["resources"]["limits"]["cpu"]
    assert kyverno_admits(_kyverno_policy(), deployment) is False


def test_rego_covers_all_container_lists() -> None:
    (template,) = [o for o in render("admission") if o["kind"] == "ConstraintTemplate"]
    rego = template["spec"]["targets"][0]["rego"]
    fields = ("containers", "initContainers", "ephemeralContainers", "runAsNonRoot", "runAsUser")
    for field in fields:
        assert f'"{field}"' in rego, field
