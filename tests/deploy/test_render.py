"""Every kustomization renders, and every object in it is valid for its schema or CRD."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest

from tests.deploy.manifests import KUBERNETES_VERSION, KUSTOMIZATIONS, is_crd_kind, render


def _builtin_objects() -> list[tuple[str, dict[str, Any]]]:
    return [(k, obj) for k in KUSTOMIZATIONS for obj in render(k) if not is_crd_kind(obj)]


def _crd_objects() -> list[tuple[str, dict[str, Any]]]:
    return [(k, obj) for k in KUSTOMIZATIONS for obj in render(k) if is_crd_kind(obj)]


def _object_id(item: tuple[str, dict[str, Any]]) -> str:
    kustomization, obj = item
    return f"{kustomization}:{obj['kind']}/{obj['metadata']['name']}"


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_kustomization_renders(kustomization: str) -> None:
    assert len(render(kustomization)) > 0


@pytest.mark.parametrize("item", _builtin_objects(), ids=_object_id)
def test_object_valid_strict(item: tuple[str, dict[str, Any]]) -> None:
    _, obj = item
    # Raises ValidationError, naming the field, for an unknown or invalid field.
    kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_crd_kinds_only_expected() -> None:
    kinds = {obj["kind"] for _, obj in _crd_objects()}
    assert {"ServiceMonitor", "ConstraintTemplate", "K8sRequireNonRoot", "ClusterPolicy"} == kinds


@pytest.mark.parametrize("item", _crd_objects(), ids=_object_id)
def test_crd_object_has_metadata(item: tuple[str, dict[str, Any]]) -> None:
    _, obj = item
    assert obj["metadata"]["name"]
    assert isinstance(obj.get("spec"), dict)


def test_servicemonitor_structure() -> None:
    (monitor,) = [o for o in render("overlays/monitoring") if o["kind"] == "ServiceMonitor"]
    assert "monitoring.coreos.com/v1" == monitor["apiVersion"]
    assert {"app.kubernetes.io/name": "falco-responder"} == monitor["spec"]["selector"][
        "matchLabels"
    ]
    endpoint = monitor["spec"]["endpoints"][0]
    assert "http" == endpoint["port"]
    assert "/metrics" == endpoint["path"]


def test_servicemonitor_selects_service() -> None:
    objects = render("overlays/monitoring")
    (monitor,) = [o for o in objects if o["kind"] == "ServiceMonitor"]
    (service,) = [o for o in objects if o["kind"] == "Service"]
    wanted = monitor["spec"]["selector"]["matchLabels"]
    labels = service["metadata"]["labels"]
    assert wanted.items() <= labels.items()
    port_names = {port["name"] for port in service["spec"]["ports"]}
    assert monitor["spec"]["endpoints"][0]["port"] in port_names


def test_constraint_template_structure() -> None:
    (template,) = [o for o in render("admission") if o["kind"] == "ConstraintTemplate"]
    assert "templates.gatekeeper.sh/v1" == template["apiVersion"]
    # Gatekeeper requires the template's name to be its kind in lower case.
    kind = template["spec"]["crd"]["spec"]["names"]["kind"]
    assert kind.lower() == template["metadata"]["name"]
    (target,) = template["spec"]["targets"]
    assert "admission.k8s.gatekeeper.sh" == target["target"]
    assert f"package {template['metadata']['name']}" in target["rego"]
    assert "violation[" in target["rego"]


def test_constraint_matches_template() -> None:
    objects = render("admission")
    (template,) = [o for o in objects if o["kind"] == "ConstraintTemplate"]
    constraints = [o for o in objects if o["apiVersion"].startswith("constraints.gatekeeper.sh/")]
    assert 1 == len(constraints)
    assert template["spec"]["crd"]["spec"]["names"]["kind"] == constraints[0]["kind"]
    assert constraints[0]["spec"]["match"]["kinds"]


def test_kyverno_policy_structure() -> None:
    (policy,) = [o for o in render("admission") if o["kind"] == "ClusterPolicy"]
    assert "kyverno.io/v1" == policy["apiVersion"]
    assert "Enforce" == policy["spec"]["validationFailureAction"]
    assert policy["spec"]["rules"]
    for rule in policy["spec"]["rules"]:
        assert rule["name"]
        assert rule["match"]
        assert rule["validate"]["pattern"]
        assert rule["validate"]["message"]
