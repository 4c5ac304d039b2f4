"""The in-process plan: what the playbooks would do with recorded alerts, changing nothing.

Every matched playbook runs through ``run_playbook`` with ``dry_run=True``. With a Kubernetes
client, reads are real and every write goes out with ``dryRun=All``, so the API server validates
it and persists nothing. Without one, each action that needs Kubernetes reports ``dry_run``. No
notification is sent.

The guards and the suppression of repeats run as the daemon would run them, on a clock that
follows the recorded times: each alert is planned at the moment it was received.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import structlog
from prometheus_client import CollectorRegistry

from responder.act.base import ActionContext, ActionSpec
from responder.act.kube import Kube
from responder.act.results import ActionResult, Outcome
from responder.act.run import RunOptions, run_playbook
from responder.drill.record import Record
from responder.drill.report import ActionRow, AlertRow, DrillReport
from responder.guard.policy import Guards
from responder.guard.settings import GuardSettings, SuppressSettings
from responder.guard.suppress import RETRY_LATER, Suppressor
from responder.ingest.alert import Alert, PodTarget, Timestamp
from responder.match.loader import LoadedPlaybook
from responder.match.matcher import Matcher
from responder.record.logs import configure_logging
from responder.settings import Settings

NANOSECONDS = 1_000_000_000
# Outcomes of an action that would change its target in a live run.
ACTING_OUTCOMES = frozenset({Outcome.SUCCESS.value, Outcome.DRY_RUN.value})


@dataclass(frozen=True)
class PlanOptions:
    """Settings of one plan: the Kubernetes client, the deadline, guards and suppression."""

    kube: Kube | None = None
    deadline_s: float = 30.0
    guards: GuardSettings = field(default_factory=GuardSettings)
    suppress: SuppressSettings = field(default_factory=SuppressSettings)


class RecordedClock:
    """A ``Clock`` that reads the receive time of the alert being planned."""

    def __init__(self) -> None:
        self.now_ns = 0

    def time_ns(self) -> int:
        return self.now_ns

    def monotonic(self) -> float:
        return self.now_ns / NANOSECONDS


def options_from_settings(settings: Settings, kube: Kube | None) -> PlanOptions:
    """Take the guard and suppression settings from ``settings`` when it has them.

    The sections are found by type rather than by name, so that the plan keeps working whatever
    key the settings file gives them. A section that is missing gets its defaults.
    """
    guards, suppress = GuardSettings(), SuppressSettings()
    for value in vars(settings).values():
        if isinstance(value, GuardSettings):
            guards = value
        elif isinstance(value, SuppressSettings):
            suppress = value
    return PlanOptions(kube, settings.action_deadline_s, guards, suppress)


@contextlib.contextmanager
def warnings_to_stderr() -> Iterator[None]:
    """Send log events of warning and above to standard error while planning, then restore the
    previous configuration, so that actions' logs never mix into a table or JSON on stdout."""
    saved = structlog.get_config()
    configure_logging("auto", "warning")
    try:
        yield
    finally:
        structlog.configure(**saved)


async def plan_records(
    records: Sequence[Record], playbooks: Sequence[LoadedPlaybook], options: PlanOptions
) -> DrillReport:
    """Plan every record in order and return the report."""
    planner = _Planner(playbooks, options)
    rows = [await planner.plan(index, record) for index, record in enumerate(records, 1)]
    started = Timestamp(records[0].received_ns).isoformat() if records else ""
    return DrillReport("plan", started, rows)


