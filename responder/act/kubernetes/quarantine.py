"""The NetworkPolicy that isolates a pod or its workload, and the names that tie it to its target.

Names are derived from the target alone, so that a second run and ``responder release`` find
the same policy without any state kept by the responder.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from responder.act.kubernetes.common import MANAGED_BY_LABEL, MANAGER
from responder.act.kubernetes.names import (
    DNS_SUBDOMAIN_MAX,
    LABEL_VALUE_MAX,
    fit_name,
    is_valid_label_value,
)
from responder.guard.target import OwnerReference

QUARANTINE_LABEL = "falco-responder.io/quarantine"
POLICY_PREFIX = "falco-responder-quarantine-"
# The label the API server sets on every namespace (since Kubernetes 1.21) to its name.
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
DNS_PORT = 53


@dataclass(frozen=True)
class EgressAllowance:
    """The egress the quarantined pods keep; everything else in and out is denied."""

    allow_dns: bool = True
    dns_namespace: str = "kube-system"
    dns_pod_labels: tuple[tuple[str, str], ...] = (("k8s-app", "kube-dns"),)
    cidrs: tuple[str, ...] = ()
    namespaces: tuple[str, ...] = ()


def quarantine_label_value(pod: str) -> str:
    """Return the quarantine label value for a pod: its name, or a cut name and a hash."""
    if is_valid_label_value(pod):
        return pod
    return fit_name("", pod, LABEL_VALUE_MAX, pod)


def pod_policy_name(pod: str) -> str:
    """Return the name of the policy that isolates one pod."""
    return fit_name(POLICY_PREFIX, pod, DNS_SUBDOMAIN_MAX, f"pod/{pod}")


def workload_policy_name(owner: OwnerReference) -> str:
    """Return the name of the policy that isolates the pods of one workload."""
    base = f"{owner.kind.lower()}-{owner.name}"
    return fit_name(POLICY_PREFIX, base, DNS_SUBDOMAIN_MAX, f"{owner.kind}/{owner.name}")


def egress_rules(allowance: EgressAllowance) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = []
    if allowance.allow_dns:
        rules.append(
            {
                "to": [
                    {
                        "namespaceSelector": _namespace_selector(allowance.dns_namespace),
                        "podSelector": {"matchLabels": dict(allowance.dns_pod_labels)},
                    }
                ],
                "ports": [
                    {"protocol": "UDP", "port": DNS_PORT},
                    {"protocol": "TCP", "port": DNS_PORT},
                ],
            }
        )
    if allowance.cidrs:
        rules.append({"to": [{"ipBlock": {"cidr": cidr}} for cidr in allowance.cidrs]})
    if allowance.namespaces:
        peers = [{"namespaceSelector": _namespace_selector(ns)} for ns in allowance.namespaces]
        rules.append({"to": peers})
    return rules


def policy_spec(pod_selector: dict[str, Any], allowance: EgressAllowance) -> dict[str, Any]:
    """Return the spec: no ingress at all, and only the allowed egress."""
    spec: dict[str, Any] = {
        "podSelector": pod_selector,
        "policyTypes": ["Ingress", "Egress"],
    }
    egress = egress_rules(allowance)
    if egress:
        spec["egress"] = egress
    return spec


def policy_body(
    name: str, namespace: str, spec: dict[str, Any], annotations: dict[str, str]
) -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {MANAGED_BY_LABEL: MANAGER},
            "annotations": annotations,
        },
        "spec": spec,
    }


def replace_spec_patch(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """Return a JSON patch that replaces the whole spec of a policy the responder manages.

    A merge patch would merge ``podSelector.matchLabels`` and keep fields the new spec omits.
    The test operation makes the server reject the patch (422) if the managed-by label was
    removed after the policy was read.
    """
    label_path = "/metadata/labels/" + MANAGED_BY_LABEL.replace("~", "~0").replace("/", "~1")
    return [
        {"op": "test", "path": label_path, "value": MANAGER},
        {"op": "replace", "path": "/spec", "value": spec},
    ]


def is_managed(labels: dict[str, str] | None) -> bool:
    return (labels or {}).get(MANAGED_BY_LABEL) == MANAGER


def normalize(value: Any) -> Any:
    """Drop nulls, empty lists and empty maps, which the API server does not keep either.

    An empty ``podSelector`` is kept because it is meaningful: it selects every pod.
    """
    if isinstance(value, dict):
        result = {}
        for key, item in value.items():
            clean = normalize(item)
            if clean is None or clean == [] or (clean == {} and key != "podSelector"):
                continue
            result[key] = clean
        return result
    if isinstance(value, list):
        return [normalize(item) for item in value]
    return value


def _namespace_selector(namespace: str) -> dict[str, Any]:
    return {"matchLabels": {NAMESPACE_NAME_LABEL: namespace}}
