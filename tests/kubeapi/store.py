"""In-memory object storage with the registry rules of kube-apiserver.

Covers what the generic registry (k8s.io/apiserver/pkg/registry/generic/registry) and the
resource strategies do on create, update and delete: system metadata, resourceVersion,
generation, status handling and delete preconditions.
"""

from __future__ import annotations

import base64
import copy
import json
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.kubeapi.resources import NAMESPACES, PODS, RESOURCES, ResourceType
from tests.kubeapi.selectors import Matcher
from tests.kubeapi.status import (
    ApiError,
    already_exists,
    bad_request,
    conflict,
    internal_error,
    modified_conflict,
    not_found,
)
from tests.kubeapi.validate import SchemaValidator

Key = tuple[ResourceType, str, str]
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
# Status that each strategy's PrepareForCreate leaves, with the fields that have no
# `omitempty` in the Go types (the Python client rejects a status without them).
CREATE_STATUS: dict[str, dict[str, Any]] = {
    "Pod": {"phase": "Pending"},
    "Namespace": {"phase": "Active"},
    "Deployment": {},
    "ReplicaSet": {"replicas": 0},
    "StatefulSet": {"replicas": 0, "availableReplicas": 0},
    "DaemonSet": {
        "currentNumberScheduled": 0,
        "numberMisscheduled": 0,
        "desiredNumberScheduled": 0,
        "numberReady": 0,
    },
}
_NAME_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def timestamp(moment: datetime | None = None) -> str:
    """Format a time as the RFC 3339 UTC second-precision string of `metav1.Time`."""
    return (moment or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Deletion:
    """One DELETE that reached storage, with the options the client sent."""

    resource: str
    namespace: str
    name: str
    grace_period_seconds: int | None
    propagation_policy: str | None
    dry_run: bool


def check_type(resource: ResourceType, body: Any) -> dict[str, Any]:
    """Fill apiVersion/kind from the path and reject a body of another type (400)."""
    if not isinstance(body, dict):
        raise bad_request(f"the object provided is unrecognized (must be of type {resource.kind})")
    api_version = body.get("apiVersion") or resource.api_version
    kind = body.get("kind") or resource.kind
    if kind != resource.kind:
        version = api_version.rsplit("/", 1)[-1]
        raise bad_request(
            f'{kind} in version "{version}" cannot be handled as a {resource.kind}: '
            f"the kind in the data ({kind}) does not match the expected kind ({resource.kind})"
        )
    if api_version != resource.api_version:
        raise bad_request(
            f"the API version in the data ({api_version}) does not match the expected API "
            f"version ({resource.api_version})"
        )
    body["apiVersion"], body["kind"] = api_version, kind
    if not isinstance(body.get("metadata"), dict):
        body["metadata"] = {}
    return body


def _qos_class(spec: dict[str, Any]) -> str:
    containers = list(spec.get("containers") or []) + list(spec.get("initContainers") or [])
    resources = [container.get("resources") or {} for container in containers]
    if not any(item.get("requests") or item.get("limits") for item in resources):
        return "BestEffort"
    guaranteed = all(
        (item.get("limits") or {}).get(name) is not None
        and (item.get("requests") or {}).get(name, item["limits"][name]) == item["limits"][name]
        for item in resources
        for name in ("cpu", "memory")
    )
    return "Guaranteed" if guaranteed else "Burstable"


class ObjectStore:
    """Objects keyed by resource, namespace and name, with a cluster-wide resourceVersion."""

    def __init__(self, validator: SchemaValidator, graceful_pod_deletion: bool = False) -> None:
        self.validator = validator
        self.graceful_pod_deletion = graceful_pod_deletion
        self.objects: dict[Key, dict[str, Any]] = {}
        self.resource_version = 0
        self.deletions: list[Deletion] = []

    def next_resource_version(self) -> str:
        self.resource_version += 1
        return str(self.resource_version)

    def _namespace_for(self, resource: ResourceType, namespace: str | None) -> str:
        return (namespace or "") if resource.namespaced else ""

    def find(self, resource: ResourceType, namespace: str | None, name: str) -> dict[str, Any]:
        """Return the stored object itself (not a copy) or raise 404 NotFound."""
        key = (resource, self._namespace_for(resource, namespace), name)
        if key not in self.objects:
            raise not_found(resource, name)
        return self.objects[key]

    def get(self, resource: ResourceType, namespace: str | None, name: str) -> dict[str, Any]:
        return copy.deepcopy(self.find(resource, namespace, name))

    def list(
        self,
        resource: ResourceType,
        namespace: str | None,
        matchers: list[Matcher],
        limit: int = 0,
        continue_token: str = "",
    ) -> dict[str, Any]:
        """Build the `<Kind>List` body, in etcd key order, with limit/continue paging."""
        start = ""
        if continue_token:
            try:
                start = json.loads(base64.b64decode(continue_token))["start"]
            except (ValueError, KeyError, TypeError) as error:
                raise bad_request(f"continue key is not valid: {error}") from error
        selected = sorted(
            (key, obj)
            for key, obj in self.objects.items()
            if key[0] is resource
            and (namespace is None or key[1] == namespace)
            and all(match(obj) for match in matchers)
        )
        selected = [(key, obj) for key, obj in selected if f"{key[1]}/{key[2]}\0" >= start]
        metadata: dict[str, Any] = {"resourceVersion": str(self.resource_version)}
        if limit and len(selected) > limit:
            last = selected[limit - 1][0]
            token = {
                "v": "meta.k8s.io/v1",
                "rv": self.resource_version,
                "start": f"{last[1]}/{last[2]}\0\0",
            }
            metadata["continue"] = base64.b64encode(json.dumps(token).encode()).decode()
            metadata["remainingItemCount"] = len(selected) - limit
            selected = selected[:limit]
        items = []
        for _, obj in selected:
            item = copy.deepcopy(obj)
            # List items carry no apiVersion/kind on the wire, like the real server.
            item.pop("apiVersion", None)
            item.pop("kind", None)
            items.append(item)
        return {
            "kind": resource.list_kind,
            "apiVersion": resource.api_version,
            "metadata": metadata,
            "items": items,
        }

    def _check_namespace(
        self, resource: ResourceType, namespace: str, body: dict[str, Any]
    ) -> None:
        body_namespace = body["metadata"].get("namespace") or ""
        if not resource.namespaced:
            body["metadata"].pop("namespace", None)
        elif not body_namespace:
            body["metadata"]["namespace"] = namespace
        elif body_namespace != namespace:
            raise bad_request(
                "the namespace of the provided object does not match the namespace sent on "
                "the request"
            )

    def _require_namespace(self, resource: ResourceType, namespace: str) -> None:
        if resource.namespaced and (NAMESPACES, "", namespace) not in self.objects:
            raise not_found(NAMESPACES, namespace)

    def create(
        self, resource: ResourceType, namespace: str, body: Any, dry_run: bool = False
    ) -> dict[str, Any]:
        """Create an object as the registry does for a POST, raising ApiError on rejection."""
        obj = check_type(resource, copy.deepcopy(body))
        self._check_namespace(resource, namespace, obj)
        metadata = obj["metadata"]
        if metadata.get("resourceVersion"):
            raise internal_error("resourceVersion should not be set on objects to be created")
        if not metadata.get("name") and metadata.get("generateName"):
            suffix = "".join(random.choices(_NAME_SUFFIX_ALPHABET, k=5))
            metadata["name"] = metadata["generateName"] + suffix
        self._require_namespace(resource, namespace)
        for field in ("deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"):
            metadata.pop(field, None)
        metadata["uid"] = str(uuid.uuid4())
        metadata["creationTimestamp"] = timestamp()
        if resource.tracks_generation:
            metadata["generation"] = 1
        if resource.kind in CREATE_STATUS:
            obj["status"] = copy.deepcopy(CREATE_STATUS[resource.kind])
        if resource is PODS:
            obj["status"]["qosClass"] = _qos_class(obj.get("spec") or {})
        if resource is NAMESPACES:
            obj.setdefault("spec", {})["finalizers"] = ["kubernetes"]
        return self._store_new(resource, obj, dry_run)

    def _store_new(
        self, resource: ResourceType, obj: dict[str, Any], dry_run: bool
    ) -> dict[str, Any]:
        metadata = obj["metadata"]
        if resource is NAMESPACES and metadata.get("name"):
            metadata.setdefault("labels", {})[NAMESPACE_NAME_LABEL] = metadata["name"]
        self.validator.validate(resource, obj)
        key = (resource, metadata.get("namespace", ""), metadata["name"])
        if key in self.objects:
            raise already_exists(resource, metadata["name"])
        if dry_run:
            return obj
        metadata["resourceVersion"] = self.next_resource_version()
        self.objects[key] = obj
        return copy.deepcopy(obj)

    def update(
        self,
        resource: ResourceType,
        namespace: str,
        name: str,
        body: Any,
        dry_run: bool = False,
    ) -> tuple[dict[str, Any], bool]:
        """Replace an object for a PUT or a PATCH result, and return it with `created`."""
        obj = check_type(resource, copy.deepcopy(body))
        self._check_namespace(resource, namespace, obj)
        metadata = obj["metadata"]
        body_name = metadata.setdefault("name", name)
        if body_name != name:
            raise bad_request(
                f"the name of the object ({body_name}) does not match the name on the URL ({name})"
            )
        key = (resource, self._namespace_for(resource, namespace), name)
        current = self.objects.get(key)
        if current is None:
            if not resource.create_on_update:
                raise not_found(resource, name)
            metadata.pop("resourceVersion", None)
            return self.create(resource, namespace, obj, dry_run), True
        old_meta = current["metadata"]
        if metadata.get("resourceVersion") not in (None, "", old_meta["resourceVersion"]):
            raise modified_conflict(resource, name)
        if metadata.get("uid") not in (None, "", old_meta["uid"]):
            raise conflict(
                resource,
                name,
                (
                    f"Precondition failed: UID in precondition: {metadata['uid']}, "
                    f"UID in object meta: {old_meta['uid']}"
                ),
            )
        for field in (
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
        ):
            if field in old_meta:
                metadata[field] = old_meta[field]
            else:
                metadata.pop(field, None)
        if resource.has_status:
            if "status" in current:
                obj["status"] = copy.deepcopy(current["status"])
            else:
                obj.pop("status", None)
        if resource is NAMESPACES:
            metadata.setdefault("labels", {})[NAMESPACE_NAME_LABEL] = name
        if resource.tracks_generation and obj.get("spec") != current.get("spec"):
            metadata["generation"] = int(old_meta.get("generation", 0)) + 1
        metadata["resourceVersion"] = old_meta["resourceVersion"]
        self.validator.validate(resource, obj)
        if obj == current or dry_run:
            # An update that changes nothing keeps the resourceVersion and is not written.
            return copy.deepcopy(obj), False
        metadata["resourceVersion"] = self.next_resource_version()
        self.objects[key] = obj
        return copy.deepcopy(obj), False

    def delete(
        self,
        resource: ResourceType,
        namespace: str,
        name: str,
        options: dict[str, Any],
        dry_run: bool = False,
    ) -> tuple[dict[str, Any], bool]:
        """Delete an object, and return its last state and whether it was removed now."""
        current = self.find(resource, namespace, name)
        meta = current["metadata"]
        preconditions = options.get("preconditions") or {}
        key_text = f"/registry/{resource.qualified_resource}/{meta.get('namespace', '')}/{name}"
        storage_error = (
            f"StorageError: invalid object, Code: 4, Key: {key_text}, "
            "ResourceVersion: 0, AdditionalErrorMsg: Precondition failed: "
        )
        if preconditions.get("uid") and preconditions["uid"] != meta["uid"]:
            raise conflict(
                resource,
                name,
                storage_error
                + (
                    f"UID in precondition: {preconditions['uid']}, "
                    f"UID in object meta: {meta['uid']}"
                ),
            )
        expected_version = preconditions.get("resourceVersion")
        if expected_version and expected_version != meta["resourceVersion"]:
            raise conflict(
                resource,
                name,
                storage_error
                + (
                    f"ResourceVersion in precondition: {expected_version}, "
                    f"ResourceVersion in object meta: {meta['resourceVersion']}"
                ),
            )
        grace = options.get("gracePeriodSeconds")
        self.deletions.append(
            Deletion(
                resource.qualified_resource,
                meta.get("namespace", ""),
                name,
                grace,
                options.get("propagationPolicy"),
                dry_run,
            )
        )
        if dry_run:
            return copy.deepcopy(current), True
        if self._starts_graceful_deletion(resource, current, grace):
            return copy.deepcopy(current), False
        del self.objects[(resource, meta.get("namespace", ""), name)]
        if resource is NAMESPACES:
            # NOTE: the namespace controller empties a namespace asynchronously and keeps it
            # in phase Terminating until then. This store removes everything at once.
            for contained in [k for k in self.objects if k[0] in RESOURCES and k[1] == name]:
                del self.objects[contained]
        return current, True

    def _starts_graceful_deletion(
        self, resource: ResourceType, pod: dict[str, Any], grace: int | None
    ) -> bool:
        """Mark a scheduled pod for deletion instead of removing it, as the pod registry does."""
        if not (self.graceful_pod_deletion and resource is PODS):
            return False
        spec = pod.get("spec") or {}
        if grace is None:
            grace = spec.get("terminationGracePeriodSeconds", 30)
        if not spec.get("nodeName") or grace == 0:
            return False
        meta = pod["metadata"]
        if meta.get("deletionGracePeriodSeconds", grace + 1) <= grace:
            return True
        meta["deletionGracePeriodSeconds"] = grace
        meta["deletionTimestamp"] = timestamp(datetime.now(UTC) + timedelta(seconds=grace))
        meta["resourceVersion"] = self.next_resource_version()
        return True

    def put(self, resource: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        """Store `obj` as given after validation, filling only missing system metadata."""
        obj = check_type(resource, copy.deepcopy(obj))
        metadata = obj["metadata"]
        if not resource.namespaced:
            metadata.pop("namespace", None)
        metadata.setdefault("uid", str(uuid.uuid4()))
        metadata.setdefault("creationTimestamp", timestamp())
        if resource.tracks_generation:
            metadata.setdefault("generation", 1)
        if resource is NAMESPACES:
            metadata.setdefault("labels", {})[NAMESPACE_NAME_LABEL] = metadata["name"]
        self.validator.validate(resource, obj)
        metadata["resourceVersion"] = self.next_resource_version()
        self.objects[(resource, metadata.get("namespace", ""), metadata["name"])] = obj
        return copy.deepcopy(obj)


__all__ = ["ApiError", "Deletion", "ObjectStore", "check_type", "timestamp"]
