"""The pipeline: order of playbooks and steps, failures, targets, deadlines and notifications."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from responder.act.base import ActionContext, ActionSpec, Parameters, Registry
from responder.act.results import ActionResult, Outcome
from responder.clock import FakeClock
from responder.guard.settings import SuppressSettings
from responder.guard.suppress import Suppressor
from responder.ingest.alert import Alert
from responder.match.loader import load_playbooks
from responder.match.matcher import Matcher
from responder.notify.base import Report
from responder.notify.dispatch import Dispatcher
from responder.pipeline import Pipeline
from responder.record.metrics import Metrics
from responder.store.queue import QueuedAlert
from tests.samples import host_alert_document, sample_alert


class StepParameters(Parameters):
    outcome: Outcome = Outcome.SUCCESS
    sleep_s: float = 0.0
    note: str = ""
    raise_error: bool = False


class Recorder:
    """Actions that record their calls and end as their parameters set."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def spec(self, name: str, *, targets: frozenset[str] = frozenset({"pod"})) -> ActionSpec[Any]:
        async def run(context: ActionContext, parameters: StepParameters) -> ActionResult:
            self.calls.append((name, parameters.note))
            if parameters.raise_error:
                raise RuntimeError("boom")
            await asyncio.sleep(parameters.sleep_s)
            return ActionResult(name, parameters.outcome, f"{name} ran")

        return ActionSpec(name, StepParameters, run, f"Test {name}.", targets=targets)


class CollectingNotifier:
    def __init__(self, name: str) -> None:
        self.name = name
        self.reports: list[Report] = []

    async def send(self, report: Report) -> None:
        self.reports.append(report)

    async def close(self) -> None:
        return None


class Harness:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.recorder = Recorder()
        self.registry = Registry()
        for name in ("first", "second", "third"):
            self.registry.add(self.recorder.spec(name))
        self.registry.add(self.recorder.spec("on_node", targets=frozenset({"node", "pod"})))
        self.notifier = CollectingNotifier("team")
        self.metrics = Metrics()

    def pipeline(self, *playbooks: dict[str, Any], dry_run: bool = False) -> Pipeline:
        path = self.tmp_path / "playbooks.yaml"
        path.write_text(yaml.safe_dump({"playbooks": list(playbooks)}), encoding="utf-8")
        report = load_playbooks([path], registry=self.registry, notifiers=["team"])
        assert [] == report.errors
        dispatcher = Dispatcher({"team": self.notifier}, metrics=self.metrics)
        # A stand-in object for the client: the test actions never call it.
        kube: Any = object()
        return Pipeline(
            Matcher(report.playbooks),
            metrics=self.metrics,
            dispatcher=dispatcher,
            kube=kube,
            dry_run=dry_run,
            deadline_s=0.2,
        )


@pytest.fixture
def harness(tmp_path: Path) -> Harness:
    return Harness(tmp_path)


SHELL = sample_alert("falco-direct", 1)


def outcomes(runs: list[Any]) -> list[list[str]]:
    return [[result.outcome.value for result in run.results] for run in runs]


async def test_steps_run_in_order(harness: Harness) -> None:
    pipeline = harness.pipeline(
        {
            "name": "p",
            "actions": [
                {"action": "first", "parameters": {"note": "a"}},
                {"action": "second", "parameters": {"note": "b"}},
            ],
        }
    )
    runs = await pipeline.handle(QueuedAlert(SHELL))
    assert [("first", "a"), ("second", "b")] == harness.recorder.calls
    assert [["success", "success"]] == outcomes(runs)


async def test_failure_stops_playbook(harness: Harness) -> None:
    pipeline = harness.pipeline(
        {
            "name": "p",
            "actions": [
                {"action": "first", "parameters": {"outcome": "failed"}},
                {"action": "second"},
            ],
        }
    )
    runs = await pipeline.handle(QueuedAlert(SHELL))
    assert [["failed", "not_run"]] == outcomes(runs)
    assert [("first", "")] == harness.recorder.calls


async def test_continue_on_failure(harness: Harness) -> None:
    pipeline = harness.pipeline(
        {
            "name": "p",
            "actions": [
                {
                    "action": "first",
                    "parameters": {"outcome": "failed"},
                    "continue_on_failure": True,
                },
                {"action": "second"},
            ],
        }
    )
    runs = await pipeline.handle(QueuedAlert(SHELL))
    assert [["failed", "success"]] == outcomes(runs)


async def test_all_matching_playbooks_run(harness: Harness) -> None:
    pipeline = harness.pipeline(
        {"name": "b", "order": 2, "actions": [{"action": "second"}]},
        {"name": "a", "order": 1, "actions": [{"action": "first"}]},
    )
    runs = await pipeline.handle(QueuedAlert(SHELL))
    assert ["a", "b"] == [run.playbook.name for run in runs]


async def test_stop_skips_later_playbooks(harness: Harness) -> None:
    pipeline = harness.pipeline(
        {"name": "a", "order": 1, "stop": True, "actions": [{"action": "first"}]},
        {"name": "b", "order": 2, "actions": [{"action": "second"}]},
    )
    runs = await pipeline.handle(QueuedAlert(SHELL))
    assert ["a"] == [run.playbook.name for run in runs]
    assert [("first", "")] == harness.recorder.calls


async def test_deadline_fails_step(harness: Harness) -> None:
    pipeline = harness.pipeline(
        {"name": "p", "actions": [{"action": "first", "parameters": {"sleep_s": 5}}]}
    )
    runs = await pipeline.handle(QueuedAlert(SHELL))
    result = runs[0].results[0]
    assert Outcome.FAILED == result.outcome
    assert "timed out after 0.2 s" == result.reason


