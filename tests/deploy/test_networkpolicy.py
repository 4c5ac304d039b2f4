"""The responder's own NetworkPolicy admits only Falco, Falcosidekick and the scraper."""

from __future__ import annotations

from typing import Any

from tests.deploy.manifests import find, pod_spec, render

ALLOWED_EGRESS_PORTS = {
    ("UDP", 53),
    ("TCP", 53),
    ("TCP", 443),
    ("TCP", 6443),
    ("TCP", 465),
    ("TCP", 587),
}


def _policy() -> dict[str, Any]:
    return find(render("base"), "NetworkPolicy", "falco-responder")


def _ports(rule: dict[str, Any]) -> set[tuple[str, int]]:
    return {(port.get("protocol", "TCP"), port["port"]) for port in rule.get("ports", [])}


def test_policy_selects_responder() -> None:
    deployment = find(render("base"), "Deployment", "falco-responder")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert _policy()["spec"]["podSelector"]["matchLabels"].items() <= labels.items()


def test_policy_types_both() -> None:
    assert ["Ingress", "Egress"] == _policy()["spec"]["policyTypes"]


def test_ingress_only_port_2804() -> None:
    for rule in _policy()["spec"]["ingress"]:
        assert {("TCP", 2804)} == _ports(rule)


def test_ingress_peers() -> None:
    peers = [peer for rule in _policy()["spec"]["ingress"] for peer in rule["from"]]
    seen = set()
    for peer in peers:
        namespace = peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
        name = peer.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/name")
        seen.add((namespace, name))
    assert {("falco", "falco"), ("falco", "falcosidekick"), ("monitoring", None)} == seen


def test_ingress_no_ipblock() -> None:
    for rule in _policy()["spec"]["ingress"]:
        for peer in rule["from"]:
            assert "ipBlock" not in peer


def test_egress_ports_limited() -> None:
    ports = set()
    for rule in _policy()["spec"]["egress"]:
        assert rule.get("ports"), "an egress rule without ports allows every port"
        ports |= _ports(rule)
    assert ALLOWED_EGRESS_PORTS == ports


def test_egress_dns_to_kube_dns() -> None:
    (dns,) = [r for r in _policy()["spec"]["egress"] if ("UDP", 53) in _ports(r)]
    assert {("UDP", 53), ("TCP", 53)} == _ports(dns)
    (peer,) = dns["to"]
    namespace = peer["namespaceSelector"]["matchLabels"]
    assert {"kubernetes.io/metadata.name": "kube-system"} == namespace
    assert {"k8s-app": "kube-dns"} == peer["podSelector"]["matchLabels"]


def test_container_port_allowed() -> None:
    (container,) = pod_spec(find(render("base"), "Deployment", "falco-responder"))["containers"]
    assert [2804] == [port["containerPort"] for port in container["ports"]]
