"""The API resources that the test server serves, with the storage rules of each."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class ResourceType:
    """One REST resource and the registry behaviour that kube-apiserver gives it."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    # Strategies that set metadata.generation on create and bump it when the spec changes.
    tracks_generation: bool = True
    # Resources with a status subresource ignore status changes sent to the main resource.
    has_status: bool = True
    # The pod registry returns the deleted object, other registries return a Success Status.
    returns_deleted_object: bool = False
    # Events are created by PUT when missing (AllowCreateOnUpdate in their strategy).
    create_on_update: bool = False

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified_resource(self) -> str:
        """The resource as `GroupResource.String()` prints it, such as `deployments.apps`."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def path_prefix(self) -> str:
        return f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"


NAMESPACES = ResourceType("", "v1", "Namespace", "namespaces", False, tracks_generation=False)
NODES = ResourceType("", "v1", "Node", "nodes", False, tracks_generation=False)
PODS = ResourceType("", "v1", "Pod", "pods", True, returns_deleted_object=True)
EVENTS = ResourceType(
    "",
    "v1",
    "Event",
    "events",
    True,
    tracks_generation=False,
    has_status=False,
    create_on_update=True,
)
REPLICASETS = ResourceType("apps", "v1", "ReplicaSet", "replicasets", True)
DEPLOYMENTS = ResourceType("apps", "v1", "Deployment", "deployments", True)
STATEFULSETS = ResourceType("apps", "v1", "StatefulSet", "statefulsets", True)
DAEMONSETS = ResourceType("apps", "v1", "DaemonSet", "daemonsets", True)
NETWORKPOLICIES = ResourceType(
    "networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", True, has_status=False
)

RESOURCES: tuple[ResourceType, ...] = (
    NAMESPACES,
    NODES,
    PODS,
    EVENTS,
    REPLICASETS,
    DEPLOYMENTS,
    STATEFULSETS,
    DAEMONSETS,
    NETWORKPOLICIES,
)


def find_resource(group: str, version: str, plural: str) -> ResourceType | None:
    """Return the resource served at `group/version/plural`, or None."""
    for resource in RESOURCES:
        if (resource.group, resource.version, resource.plural) == (group, version, plural):
            return resource
    return None


def resource_for_kind(kind: str) -> ResourceType:
    """Return the resource whose kind or plural is `kind` (case-insensitive)."""
    requested_kind = kind.lower()
    for resource in RESOURCES:
        if requested_kind in (resource.kind.lower(), resource.plural):
            return resource
    known = [item.kind for item in RESOURCES]
    raise KeyError(f"unknown resource kind {kind!r}. Known kinds: {known}")
