"""The Falco alert as the responder reads it, and the Kubernetes object it names.

Falco's ``http_output`` and Falcosidekick's webhook send the same keys with small differences:
Falcosidekick adds a ``uuid`` that is new on every receipt and trims trailing zeros from ``time``.
Both are accepted here; ``output_fields`` values keep their JSON types.
"""

from __future__ import annotations

import enum
import re
import time as _time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Falco prints a field it could not extract as "<NA>"; senders also use null and "".
MISSING_VALUES: frozenset[object] = frozenset({None, "", "<NA>"})

# The key that marks an alert sent as a drill.
DRILL_KEY = "drill"


class Priority(enum.IntEnum):
    """Falco's priority levels, ordered by rank so that they compare with < and >=."""

    DEBUG = 0
    INFORMATIONAL = 1
    NOTICE = 2
    WARNING = 3
    ERROR = 4
    CRITICAL = 5
    ALERT = 6
    EMERGENCY = 7

    @classmethod
    def parse(cls, value: str) -> Priority:
        """Parse a priority name case-insensitively, with Falco's and syslog's aliases."""
        key = value.strip().lower()
        priority = _PRIORITY_ALIASES.get(key)
        if priority is None:
            allowed = ", ".join(p.name.lower() for p in sorted(cls, reverse=True))
            raise ValueError(f"invalid priority {value!r}: expected one of {allowed} (any case)")
        return priority

    def __str__(self) -> str:
        return self.name.lower()


_PRIORITY_ALIASES: dict[str, Priority] = {p.name.lower(): p for p in Priority} | {
    "info": Priority.INFORMATIONAL,
    "warn": Priority.WARNING,
    "err": Priority.ERROR,
    "crit": Priority.CRITICAL,
    "emerg": Priority.EMERGENCY,
}

# RFC 3339 with up to nine fractional digits; Falcosidekick drops trailing zeros.
_TIME_PATTERN = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|z|[+-]\d{2}:\d{2})$"
)


# The range that datetime can format in UTC, so that every parsed time can be written back.
_MIN_EPOCH_S = int(datetime(1, 1, 1, tzinfo=UTC).timestamp())
_MAX_EPOCH_S = int(datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp())


@dataclass(frozen=True, order=True)
class Timestamp:
    """A point in time kept exact to the nanosecond, as Falco reports it."""

    epoch_ns: int

    @classmethod
    def parse(cls, text: str) -> Timestamp:
        """Parse an RFC 3339 time without losing digits past the microsecond."""
        found = _TIME_PATTERN.match(text)
        if found is None:
            raise ValueError(
                f"invalid time {text!r}: expected RFC 3339, such as 2026-03-14T12:31:06.118273645Z"
            )
        day, clock, fraction, offset = found.groups()
        zone = "+00:00" if offset in ("Z", "z") else offset
        whole = datetime.fromisoformat(f"{day}T{clock}{zone}")
        nanos = int((fraction or "0").ljust(9, "0"))
        seconds = int(whole.timestamp())
        if not _MIN_EPOCH_S <= seconds <= _MAX_EPOCH_S:
            raise ValueError(f"invalid time {text!r}: outside the years 1 to 9999 in UTC")
        return cls(seconds * 1_000_000_000 + nanos)

    @classmethod
    def now(cls) -> Timestamp:
        return cls(_time.time_ns())

    def isoformat(self) -> str:
        """Format as RFC 3339 in UTC with all nine fractional digits, as Falco does."""
        seconds, nanos = divmod(self.epoch_ns, 1_000_000_000)
        whole = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        return f"{whole}.{nanos:09d}Z"

    def __str__(self) -> str:
        return self.isoformat()


@dataclass(frozen=True)
class PodTarget:
    """A pod named by an alert; ``container_id`` is Falco's 12-character short id, if any."""

    namespace: str
    pod: str
    container_id: str | None = None
    hostname: str | None = None

    @property
    def kind(self) -> str:
        return "pod"

    def __str__(self) -> str:
        return f"{self.namespace}/{self.pod}"


@dataclass(frozen=True)
class HostTarget:
    """A node named by an alert raised outside any container."""

    node: str

    @property
    def kind(self) -> str:
        return "node"

    def __str__(self) -> str:
        return f"node/{self.node}"


Target = PodTarget | HostTarget

# Kubernetes names: a namespace is a DNS label, a pod and a node a DNS subdomain. A name that is
# neither (such as "..") names no object, and must never reach an API path.
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def _valid_label(name: str) -> bool:
    return _DNS_LABEL.fullmatch(name) is not None


