"""The worker pool between the queue and the pipeline.

Alerts about the same target are handled in the order they were accepted: each worker takes the
next alert and waits for the lock of its target before handling it. ``asyncio.Lock`` wakes its
waiters first in, first out, and a worker requests the lock right after taking the alert, with
no await in between, so the order of the queue is kept per target.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import structlog

from responder.ingest.alert import HostTarget, PodTarget
from responder.pipeline import Pipeline
from responder.store.queue import AlertQueue, QueuedAlert

log = structlog.get_logger("responder.workers")


def target_key(item: QueuedAlert) -> str:
    """Return the key that orders alerts: the pod or node, or the alert itself when neither."""
    target = item.alert.target
    if isinstance(target, PodTarget):
        return f"pod/{target.namespace}/{target.pod}"
    if isinstance(target, HostTarget):
        return f"node/{target.node}"
    return f"alert/{item.id}"


class TargetLocks:
    """One lock per target that has an alert in progress; unused locks are dropped."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users <= 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)


async def run_workers(
    queue: AlertQueue,
    pipeline: Pipeline,
    *,
    count: int,
    on_handled: Callable[[QueuedAlert], None] | None = None,
) -> None:
    """Run ``count`` workers that feed the pipeline until cancelled. ``on_handled`` is called
    with each alert once the pipeline is done with it."""
    locks = TargetLocks()

    async def work() -> None:
        while True:
            item = await queue.get()
            try:
                pipeline.metrics.queue_depth.set(len(queue))
                async with locks.hold(target_key(item)):
                    await pipeline.handle(item)
            except Exception as error:
                log.exception("alert_failed", alert_id=item.id, error=str(error))
            finally:
                queue.done()
                if on_handled is not None:
                    on_handled(item)

    tasks = [asyncio.create_task(work()) for _ in range(count)]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
