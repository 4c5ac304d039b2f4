"""Seed helpers that put realistic, schema-valid objects into the test server's store."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from tests.kubeapi.resources import (
    DAEMONSETS,
    DEPLOYMENTS,
    NAMESPACES,
    NODES,
    PODS,
    REPLICASETS,
    STATEFULSETS,
    ResourceType,
    resource_for_kind,
)
from tests.kubeapi.store import ObjectStore, timestamp

Owner = dict[str, Any] | tuple[str, str]
DEFAULT_IMAGE = "registry.k8s.io/pause:3.10"


def container_id(namespace: str, pod: str, container: str, runtime: str = "containerd") -> str:
    """Return the stable `<runtime>://<64 hex>` id that add_pod gives a container."""
    digest = hashlib.sha256(f"{namespace}/{pod}/{container}".encode()).hexdigest()
    return f"{runtime}://{digest}"


def _metadata(
    name: str,
    namespace: str | None,
    labels: dict[str, str] | None,
    annotations: dict[str, str] | None = None,
    owner_references: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if namespace is not None:
        metadata["namespace"] = namespace
    if labels:
        metadata["labels"] = dict(labels)
    if annotations:
        metadata["annotations"] = dict(annotations)
    if owner_references:
        metadata["ownerReferences"] = owner_references
    return metadata


def _pod_template(labels: dict[str, str]) -> dict[str, Any]:
    return {
        "metadata": {"labels": dict(labels)},
        "spec": {"containers": [{"name": "app", "image": DEFAULT_IMAGE}]},
    }


class SeedHelpers:
    """Mixin for KubeApiServer: seeding and reading of stored objects, bypassing HTTP."""

    store: ObjectStore

    def put_object(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Store any supported object as given, status included, and return the stored copy."""
        return self.store.put(resource_for_kind(obj["kind"]), obj)

    def get_object(
        self, kind: str, name: str, namespace: str | None = None
    ) -> dict[str, Any] | None:
        """Return a copy of a stored object by kind or plural (`"Pod"`, `"pods"`), or None."""
        resource = resource_for_kind(kind)
        key = (resource, (namespace or "") if resource.namespaced else "", name)
        found = self.store.objects.get(key)
        return None if found is None else self.store.get(resource, namespace, name)

    def list_objects(self, kind: str, namespace: str | None = None) -> list[dict[str, Any]]:
        """Return copies of stored objects of `kind`, optionally from one namespace."""
        resource = resource_for_kind(kind)
        return [
            self.store.get(resource, key[1], key[2])
            for key in sorted(self.store.objects)
            if key[0] is resource and (namespace is None or key[1] == namespace)
        ]

    def remove_object(self, kind: str, name: str, namespace: str | None = None) -> None:
        """Remove a stored object without a request, as a controller or kubelet would."""
        resource = resource_for_kind(kind)
        self.store.find(resource, namespace, name)
        del self.store.objects[(resource, (namespace or "") if resource.namespaced else "", name)]

    def owner_reference(self, owner: Owner, namespace: str | None = None) -> dict[str, Any]:
        """Build a controller ownerReference to a stored object or a `(kind, name)` pair."""
        if isinstance(owner, tuple):
            kind, name = owner
            resource = resource_for_kind(kind)
            stored = self.get_object(kind, name, namespace)
            uid = stored["metadata"]["uid"] if stored else str(uuid.uuid4())
        else:
            resource = resource_for_kind(owner["kind"])
            name, uid = owner["metadata"]["name"], owner["metadata"]["uid"]
        return {
            "apiVersion": resource.api_version,
            "kind": resource.kind,
            "name": name,
            "uid": uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }

    def _owners(
        self, namespace: str, owner: Owner | None, owner_references: list[dict[str, Any]] | None
    ) -> list[dict[str, Any]] | None:
        references = list(owner_references or [])
        if owner is not None:
            references.append(self.owner_reference(owner, namespace))
        return references or None

    def _put(self, resource: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        obj = {"apiVersion": resource.api_version, "kind": resource.kind, **obj}
        return self.store.put(resource, obj)

    def add_namespace(
        self,
        name: str,
        labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        return self._put(
            NAMESPACES,
            {
                "metadata": _metadata(name, None, labels, annotations),
                "spec": {"finalizers": ["kubernetes"]},
                "status": {"phase": "Active"},
            },
        )

    def add_node(
        self,
        name: str,
        *,
        labels: dict[str, str] | None = None,
        unschedulable: bool = False,
        ready: bool = True,
        taints: list[dict[str, Any]] | None = None,
        internal_ip: str = "10.0.0.10",
    ) -> dict[str, Any]:
        spec: dict[str, Any] = {}
        if unschedulable:
            spec["unschedulable"] = True
        if taints:
            spec["taints"] = taints
        node_labels = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux"}
        node_labels.update(labels or {})
        return self._put(
            NODES,
            {
                "metadata": _metadata(name, None, node_labels),
                "spec": spec,
                "status": {
                    "addresses": [
                        {"type": "InternalIP", "address": internal_ip},
                        {"type": "Hostname", "address": name},
                    ],
                    "conditions": [
                        {
                            "type": "Ready",
                            "status": "True" if ready else "False",
                            "reason": "KubeletReady" if ready else "KubeletNotReady",
                            "lastHeartbeatTime": timestamp(),
                            "lastTransitionTime": timestamp(),
                        }
                    ],
                },
            },
        )

    def add_pod(
        self,
        namespace: str,
        name: str,
        *,
        labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None,
        owner: Owner | None = None,
        owner_references: list[dict[str, Any]] | None = None,
        containers: list[str] | None = None,
        container_statuses: list[dict[str, Any]] | None = None,
        runtime: str = "containerd",
        node_name: str | None = None,
        phase: str = "Running",
        ready: bool = True,
        pod_ip: str = "10.244.0.10",
        service_account: str = "default",
    ) -> dict[str, Any]:
        """Seed a pod. Without `container_statuses`, each container gets `container_id()`."""
        names = containers or ["app"]
        spec: dict[str, Any] = {
            "containers": [{"name": item, "image": DEFAULT_IMAGE} for item in names],
            "serviceAccountName": service_account,
        }
        if node_name:
            spec["nodeName"] = node_name
        running = phase == "Running"
        if container_statuses is None:
            container_statuses = [
                {
                    "name": item,
                    "image": DEFAULT_IMAGE,
                    "imageID": f"{DEFAULT_IMAGE}@sha256:{'0' * 64}",
                    "containerID": container_id(namespace, name, item, runtime),
                    "ready": ready and running,
                    "restartCount": 0,
                    "started": running,
                    "state": {"running": {"startedAt": timestamp()}}
                    if running
                    else {"waiting": {"reason": "ContainerCreating"}},
                }
                for item in names
            ]
        condition = "True" if ready and running else "False"
        status: dict[str, Any] = {
            "phase": phase,
            "conditions": [
                {"type": "Ready", "status": condition, "lastTransitionTime": timestamp()},
                {
                    "type": "ContainersReady",
                    "status": condition,
                    "lastTransitionTime": timestamp(),
                },
            ],
            "containerStatuses": container_statuses,
            "qosClass": "BestEffort",
        }
        if running:
            status["podIP"] = pod_ip
            status["podIPs"] = [{"ip": pod_ip}]
            status["startTime"] = timestamp()
        return self._put(
            PODS,
            {
                "metadata": _metadata(
                    name,
                    namespace,
                    labels,
                    annotations,
                    self._owners(namespace, owner, owner_references),
                ),
                "spec": spec,
                "status": status,
            },
        )

    def _workload(
        self,
        resource: ResourceType,
        namespace: str,
        name: str,
        selector: dict[str, str] | None,
        labels: dict[str, str] | None,
        owner: Owner | None,
        spec: dict[str, Any],
        status: dict[str, Any],
    ) -> dict[str, Any]:
        match_labels = selector or {"app": name}
        return self._put(
            resource,
            {
                "metadata": _metadata(
                    name,
                    namespace,
                    labels or match_labels,
                    None,
                    self._owners(namespace, owner, None),
                ),
                "spec": {
                    "selector": {"matchLabels": dict(match_labels)},
                    "template": _pod_template(match_labels),
                    **spec,
                },
                "status": {"observedGeneration": 1, **status},
            },
        )

    def add_replicaset(
        self,
        namespace: str,
        name: str,
        *,
        replicas: int = 1,
        ready_replicas: int | None = None,
        selector: dict[str, str] | None = None,
        labels: dict[str, str] | None = None,
        owner: Owner | None = None,
    ) -> dict[str, Any]:
        ready = replicas if ready_replicas is None else ready_replicas
        return self._workload(
            REPLICASETS,
            namespace,
            name,
            selector,
            labels,
            owner,
            {"replicas": replicas},
            {
                "replicas": replicas,
                "readyReplicas": ready,
                "availableReplicas": ready,
                "fullyLabeledReplicas": replicas,
            },
        )

    def add_deployment(
        self,
        namespace: str,
        name: str,
        *,
        replicas: int = 1,
        ready_replicas: int | None = None,
        selector: dict[str, str] | None = None,
        labels: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        ready = replicas if ready_replicas is None else ready_replicas
        return self._workload(
            DEPLOYMENTS,
            namespace,
            name,
            selector,
            labels,
            None,
            {"replicas": replicas},
            {
                "replicas": replicas,
                "readyReplicas": ready,
                "availableReplicas": ready,
                "updatedReplicas": replicas,
            },
        )

    def add_statefulset(
        self,
        namespace: str,
        name: str,
        *,
        replicas: int = 1,
        ready_replicas: int | None = None,
        selector: dict[str, str] | None = None,
        labels: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        ready = replicas if ready_replicas is None else ready_replicas
        return self._workload(
            STATEFULSETS,
            namespace,
            name,
            selector,
            labels,
            None,
            {"replicas": replicas, "serviceName": name},
            {
                "replicas": replicas,
                "readyReplicas": ready,
                "availableReplicas": ready,
                "currentReplicas": replicas,
            },
        )

    def add_daemonset(
        self,
        namespace: str,
        name: str,
        *,
        desired: int = 1,
        ready: int | None = None,
        selector: dict[str, str] | None = None,
        labels: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        ready_count = desired if ready is None else ready
        return self._workload(
            DAEMONSETS,
            namespace,
            name,
            selector,
            labels,
            None,
            {},
            {
                "currentNumberScheduled": desired,
                "numberMisscheduled": 0,
                "desiredNumberScheduled": desired,
                "numberReady": ready_count,
                "numberAvailable": ready_count,
                "updatedNumberScheduled": desired,
            },
        )
