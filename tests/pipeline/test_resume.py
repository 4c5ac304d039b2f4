"""The pipeline with the SQLite journal: decisions, finished alerts, resume after a stop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from responder.act.results import Outcome
from responder.notify.dispatch import Dispatcher
from responder.store.journal import ACTION, NOTIFICATION, Decision
from responder.store.queue import QueuedAlert
from responder.store.sqlite import SqliteJournal
from tests.pipeline.test_pipeline import SHELL, Harness


@pytest.fixture
async def journal(tmp_path: Path) -> AsyncIterator[SqliteJournal]:
    journal = await SqliteJournal(tmp_path / "journal.db").open()
    yield journal
    await journal.close()


PLAYBOOK = {
    "name": "p",
    "actions": [{"action": "first"}, {"action": "second"}],
    "notify": ["team"],
}


async def run_one(harness: Harness, journal: SqliteJournal, item: QueuedAlert) -> None:
    pipeline = harness.pipeline(PLAYBOOK)
    pipeline.journal = journal
    assert isinstance(pipeline.dispatcher, Dispatcher)
    pipeline.dispatcher.start()
    try:
        await pipeline.handle(item)
        await pipeline.dispatcher.drain(2.0)
    finally:
        await pipeline.dispatcher.close()


async def test_decisions_recorded_and_finished(tmp_path: Path, journal: SqliteJournal) -> None:
    harness = Harness(tmp_path)
    item = QueuedAlert(SHELL)
    await journal.append([item])
    await run_one(harness, journal, item)
    record = await journal.get(item.id)
    assert record is not None
    assert "done" == record.state
    kinds = [(decision.kind, decision.name, decision.outcome) for decision in record.decisions]
    expected = [
        ("match", "", ""),
        ("action", "first", "success"),
        ("action", "second", "success"),
        ("notification", "team", "sent"),
    ]
    assert expected == kinds


async def test_resume_skips_done_work(tmp_path: Path, journal: SqliteJournal) -> None:
    harness = Harness(tmp_path)
    item = QueuedAlert(SHELL)
    await journal.append([item])
    now = time.time_ns()
    await journal.record(Decision(item.id, ACTION, now, "p", "first", 0, "success", "earlier"))
    resumed = (await journal.pending())[0]
    assert resumed.resumed
    await run_one(harness, journal, resumed)
    assert [("second", "")] == harness.recorder.calls
    assert 1 == len(harness.notifier.reports)
    (report,) = harness.notifier.reports
    assert [Outcome.SUCCESS, Outcome.SUCCESS] == [result.outcome for result in report.results]


async def test_resume_sends_no_notification_twice(tmp_path: Path, journal: SqliteJournal) -> None:
    harness = Harness(tmp_path)
    item = QueuedAlert(SHELL)
    await journal.append([item])
    now = time.time_ns()
    for step, name in enumerate(("first", "second")):
        await journal.record(Decision(item.id, ACTION, now, "p", name, step, "success", ""))
    await journal.record(Decision(item.id, NOTIFICATION, now, "p", "team", outcome="sent"))
    resumed = (await journal.pending())[0]
    await run_one(harness, journal, resumed)
    record = await journal.get(item.id)
    assert [] == harness.recorder.calls
    assert [] == harness.notifier.reports
    assert record is not None
    assert "done" == record.state


async def test_cancelled_alert_stays_pending(tmp_path: Path, journal: SqliteJournal) -> None:
    harness = Harness(tmp_path)
    playbook = {
        "name": "p",
        "actions": [{"action": "first"}, {"action": "second", "parameters": {"sleep_s": 30}}],
    }
    pipeline = harness.pipeline(playbook)
    pipeline.journal = journal
    pipeline.deadline_s = 60
    item = QueuedAlert(SHELL)
    await journal.append([item])
    task = asyncio.create_task(pipeline.handle(item))
    while len(harness.recorder.calls) < 2:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    pending = await journal.pending()
    assert [item.id] == [queued.id for queued in pending]
