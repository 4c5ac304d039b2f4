"""The journal in one SQLite file, in WAL mode, with commits grouped across concurrent writers.

Every write goes to one thread that owns the connection. The thread takes the first waiting
write and every write queued behind it (waiting ``commit_window_s`` more, if set), and commits
them all in one transaction. Writes that arrive during that commit's flush wait for the next,
so a burst of alerts costs one disk flush per batch rather than one per alert. Reads run
on the same thread, which keeps the connection single-threaded as sqlite3 requires.

``synchronous=FULL`` flushes the WAL on every commit: an alert acknowledged with 202 survives a
crash of the process and of the machine.
"""

from __future__ import annotations

import asyncio
import json
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import structlog

from responder.ingest.alert import Alert, HostTarget, PodTarget
from responder.store.journal import AlertRecord, Decision, HistoryFilter, Retention
from responder.store.queue import QueuedAlert

T = TypeVar("T")

log = structlog.get_logger("responder.journal")

SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    id TEXT PRIMARY KEY,
    received_ns INTEGER NOT NULL,
    state TEXT NOT NULL,
    finished_ns INTEGER,
    rule TEXT NOT NULL,
    namespace TEXT,
    pod TEXT,
    node TEXT,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS alerts_pending ON alerts(received_ns) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS alerts_received ON alerts(received_ns);
