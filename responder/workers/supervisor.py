"""The sink's side of the worker process: start it, feed it, record what it reports, stop it.

The sink process keeps the HTTP server and the journal; the worker process (``process``) runs
the pipeline on a core of its own. The sink sends each accepted alert once it is committed, and
writes the decisions and finished alerts the worker process reports to the journal, so that the
journal keeps a single writer. If the worker process exits on its own, the sink stops too and
``failed`` contains the reason. What was accepted is pending in the journal, and the next start
resumes it, as after any crash.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import socket
import sys
from collections.abc import Callable
from typing import Any

import structlog

from responder.errors import ConfigError
from responder.settings import Settings
from responder.store.journal import Decision, Journal
from responder.store.queue import AlertQueue, QueuedAlert
from responder.workers.channel import Channel, ChannelClosed, Message
from responder.workers.process import SHUTDOWN_GRACE_S

log = structlog.get_logger("responder.workers")

# Time the worker process has to load the playbooks and connect to Kubernetes.
START_TIMEOUT_S = 60.0
# Time the worker process has to reply to a scrape of /metrics or to a readiness probe.
REPLY_TIMEOUT_S = 5.0
# Time the worker process has to exit after its own drain, which takes SHUTDOWN_GRACE_S at most.
EXIT_MARGIN_S = 2.0


def stop_sink() -> None:
    """Stop the sink as SIGTERM does: it stops accepting and closes the journal cleanly."""
    os.kill(os.getpid(), signal.SIGTERM)


class WorkerProcess:
    """The worker process, seen from the sink."""

    def __init__(
        self,
        queue: AlertQueue,
        journal: Journal | None,
        *,
        on_failure: Callable[[], None] = stop_sink,
    ) -> None:
        self._queue = queue
        self._journal = journal
        self._on_failure = on_failure
        self._process: asyncio.subprocess.Process | None = None
        self._channel: Channel | None = None
        self._reader: asyncio.Task[None] | None = None
        self._feeder: asyncio.Task[None] | None = None
        self._replies: dict[int, asyncio.Future[Any]] = {}
        self._requests = itertools.count()
        self._stopping = False
        self.start_timeout_s = START_TIMEOUT_S
        """Time the worker process has to load the playbooks and connect to Kubernetes."""
        self.drain_timeout_s = SHUTDOWN_GRACE_S + EXIT_MARGIN_S
        """Time the worker process has to exit after a drain request before it is killed."""
        self.kubernetes = False
        """True when the worker process connected to the Kubernetes API."""
        self.failed: str | None = None
        """Why the worker process exited on its own, if it did."""

    async def start(self, settings: Settings) -> None:
        """Start the worker process and wait until it is ready to take alerts."""
        ours, theirs = socket.socketpair()
        try:
            self._process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "responder.workers.process",
                str(theirs.fileno()),
                str(os.getpid()),
                pass_fds=(theirs.fileno(),),
                stdin=asyncio.subprocess.DEVNULL,
                # Not in the terminal's process group: Ctrl-C reaches the sink only, and the
                # sink then requests the worker process to drain.
                start_new_session=True,
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self._channel = channel = await Channel.open(ours)
        channel.send("start", settings, self._journal is not None)
        try:
            async with asyncio.timeout(self.start_timeout_s):
                await self._await_start(channel)
        except TimeoutError:
            # A worker process that has not started cannot take a drain request.
            await self._kill()
            raise ConfigError(
                f"the worker process did not start within {self.start_timeout_s:g} s; check the "
                "kubeconfig's credential plugin, if it has one, and that the playbook files "
                "can be read"
            ) from None
        self._reader = asyncio.create_task(self._read(channel), name="worker-process-reader")
        self._feeder = asyncio.create_task(self._feed(channel), name="worker-process-feeder")

    async def _await_start(self, channel: Channel) -> None:
        started = False
        while not started:
            try:
                messages = await channel.receive()
            except ChannelClosed:
                status = await self._exit_status()
                raise ConfigError(
                    f"the worker process exited at start with status {status}; "
                    "its log lines above give the reason"
                ) from None
            for message in messages:
                if message[0] == "failed":
                    await self._exit_status()
                    raise ConfigError(str(message[1]))
                if message[0] == "started":
                    self.kubernetes = bool(message[1])
                    started = True
                else:
                    self._take(message)

    async def _exit_status(self) -> int | None:
        if self._process is None:
            return None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5.0):
                return await self._process.wait()
        return None

    async def _feed(self, channel: Channel) -> None:
        """Send every alert put in the queue, in order, in batches of what is waiting."""
        while True:
            items = await self._queue.take()
            batch = [(item, await self._recorded(item)) for item in items]
            try:
                channel.send("alerts", batch)
            except ChannelClosed:
                # The reader saw the worker process exit, and the sink is stopping. The alerts
                # stay pending in the journal.
                return

    async def _recorded(self, item: QueuedAlert) -> list[Decision] | None:
        """Return the decisions of a resumed alert, which the worker process skips."""
        if not item.resumed or self._journal is None:
            return None
        try:
            return await self._journal.decisions(item.id)
        except Exception as error:
            # Without them the alert runs every step again, and every action checks its
            # target first.
            log.error(
                "journal_read_failed",
                alert_id=item.id,
                error=f"{type(error).__name__}: {error}",
                effect="the resumed alert runs every step again",
            )
            return None

    async def _read(self, channel: Channel) -> None:
        try:
            while True:
                for message in await channel.receive():
                    self._take(message)
        except ChannelClosed:
            if self._stopping:
                return
        except Exception as error:
            # A frame that does not unpickle, or a message the sink cannot apply: the two
            # processes no longer agree, so the worker process is stopped with the sink.
            log.exception("worker_channel_failed", error=f"{type(error).__name__}: {error}")
            await self._kill()
        if not self._stopping:
            status = await self._exit_status()
            self.failed = f"the worker process exited with status {status}"
            log.error(
                "worker_process_exited",
                status=status,
                effect="stopping; accepted alerts stay pending in the journal and resume at "
                "the next start",
            )
            self._on_failure()

    def _take(self, message: Message) -> None:
        kind = message[0]
        if kind == "handled":
            self._queue.done()
        elif kind == "record" and self._journal is not None:
            _soon(self._journal.record_soon, message[1], message[1].alert_id)
        elif kind == "finish" and self._journal is not None:
            _soon(self._journal.finish_soon, message[1], message[1])
        elif kind in ("ping", "metrics", "ready"):
            reply = self._replies.pop(message[1], None)
            if reply is not None and not reply.done():
                reply.set_result(message[2])
        else:
            log.error("worker_message_unknown", kind=kind)

    async def request(self, kind: str, *, timeout_s: float = REPLY_TIMEOUT_S) -> Any:
        """Request a ``ping``, the worker process's ``metrics`` or its ``ready`` problems, and
        return its reply. Raise TimeoutError when it is not running or does not reply within
        ``timeout_s``."""
        if self._channel is None or self._stopping or self.failed:
            raise TimeoutError("the worker process is not running")
        number = next(self._requests)
        reply: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._replies[number] = reply
        try:
            self._channel.send(kind, number)
            async with asyncio.timeout(timeout_s):
                return await reply
        except ChannelClosed:
            raise TimeoutError("the worker process is not running") from None
        finally:
            self._replies.pop(number, None)

    def forward(self, signum: int) -> None:
        """Send a signal to the worker process, such as SIGHUP to reload the playbooks.

        Not before it has started: until its handlers are installed, which follows the import
        of every module, a SIGHUP would end it, and it loads the playbooks at start anyway."""
        if self._reader is None:
            log.info("signal_not_forwarded", signal=signum, reason="worker process starting")
            return
        if self._process is not None and self._process.returncode is None:
            self._process.send_signal(signum)

    async def stop(self) -> None:
        """Request the worker process to drain, and wait for it to exit."""
        self._stopping = True
        process, channel = self._process, self._channel
        if process is None:
            return
        if self._feeder is not None:
            # Alerts not sent yet stay pending in the journal.
            self._feeder.cancel()

        if process.returncode is None and (channel is None or self._reader is None):
            # Stopped during its start, which a drain request cannot interrupt.
            log.warning("worker_process_killed", reason="stopped before it started")
            await self._kill()
        elif process.returncode is None and channel is not None:
            with contextlib.suppress(ChannelClosed):
                channel.send("drain")
            try:
                async with asyncio.timeout(self.drain_timeout_s):
                    await process.wait()
            except TimeoutError:
                log.error("worker_process_killed", reason="did not exit after draining")
                await self._kill()
        level = log.info if process.returncode == 0 else log.warning
        level("worker_process_stopped", status=process.returncode)

        # The reader applies what the worker process sent before it exited.
        for task in (self._reader, self._feeder):
            if task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if channel is not None:
            await channel.close()
        for reply in self._replies.values():
            reply.cancel()

    async def _kill(self) -> None:
        """Kill the worker process and what it started, such as a credential plugin: it leads
        a process group of its own."""
        process = self._process
        if process is None or process.returncode is not None:
            return
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            # Not a group of its own after all: kill the process alone.
            with contextlib.suppress(ProcessLookupError):
                process.kill()
        await process.wait()


def _soon(write: Any, value: Any, alert_id: str) -> None:
    try:
        write(value)
    except RuntimeError as error:
        # The alert stays pending and is resumed at the next start.
        log.error("journal_write_failed", alert_id=alert_id, error=str(error))
