"""Render the kustomizations under deploy/ and pick objects out of the result."""

from __future__ import annotations

import functools
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
KUSTOMIZATIONS = ("base", "overlays/namespaced", "overlays/monitoring", "admission")
# Kubernetes version whose schemas the rendered objects must satisfy.
KUBERNETES_VERSION = "1.32.0"
# Kinds that come from CRDs; kubernetes_validate has no schema for them.
CRD_API_GROUPS = frozenset(
    {"monitoring.coreos.com", "templates.gatekeeper.sh", "constraints.gatekeeper.sh", "kyverno.io"}
)
WORKLOAD_KINDS = frozenset(
    {"Pod", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "CronJob"}
)


@functools.cache
def render(kustomization: str) -> tuple[dict[str, Any], ...]:
    """Return the objects that ``kubectl kustomize deploy/<kustomization>`` prints."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise RuntimeError("kubectl not found on PATH; the deploy tests need kubectl >= 1.27")
    result = subprocess.run(
        [kubectl, "kustomize", str(DEPLOY / kustomization)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"kubectl kustomize deploy/{kustomization} failed:\n{result.stderr}")
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def api_group(obj: dict[str, Any]) -> str:
    group, _, _ = obj["apiVersion"].rpartition("/")
    return group


def is_crd_kind(obj: dict[str, Any]) -> bool:
    return api_group(obj) in CRD_API_GROUPS


def find(objects: tuple[dict[str, Any], ...], kind: str, name: str) -> dict[str, Any]:
    for obj in objects:
        if obj["kind"] == kind and obj["metadata"]["name"] == name:
            return obj
    raise LookupError(f"no {kind} named {name!r} in the rendered objects")


def of_kind(objects: tuple[dict[str, Any], ...], kind: str) -> list[dict[str, Any]]:
    return [obj for obj in objects if obj["kind"] == kind]


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    """Return the pod spec of a Pod or of a workload's pod template."""
    if obj["kind"] == "Pod":
        return obj["spec"]
    if obj["kind"] == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return obj["spec"]["template"]["spec"]


def containers(spec: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Yield every container of a pod spec: init, regular and ephemeral."""
    for key in ("initContainers", "containers", "ephemeralContainers"):
        yield from spec.get(key, [])


def workloads() -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield (kustomization, object) for every workload in every rendering."""
    for kustomization in KUSTOMIZATIONS:
        for obj in render(kustomization):
            if obj["kind"] in WORKLOAD_KINDS:
                yield kustomization, obj
