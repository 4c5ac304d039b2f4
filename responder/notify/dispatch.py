"""Deliver reports to notifiers without ever holding up the Kubernetes actions.

Each notifier has its own bounded queue and its own worker task, so a slow Slack cannot delay
email or the next alert's actions. A report that finds its notifier's queue full is dropped,
logged and counted.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Mapping

import structlog

from responder.errors import NotifyError
from responder.notify.base import Notifier, Report
from responder.record.metrics import Metrics

log = structlog.get_logger("responder.notify")

# Reports waiting per notifier. A burst of alerts larger than this is summarised by the count of
# dropped reports in the metrics, which is better than unbounded memory.
DEFAULT_QUEUE_SIZE = 1000

# Called once per submitted report when it is sent, has failed for good, or was dropped:
# (notifier name, report, outcome, reason).
SettledCallback = Callable[[str, Report, str, str], Awaitable[None]]


class Dispatcher:
    """One queue and one worker per notifier."""

    def __init__(
        self,
        notifiers: Mapping[str, Notifier],
        *,
        metrics: Metrics,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        on_settled: SettledCallback | None = None,
    ) -> None:
        self.notifiers = dict(notifiers)
        self.metrics = metrics
        self.on_settled = on_settled
        self._queues: dict[str, asyncio.Queue[Report]] = {
            name: asyncio.Queue(maxsize=queue_size) for name in self.notifiers
        }
        self._workers: list[asyncio.Task[None]] = []

    def start(self) -> None:
        for name, notifier in self.notifiers.items():
            task = asyncio.create_task(self._work(notifier, self._queues[name]))
            self._workers.append(task)

    async def submit(self, name: str, report: Report) -> bool:
        """Queue ``report`` for notifier ``name``; return False when it was dropped."""
        queue = self._queues.get(name)
        if queue is None:
            log.error("notification_failed", notifier=name, reason="notifier not configured")
            self.metrics.notifications.labels(name, "failed").inc()
            await self._settle(name, report, "failed", "notifier not configured")
            return False
        try:
            queue.put_nowait(report)
        except asyncio.QueueFull:
            log.warning(
                "notification_dropped",
                notifier=name,
                alert_id=report.alert_id,
                playbook=report.playbook,
                reason="queue full",
            )
            self.metrics.notifications.labels(name, "dropped").inc()
            await self._settle(name, report, "dropped", "queue full")
            return False
        return True

    async def _settle(self, name: str, report: Report, outcome: str, reason: str) -> None:
        if self.on_settled is None:
            return
        try:
            await self.on_settled(name, report, outcome, reason)
        except Exception as error:
            log.exception("notification_record_failed", notifier=name, error=str(error))

    async def _work(self, notifier: Notifier, queue: asyncio.Queue[Report]) -> None:
        while True:
            report = await queue.get()
            outcome, reason = "sent", ""
            try:
                await notifier.send(report)
            except NotifyError as error:
                # The notifier has logged notification_failed with the details.
                self.metrics.notifications.labels(notifier.name, "failed").inc()
                outcome, reason = "failed", str(error)
            except Exception as error:
                log.exception(
                    "notification_failed",
                    notifier=notifier.name,
                    alert_id=report.alert_id,
                    playbook=report.playbook,
                    error=f"{type(error).__name__}: {error}",
                )
                self.metrics.notifications.labels(notifier.name, "failed").inc()
                outcome, reason = "failed", f"{type(error).__name__}: {error}"
            else:
                self.metrics.notifications.labels(notifier.name, "sent").inc()
            try:
                await self._settle(notifier.name, report, outcome, reason)
            finally:
                queue.task_done()

    async def drain(self, timeout_s: float) -> None:
        """Wait up to ``timeout_s`` for queued reports to be sent."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                for queue in self._queues.values():
                    await queue.join()

    async def close(self) -> None:
        for task in self._workers:
            task.cancel()
        for task in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for notifier in self.notifiers.values():
            await notifier.close()
