"""State of deduplication and cooldowns: which keys were seen, and what was suppressed since.

``Suppressor`` decides what a key is. The store only keeps times and counts per key, behind
``SuppressionStore``, so that several replicas can later share one state.
``InMemorySuppressionStore`` keeps it in the process, bounded in size.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

# A full sweep reads every key, so it runs at most this often. Between sweeps, an expired key
# is only replaced when it is looked up.
SWEEP_INTERVAL_S = 10.0

DEDUP = "dedup"
COOLDOWN = "cooldown"


@dataclass(frozen=True)
class Suppressed:
    """Alerts suppressed under one key since ``since_s``, the monotonic time of the response
    they followed, with the dedup window or cooldown in force."""

    count: int
    since_s: float
    interval_s: float


class SuppressionStore(Protocol):
    """Deduplication and cooldown state. Times are monotonic seconds from the caller's clock."""

    def seen(self, key: str, now_s: float, window_s: float) -> bool:
        """Record an alert under ``key``. Returns True, and counts it, when it falls within
        ``window_s`` of the first alert of the open window. Otherwise it opens a new window."""
        ...

    def cooling_down(self, key: str, now_s: float, cooldown_s: float) -> bool:
        """Return True, and count it, when a run under ``key`` started less than its cooldown
        ago. Otherwise record a run starting now with ``cooldown_s``."""
        ...

    def end_window(self, key: str) -> None:
        """Close the open dedup window of ``key``, so that its next alert gets a response."""
        ...

    def end_cooldown(self, key: str) -> None:
        """End the cooldown of ``key``, so that its next alert runs the playbook."""
        ...

    def take_duplicates(self, key: str, reader: str, now_s: float) -> Suppressed | None:
        """Return the duplicates of ``key`` not yet reported to ``reader``, and mark them
        reported. Each reader (a playbook) gets its own count."""
        ...

    def take_cooldowns(self, key: str, now_s: float) -> Suppressed | None:
        """Return the alerts suppressed under ``key`` since they were last taken, and reset."""
        ...


@dataclass
class _DedupEntry:
    created_s: float
    window_start_s: float
    window_s: float
    last_seen_s: float
    # Duplicates since the key was created. Each reader keeps the count it last read, and when.
    suppressed: int = 0
    readers: dict[str, tuple[int, float]] = field(default_factory=dict)

    def unreported(self) -> bool:
        least_read = min((read for read, _ in self.readers.values()), default=0)
        return self.suppressed > least_read


@dataclass
class _CooldownEntry:
    started_s: float
    cooldown_s: float
    last_seen_s: float
    pending: int = 0
    pending_since_s: float = 0.0


EntryT = TypeVar("EntryT", _DedupEntry, _CooldownEntry)


class InMemorySuppressionStore:
    """State in this process, in two maps of at most ``max_keys`` keys each.

    A key is dropped once its window or cooldown has ended and nothing it suppressed waits to be
    reported, or once ``retention_s`` has passed since it was last seen. Past ``max_keys`` the
    least recently seen key is dropped and ``on_evict`` is called with its kind (dedup, cooldown).
    """

    def __init__(
        self,
        *,
        max_keys: int,
        retention_s: float,
        on_evict: Callable[[str], None] | None = None,
    ) -> None:
        if max_keys < 1:
            raise ValueError(f"invalid max_keys {max_keys}: must be at least 1")
        self.max_keys = max_keys
        self.retention_s = retention_s
        self._on_evict = on_evict
        self._dedup: OrderedDict[str, _DedupEntry] = OrderedDict()
        self._cooldowns: OrderedDict[str, _CooldownEntry] = OrderedDict()
        self._last_sweep_s: float | None = None

    def seen(self, key: str, now_s: float, window_s: float) -> bool:
        self._sweep(now_s)
        entry = self._dedup.get(key)
        if entry is None:
            self._insert(self._dedup, key, _DedupEntry(now_s, now_s, window_s, now_s), DEDUP)
            return False
        self._dedup.move_to_end(key)
        entry.last_seen_s = now_s
        if now_s - entry.window_start_s < entry.window_s:
            entry.suppressed += 1
            return True
        entry.window_start_s = now_s
        entry.window_s = window_s
        return False

    def cooling_down(self, key: str, now_s: float, cooldown_s: float) -> bool:
        self._sweep(now_s)
        entry = self._cooldowns.get(key)
        if entry is None:
            self._insert(self._cooldowns, key, _CooldownEntry(now_s, cooldown_s, now_s), COOLDOWN)
            return False
        self._cooldowns.move_to_end(key)
        entry.last_seen_s = now_s
        if now_s - entry.started_s < entry.cooldown_s:
            if entry.pending == 0:
                entry.pending_since_s = entry.started_s
            entry.pending += 1
            return True
        entry.started_s = now_s
        entry.cooldown_s = cooldown_s
        return False

    def end_window(self, key: str) -> None:
        entry = self._dedup.get(key)
        if entry is not None:
            entry.window_s = 0.0

    def end_cooldown(self, key: str) -> None:
        entry = self._cooldowns.get(key)
        if entry is not None:
            entry.cooldown_s = 0.0

    def take_duplicates(self, key: str, reader: str, now_s: float) -> Suppressed | None:
        entry = self._dedup.get(key)
        if entry is None:
            return None
        # A reader that has never read gets every duplicate since the key's first alert.
        read, read_at_s = entry.readers.get(reader, (0, entry.created_s))
        entry.readers[reader] = (entry.suppressed, now_s)
        count = entry.suppressed - read
        if count <= 0:
            return None
        return Suppressed(count, read_at_s, entry.window_s)

    def take_cooldowns(self, key: str, now_s: float) -> Suppressed | None:
        entry = self._cooldowns.get(key)
        if entry is None or entry.pending == 0:
            return None
        report = Suppressed(entry.pending, entry.pending_since_s, entry.cooldown_s)
        entry.pending = 0
        return report

    def key_count(self) -> tuple[int, int]:
        """Return the number of dedup keys and of cooldown keys in memory."""
        return len(self._dedup), len(self._cooldowns)

    def _insert(
        self, entries: OrderedDict[str, EntryT], key: str, entry: EntryT, kind: str
    ) -> None:
        entries[key] = entry
        while len(entries) > self.max_keys:
            entries.popitem(last=False)
            if self._on_evict is not None:
                self._on_evict(kind)

    def _sweep(self, now_s: float) -> None:
        if self._last_sweep_s is not None and now_s - self._last_sweep_s < SWEEP_INTERVAL_S:
            return
        self._last_sweep_s = now_s
        for key, dedup in list(self._dedup.items()):
            if self._dedup_expired(dedup, now_s):
                del self._dedup[key]
        for key, cooldown in list(self._cooldowns.items()):
            if self._cooldown_expired(cooldown, now_s):
                del self._cooldowns[key]

    def _dedup_expired(self, entry: _DedupEntry, now_s: float) -> bool:
        if now_s - entry.last_seen_s >= self.retention_s:
            return True
        ended = now_s - entry.window_start_s >= entry.window_s
        return ended and not entry.unreported()

    def _cooldown_expired(self, entry: _CooldownEntry, now_s: float) -> bool:
        if now_s - entry.last_seen_s >= self.retention_s:
            return True
        ended = now_s - entry.started_s >= entry.cooldown_s
        return ended and entry.pending == 0
