"""Check that the pod an alert names is still the pod that raised it, before anything is changed.

Between the alert and the response the pod may be gone, or replaced by a pod with the same name
(a StatefulSet does that). Falco reports the container id, so the check compares it with the ids
the kubelet reports for the pod's containers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from kubernetes_asyncio.client import V1ContainerStatus, V1OwnerReference, V1Pod

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
        pod = await kube.call(kube.core.read_namespaced_pod, target.pod, target.namespace)
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


def match_container_id(pod: V1Pod, short_id: str) -> str | None:
    """Return the full id of the pod's container that starts with Falco's id, or None.

    Falco reports the first 12 hex digits of the id. A shorter or non-hex value matches nothing,
    because a prefix of a few digits could name a container of another workload."""
    prefix = short_id.strip().lower()
    if len(prefix) < SHORT_ID_LENGTH or not _HEX.fullmatch(prefix):
        return None
    for status in _container_statuses(pod):
        found = _CONTAINER_ID.match(status.container_id or "")
        if found is not None and found.group("id").startswith(prefix):
            return str(found.group("id"))
    return None


def owner_reference(owner: V1OwnerReference) -> OwnerReference:
    return OwnerReference(
        api_version=owner.api_version,
        kind=owner.kind,
        name=owner.name,
        uid=owner.uid,
        controller=bool(owner.controller),
    )


def _container_statuses(pod: V1Pod) -> list[V1ContainerStatus]:
    status = pod.status
    if status is None:
        return []
    statuses: list[V1ContainerStatus] = []
    statuses.extend(status.container_statuses or [])
    statuses.extend(status.init_container_statuses or [])
    statuses.extend(status.ephemeral_container_statuses or [])
    return statuses


def _verified(pod: V1Pod, container_id: str | None) -> VerifiedPod:
    metadata = pod.metadata
    owners = tuple(owner_reference(owner) for owner in metadata.owner_references or [])
    spec = pod.spec
    names: list[str] = []
    if spec is not None:
        names.extend(container.name for container in spec.containers or [])
        names.extend(container.name for container in spec.init_containers or [])
        names.extend(container.name for container in spec.ephemeral_containers or [])
    return VerifiedPod(
        namespace=str(metadata.namespace),
        name=str(metadata.name),
        uid=str(metadata.uid),
        node_name=spec.node_name if spec is not None else None,
        labels=dict(metadata.labels or {}),
        owner_references=owners,
        ready=_is_ready(pod),
        deleting=metadata.deletion_timestamp is not None,
        container_id=container_id,
        container_names=tuple(names),
    )


def _is_ready(pod: V1Pod) -> bool:
    status: Any = pod.status
    conditions = (status.conditions if status is not None else None) or []
    return any(c.type == "Ready" and c.status == "True" for c in conditions)
