"""The Falco and Falcosidekick chart values and the Grafana dashboard match the responder."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlsplit

import yaml
from prometheus_client.metrics_core import Metric

from responder.record.metrics import Metrics
from tests.deploy.manifests import DEPLOY, ROOT, find, render

SERVICE_URL = "http://falco-responder.falco-responder.svc:2804/"
REQUIRED_SERIES = {
    "responder_alerts_received_total",
    "responder_alerts_rejected_total",
    "responder_playbook_matches_total",
    "responder_actions_total",
    "responder_action_duration_seconds_bucket",
    "responder_alert_handling_seconds_bucket",
    "responder_queue_depth",
    "responder_notifications_total",
}


def _values(name: str) -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "falco" / name).read_text())


def _series(family: Metric) -> str:
    suffix = {"counter": "_total", "histogram": "_bucket"}.get(family.type, "")
    return family.name + suffix


def _registry_series() -> set[str]:
    return {_series(family) for family in Metrics().registry.collect()}


def _dashboard() -> dict[str, Any]:
    config_map = find(render("overlays/monitoring"), "ConfigMap", "falco-responder-dashboard")
    (text,) = config_map["data"].values()
    return json.loads(text)


def _dashboard_series() -> set[str]:
    exprs = [t["expr"] for panel in _dashboard()["panels"] for t in panel["targets"]]
    return {name for expr in exprs for name in re.findall(r"\bresponder_\w+", expr)}


def test_sidekick_webhook_address() -> None:
    assert SERVICE_URL == _values("falcosidekick-values.yaml")["config"]["webhook"]["address"]


def test_sidekick_bearer_header() -> None:
    headers = _values("falcosidekick-values.yaml")["config"]["webhook"]["customHeaders"]
    name, _, value = headers.partition(":")
    assert "Authorization" == name
    assert value.startswith("Bearer ")


def test_service_matches_address() -> None:
    service = find(render("base"), "Service", "falco-responder")
    parts = urlsplit(SERVICE_URL)
    host = f"{service['metadata']['name']}.{service['metadata']['namespace']}.svc"
    assert host == parts.hostname
    assert [parts.port] == [port["port"] for port in service["spec"]["ports"]]


def test_falco_json_output() -> None:
    falco = _values("falco-values.yaml")["falco"]
    assert falco["json_output"] is True
    assert falco["json_include_output_property"] is True
    assert falco["json_include_tags_property"] is True


def test_falco_http_output() -> None:
    output = _values("falco-values.yaml")["falco"]["http_output"]
    assert output["enabled"] is True
    parts = urlsplit(output["url"])
    assert parts.username
    assert parts.password
    assert urlsplit(SERVICE_URL).hostname == parts.hostname
    assert 2804 == parts.port


def test_falco_mtls_keys() -> None:
    output = _values("falco-values.yaml")["falco"]["http_output"]
    for key in ("mtls", "client_cert", "client_key", "ca_cert"):
        assert key in output, key


def test_falco_custom_rules_synced() -> None:
    custom = _values("falco-values.yaml")["customRules"]
    shipped = (ROOT / "rules" / "responder_rules.yaml").read_text()
    assert shipped.rstrip("\n") == custom["responder_rules.yaml"].rstrip("\n")


def test_falco_loads_rules_dir() -> None:
    assert "/etc/falco/rules.d" in _values("falco-values.yaml")["falco"]["rules_files"]


def test_dashboard_covers_required() -> None:
    assert set() == REQUIRED_SERIES - _dashboard_series()


def test_dashboard_covers_registry() -> None:
    assert set() == _registry_series() - _dashboard_series()


def test_dashboard_names_exist() -> None:
    assert set() == _dashboard_series() - _registry_series()


def test_dashboard_configmap_label() -> None:
    config_map = find(render("overlays/monitoring"), "ConfigMap", "falco-responder-dashboard")
    assert "1" == config_map["metadata"]["labels"]["grafana_dashboard"]