async def test_exception_becomes_failed(harness: Harness) -> None:
    pipeline = harness.pipeline(
        {"name": "p", "actions": [{"action": "first", "parameters": {"raise_error": True}}]}
    )
    with capture_logs() as logs:
        runs = await pipeline.handle(QueuedAlert(SHELL))
    assert "unexpected error: RuntimeError: boom" == runs[0].results[0].reason
    assert "action_error" in [entry["event"] for entry in logs]


async def test_pod_action_on_host_alert(harness: Harness) -> None:
    pipeline = harness.pipeline(
        {"name": "p", "actions": [{"action": "first"}, {"action": "on_node"}]}
    )
    runs = await pipeline.handle(QueuedAlert(Alert.model_validate(host_alert_document())))
    assert [["no_target", "success"]] == outcomes(runs)
    assert "needs a pod; the alert names a node" == runs[0].results[0].reason


async def test_internal_event_runs_nothing(harness: Harness) -> None:
    pipeline = harness.pipeline({"name": "all", "actions": [{"action": "first"}]})
    with capture_logs() as logs:
        runs = await pipeline.handle(QueuedAlert(sample_alert("falcosidekick", 10)))
    assert [] == runs
    assert [] == harness.recorder.calls
    assert "alert_ignored" == logs[0]["event"]


async def test_template_rendered_per_alert(harness: Harness) -> None:
    pipeline = harness.pipeline(
        {
            "name": "p",
            "actions": [
                {
                    "action": "first",
                    "parameters": {"note": "{{ rule }}/{{ output_fields.proc.name }}"},
                }
            ],
        }
    )
    await pipeline.handle(QueuedAlert(SHELL))
    assert [("first", "Terminal shell in container/bash")] == harness.recorder.calls


async def test_decision_log_fields(harness: Harness) -> None:
    pipeline = harness.pipeline({"name": "p", "actions": [{"action": "first"}]})
    item = QueuedAlert(SHELL)
    with capture_logs() as logs:
        await pipeline.handle(item)
    (done,) = [entry for entry in logs if entry["event"] == "action_done"]
    expected = {
        "alert_id": item.id,
        "rule": "Terminal shell in container",
        "playbook": "p",
        "action": "first",
        "namespace": "shop",
        "pod": "frontend-6d5f7b9c8d-x2kqp",
        "outcome": "success",
    }
    assert expected == {key: done[key] for key in expected}


async def test_notification_carries_results(harness: Harness) -> None:
    pipeline = harness.pipeline(
        {"name": "p", "actions": [{"action": "first"}], "notify": ["team"], "dry_run": True}
    )
    assert pipeline.dispatcher is not None
    pipeline.dispatcher.start()
    try:
        await pipeline.handle(QueuedAlert(SHELL))
        await pipeline.dispatcher.drain(1.0)
    finally:
        await pipeline.dispatcher.close()
    (report,) = harness.notifier.reports
    assert "p" == report.playbook
    assert report.dry_run
    assert ["first"] == [result.action for result in report.results]


async def test_slow_notifier_does_not_delay_actions(harness: Harness) -> None:
    class SlowNotifier(CollectingNotifier):
        async def send(self, report: Report) -> None:
            await asyncio.sleep(30)

    harness.notifier = SlowNotifier("team")
    pipeline = harness.pipeline(
        {"name": "p", "actions": [{"action": "first"}], "notify": ["team"]}
    )
    assert pipeline.dispatcher is not None
    pipeline.dispatcher.start()
    try:
        async with asyncio.timeout(1.0):
            for _ in range(3):
                await pipeline.handle(QueuedAlert(SHELL))
    finally:
        await pipeline.dispatcher.close()
    assert 3 == len(harness.recorder.calls)


async def test_metrics_have_no_pod_labels(harness: Harness) -> None:
    pipeline = harness.pipeline({"name": "p", "actions": [{"action": "first"}]})
    await pipeline.handle(QueuedAlert(SHELL))
    labels = {
        key
        for family in harness.metrics.registry.collect()
        for sample in family.samples
        for key in sample.labels
    }
    assert {"action", "outcome", "playbook"} <= labels
    assert set() == labels & {"pod", "namespace", "node", "alert_id"}


async def test_drill_alert_forced_dry_run(harness: Harness) -> None:
    pipeline = harness.pipeline({"name": "p", "actions": [{"action": "first"}]})
    drill = SHELL.model_copy(update={"drill": True})
    runs = await pipeline.handle(QueuedAlert(drill))
    assert runs[0].dry_run


async def test_drill_dry_run_can_be_off(harness: Harness) -> None:
    pipeline = harness.pipeline({"name": "p", "actions": [{"action": "first"}]})
    pipeline.drill_dry_run = False
    drill = SHELL.model_copy(update={"drill": True})
    runs = await pipeline.handle(QueuedAlert(drill))
    assert not runs[0].dry_run


async def test_stop_holds_in_cooldown(tmp_path: Path) -> None:
    harness = Harness(tmp_path)
    pipeline = harness.pipeline(
        {"name": "a", "order": 1, "stop": True, "actions": [{"action": "first"}]},
        {"name": "b", "order": 2, "actions": [{"action": "second"}]},
    )
    pipeline.suppressor = Suppressor(
        SuppressSettings(dedup_window_s=0, cooldown_s=300),
        clock=FakeClock(),
        registry=CollectorRegistry(),
    )
    await pipeline.handle(QueuedAlert(SHELL))
    runs = await pipeline.handle(QueuedAlert(SHELL))
    assert [] == runs
    assert [("first", "")] == harness.recorder.calls
