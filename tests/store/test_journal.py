"""The SQLite journal: durability across reopen, decisions, history, grouping and retention."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from responder.store.journal import ACTION, NOTIFICATION, Decision, HistoryFilter, Retention
from responder.store.queue import QueuedAlert
from responder.store.sqlite import SqliteJournal
from tests.samples import sample_alert, sample_lines


@pytest.fixture
async def journal(tmp_path: Path) -> AsyncIterator[SqliteJournal]:
    journal = await SqliteJournal(tmp_path / "journal.db").open()
    yield journal
    await journal.close()


def items(count: int) -> list[QueuedAlert]:
    lines = sample_lines("falco-direct")
    return [QueuedAlert(sample_alert("falco-direct", 1 + i % len(lines))) for i in range(count)]


async def test_pending_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    first = await SqliteJournal(path).open()
    stored = items(3)
    await first.append(stored)
    await first.finish(stored[0].id)
    await first.close()
    again = await SqliteJournal(path).open()
    try:
        pending = await again.pending()
    finally:
        await again.close()
    assert [item.id for item in stored[1:]] == [item.id for item in pending]
    assert stored[1].alert.time == pending[0].alert.time
    assert stored[1].alert.output_fields == pending[0].alert.output_fields


async def test_decisions_in_order(journal: SqliteJournal) -> None:
    (item,) = items(1)
    await journal.append([item])
    first = Decision(item.id, ACTION, 1, "p", "label_pod", 0, "success", "labelled")
    second = Decision(item.id, NOTIFICATION, 2, "p", "security", -1, "sent", "", {"n": 1})
    await journal.record(first)
    await journal.record(second)
    assert [first, second] == await journal.decisions(item.id)


async def test_get_returns_alert_and_decisions(journal: SqliteJournal) -> None:
    (item,) = items(1)
    await journal.append([item])
    await journal.record(Decision(item.id, ACTION, 1, "p", "label_pod", 0, "success", "ok"))
    record = await journal.get(item.id)
    assert record is not None
    assert "pending" == record.state
    assert item.alert.rule == record.alert["rule"]
    assert ["label_pod"] == [decision.name for decision in record.decisions]


async def test_get_unknown_is_none(journal: SqliteJournal) -> None:
    assert await journal.get("nope") is None


async def test_history_filters(journal: SqliteJournal) -> None:
    stored = items(15)
    await journal.append(stored)
    await journal.record(Decision(stored[1].id, ACTION, 1, "dropper", "isolate_pod", 0, "ok", ""))
    shop = await journal.history(HistoryFilter(namespace="shop"))
    by_rule = await journal.history(HistoryFilter(rule="Clear Log Activities"))
    by_playbook = await journal.history(HistoryFilter(playbook="dropper"))
    limited = await journal.history(HistoryFilter(limit=2))
    assert {"shop"} == {record.alert["output_fields"]["k8s.ns.name"] for record in shop}
    assert 5 == len(shop)
    assert 1 == len(by_rule)
    assert [stored[1].id] == [record.id for record in by_playbook]
    assert 2 == len(limited)


async def test_concurrent_writes_share_commits(tmp_path: Path) -> None:
    journal = await SqliteJournal(tmp_path / "journal.db", commit_window_s=0.005).open()
    try:
        await asyncio.gather(*(journal.append([item]) for item in items(200)))
        commits = journal.commits
    finally:
        await journal.close()
    assert 200 > commits


async def test_failed_write_does_not_fail_batch(journal: SqliteJournal) -> None:
    (item,) = items(1)
    await journal.append([item])
    results = await asyncio.gather(
        journal.append([item]), journal.append(items(1)), return_exceptions=True
    )
    assert isinstance(results[0], sqlite3.IntegrityError)
    assert results[1] is None


async def test_prune_by_age_keeps_pending(journal: SqliteJournal) -> None:
    stored = items(4)
    await journal.append(stored)
    await journal.finish(stored[0].id)
    await journal.finish(stored[1].id)
    deleted = await journal.prune(Retention(max_age_s=0))
    assert 2 == deleted
    assert [item.id for item in stored[2:]] == [item.id for item in await journal.pending()]


async def test_prune_by_size(journal: SqliteJournal) -> None:
    stored = items(400)
    await journal.append(stored)
    for item in stored:
        await journal.finish(item.id)
    deleted = await journal.prune(Retention(max_age_s=1e9, max_bytes=64 * 1024))
    remaining = await journal.history(HistoryFilter(limit=1000))
    assert 0 < deleted
    assert 400 == deleted + len(remaining)


async def test_open_fails_on_unwritable_path(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises((OSError, sqlite3.Error)):
        await SqliteJournal(blocker / "journal.db").open()


async def test_writer_survives_failing_operation(journal: SqliteJournal) -> None:
    def broken(connection: sqlite3.Connection) -> None:
        raise UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed")

    with pytest.raises(UnicodeEncodeError):
        await journal._call(broken)
    (item,) = items(1)
    await journal.append([item])
    assert [item.id] == [queued.id for queued in await journal.pending()]


async def test_queued_writes_precede_a_read(journal: SqliteJournal) -> None:
    (item,) = items(1)
    await journal.append([item])
    decisions = [
        Decision(item.id, ACTION, step, "p", "label_pod", step, "success", f"step {step}")
        for step in range(10)
    ]
    # Hold the writer thread, so that the operations handed to it wait in its queue.
    started, release = threading.Event(), threading.Event()

    def hold(connection: sqlite3.Connection) -> None:
        started.set()
        release.wait(5)

    holding = journal._submit(hold)
    assert await asyncio.to_thread(started.wait, 5)
    for decision in decisions:
        journal.record_soon(decision)
    journal.finish_soon(item.id)
    # No await since the writes were queued: the read is submitted behind them.
    read = asyncio.ensure_future(journal.decisions(item.id))
    await asyncio.sleep(0)
    waiting = journal._requests.qsize()
    release.set()
    await holding
    assert decisions == await read
    assert [] == await journal.pending()
    # The eleven writes went to the writer thread as one operation, then came the read.
    assert 2 == waiting


async def test_queued_write_fails_alone(journal: SqliteJournal) -> None:
    (item,) = items(1)
    await journal.append([item])
    good = Decision(item.id, ACTION, 1, "p", "label_pod", 0, "success", "labelled")
    bad = Decision(item.id, ACTION, 2, "p", "label_pod", 1, "success", "lone \ud800")
    unknown = Decision("no-such-alert", ACTION, 3, "p", "label_pod", 0, "success", "")
    # A type sqlite3 cannot bind.
    unbindable = Decision(item.id, ACTION, 4, "p", "label_pod", Decimal(2), "success", "")  # type: ignore[arg-type]
    with capture_logs() as logs:
        journal.record_soon(good)
        journal.record_soon(bad)
        journal.record_soon(unknown)
        journal.record_soon(unbindable)
        journal.finish_soon(item.id)
        assert [good] == await journal.decisions(item.id)
        await asyncio.sleep(0)
    assert [] == await journal.pending()
    failures = [entry for entry in logs if entry["event"] == "journal_write_failed"]
    assert ["record", "record", "record"] == [entry["write"] for entry in failures]
    assert failures[0]["error"].startswith("UnicodeEncodeError")
    assert failures[1]["error"].startswith("IntegrityError")
    assert failures[2]["error"].startswith("ProgrammingError")


async def test_queued_write_after_close_raises(tmp_path: Path) -> None:
    journal = await SqliteJournal(tmp_path / "journal.db").open()
    (item,) = items(1)
    await journal.append([item])
    journal.finish_soon(item.id)
    await journal.close()
    with pytest.raises(RuntimeError, match="not open"):
        journal.finish_soon(item.id)
    again = await SqliteJournal(tmp_path / "journal.db").open()
    try:
        assert [] == await again.pending()
    finally:
        await again.close()