class _Planner:
    def __init__(self, playbooks: Sequence[LoadedPlaybook], options: PlanOptions) -> None:
        self.matcher = Matcher(playbooks)
        self.options = options
        self.clock = RecordedClock()
        registry = CollectorRegistry()
        self.guards = Guards(options.guards, clock=self.clock, registry=registry)
        self.suppressor = Suppressor(options.suppress, clock=self.clock, registry=registry)
        self.first_ns: int | None = None
        self.log: structlog.stdlib.BoundLogger = structlog.get_logger("responder.drill").bind()

    async def plan(self, index: int, record: Record) -> AlertRow:
        if self.first_ns is None:
            self.first_ns = record.received_ns
        self.clock.now_ns = record.received_ns
        alert = record.parsed()
        target = alert.target
        row = AlertRow(
            index=index,
            rule=alert.rule,
            priority=str(alert.priority),
            target=str(target) if target is not None else None,
            output=alert.output,
            offset_s=(record.received_ns - self.first_ns) / NANOSECONDS,
        )
        if alert.is_internal:
            row.ignored = "internal event" if alert.source == "internal" else "test event"
            return row
        if self.suppressor.duplicate(alert):
            window = self.options.suppress.dedup_window_s
            row.suppressed.append(f"duplicate of an alert in the last {window:g} s")
            return row
        unfinished: list[str] = []
        for loaded in self.matcher.match(alert):
            row.playbooks.append(loaded.name)
            cooldown_s = getattr(loaded.playbook, "cooldown_s", None)
            if self.suppressor.cooldown(alert, loaded.name, cooldown_s):
                row.suppressed.append(f"{loaded.name}: in cooldown for {row.target}")
            else:
                results = await self._run(loaded, alert, f"plan-{index:06d}")
                row.actions.extend(self._rows(loaded.name, results, row.offset_s))
                if any(result.outcome in RETRY_LATER for result in results):
                    unfinished.append(loaded.name)
            if loaded.playbook.stop:
                break
        if unfinished:
            # As the daemon does: a response that failed or was refused does not hold back
            # the next identical alert.
            self.suppressor.retry_later(alert, unfinished)
        return row

    async def _run(
        self, loaded: LoadedPlaybook, alert: Alert, alert_id: str
    ) -> list[ActionResult]:
        options = RunOptions(
            dry_run=True, deadline_s=self.options.deadline_s, kube=self.options.kube
        )
        log = self.log.bind(alert_id=alert_id, playbook=loaded.name)
        guarded = replace(
            loaded,
            steps=tuple(
                replace(step, spec=replace(step.spec, run=self._guarded(step.spec)))
                for step in loaded.steps
            ),
        )
        results = await run_playbook(guarded, alert, alert_id, options=options, log=log)
        checked: list[ActionResult] = []
        for step, result in zip(loaded.steps, results, strict=True):
            if self.options.kube is None and result.outcome is Outcome.DRY_RUN:
                # Without Kubernetes, run_playbook returns dry_run before the action (and the
                # guard inside it) runs, so the guards are asked here instead.
                context = self._context(alert, alert_id, loaded.name, log, checked)
                refusal = await self.guards.check(step.spec, context)
                result = refusal or result
            if step.spec.destructive and _outcome(result) in ACTING_OUTCOMES:
                self._spend_budget(step.spec, alert)
            checked.append(result)
        return checked

    def _guarded(self, spec: ActionSpec[Any]) -> Any:
        async def run(context: ActionContext, parameters: Any) -> ActionResult:
            refusal = await self.guards.check(spec, context)
            if refusal is not None:
                return refusal
            return await spec.run(context, parameters)

        return run

    def _context(
        self,
        alert: Alert,
        alert_id: str,
        playbook: str,
        log: structlog.stdlib.BoundLogger,
        previous: list[ActionResult],
    ) -> ActionContext:
        return ActionContext(
            alert=alert,
            alert_id=alert_id,
            playbook=playbook,
            dry_run=True,
            kube=None,
            log=log,
            previous=list(previous),
        )

    def _spend_budget(self, spec: ActionSpec[Any], alert: Alert) -> None:
        # In dry-run the guards only read the budget. The plan forecasts a live run, where each
        # destructive action that acts spends a token, so the token is taken here.
        target = alert.target
        namespace = target.namespace if isinstance(target, PodTarget) else None
        self.guards.budget.take(
            object(), spec.name, namespace, self.clock.monotonic(), consume=True
        )

    def _rows(
        self, playbook: str, results: list[ActionResult], offset_s: float
    ) -> list[ActionRow]:
        rows = []
        ended_s = offset_s
        for result in results:
            ended_s += result.duration_s
            rows.append(
                ActionRow(
                    playbook=playbook,
                    name=result.action,
                    outcome=_outcome(result),
                    reason=result.reason,
                    duration_s=round(result.duration_s, 6),
                    offset_s=ended_s,
                )
            )
        return rows


def _outcome(result: ActionResult) -> str:
    # A guard's refusal carries its intended outcome in details until Outcome has a member for it.
    intended = result.details.get("outcome") if "guard" in result.details else None
    return intended if isinstance(intended, str) else result.outcome.value
