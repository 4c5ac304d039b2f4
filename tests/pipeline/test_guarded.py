"""Guards and suppression in the pipeline, with a fake clock: what runs, what is refused, and
what the notification reports about it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from responder.act.kube import Kube
from responder.act.results import Outcome
from responder.clock import FakeClock
from responder.guard.policy import Guards
from responder.guard.settings import BudgetSettings, GuardSettings, SuppressSettings
from responder.guard.suppress import Suppressor
from responder.ingest.alert import Alert, Timestamp
from responder.notify.dispatch import Dispatcher
from responder.store.queue import QueuedAlert
from tests.kubeapi import KubeApiServer
from tests.pipeline.test_pipeline import Harness
from tests.samples import sample_document


class Guarded:
    def __init__(
        self,
        tmp_path: Path,
        kube: Kube,
        *,
        suppress: SuppressSettings | None = None,
        **guard_settings: Any,
    ) -> None:
        self.clock = FakeClock()
        self.harness = Harness(tmp_path)
        spec = self.harness.registry.get("third")
        assert spec is not None
        # Make one test action destructive, as delete and isolate are.
        object.__setattr__(spec, "destructive", True)
        self.pipeline = self.harness.pipeline(
            {
                "name": "respond",
                "actions": [{"action": "first"}, {"action": "third"}],
                "notify": ["team"],
            }
        )
        # The guards read pod and namespace labels through a real client.
        self.pipeline.kube = kube
        registry = self.harness.metrics.registry
        settings = GuardSettings(**guard_settings)
        self.pipeline.guards = Guards(settings, clock=self.clock, registry=registry)
        suppress = suppress or SuppressSettings(dedup_window_s=60, cooldown_s=0)
        self.pipeline.suppressor = Suppressor(suppress, clock=self.clock, registry=registry)

    def alert(self, **fields: Any) -> Alert:
        document = sample_document("falco-direct", 1)
        document["time"] = Timestamp(self.clock.time_ns()).isoformat()
        document["output_fields"].update(fields)
        return Alert.model_validate(document)

    async def handle(self, alert: Alert) -> list[str]:
        runs = await self.pipeline.handle(QueuedAlert(alert))
        return [result.outcome.value for run in runs for result in run.results]


@pytest_asyncio.fixture
async def kube(kube_api: KubeApiServer, tmp_path: Path) -> AsyncIterator[Kube]:
    for namespace in ("shop", "kube-system"):
        kube_api.add_namespace(namespace)
        kube_api.add_pod(namespace, "frontend-6d5f7b9c8d-x2kqp")
    client = await Kube.connect(kubeconfig=kube_api.write_kubeconfig(tmp_path / "kubeconfig"))
    yield client
    await client.close()


@pytest.fixture
def guarded(tmp_path: Path, kube: Kube) -> Guarded:
    budget = BudgetSettings(window_s=600, cluster_max=2, namespace_max=2)
    return Guarded(tmp_path, kube, budget=budget)


async def test_fresh_alert_acts(guarded: Guarded) -> None:
    assert ["success", "success"] == await guarded.handle(guarded.alert())


async def test_stale_alert_refused(guarded: Guarded) -> None:
    alert = guarded.alert()
    guarded.clock.advance(601)
    assert ["success", "stale"] == await guarded.handle(alert)


async def test_protected_namespace_refused(guarded: Guarded) -> None:
    alert = guarded.alert(**{"k8s.ns.name": "kube-system"})
    assert ["success", "protected"] == await guarded.handle(alert)


async def test_budget_spent_then_renewed(guarded: Guarded) -> None:
    alerts = [guarded.alert(**{"proc.cmdline": f"bash -c step{index}"}) for index in range(3)]
    outcomes = [await guarded.handle(alert) for alert in alerts]
    assert ["success", "budget_exhausted"] == outcomes[2]
    guarded.clock.advance(601)
    assert ["success", "success"] == await guarded.handle(guarded.alert(**{"user.name": "x"}))


async def test_duplicate_suppressed_and_digested(guarded: Guarded) -> None:
    dispatcher = guarded.pipeline.dispatcher
    assert isinstance(dispatcher, Dispatcher)
    dispatcher.start()
    try:
        first = await guarded.handle(guarded.alert())
        repeated = [await guarded.handle(guarded.alert()) for _ in range(3)]
        guarded.clock.advance(61)
        after = await guarded.handle(guarded.alert())
        await dispatcher.drain(2.0)
    finally:
        await dispatcher.close()
    assert ["success", "success"] == first
    assert [[], [], []] == repeated
    assert ["success", "success"] == after
    notes = guarded.harness.notifier.reports[-1].notes
    assert any("3 identical alerts suppressed" in note for note in notes), notes


async def test_refusal_noted_in_notification(guarded: Guarded) -> None:
    dispatcher = guarded.pipeline.dispatcher
    assert isinstance(dispatcher, Dispatcher)
    dispatcher.start()
    try:
        await guarded.handle(guarded.alert(**{"k8s.ns.name": "kube-system"}))
        await dispatcher.drain(2.0)
    finally:
        await dispatcher.close()
    (report,) = guarded.harness.notifier.reports
    assert Outcome.PROTECTED == report.results[1].outcome
    assert any(note.startswith("third refused:") for note in report.notes), report.notes


async def test_cooldown_skips_playbook(tmp_path: Path, kube: Kube) -> None:
    suppress = SuppressSettings(dedup_window_s=0, cooldown_s=300)
    guarded = Guarded(tmp_path, kube, suppress=suppress)
    first = await guarded.handle(guarded.alert(**{"proc.name": "bash"}))
    cooled = await guarded.handle(guarded.alert(**{"proc.name": "sh"}))
    guarded.clock.advance(301)
    again = await guarded.handle(guarded.alert(**{"proc.name": "zsh"}))
    assert ["success", "success"] == first
    assert [] == cooled
    assert ["success", "success"] == again


async def test_refused_response_not_suppressing(guarded: Guarded) -> None:
    alert = guarded.alert()
    guarded.clock.advance(601)
    refused = await guarded.handle(alert)
    fresh = await guarded.handle(guarded.alert())
    assert ["success", "stale"] == refused
    assert ["success", "success"] == fresh
