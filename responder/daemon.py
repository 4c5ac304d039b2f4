"""Assemble the daemon from its settings: the sink, the journal and the worker process.

The sink process answers HTTP and writes the journal. The worker process (``responder.workers``)
matches, guards, acts and notifies on a core of its own, so that an acknowledgement does not
wait behind the workers' steps on the same event loop. Everything is started in the
application's ``cleanup_ctx`` and stopped on shutdown, after the worker process has drained what
was accepted.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import structlog
from aiohttp import web

from responder.errors import ConfigError
from responder.ingest.auth import auth_middleware, checked_auth
from responder.ingest.server import HealthCheck, Sink, create_app, create_health_app
from responder.match.loader import LoadReport
from responder.record.metrics import Metrics
from responder.settings import Settings
from responder.store.journal import Retention
from responder.store.queue import AlertQueue
from responder.store.sqlite import SqliteJournal
from responder.workers.supervisor import WorkerProcess

log = structlog.get_logger("responder.daemon")

# Time the worker process has to reply to /healthz's ping. The shipped liveness probe gives up
# after 2 s, and a worker process whose loop is alive replies within milliseconds.
LIVENESS_TIMEOUT_S = 1.5


@dataclass
class Daemon:
    """The running parts, kept together for tests and for shutdown."""

    settings: Settings
    metrics: Metrics
    queue: AlertQueue
    workers: WorkerProcess
    sink: Sink


def build_app(settings: Settings, report: LoadReport) -> web.Application:
    """Build the aiohttp application; everything with a lifetime starts in its cleanup context.

    ``report`` is the playbook set checked before the start; the worker process loads the
    playbooks again, as it does on every reload."""
    if not report.ok:
        raise ConfigError("invalid playbooks:\n" + "\n".join(report.errors))
    metrics = Metrics()
    queue = AlertQueue(settings.server.queue_size)
    sink = Sink(
        queue=queue,
        metrics=metrics,
        retry_after_s=settings.server.retry_after_s,
        max_body_bytes=settings.server.max_body_bytes,
        record_path=settings.record,
    )
    app = create_app(sink)
    app.middlewares.append(auth_middleware(checked_auth(settings.auth), metrics))
    app.cleanup_ctx.append(_lifetime(settings, report, sink))
    return app


DAEMON = web.AppKey("daemon", Daemon)


def _lifetime(
    settings: Settings, report: LoadReport, sink: Sink
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as resources:
            await _start(app, settings, report, sink, resources)
            if settings.server.health_port is not None:
                await _serve_health(settings, sink, resources)
            yield
        log.info("responder_stopped")

    return lifetime


async def _start(
    app: web.Application,
    settings: Settings,
    report: LoadReport,
    sink: Sink,
    resources: contextlib.AsyncExitStack,
) -> None:
    """Open the journal and start the worker process, registering how to stop each on
    ``resources``.

    Each part is registered as soon as it runs, so that a failure later in the start stops it
    too. They stop in the reverse order: the worker process drains first, the journal closes
    last."""
    journal = await open_journal(settings)
    if journal is not None:
        resources.push_async_callback(journal.close)
    workers = WorkerProcess(sink.queue, journal)
    # Registered before the stop, so that SIGHUP is forwarded until the worker process has
    # drained. Until the handler is installed, serve ignores SIGHUP, and the worker process
    # inherits that for the time it takes to import its modules.
    loop = asyncio.get_running_loop()
    resources.callback(_stop_forwarding, loop)
    resources.push_async_callback(workers.stop)
    await workers.start(settings)
    loop.add_signal_handler(signal.SIGHUP, workers.forward, signal.SIGHUP)
    sink.readiness.append(_workers_ready(workers))
    sink.liveness.append(_workers_alive(workers))
    sink.worker_metrics = _worker_metrics(workers)
    sink.journal = journal
    app[DAEMON] = Daemon(settings, sink.metrics, sink.queue, workers, sink)
    resumed = await journal.pending() if journal is not None else []
    sink.queue.put_resumed(resumed)
    if journal is not None:
        pruning = asyncio.create_task(_prune_forever(journal, settings))
        resources.callback(pruning.cancel)
    log.info(
        "responder_started",
        playbooks=len(report.playbooks),
        dry_run=settings.dry_run,
        kubernetes=workers.kubernetes,
        notifiers=sorted(settings.notifiers),
        journal=str(settings.journal.path) if journal is not None else None,
        resumed=len(resumed),
    )


async def _serve_health(
    settings: Settings, sink: Sink, resources: contextlib.AsyncExitStack
) -> None:
    """Serve /healthz, /readyz and /metrics on ``server.health_port``, in plain HTTP."""
    host, port = settings.server.host, settings.server.health_port
    runner = web.AppRunner(create_health_app(sink), access_log=None)
    await runner.setup()
    resources.push_async_callback(runner.cleanup)
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as error:
        raise ConfigError(
            f"cannot listen on {host}:{port} for server.health_port: "
            f"{error.strerror or error}; choose another port"
        ) from None
    log.info("health_port_started", host=host, port=port)


async def open_journal(settings: Settings) -> SqliteJournal | None:
    """Open the journal, or return None when it is turned off."""
    path = settings.journal.path
    if path is None:
        log.warning(
            "journal_disabled",
            effect="accepted alerts are kept in memory only and are lost on a restart",
        )
        return None
    try:
        journal = SqliteJournal(
            path,
            commit_window_s=settings.journal.commit_window_s,
            synchronous=settings.journal.synchronous.upper(),
        )
        return await journal.open()
    except (OSError, sqlite3.Error) as error:
        raise ConfigError(
            f"cannot open the journal at {str(path)!r}: {error}; set journal.path to a "
            "writable file"
        ) from error


async def _prune_forever(journal: SqliteJournal, settings: Settings) -> None:
    retention = Retention(settings.journal.max_age_s, settings.journal.max_bytes)
    while True:
        try:
            deleted = await journal.prune(retention)
        except Exception as error:
            log.error("journal_prune_failed", error=f"{type(error).__name__}: {error}")
        else:
            if deleted:
                log.info("journal_pruned", deleted=deleted)
        await asyncio.sleep(settings.journal.prune_interval_s)


def _stop_forwarding(loop: asyncio.AbstractEventLoop) -> None:
    """Remove the SIGHUP handler and ignore SIGHUP for the rest of the stop: its default
    action ends the process, which would skip closing the journal."""
    loop.remove_signal_handler(signal.SIGHUP)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)


def _workers_ready(workers: WorkerProcess) -> HealthCheck:
    async def check() -> str | None:
        if workers.failed is not None:
            return workers.failed
        try:
            problems: list[str] = await workers.request("ready")
        except TimeoutError:
            return "the worker process did not reply in time"
        return "; ".join(problems) or None

    return check


def _workers_alive(workers: WorkerProcess) -> HealthCheck:
    async def check() -> str | None:
        if workers.failed is not None:
            return workers.failed
        try:
            await workers.request("ping", timeout_s=LIVENESS_TIMEOUT_S)
        except TimeoutError:
            return f"the worker process did not reply within {LIVENESS_TIMEOUT_S} s"
        return None

    return check


def _worker_metrics(workers: WorkerProcess) -> Callable[[], Awaitable[bytes]]:
    async def scrape() -> bytes:
        try:
            payload: bytes = await workers.request("metrics")
        except TimeoutError:
            log.warning("worker_metrics_unavailable", effect="/metrics shows the sink's only")
            return b""
        return payload

    return scrape
