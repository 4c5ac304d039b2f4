"""The bounded queue between the HTTP sink and the workers.

The sink answers as soon as an alert is in the queue, so the queue bounds memory when the
responder falls behind: a full queue makes the sink answer 503 with ``Retry-After``.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field

from responder.ingest.alert import Alert


@dataclass(frozen=True)
class QueuedAlert:
    """An accepted alert with its id and the moments it was received."""

    alert: Alert
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    received_ns: int = field(default_factory=time.time_ns)
    received_monotonic: float = field(default_factory=time.monotonic)


class AlertQueue:
    """A FIFO of accepted alerts with a fixed capacity; a batch is accepted whole or not at all."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"queue capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self._queue: asyncio.Queue[QueuedAlert] = asyncio.Queue(maxsize=capacity)

    def __len__(self) -> int:
        return self._queue.qsize()

    def offer(self, items: list[QueuedAlert]) -> bool:
        """Append every item, or none when they do not all fit. Never waits."""
        if self.capacity - self._queue.qsize() < len(items):
            return False
        for item in items:
            self._queue.put_nowait(item)
        return True

    async def get(self) -> QueuedAlert:
        """Wait for the next alert."""
        return await self._queue.get()

    def done(self) -> None:
        """Mark one alert taken with ``get`` as handled."""
        self._queue.task_done()

    async def wait_idle(self) -> None:
        """Wait until every accepted alert has been handled."""
        await self._queue.join()
