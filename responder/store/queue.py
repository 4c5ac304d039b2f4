"""The bounded queue between the HTTP sink and the workers.

The sink responds as soon as an alert is in the queue, so the queue bounds memory when the
responder falls behind: a full queue makes the sink respond 503 with ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from dataclasses import dataclass, field

from responder.ingest.alert import Alert

# Alert ids: a prefix unique to this process (start time and random bits, so that replicas and
# restarts differ) and a counter. uuid4 costs an os.urandom call per alert on the request path.
_ID_PREFIX = f"{time.time_ns() & 0xFFFFFFFFFF:010x}{os.urandom(3).hex()}"
_ID_COUNTER = itertools.count()


def new_alert_id() -> str:
    """Return an id unique across this process's lifetime, restarts and replicas."""
    return f"{_ID_PREFIX}{next(_ID_COUNTER):08x}"


@dataclass(frozen=True)
class QueuedAlert:
    """An accepted alert with its id and the moments it was received."""

    alert: Alert
    id: str = field(default_factory=new_alert_id)
    received_ns: int = field(default_factory=time.time_ns)
    received_monotonic: float = field(default_factory=time.monotonic)
    resumed: bool = False
    """True for an alert taken back from the journal after a restart."""


class AlertQueue:
    """A FIFO of accepted alerts with a fixed capacity.

    The sink reserves room first, stores the alerts in the journal, and only then puts them in
    the queue, so that an alert acknowledged with 202 always has its place. An alert counts
    against the capacity until ``done``, also while a worker handles it, in this process or in
    the worker process.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"queue capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self._reserved = 0
        self._unfinished = 0
        self._queue: asyncio.Queue[QueuedAlert] = asyncio.Queue()

    def __len__(self) -> int:
        """Alerts put and not yet done: waiting, or in a worker's hands."""
        return self._unfinished

    def reserve(self, count: int) -> bool:
        """Hold room for ``count`` alerts, or return False when there is not enough."""
        if self._unfinished + self._reserved + count > self.capacity:
            return False
        self._reserved += count
        return True

    def release(self, count: int) -> None:
        """Give back room reserved for alerts that were not accepted after all."""
        self._reserved = max(0, self._reserved - count)

    def put_reserved(self, items: list[QueuedAlert]) -> None:
        """Append alerts for which room was reserved."""
        self.release(len(items))
        self._put_all(items)

    def put_resumed(self, items: list[QueuedAlert]) -> None:
        """Append alerts resumed from the journal; accepted before, they always fit."""
        self._put_all(items)

    def _put_all(self, items: list[QueuedAlert]) -> None:
        self._unfinished += len(items)
        for item in items:
            self._queue.put_nowait(item)

    def offer(self, items: list[QueuedAlert]) -> bool:
        """Append every item, or none when they do not all fit. Never waits."""
        if not self.reserve(len(items)):
            return False
        self.put_reserved(items)
        return True

    async def get(self) -> QueuedAlert:
        """Wait for the next alert."""
        return await self._queue.get()

    async def take(self) -> list[QueuedAlert]:
        """Wait for the next alert, and return it with every alert waiting behind it."""
        items = [await self._queue.get()]
        while not self._queue.empty():
            items.append(self._queue.get_nowait())
        return items

    def done(self, count: int = 1) -> None:
        """Mark ``count`` alerts taken with ``get`` or ``take`` as handled."""
        for _ in range(count):
            self._queue.task_done()
        self._unfinished -= count

    async def wait_idle(self) -> None:
        """Wait until every accepted alert has been handled."""
        await self._queue.join()
