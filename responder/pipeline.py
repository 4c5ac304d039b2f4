"""The path of one accepted alert: match → act → record → notify.

Workers take alerts from the queue and hand each to ``Pipeline.handle``. Every decision is one
structured log line with the alert id, rule, playbook, action, namespace, pod and outcome, and a
metric; notifications go to the dispatcher last, so that they never delay an action.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass

import structlog

from responder.act.kube import Kube
from responder.act.results import ActionResult
from responder.act.run import RunOptions, run_playbook
from responder.ingest.alert import HostTarget, PodTarget
from responder.match.loader import LoadedPlaybook
from responder.match.matcher import Matcher
from responder.notify.base import Report
from responder.notify.dispatch import Dispatcher
from responder.record.metrics import Metrics
from responder.store.queue import AlertQueue, QueuedAlert

log = structlog.get_logger("responder.pipeline")


@dataclass(frozen=True)
class PlaybookRun:
    """What one playbook did for one alert."""

    playbook: LoadedPlaybook
    results: list[ActionResult]
    dry_run: bool


class Pipeline:
    """Matches, acts, records and notifies for each accepted alert."""

    def __init__(
        self,
        matcher: Matcher,
        *,
        metrics: Metrics,
        dispatcher: Dispatcher | None,
        kube: Kube | None,
        dry_run: bool,
        deadline_s: float,
    ) -> None:
        self.matcher = matcher
        self.metrics = metrics
        self.dispatcher = dispatcher
        self.kube = kube
        self.dry_run = dry_run
        self.deadline_s = deadline_s

    async def handle(self, item: QueuedAlert) -> list[PlaybookRun]:
        """Run every matching playbook for one alert, in order, and return what each did."""
        alert = item.alert
        bound = log.bind(alert_id=item.id, rule=alert.rule, **_target_fields(item))
        if alert.is_internal:
            reason = "test event" if alert.source != "internal" else "internal event"
            self.metrics.alerts_ignored.labels(reason.replace(" ", "_")).inc()
            bound.info("alert_ignored", reason=f"{reason}: no response action runs")
            return []
        matcher = self.matcher  # one consistent set, even if a reload swaps it meanwhile
        playbooks = matcher.match(alert)
        if not playbooks:
            bound.info("alert_unmatched", priority=str(alert.priority), source=alert.source)
            return []
        runs = []
        for loaded in playbooks:
            runs.append(await self._run(loaded, item, bound))
            if loaded.playbook.stop:
                bound.info("playbooks_stopped", playbook=loaded.name)
                break
        self.metrics.end_to_end.observe(time.monotonic() - item.received_monotonic)
        return runs

    async def _run(
        self, loaded: LoadedPlaybook, item: QueuedAlert, bound: structlog.stdlib.BoundLogger
    ) -> PlaybookRun:
        self.metrics.playbook_matches.labels(loaded.name).inc()
        dry_run = self.dry_run or loaded.playbook.dry_run
        playbook_log = bound.bind(playbook=loaded.name)
        playbook_log.info("playbook_matched", dry_run=dry_run)
        options = RunOptions(dry_run=dry_run, deadline_s=self.deadline_s, kube=self.kube)
        results = await run_playbook(
            loaded, item.alert, item.id, options=options, log=playbook_log
        )
        for result in results:
            self.metrics.actions.labels(result.action, result.outcome.value).inc()
            self.metrics.action_duration.labels(result.action).observe(result.duration_s)
            playbook_log.info(
                "action_done",
                action=result.action,
                outcome=result.outcome.value,
                reason=result.reason,
                duration_ms=round(result.duration_s * 1000, 3),
            )
        self._notify(loaded, item, results, dry_run)
        return PlaybookRun(loaded, results, dry_run)

    def _notify(
        self, loaded: LoadedPlaybook, item: QueuedAlert, results: list[ActionResult], dry_run: bool
    ) -> None:
        if self.dispatcher is None:
            return
        report = Report(
            alert=item.alert,
            alert_id=item.id,
            playbook=loaded.name,
            description=loaded.playbook.description,
            results=tuple(results),
            dry_run=dry_run,
        )
        for name in loaded.playbook.notify:
            self.dispatcher.submit(name, report)


def _target_fields(item: QueuedAlert) -> dict[str, str]:
    target = item.alert.target
    if isinstance(target, PodTarget):
        return {"namespace": target.namespace, "pod": target.pod}
    if isinstance(target, HostTarget):
        return {"node": target.node}
    return {}


async def run_workers(queue: AlertQueue, pipeline: Pipeline, *, count: int) -> None:
    """Run ``count`` workers that feed the pipeline until cancelled."""

    async def work() -> None:
        while True:
            item = await queue.get()
            try:
                pipeline.metrics.queue_depth.set(len(queue))
                await pipeline.handle(item)
            except Exception as error:
                log.exception("alert_failed", alert_id=item.id, error=str(error))
            finally:
                queue.done()

    tasks = [asyncio.create_task(work()) for _ in range(count)]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