CREATE TABLE IF NOT EXISTS decisions (
    alert_id TEXT NOT NULL REFERENCES alerts(id) ON DELETE CASCADE,
    at_ns INTEGER NOT NULL,
    kind TEXT NOT NULL,
    playbook TEXT NOT NULL,
    name TEXT NOT NULL,
    step INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    reason TEXT NOT NULL,
    details TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS decisions_alert ON decisions(alert_id);
CREATE INDEX IF NOT EXISTS decisions_playbook ON decisions(playbook);
"""

# Writes gathered into one transaction at most; bounds the latency a large burst adds.
MAX_BATCH = 2048

Operation = Callable[[sqlite3.Connection], Any]

# Errors of one statement that leave the transaction usable: a constraint, or a value that
# cannot be bound (a lone surrogate, an integer over 64 bits, a type sqlite3 cannot store).
STATEMENT_ERRORS = (
    sqlite3.IntegrityError,
    sqlite3.DataError,
    sqlite3.ProgrammingError,
    sqlite3.InterfaceError,
    ValueError,
    TypeError,
    OverflowError,
)


class SqliteJournal:
    """A ``Journal`` in one SQLite file."""

    def __init__(
        self,
        path: Path,
        *,
        commit_window_s: float = 0.0,
        synchronous: str = "FULL",
        max_batch: int = MAX_BATCH,
    ) -> None:
        if synchronous not in ("FULL", "NORMAL"):
            raise ValueError(f"invalid synchronous {synchronous!r}: use FULL or NORMAL")
        self.path = path
        self.commit_window_s = commit_window_s
        self.synchronous = synchronous
        self.max_batch = max_batch
        self._requests: queue.SimpleQueue[
            tuple[Operation, asyncio.Future[Any], asyncio.AbstractEventLoop] | None
        ] = queue.SimpleQueue()
        # Writes of record_soon and finish_soon not yet handed to the writer thread.
        self._soon: list[tuple[Callable[[sqlite3.Connection], None], str]] = []
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.commits = 0
        """Transactions committed, for measuring how well writes are grouped."""

    async def open(self) -> SqliteJournal:
        """Create the file and schema if needed and start the writer thread."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._run, name="journal-writer", daemon=True)
        self._thread.start()
        await asyncio.to_thread(self._ready.wait)
        if self._error is not None:
            raise self._error
        return self

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute(f"PRAGMA synchronous={self.synchronous}")
        connection.execute("PRAGMA foreign_keys=ON")
        connection.execute("PRAGMA auto_vacuum=INCREMENTAL")
        connection.executescript(SCHEMA)
        return connection

    def _run(self) -> None:
        try:
            connection = self._connect()
        except (sqlite3.Error, OSError) as error:
            self._error = error
            self._ready.set()
            return
        self._ready.set()
        try:
            while True:
                first = self._requests.get()
                if first is None:
                    return
                batch = [first]
                stop = self._gather(batch)
                self._execute(connection, batch)
                if stop:
                    return
        finally:
            connection.close()

    def _gather(
        self, batch: list[tuple[Operation, asyncio.Future[Any], asyncio.AbstractEventLoop]]
    ) -> bool:
        deadline = time.monotonic() + self.commit_window_s
        while len(batch) < self.max_batch:
            remaining = deadline - time.monotonic()
            try:
                if remaining > 0:
                    item = self._requests.get(timeout=remaining)
                else:
                    # The window has passed: take what is already waiting, without blocking.
                    item = self._requests.get_nowait()
            except queue.Empty:
                return False
            if item is None:
                return True
            batch.append(item)
        return False

    def _execute(
        self,
        connection: sqlite3.Connection,
        batch: list[tuple[Operation, asyncio.Future[Any], asyncio.AbstractEventLoop]],
    ) -> None:
        results: list[tuple[bool, Any]] = []
        try:
            connection.execute("BEGIN IMMEDIATE")
            for operation, _, _ in batch:
                try:
                    connection.execute("SAVEPOINT operation")
                    results.append((True, operation(connection)))
                    connection.execute("RELEASE operation")
                except Exception as error:
                    connection.execute("ROLLBACK TO operation")
                    connection.execute("RELEASE operation")
                    results.append((False, error))
            connection.execute("COMMIT")
            self.commits += 1
        except sqlite3.Error as error:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            results = [(False, error)] * len(batch)
        # One wake-up of each event loop per batch, rather than one per write.
        settled: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], bool, Any]]] = {}
        for (ok, value), (_, future, loop) in zip(results, batch, strict=True):
            settled.setdefault(loop, []).append((future, ok, value))
        for loop, outcomes in settled.items():
            loop.call_soon_threadsafe(_settle_all, outcomes)

    def _submit(self, operation: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]:
        if self._thread is None or not self._thread.is_alive():
            raise RuntimeError("the journal is not open")
        # Queued writes go first: operations run in the order they were submitted, so a read
        # finds every write submitted before it.
        self._flush_soon()
        return self._submit_unflushed(operation)

    async def _call(self, operation: Callable[[sqlite3.Connection], T]) -> T:
        return await self._submit(operation)

    def _later(self, operation: Callable[[sqlite3.Connection], None], kind: str) -> None:
        """Queue a write and hand every write queued in this pass of the event loop to the
        writer thread as one operation.

        Each hand-off to the thread costs the event loop more than the write itself: with one
        operation per write, the benchmark's throughput at concurrency 32 was about 8 % lower
        in two runs."""
        if self._thread is None or not self._thread.is_alive():
            raise RuntimeError("the journal is not open")
        if not self._soon:
            asyncio.get_running_loop().call_soon(self._flush_soon)
        self._soon.append((operation, kind))

    def _flush_soon(self) -> None:
        writes, self._soon = self._soon, []
        if not writes:
            return
        if self._thread is None or not self._thread.is_alive():
            log.error(
                "journal_write_failed",
                write="queued",
                writes=len(writes),
                error="the journal is not open",
            )
            return

        def write_each(connection: sqlite3.Connection) -> list[tuple[str, Exception]]:
            failures: list[tuple[str, Exception]] = []
            for write, kind in writes:
                try:
                    write(connection)
                except STATEMENT_ERRORS as error:
                    # A value this statement cannot store, such as a lone surrogate: the
                    # statement failed alone and the other writes go on. Other errors, such as
                    # a full disk, fail the whole operation.
                    failures.append((kind, error))
            return failures

        future = self._submit_unflushed(write_each)
        future.add_done_callback(_log_failures)

    def _submit_unflushed(self, operation: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._requests.put((operation, future, loop))
        return future

    async def append(self, items: list[QueuedAlert]) -> None:
        rows = [_alert_row(item) for item in items]

        def insert(connection: sqlite3.Connection) -> None:
            connection.executemany(
                "INSERT INTO alerts (id, received_ns, state, rule, namespace, pod, node, body) "
                "VALUES (?, ?, 'pending', ?, ?, ?, ?, ?)",
                rows,
            )

        await self._call(insert)

    async def pending(self) -> list[QueuedAlert]:
        def select(connection: sqlite3.Connection) -> list[tuple[str, int, str]]:
            return connection.execute(
                "SELECT id, received_ns, body FROM alerts WHERE state = 'pending' "
                "ORDER BY received_ns, rowid"
            ).fetchall()

        rows = await self._call(select)
        return [
            QueuedAlert(
                Alert.model_validate_json(body),
                id=alert_id,
                received_ns=received_ns,
                resumed=True,
            )
            for alert_id, received_ns, body in rows
        ]

    async def record(self, decision: Decision) -> None:
        await self._call(_insert_decision(decision))

    def record_soon(self, decision: Decision) -> None:
        self._later(_insert_decision(decision), "record")

    async def decisions(self, alert_id: str) -> list[Decision]:
        return await self._call(lambda connection: _select_decisions(connection, alert_id))

    async def finish(self, alert_id: str) -> None:
        await self._call(_mark_done(alert_id, time.time_ns()))

    def finish_soon(self, alert_id: str) -> None:
        self._later(_mark_done(alert_id, time.time_ns()), "finish")

    async def get(self, alert_id: str) -> AlertRecord | None:
        def select(connection: sqlite3.Connection) -> AlertRecord | None:
            row = connection.execute(
                "SELECT id, received_ns, state, body, finished_ns FROM alerts WHERE id = ?",
                (alert_id,),
            ).fetchone()
            return _record(connection, row) if row is not None else None

        return await self._call(select)

    async def history(self, query: HistoryFilter) -> list[AlertRecord]:
        return await self._call(lambda connection: select_history(connection, query))

    async def prune(self, retention: Retention) -> int:
        cutoff = time.time_ns() - int(retention.max_age_s * 1_000_000_000)
        return await self._call(lambda connection: _prune(connection, cutoff, retention.max_bytes))

    async def close(self) -> None:
        if self._thread is None:
            return
        if self._thread.is_alive():
            self._flush_soon()
        self._requests.put(None)
        await asyncio.to_thread(self._thread.join)
        self._thread = None


def _insert_decision(decision: Decision) -> Callable[[sqlite3.Connection], None]:
    row = _decision_row(decision)

    def insert(connection: sqlite3.Connection) -> None:
        connection.execute(
            "INSERT INTO decisions (alert_id, at_ns, kind, playbook, name, step, outcome, "
            "reason, details) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            row,
        )

    return insert


def _mark_done(alert_id: str, now_ns: int) -> Callable[[sqlite3.Connection], None]:
    def update(connection: sqlite3.Connection) -> None:
        connection.execute(
            "UPDATE alerts SET state = 'done', finished_ns = ? WHERE id = ?", (now_ns, alert_id)
        )

    return update


def _log_failures(future: asyncio.Future[list[tuple[str, Exception]]]) -> None:
    if future.cancelled():
        return
    error = future.exception()
    if error is not None:
        log.error("journal_write_failed", write="queued", error=f"{type(error).__name__}: {error}")
        return
    for kind, failure in future.result():
        log.error("journal_write_failed", write=kind, error=f"{type(failure).__name__}: {failure}")


def _settle_all(outcomes: list[tuple[asyncio.Future[Any], bool, Any]]) -> None:
    for future, ok, value in outcomes:
        _settle(future, ok, value)


def _settle(future: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if future.cancelled():
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


def _alert_row(item: QueuedAlert) -> tuple[Any, ...]:
    target = item.alert.target
    namespace = target.namespace if isinstance(target, PodTarget) else None
    pod = target.pod if isinstance(target, PodTarget) else None
    node = target.node if isinstance(target, HostTarget) else None
    body = json.dumps(item.alert.to_json(), separators=(",", ":"), ensure_ascii=False)
    return (item.id, item.received_ns, item.alert.rule, namespace, pod, node, body)


def _decision_row(decision: Decision) -> tuple[Any, ...]:
    return (
        decision.alert_id,
        decision.at_ns,
        decision.kind,
        decision.playbook,
        decision.name,
        decision.step,
        decision.outcome,
        decision.reason,
        json.dumps(decision.details, separators=(",", ":"), default=str),
    )


def _select_decisions(connection: sqlite3.Connection, alert_id: str) -> list[Decision]:
    rows = connection.execute(
        "SELECT alert_id, kind, at_ns, playbook, name, step, outcome, reason, details "
        "FROM decisions WHERE alert_id = ? ORDER BY rowid",
        (alert_id,),
    ).fetchall()
    return [
        Decision(
            alert_id=row[0],
            kind=row[1],
            at_ns=row[2],
            playbook=row[3],
            name=row[4],
            step=row[5],
            outcome=row[6],
            reason=row[7],
            details=json.loads(row[8]),
        )
        for row in rows
    ]


def _record(connection: sqlite3.Connection, row: tuple[Any, ...]) -> AlertRecord:
    alert_id, received_ns, state, body, finished_ns = row
    return AlertRecord(
        id=alert_id,
        received_ns=received_ns,
        state=state,
        alert=json.loads(body),
        decisions=_select_decisions(connection, alert_id),
        finished_ns=finished_ns,
    )


def select_history(connection: sqlite3.Connection, query: HistoryFilter) -> list[AlertRecord]:
    """Select alerts for ``responder history``; also used on a read-only connection."""
    clauses: list[str] = []
    values: list[Any] = []
    for column, value in (
        ("namespace", query.namespace),
        ("pod", query.pod),
        ("rule", query.rule),
    ):
        if value is not None:
            clauses.append(f"{column} = ?")
            values.append(value)
    if query.playbook is not None:
        clauses.append("id IN (SELECT alert_id FROM decisions WHERE playbook = ?)")
        values.append(query.playbook)
    if query.since_ns is not None:
        clauses.append("received_ns >= ?")
        values.append(query.since_ns)
    if query.until_ns is not None:
        clauses.append("received_ns <= ?")
        values.append(query.until_ns)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    rows = connection.execute(
        f"SELECT id, received_ns, state, body, finished_ns FROM alerts {where} "
        "ORDER BY received_ns DESC, rowid DESC LIMIT ?",
        (*values, query.limit),
    ).fetchall()
    return [_record(connection, row) for row in rows]


def _prune(connection: sqlite3.Connection, cutoff_ns: int, max_bytes: int) -> int:
    deleted = connection.execute(
        "DELETE FROM alerts WHERE state = 'done' AND received_ns < ?", (cutoff_ns,)
    ).rowcount
    page_size = connection.execute("PRAGMA page_size").fetchone()[0]
    while True:
        pages = connection.execute("PRAGMA page_count").fetchone()[0]
        free = connection.execute("PRAGMA freelist_count").fetchone()[0]
        if (pages - free) * page_size <= max_bytes:
            break
        # Delete the oldest tenth of the done alerts at a time until the data fits.
        batch = connection.execute(
            "DELETE FROM alerts WHERE rowid IN (SELECT rowid FROM alerts WHERE state = 'done' "
            "ORDER BY received_ns LIMIT max(1, (SELECT count(*) FROM alerts "
            "WHERE state = 'done') / 10))"
        ).rowcount
        if batch == 0:
            break
        deleted += batch
    connection.execute("PRAGMA incremental_vacuum")
    return deleted
