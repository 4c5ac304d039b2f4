"""Every workload that deploy/ renders runs hardened, and the base is wired together."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from responder.act.base import load_builtin_actions
from responder.match.loader import load_playbooks
from responder.settings import load_settings
from tests.deploy.manifests import ROOT, containers, find, of_kind, pod_spec, render, workloads

UID = 65532
CONFIG_PATH = "/etc/falco-responder/config/responder.yaml"
PLAYBOOKS_CONFIG_MAP = "falco-responder-playbooks"


def _workload_id(item: tuple[str, dict[str, Any]]) -> str:
    kustomization, obj = item
    return f"{kustomization}:{obj['kind']}/{obj['metadata']['name']}"


def _container_items() -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    return [
        (kustomization, obj, container)
        for kustomization, obj in workloads()
        for container in containers(pod_spec(obj))
    ]


def _container_id(item: tuple[str, dict[str, Any], dict[str, Any]]) -> str:
    kustomization, obj, container = item
    return f"{kustomization}:{obj['kind']}/{obj['metadata']['name']}/{container['name']}"


def _deployment() -> dict[str, Any]:
    return find(render("base"), "Deployment", "falco-responder")


def test_workloads_rendered() -> None:
    assert 3 == len(list(workloads()))


@pytest.mark.parametrize("item", list(workloads()), ids=_workload_id)
def test_pod_security_context(item: tuple[str, dict[str, Any]]) -> None:
    context = pod_spec(item[1])["securityContext"]
    assert context["runAsNonRoot"] is True
    assert UID == context["runAsUser"]
    assert UID == context["runAsGroup"]
    assert UID == context["fsGroup"]
    assert "RuntimeDefault" == context["seccompProfile"]["type"]


@pytest.mark.parametrize("item", list(workloads()), ids=_workload_id)
def test_pod_no_host_namespaces(item: tuple[str, dict[str, Any]]) -> None:
    spec = pod_spec(item[1])
    assert spec.get("hostNetwork") is not True
    assert spec.get("hostPID") is not True
    assert spec.get("hostIPC") is not True


@pytest.mark.parametrize("item", _container_items(), ids=_container_id)
def test_container_security_context(item: tuple[str, dict[str, Any], dict[str, Any]]) -> None:
    context = item[2]["securityContext"]
    assert context["runAsNonRoot"] is True
    assert UID == context["runAsUser"]
    assert UID == context["runAsGroup"]
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context.get("privileged") is not True
    assert ["ALL"] == context["capabilities"]["drop"]
    assert "add" not in context["capabilities"]
    assert "RuntimeDefault" == context["seccompProfile"]["type"]


@pytest.mark.parametrize("item", _container_items(), ids=_container_id)
def test_container_resources(item: tuple[str, dict[str, Any], dict[str, Any]]) -> None:
    resources = item[2]["resources"]
    for kind in ("requests", "limits"):
        assert resources[kind]["cpu"]
        assert resources[kind]["memory"]


@pytest.mark.parametrize("item", _container_items(), ids=_container_id)
def test_container_image_pinned(item: tuple[str, dict[str, Any], dict[str, Any]]) -> None:
    image = item[2]["image"]
    name, _, digest = image.partition("@")
    tag = name.rpartition("/")[2].partition(":")[2]
    assert tag or digest, f"image {image!r} has neither a tag nor a digest"
    assert "latest" != tag


@pytest.mark.parametrize("item", _container_items(), ids=_container_id)
def test_container_no_subpath(item: tuple[str, dict[str, Any], dict[str, Any]]) -> None:
    for mount in item[2].get("volumeMounts", []):
        assert "subPath" not in mount, f"volume {mount['name']} is mounted with subPath"


def test_deployment_probes() -> None:
    (container,) = pod_spec(_deployment())["containers"]
    assert "/healthz" == container["livenessProbe"]["httpGet"]["path"]
    assert "/readyz" == container["readinessProbe"]["httpGet"]["path"]
    assert "http" == container["livenessProbe"]["httpGet"]["port"]


def test_deployment_port() -> None:
    (container,) = pod_spec(_deployment())["containers"]
    assert [{"name": "http", "containerPort": 2804, "protocol": "TCP"}] == container["ports"]


def test_deployment_token_mounted() -> None:
    assert pod_spec(_deployment())["automountServiceAccountToken"] is True


def test_serviceaccount_token_not_automounted() -> None:
    account = find(render("base"), "ServiceAccount", "falco-responder")
    assert account["automountServiceAccountToken"] is False


def test_deployment_uses_serviceaccount() -> None:
    assert "falco-responder" == pod_spec(_deployment())["serviceAccountName"]


def test_writable_mounts_are_emptydirs() -> None:
    spec = pod_spec(_deployment())
    volumes = {volume["name"]: volume for volume in spec["volumes"]}
    (container,) = spec["containers"]
    mounts = {mount["mountPath"]: mount for mount in container["volumeMounts"]}
    for path in ("/var/lib/responder", "/tmp"):
        assert "emptyDir" in volumes[mounts[path]["name"]], path
    for path, mount in mounts.items():
        if path not in ("/var/lib/responder", "/tmp"):
            assert mount.get("readOnly") is True, path


def test_deployment_mounts_config() -> None:
    spec = pod_spec(_deployment())
    (container,) = spec["containers"]
    assert ["serve", "--config", CONFIG_PATH] == container["args"]
    volumes = {volume["name"]: volume for volume in spec["volumes"]}
    mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
    config_map = volumes[mounts[str(Path(CONFIG_PATH).parent)]]["configMap"]["name"]
    data = find(render("base"), "ConfigMap", config_map)["data"]
    assert Path(CONFIG_PATH).name in data


def test_playbooks_configmap_matches_repo() -> None:
    data = find(render("base"), "ConfigMap", PLAYBOOKS_CONFIG_MAP)["data"]
    shipped = {path.name: path.read_text() for path in sorted((ROOT / "playbooks").glob("*.yaml"))}
    assert sorted(shipped) == sorted(data)
    for name, text in shipped.items():
        assert text == data[name], f"deploy/base/playbooks/{name} differs from playbooks/{name}"


def test_playbooks_mounted_as_directory() -> None:
    spec = pod_spec(_deployment())
    (volume,) = [
        v for v in spec["volumes"] if v.get("configMap", {}).get("name") == PLAYBOOKS_CONFIG_MAP
    ]
    (container,) = spec["containers"]
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == volume["name"]]
    settings = _settings_file()
    assert [mount["mountPath"]] == settings["playbooks"]


def _settings_file() -> dict[str, Any]:
    objects = render("base")
    (config,) = [
        obj for obj in of_kind(objects, "ConfigMap") if "responder.yaml" in obj.get("data", {})
    ]
    return yaml.safe_load(config["data"]["responder.yaml"])


def _secret_keys() -> set[str]:
    template = yaml.safe_load((ROOT / "deploy/base/secret.example.yaml").read_text())
    return set(template["stringData"])


def test_settings_file_loads(tmp_path: Path) -> None:
    settings = _settings_file()
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    for key in _secret_keys():
        (secrets / key).write_text("https://hooks.slack.com/services/T/B/X\n")
    text = yaml.safe_dump(settings).replace("/etc/falco-responder/secrets", str(secrets))
    config = tmp_path / "responder.yaml"
    config.write_text(text)
    loaded = load_settings(config, playbooks=[ROOT / "playbooks"])
    report = load_playbooks(
        loaded.playbooks, registry=load_builtin_actions(), notifiers=loaded.notifiers
    )
    assert [] == report.errors
    assert report.playbooks


def test_settings_secret_files_exist_in_template() -> None:
    settings = _settings_file()
    files = {
        Path(value["file"]).name
        for notifier in settings["notifiers"].values()
        for value in notifier.values()
        if isinstance(value, dict) and "file" in value
    }
    assert files <= _secret_keys()


def test_secret_mounted_from_template() -> None:
    spec = pod_spec(_deployment())
    secret_names = {v["secret"]["secretName"] for v in spec["volumes"] if "secret" in v}
    template = yaml.safe_load((ROOT / "deploy/base/secret.example.yaml").read_text())
    assert {template["metadata"]["name"]} == secret_names


def test_secret_template_not_rendered() -> None:
    assert [] == of_kind(render("base"), "Secret")


def test_secret_template_valid() -> None:
    import kubernetes_validate

    template = yaml.safe_load((ROOT / "deploy/base/secret.example.yaml").read_text())
    kubernetes_validate.validate(template, "1.32.0", strict=True)
    for key, value in template["stringData"].items():
        assert "REPLACE" in value, f"{key} is not marked as a placeholder"


def test_service_targets_deployment() -> None:
    service = find(render("base"), "Service", "falco-responder")
    labels = _deployment()["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert [2804] == [port["port"] for port in service["spec"]["ports"]]


def test_pdb_selects_deployment() -> None:
    budget = find(render("base"), "PodDisruptionBudget", "falco-responder")
    labels = _deployment()["spec"]["template"]["metadata"]["labels"]
    assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert budget["spec"]["minAvailable"] < _deployment()["spec"]["replicas"]


def test_namespace_pod_security_restricted() -> None:
    namespace = find(render("base"), "Namespace", "falco-responder")
    assert "restricted" == namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"]


def test_journal_on_emptydir() -> None:
    journal = Path(_settings_file()["journal"]["path"])
    spec = pod_spec(_deployment())
    volumes = {volume["name"]: volume for volume in spec["volumes"]}
    (container,) = spec["containers"]
    (mount,) = [m for m in container["volumeMounts"] if journal.is_relative_to(m["mountPath"])]
    assert "emptyDir" in volumes[mount["name"]]
