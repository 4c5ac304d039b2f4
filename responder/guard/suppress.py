"""Deduplication and cooldowns: collapse repeated alerts before the playbooks run again.

Falco raises an alert for every event that matches a rule, so one shell loop in a pod sends
hundreds of identical alerts a minute. ``Suppressor.duplicate`` drops the repeats of an alert
within a window, and ``Suppressor.cooldown`` keeps a playbook from running again for the same
target within its cooldown. What was dropped is not lost: ``Suppressor.digest`` returns
sentences for the next notification, such as "12 identical alerts suppressed in the last 60 s".
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import structlog
from prometheus_client import CollectorRegistry, Counter

from responder.act.results import Outcome
from responder.clock import Clock
from responder.guard.settings import SuppressSettings
from responder.guard.suppress_store import (
    COOLDOWN,
    DEDUP,
    InMemorySuppressionStore,
    Suppressed,
    SuppressionStore,
)
from responder.ingest.alert import Alert

# Outcomes after which the next identical alert may respond again, despite dedup and cooldown:
# the action did not happen, for a reason that may be gone by the next alert.
RETRY_LATER = frozenset({Outcome.FAILED, Outcome.STALE, Outcome.BUDGET_EXHAUSTED, Outcome.NOT_RUN})

log = structlog.get_logger("responder.guard")

# Output fields that differ between events of one and the same activity, and are left out of the
# deduplication key unless ``key_fields`` names them. Times differ on every event. Process,
# thread and session ids, and file descriptor numbers, differ for each process a loop starts.
# Client and local ports are picked per connection. Audit ids are unique per API request.
VOLATILE_FIELDS = frozenset(
    {
        "proc.pid",
        "proc.ppid",
        "proc.vpid",
        "proc.pvpid",
        "proc.sid",
        "proc.vpgid",
        "proc.pgid",
        "proc.apid",
        "proc.loginshellid",
        "proc.duration",
        "proc.ppid.duration",
        "proc.pid.ts",
        "proc.ppid.ts",
        "fd.num",
        "fd.cport",
        "fd.lport",
        "fd.rport",
        "fd.sport",
        "ka.auditid",
    }
)
# Whole field classes that are volatile: ``evt.*`` contains the event's time, number, latency and
# raw arguments, ``thread.*`` the thread ids, and ``jevt.*`` the time of a JSON event.
VOLATILE_PREFIXES = ("evt.", "thread.", "jevt.")
# Falco names an ancestor's field with an index, such as proc.apid[2].
_INDEX_SUFFIX = re.compile(r"\[[^\]]*\]$")

# A warning about dropped keys is logged at most this often, and the metric counts each one.
EVICTION_LOG_INTERVAL_S = 60.0


def is_volatile(name: str) -> bool:
    """Return True for an output field that changes between events of one activity."""
    base = _INDEX_SUFFIX.sub("", name)
    return base in VOLATILE_FIELDS or base.startswith(VOLATILE_PREFIXES)


def dedup_key(alert: Alert, key_fields: list[str] | None) -> str:
    """Return the key under which identical alerts are counted.

    The key is the source, rule, target and host, and the key fields: ``key_fields`` when given,
    else every output field that is not volatile. Falcosidekick's ``uuid`` and the alert's
    ``time`` are not part of it. NOTE: ``fd.name`` of a socket contains the client port, so
    network rules need ``key_fields`` to collapse their alerts.
    """
    fields: dict[str, Any]
    if key_fields is None:
        fields = {
            name: value for name, value in alert.output_fields.items() if not is_volatile(name)
        }
    else:
        fields = {name: alert.output_fields.get(name) for name in key_fields}
    target = alert.target
    identity = [
        alert.source,
        alert.rule,
        [target.kind, str(target)] if target is not None else None,
        alert.hostname,
        fields,
    ]
    text = json.dumps(identity, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class Suppressor:
    """Decides which alerts and playbook runs to suppress, and reports what it suppressed."""

    def __init__(
        self,
        settings: SuppressSettings,
        *,
        clock: Clock,
        registry: CollectorRegistry,
        store: SuppressionStore | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.suppressed = Counter(
            "responder_alerts_suppressed",
            "Alerts suppressed before a playbook ran, by reason (duplicate, cooldown).",
            ["reason"],
            registry=registry,
        )
        self.evicted = Counter(
            "responder_suppression_keys_evicted",
            "Keys dropped because max_keys was reached, by kind (dedup, cooldown).",
            ["kind"],
            registry=registry,
        )
        for reason in ("duplicate", "cooldown"):
            self.suppressed.labels(reason)
        for kind in (DEDUP, COOLDOWN):
            self.evicted.labels(kind)
        self._last_eviction_log_s: float | None = None
        if store is None:
            store = InMemorySuppressionStore(
                max_keys=settings.max_keys,
                retention_s=settings.digest_retention_s,
                on_evict=self._count_eviction,
            )
        self.store = store

    def key(self, alert: Alert) -> str:
        """Return the deduplication key of ``alert``."""
        return dedup_key(alert, self.settings.key_fields)

    def duplicate(self, alert: Alert) -> bool:
        """Return True when an identical alert opened a window less than ``dedup_window_s`` ago.

        An alert that returns False opens a new window, and the caller is expected to respond.
        """
        window_s = self.settings.dedup_window_s
        if window_s <= 0:
            return False
        if not self.store.seen(self.key(alert), self.clock.monotonic(), window_s):
            return False
        self.suppressed.labels("duplicate").inc()
        return True

    def cooldown(self, alert: Alert, playbook: str, cooldown_s: float | None) -> bool:
        """Return True when ``playbook`` ran for the alert's target less than its cooldown ago.

        ``cooldown_s`` is the playbook's own cooldown. None means ``SuppressSettings.cooldown_s``.
        A call that returns False records a run starting now, so call it only right before the
        playbook runs.
        """
        seconds = self.settings.cooldown_s if cooldown_s is None else cooldown_s
        if seconds <= 0:
            return False
        key = self._cooldown_key(alert, playbook)
        if not self.store.cooling_down(key, self.clock.monotonic(), seconds):
            return False
        self.suppressed.labels("cooldown").inc()
        return True

    def retry_later(self, alert: Alert, playbooks: list[str]) -> None:
        """Let the next identical alert respond again, because this response did not happen.

        A response that failed or that a guard rejected must not hold back the alerts after it,
        or a transient API error would leave a pod untouched for the whole window."""
        self.store.end_window(self.key(alert))
        for playbook in playbooks:
            self.store.end_cooldown(self._cooldown_key(alert, playbook))

    def digest(self, alert: Alert, playbook: str) -> list[str]:
        """Return sentences about the alerts suppressed since ``playbook`` last reported on this
        alert and target, and reset those counts."""
        now_s = self.clock.monotonic()
        sentences = []
        duplicates = self.store.take_duplicates(self.key(alert), playbook, now_s)
        if duplicates is not None:
            noun = "alert" if duplicates.count == 1 else "alerts"
            sentences.append(
                f"{duplicates.count} identical {noun} suppressed in the last "
                f"{_span(duplicates, now_s)} s"
            )
        key = self._cooldown_key(alert, playbook)
        cooled = self.store.take_cooldowns(key, now_s)
        if cooled is not None:
            noun = "alert" if cooled.count == 1 else "alerts"
            target = alert.target if alert.target is not None else "this target"
            sentences.append(
                f"{cooled.count} {noun} on {target} suppressed in the last "
                f"{_span(cooled, now_s)} s by the {cooled.interval_s:g} s cooldown of "
                f"playbook {playbook}"
            )
        return sentences

    def _cooldown_key(self, alert: Alert, playbook: str) -> str:
        # An alert that names no Kubernetes object is keyed by its deduplication key, so that
        # unrelated alerts of one playbook do not share a cooldown.
        target = alert.target
        # The kind is part of the key: a pod "node/x" and the node "x" print the same.
        subject = [target.kind, str(target)] if target is not None else self.key(alert)
        return json.dumps([playbook, subject], separators=(",", ":"))

    def _count_eviction(self, kind: str) -> None:
        self.evicted.labels(kind).inc()
        now_s = self.clock.monotonic()
        last = self._last_eviction_log_s
        if last is not None and now_s - last < EVICTION_LOG_INTERVAL_S:
            return
        self._last_eviction_log_s = now_s
        log.warning(
            "suppression_keys_evicted",
            kind=kind,
            max_keys=self.settings.max_keys,
            reason="max_keys reached: the least recently seen key was dropped, so its next "
            "alert gets a response again",
        )


def _span(suppressed: Suppressed, now_s: float) -> str:
    return f"{max(now_s - suppressed.since_s, 0.0):.0f}"