def _valid_subdomain(name: str) -> bool:
    return len(name) <= 253 and _DNS_SUBDOMAIN.fullmatch(name) is not None


# Sources whose alerts are about the Falco pipeline itself, never about a workload.
INTERNAL_SOURCES = frozenset({"internal"})
# The rule name of the event that Falcosidekick sends from its "test" endpoint.
TEST_RULE = "Test rule"


class Alert(BaseModel):
    """One Falco alert. Unknown top-level keys are ignored so that newer senders still work."""

    model_config = ConfigDict(extra="ignore", frozen=True, arbitrary_types_allowed=True)

    rule: str = Field(min_length=1)
    priority: Priority
    time: Timestamp
    output: str = ""
    source: str = "syscall"
    hostname: str | None = None
    tags: tuple[str, ...] = ()
    output_fields: dict[str, Any] = Field(default_factory=dict)
    uuid: str | None = None
    drill: bool = False

    @field_validator("priority", mode="before")
    @classmethod
    def _parse_priority(cls, value: object) -> Priority:
        if isinstance(value, Priority):
            return value
        if not isinstance(value, str):
            raise ValueError(f"invalid priority {value!r}: expected a string such as 'Warning'")
        return Priority.parse(value)

    @field_validator("time", mode="before")
    @classmethod
    def _parse_time(cls, value: object) -> Timestamp:
        if isinstance(value, Timestamp):
            return value
        if not isinstance(value, str):
            raise ValueError(f"invalid time {value!r}: expected an RFC 3339 string")
        return Timestamp.parse(value)

    @field_validator("source", mode="before")
    @classmethod
    def _default_source(cls, value: object) -> object:
        # Falco before 0.31 sent no source; those alerts came from syscalls.
        return "syscall" if _is_missing(value) else value

    @field_validator("tags", mode="before")
    @classmethod
    def _tags_or_empty(cls, value: object) -> object:
        return () if value is None else value

    @field_validator("output_fields", mode="before")
    @classmethod
    def _fields_or_empty(cls, value: object) -> object:
        return {} if value is None else value

    def field(self, name: str) -> Any:
        """Return an output field, or None when Falco marked it missing."""
        value = self.output_fields.get(name)
        return None if _is_missing(value) else value

    def to_json(self) -> dict[str, Any]:
        """Return the alert as Falco would send it, with the time at full precision."""
        body: dict[str, Any] = {
            "rule": self.rule,
            "priority": self.priority.name.capitalize(),
            "time": self.time.isoformat(),
            "output": self.output,
            "source": self.source,
            "hostname": self.hostname,
            "tags": list(self.tags),
            "output_fields": self.output_fields,
        }
        if self.uuid is not None:
            body["uuid"] = self.uuid
        if self.drill:
            body[DRILL_KEY] = True
        return body

    @property
    def is_internal(self) -> bool:
        """True for Falco's own messages and Falcosidekick's test event, which are no threat."""
        return self.source in INTERNAL_SOURCES or self.rule == TEST_RULE

    @property
    def target(self) -> Target | None:
        """Return the Kubernetes object this alert is about, or None when it names none."""
        if self.is_internal:
            return None
        if self.source == "k8s_audit":
            return self._audit_target()
        if self.source != "syscall":
            # Cloud and other plugin sources (aws_cloudtrail, okta, github...) name no pod or node.
            return None
        container_id = self.field("container.id")
        if container_id == "host":
            node = self.hostname if not _is_missing(self.hostname) else None
            return HostTarget(node) if node and _valid_subdomain(node) else None
        namespace = self.field("k8s.ns.name") or self.field("k8smeta.ns.name")
        pod = self.field("k8s.pod.name") or self.field("k8smeta.pod.name")
        if not namespace or not pod or not _valid_pod(str(namespace), str(pod)):
            return None
        return PodTarget(
            namespace=str(namespace),
            pod=str(pod),
            container_id=str(container_id) if container_id else None,
            hostname=self.hostname if not _is_missing(self.hostname) else None,
        )

    def _audit_target(self) -> PodTarget | None:
        if self.field("ka.target.resource") != "pods":
            return None
        namespace = self.field("ka.target.namespace")
        pod = self.field("ka.target.name")
        if not namespace or not pod or not _valid_pod(str(namespace), str(pod)):
            return None
        return PodTarget(namespace=str(namespace), pod=str(pod))


def _valid_pod(namespace: str, pod: str) -> bool:
    return _valid_label(namespace) and _valid_subdomain(pod)


def _is_missing(value: object) -> bool:
    try:
        return value in MISSING_VALUES
    except TypeError:  # unhashable values such as lists are present, never missing
        return False
