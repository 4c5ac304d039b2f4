"""The sink's side of the worker process, against a stand-in child on a real socket pair."""

from __future__ import annotations

import asyncio
import os
import pickle
import signal
import socket
import struct
import sys
import time
from pathlib import Path

import pytest

from responder.errors import ConfigError
from responder.settings import Settings
from responder.store.journal import Decision
from responder.store.queue import AlertQueue, QueuedAlert
from responder.workers.channel import Channel
from responder.workers.process import NOTIFY_DRAIN_S, SHUTDOWN_GRACE_S
from responder.workers.supervisor import WorkerProcess
from tests.samples import sample_alert
from tests.serve import REPO, hanging_kubeconfig, process_gone


class RecordingJournal:
    """The journal calls the supervisor makes, kept in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    def record_soon(self, decision: Decision) -> None:
        self.calls.append(("record", decision))

    def finish_soon(self, alert_id: str) -> None:
        self.calls.append(("finish", alert_id))

    async def decisions(self, alert_id: str) -> list[Decision]:
        return [Decision(alert_id, "match", 1, "shell", "", 0, "", "matched")]


async def stand_in(journal: RecordingJournal) -> tuple[WorkerProcess, socket.socket, list[str]]:
    """Return a supervisor wired to a sleeping child process and a socket in place of the
    worker process's end of the channel."""
    failures: list[str] = []
    queue = AlertQueue(10)
    workers = WorkerProcess(
        queue,
        journal,
        on_failure=lambda: failures.append("stopped"),  # type: ignore[arg-type]
    )
    # The stand-in ignores the drain request, so stop() kills it after this.
    workers.drain_timeout_s = 0.2
    ours, theirs = socket.socketpair()
    workers._process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "import time; time.sleep(30)", start_new_session=True
    )
    workers._channel = channel = await Channel.open(ours)
    workers._reader = asyncio.create_task(workers._read(channel))
    workers._feeder = asyncio.create_task(workers._feed(channel))
    return workers, theirs, failures


def frame(messages: list[tuple[object, ...]]) -> bytes:
    payload = pickle.dumps(messages)
    return struct.pack(">I", len(payload)) + payload


async def test_reports_reach_journal_and_queue() -> None:
    journal = RecordingJournal()
    workers, theirs, failures = await stand_in(journal)
    queue = workers._queue
    item = QueuedAlert(sample_alert("falco-direct", 1), resumed=True)
    queue.put_resumed([item])
    peer = await Channel.open(theirs)
    try:
        [(kind, batch)] = await asyncio.wait_for(peer.receive(), 5)
        assert "alerts" == kind
        assert item.id == batch[0][0].id
        # A resumed alert travels with its recorded decisions.
        assert "matched" == batch[0][1][0].reason
        decision = Decision(item.id, "action", 2, "shell", "label_pod", 0, "success", "done")
        peer.send("record", decision)
        peer.send("finish", item.id)
        peer.send("handled", item.id)
        await peer.drain()
        for _ in range(100):
            if len(queue) == 0:
                break
            await asyncio.sleep(0.01)
        assert 0 == len(queue)
        assert [("record", decision), ("finish", item.id)] == journal.calls
        assert [] == failures
    finally:
        await peer.close()
        await workers.stop()


async def test_corrupt_frame_stops_both() -> None:
    workers, theirs, failures = await stand_in(RecordingJournal())
    process = workers._process
    assert process is not None
    theirs.sendall(struct.pack(">I", 5) + b"\x80junk")
    await asyncio.wait_for(process.wait(), 5)
    for _ in range(100):
        if failures:
            break
        await asyncio.sleep(0.01)
    theirs.close()
    await workers.stop()
    assert ["stopped"] == failures
    assert workers.failed is not None
    assert "status -9" in workers.failed


async def test_exit_without_drain_stops_sink() -> None:
    workers, theirs, failures = await stand_in(RecordingJournal())
    process = workers._process
    assert process is not None
    process.kill()
    theirs.close()
    for _ in range(200):
        if failures:
            break
        await asyncio.sleep(0.01)
    await workers.stop()
    assert ["stopped"] == failures
    assert "exited with status -9" == (workers.failed or "").removeprefix("the worker process ")


def test_sink_outwaits_worker_drain() -> None:
    # The worker process drains within SHUTDOWN_GRACE_S, actions and notifications together, and
    # the sink kills it only after that.
    assert NOTIFY_DRAIN_S < SHUTDOWN_GRACE_S
    assert WorkerProcess(AlertQueue(1), None).drain_timeout_s > SHUTDOWN_GRACE_S


async def test_hung_start_killed_at_once(tmp_path: Path) -> None:
    """A kubeconfig credential plugin that never returns keeps the worker process from
    starting."""
    kubeconfig, pid_file = hanging_kubeconfig(tmp_path)
    settings = Settings(
        playbooks=[REPO / "playbooks"],
        kubernetes={"kubeconfig": kubeconfig},
        notifiers={"security": {"type": "log"}},
        auth={"mode": "none", "allow_unauthenticated": True},
    )
    workers = WorkerProcess(AlertQueue(10), None)
    workers.start_timeout_s = 2.0
    started = time.monotonic()
    with pytest.raises(ConfigError, match="did not start within 2 s; check the kubeconfig"):
        await workers.start(settings)
    plugin = int(pid_file.read_text())
    try:
        process = workers._process
        assert process is not None
        assert process.returncode is not None
        await workers.stop()
        # Killed at once: no wait for a drain that a process stuck at start cannot take.
        assert time.monotonic() - started < 10
        # The plugin was in the worker process's group, and went with it.
        for _ in range(100):
            if process_gone(plugin):
                break
            await asyncio.sleep(0.02)
        assert process_gone(plugin)
    finally:
        if not process_gone(plugin):
            os.kill(plugin, signal.SIGKILL)
