"""The path of one accepted alert: match → guard → act → record → notify.

Workers take alerts from the queue and hand each to ``Pipeline.handle``. Every decision is one
structured log line with the alert id, rule, playbook, action, namespace, pod and outcome, a
metric, and a row in the journal. Notifications go to the dispatcher last, so that they never
delay an action. An alert is finished in the journal once its actions are done and every one of
its notifications has been sent, has failed for good, or was dropped.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import structlog

from responder.act.kube import Kube
from responder.act.results import ActionResult, Outcome
from responder.act.run import RunOptions, run_playbook
from responder.guard.policy import Guards
from responder.guard.suppress import RETRY_LATER, Suppressor
from responder.ingest.alert import HostTarget, PodTarget
from responder.match.loader import LoadedPlaybook
from responder.match.matcher import Matcher
from responder.notify.base import Report
from responder.notify.dispatch import Dispatcher
from responder.record.metrics import Metrics
from responder.store.journal import (
    ACTION,
    IGNORED,
    MATCH,
    NOTIFICATION,
    SUPPRESSED,
    Decision,
    DecisionLog,
)
from responder.store.queue import QueuedAlert

log = structlog.get_logger("responder.pipeline")

# Outcomes of guards that rejected an action. Notifications add a note for each.
REFUSALS = frozenset({Outcome.PROTECTED, Outcome.STALE, Outcome.BUDGET_EXHAUSTED})


@dataclass(frozen=True)
class PlaybookRun:
    """The results of one playbook for one alert."""

    playbook: LoadedPlaybook
    results: list[ActionResult]
    dry_run: bool


@dataclass
class _Resume:
    """The steps and notifications that the journal records as done for a resumed alert."""

    steps: dict[str, dict[int, ActionResult]] = field(default_factory=dict)
    notified: set[tuple[str, str]] = field(default_factory=set)

    @classmethod
    def of(cls, decisions: list[Decision]) -> _Resume:
        resume = cls()
        for decision in decisions:
            if decision.kind == ACTION:
                result = ActionResult(decision.name, Outcome(decision.outcome), decision.reason)
                resume.steps.setdefault(decision.playbook, {})[decision.step] = result
            elif decision.kind == NOTIFICATION and decision.outcome == "sent":
                resume.notified.add((decision.playbook, decision.name))
        return resume


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
        journal: DecisionLog | None = None,
        drill_dry_run: bool = True,
        guards: Guards | None = None,
        suppressor: Suppressor | None = None,
    ) -> None:
        self.matcher = matcher
        self.metrics = metrics
        self.dispatcher = dispatcher
        self.kube = kube
        self.dry_run = dry_run
        self.deadline_s = deadline_s
        self.journal = journal
        self.drill_dry_run = drill_dry_run
        self.guards = guards
        self.suppressor = suppressor
        # Notifications not yet settled, by alert id; the alert is finished when none is left.
        self._unsettled: dict[str, int] = {}
        # Alerts whose handling was cut off: they stay pending, even when a notification of
        # theirs settles later.
        self._abandoned: set[str] = set()
        if dispatcher is not None:
            dispatcher.on_settled = self._notification_settled

    async def handle(self, item: QueuedAlert) -> list[PlaybookRun]:
        """Run every matching playbook for one alert, in order, and return what each did."""
        alert = item.alert
        bound = log.bind(alert_id=item.id, rule=alert.rule, **_target_fields(item))
        if alert.is_internal:
            reason = "internal event" if alert.source == "internal" else "test event"
            self.metrics.alerts_ignored.labels(reason.replace(" ", "_")).inc()
            bound.info("alert_ignored", reason=f"{reason}: no response action runs")
            self._record(Decision(item.id, IGNORED, time.time_ns(), reason=reason))
            self._finish(item.id)
            return []

        matcher = self.matcher  # one consistent set, even if a reload swaps it meanwhile
        playbooks = matcher.match(alert)
        if not playbooks:
            # Most alerts match no playbook, so a debug line and a count keep the log short.
            self.metrics.alerts_ignored.labels("no_match").inc()
            bound.debug("alert_unmatched", priority=str(alert.priority), source=alert.source)
            self._finish(item.id)
            return []

        resume = await self._resume(item)
        # A resumed alert was counted when it first came, and counting it again would suppress it.
        if not item.resumed and self.suppressor is not None and self.suppressor.duplicate(alert):
            bound.info("alert_suppressed", reason="duplicate", key=self.suppressor.key(alert))
            self._record(
                Decision(item.id, SUPPRESSED, time.time_ns(), reason="duplicate alert in window")
            )
            self._finish(item.id)
            return []

        runs: list[PlaybookRun] = []
        # This call keeps one count until every playbook ran, and each notification adds one.
        self._unsettled[item.id] = self._unsettled.get(item.id, 0) + 1
        completed = False
        try:
            for loaded in playbooks:
                if self._cooling_down(loaded, item, resume):
                    bound.info("playbook_suppressed", playbook=loaded.name, reason="cooldown")
                    self._record(
                        Decision(
                            item.id,
                            SUPPRESSED,
                            time.time_ns(),
                            loaded.name,
                            reason="playbook in cooldown for this target",
                        )
                    )
                    if loaded.playbook.stop:
                        break
                    continue
                run = await self._run(loaded, item, bound, resume)
                runs.append(run)
                await self._notify(run, item, resume)
                if loaded.playbook.stop:
                    bound.info("playbooks_stopped", playbook=loaded.name)
                    break
            completed = True
        finally:
            self.metrics.end_to_end.observe(time.monotonic() - item.received_monotonic)
            self._retry_later(item, runs)
            if completed:
                self._release(item.id)
            else:
                # Cancelled at shutdown, or failed: the alert stays pending in the journal and
                # resumes at the next start, skipping the steps already recorded.
                self._unsettled.pop(item.id, None)
                self._abandoned.add(item.id)
        return runs

    def _retry_later(self, item: QueuedAlert, runs: list[PlaybookRun]) -> None:
        if self.suppressor is None:
            return
        unfinished = [
            run.playbook.name
            for run in runs
            if any(result.outcome in RETRY_LATER for result in run.results)
        ]
        if unfinished:
            self.suppressor.retry_later(item.alert, unfinished)

    def _cooling_down(self, loaded: LoadedPlaybook, item: QueuedAlert, resume: _Resume) -> bool:
        if self.suppressor is None or loaded.name in resume.steps:
            return False
        return self.suppressor.cooldown(item.alert, loaded.name, loaded.playbook.cooldown_s)

    async def _resume(self, item: QueuedAlert) -> _Resume:
        if not item.resumed or self.journal is None:
            return _Resume()
        resume = _Resume.of(await self.journal.decisions(item.id))
        log.info(
            "alert_resumed", alert_id=item.id, steps_done=sum(map(len, resume.steps.values()))
        )
        return resume

    async def _run(
        self,
        loaded: LoadedPlaybook,
        item: QueuedAlert,
        bound: structlog.stdlib.BoundLogger,
        resume: _Resume,
    ) -> PlaybookRun:
        self.metrics.playbook_matches.labels(loaded.name).inc()
        dry_run = (
            self.dry_run or loaded.playbook.dry_run or (item.alert.drill and self.drill_dry_run)
        )
        playbook_log = bound.bind(playbook=loaded.name)
        playbook_log.info("playbook_matched", dry_run=dry_run)
        completed = resume.steps.get(loaded.name, {})
        if not completed:
            self._record(Decision(item.id, MATCH, time.time_ns(), loaded.name, reason="matched"))

        async def record(step: int, result: ActionResult) -> None:
            self.metrics.actions.labels(result.action, result.outcome.value).inc()
            self.metrics.action_duration.labels(result.action).observe(result.duration_s)
            playbook_log.info(
                "action_done",
                action=result.action,
                outcome=result.outcome.value,
                reason=result.reason,
                duration_ms=round(result.duration_s * 1000, 3),
            )
            self._record(
                Decision(
                    item.id,
                    ACTION,
                    time.time_ns(),
                    loaded.name,
                    result.action,
                    step,
                    result.outcome.value,
                    result.reason,
                    {"duration_s": round(result.duration_s, 6), "dry_run": dry_run},
                )
            )

        options = RunOptions(
            dry_run=dry_run, deadline_s=self.deadline_s, kube=self.kube, guards=self.guards
        )
        results = await run_playbook(
            loaded,
            item.alert,
            item.id,
            options=options,
            log=playbook_log,
            completed=completed,
            record=record,
        )
        return PlaybookRun(loaded, results, dry_run)

    async def _notify(self, run: PlaybookRun, item: QueuedAlert, resume: _Resume) -> None:
        if self.dispatcher is None:
            return
        report = Report(
            alert=item.alert,
            alert_id=item.id,
            playbook=run.playbook.name,
            description=run.playbook.playbook.description,
            results=tuple(run.results),
            dry_run=run.dry_run,
            notes=tuple(self._notes(run, item)),
        )
        for name in run.playbook.playbook.notify:
            if (run.playbook.name, name) in resume.notified:
                log.info("notification_already_sent", alert_id=item.id, notifier=name)
                continue
            self._unsettled[item.id] += 1
            await self.dispatcher.submit(name, report)

    def _notes(self, run: PlaybookRun, item: QueuedAlert) -> list[str]:
        notes = []
        if self.suppressor is not None:
            notes.extend(self.suppressor.digest(item.alert, run.playbook.name))
        refused = [result for result in run.results if result.outcome in REFUSALS]
        notes.extend(f"{result.action} refused: {result.reason}" for result in refused)
        if item.alert.drill and run.dry_run:
            notes.append("drill: every action ran in dry-run")
        return notes

    async def _notification_settled(
        self, notifier: str, report: Report, outcome: str, reason: str
    ) -> None:
        self._record(
            Decision(
                report.alert_id,
                NOTIFICATION,
                time.time_ns(),
                report.playbook,
                notifier,
                outcome=outcome,
                reason=reason,
            )
        )
        self._release(report.alert_id)

    def _release(self, alert_id: str) -> None:
        if alert_id in self._abandoned:
            return
        left = self._unsettled.get(alert_id, 0) - 1
        if left > 0:
            self._unsettled[alert_id] = left
            return
        self._unsettled.pop(alert_id, None)
        self._finish(alert_id)

    def _record(self, decision: Decision) -> None:
        # Queued, not awaited: the decisions ride along with the next commit, and a resumed
        # alert tolerates a lost one (see Journal.record_soon).
        if self.journal is None:
            return
        try:
            self.journal.record_soon(decision)
        except RuntimeError as error:
            log.error("journal_record_failed", alert_id=decision.alert_id, error=str(error))

    def _finish(self, alert_id: str) -> None:
        if self.journal is None:
            return
        try:
            self.journal.finish_soon(alert_id)
        except RuntimeError as error:
            # The alert stays pending and is resumed at the next start.
            log.error("journal_finish_failed", alert_id=alert_id, error=str(error))


def _target_fields(item: QueuedAlert) -> dict[str, str]:
    target = item.alert.target
    if isinstance(target, PodTarget):
        return {"namespace": target.namespace, "pod": target.pod}
    if isinstance(target, HostTarget):
        return {"node": target.node}
    return {}
