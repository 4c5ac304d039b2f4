"""Check that the pod an alert names is still the pod that raised it, before anything is changed.

Between the alert and the response the pod may be gone, or replaced by a pod with the same name
(a StatefulSet does that). Falco reports the container id, so the check compares it with the ids
the kubelet reports for the pod's containers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from responder.act.kube import Kube
from responder.errors import KubeError
from responder.ingest.alert import PodTarget

# The kubelet reports "<runtime>://<64 hex digits>", e.g. containerd://, cri-o://, docker://.
_CONTAINER_ID = re.compile(r"^[a-z0-9-]+://(?P<id>[0-9a-f]+)$")


@dataclass(frozen=True)
class OwnerReference:
    """The fields of a pod's ownerReference that the actions use."""

    api_version: str
    kind: str
    name: str
    uid: str
    controller: bool


@dataclass(frozen=True)
class VerifiedPod:
    """A pod that exists and runs the alert's container, as read from the API server."""

    namespace: str
    name: str
    uid: str
    node_name: str | None
    labels: dict[str, str] = field(default_factory=dict)
    owner_references: tuple[OwnerReference, ...] = ()
    ready: bool = False
    deleting: bool = False
    # The full container id matched against Falco's short id; None when the alert has none.
    container_id: str | None = None
    container_names: tuple[str, ...] = ()

    @property
    def controller(self) -> OwnerReference | None:
        """The owner reference with ``controller: true``, which at most one owner has."""
        for owner in self.owner_references:
            if owner.controller:
                return owner
        return None

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class Mismatch:
    """The reason the pod on the cluster is not the alert's pod. Nothing was changed."""

    reason: str
    gone: bool = False
    """True when no pod of that name exists any more, rather than another pod in its place."""


async def verify_pod(kube: Kube, target: PodTarget) -> VerifiedPod | Mismatch:
    """Read the pod and check that it runs the alert's container.

    Returns Mismatch when the pod is not found or the container id is not one of its containers.
    A pod with a deletionTimestamp is still the pod. Raises KubeError for other API failures.
    """
    try:
        pod = await kube.read(kube.core.read_namespaced_pod, target.pod, target.namespace)
    except KubeError as error:
        if error.status == 404:
            return Mismatch(f"pod {target} not found", gone=True)
        raise
    container_id: str | None = None
    if target.container_id:
        container_id = match_container_id(pod, target.container_id)
        if container_id is None:
            return Mismatch(
                f"container {target.container_id} is not a container of pod {target}; "
                "the pod was probably replaced"
            )
    return _verified(pod, container_id)


SHORT_ID_LENGTH = 12
_HEX = re.compile(r"[0-9a-f]+")


def match_container_id(pod: Mapping[str, Any], short_id: str) -> str | None:
    """Return the full id of the pod's container that starts with Falco's id, or None.

    ``pod`` is the Pod as the API server sends it. Falco reports the first 12 hex digits of the
    id. A shorter or non-hex value matches nothing, because a prefix of a few digits could name
    a container of another workload."""
    prefix = short_id.strip().lower()
    if len(prefix) < SHORT_ID_LENGTH or not _HEX.fullmatch(prefix):
        return None
    status = _mapping(pod.get("status"))
    for key in ("containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses"):
        for container in _items(status.get(key)):
            found = _CONTAINER_ID.match(str(container.get("containerID") or ""))
            if found is not None and found.group("id").startswith(prefix):
                return str(found.group("id"))
    return None


def owner_reference(owner: Mapping[str, Any]) -> OwnerReference:
    """Read one entry of ``metadata.ownerReferences``."""
    return OwnerReference(
        api_version=str(owner.get("apiVersion", "")),
        kind=str(owner.get("kind", "")),
        name=str(owner.get("name", "")),
        uid=str(owner.get("uid", "")),
        controller=owner.get("controller") is True,
    )


def _verified(pod: Mapping[str, Any], container_id: str | None) -> VerifiedPod:
    metadata = _mapping(pod.get("metadata"))
    spec = _mapping(pod.get("spec"))
    names = [
        str(container.get("name"))
        for key in ("containers", "initContainers", "ephemeralContainers")
        for container in _items(spec.get(key))
    ]
    node_name = spec.get("nodeName")
    return VerifiedPod(
        namespace=str(metadata.get("namespace")),
        name=str(metadata.get("name")),
        uid=str(metadata.get("uid")),
        node_name=str(node_name) if node_name else None,
        labels={str(key): str(value) for key, value in _mapping(metadata.get("labels")).items()},
        owner_references=tuple(map(owner_reference, _items(metadata.get("ownerReferences")))),
        ready=_is_ready(pod),
        deleting=metadata.get("deletionTimestamp") is not None,
        container_id=container_id,
        container_names=tuple(names),
    )


def _is_ready(pod: Mapping[str, Any]) -> bool:
    conditions = _items(_mapping(pod.get("status")).get("conditions"))
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _items(value: object) -> list[Mapping[str, Any]]:
    # The API server omits empty lists, and sends null for some; both read as no items.
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, Mapping)]
