"""Assemble the daemon from its settings: the sink, the queue, the workers and their clients.

Clients (Kubernetes, the HTTP session of the notifiers) are opened once in the application's
``cleanup_ctx`` and closed on shutdown, after the workers have drained what was accepted.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import aiohttp
import structlog
from aiohttp import web

from responder.act.base import load_builtin_actions
from responder.act.kube import Kube
from responder.clock import SystemClock
from responder.errors import ConfigError, KubeError
from responder.guard.policy import Guards
from responder.guard.settings import own_namespace
from responder.guard.suppress import Suppressor
from responder.ingest.auth import auth_middleware, checked_auth
from responder.ingest.server import ReadinessCheck, Sink, create_app, create_health_app
from responder.match.loader import LoadReport, load_playbooks
from responder.match.matcher import Matcher
from responder.match.reload import PlaybookReloader
from responder.notify.config import build_notifier
from responder.notify.dispatch import Dispatcher
from responder.pipeline import Pipeline
from responder.record.metrics import Metrics
from responder.settings import Settings
from responder.store.journal import Retention
from responder.store.queue import AlertQueue
from responder.store.sqlite import SqliteJournal
from responder.workers import run_workers

log = structlog.get_logger("responder.daemon")

# Time given on shutdown to finish accepted alerts and queued notifications, in seconds.
# Kubernetes sends SIGKILL 30 s after SIGTERM by default, so this leaves room for the rest.
SHUTDOWN_GRACE_S = 20.0


def load_playbook_set(settings: Settings, *, check_notifiers: bool = True) -> LoadReport:
    """Load the configured playbooks against the registered actions and configured notifiers."""
    notifiers = list(settings.notifiers) if check_notifiers else None
    return load_playbooks(settings.playbooks, registry=load_builtin_actions(), notifiers=notifiers)


def uses_kubernetes(report: LoadReport) -> bool:
    return any(step.spec.needs_kube for loaded in report.playbooks for step in loaded.steps)


@dataclass
class Daemon:
    """The running parts, kept together for tests and for shutdown."""

    settings: Settings
    metrics: Metrics
    queue: AlertQueue
    pipeline: Pipeline
    sink: Sink


async def connect_kube(settings: Settings, *, needed: bool) -> Kube | None:
    """Connect to the Kubernetes API, or return None when no configuration is found."""
    try:
        kube = await Kube.connect(
            kubeconfig=settings.kubernetes.kubeconfig,
            context=settings.kubernetes.context,
            request_timeout_s=settings.kubernetes.request_timeout_s,
        )
    except (KubeError, ConfigError) as error:
        if settings.kubernetes.required:
            raise ConfigError(f"cannot load Kubernetes configuration: {error}") from error
        level = log.warning if needed else log.info
        level(
            "kubernetes_unavailable",
            error=str(error),
            effect="actions that need Kubernetes report dry_run in dry-run mode, else failed",
        )
        return None
    log.info("kubernetes_configured")
    return kube


def build_app(settings: Settings, report: LoadReport) -> web.Application:
    """Build the aiohttp application; everything with a lifetime starts in its cleanup context."""
    if not report.ok:
        raise ConfigError("invalid playbooks:\n" + "\n".join(report.errors))
    metrics = Metrics()
    metrics.playbooks_loaded.set(len(report.playbooks))
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
    """Open the clients and start the workers, registering how to stop each on ``resources``.

    Each part is registered as soon as it runs, so that a failure later in the start stops it
    too. They stop in the reverse order: the workers drain first, the clients close last."""
    needed = uses_kubernetes(report)
    journal = await open_journal(settings)
    if journal is not None:
        resources.push_async_callback(journal.close)
    kube = await connect_kube(settings, needed=needed)
    if kube is not None:
        resources.push_async_callback(kube.close)
    # Slack and webhooks often sit behind an egress proxy: HTTPS_PROXY, HTTP_PROXY and NO_PROXY
    # apply to notifications, as they do for most HTTP clients.
    session = aiohttp.ClientSession(trust_env=True)
    resources.push_async_callback(session.close)
    notifiers = {
        name: build_notifier(name, config, session=session)
        for name, config in settings.notifiers.items()
    }
    dispatcher = Dispatcher(notifiers, metrics=sink.metrics)
    dispatcher.start()
    resources.push_async_callback(dispatcher.close)
    clock = SystemClock()
    pipeline = Pipeline(
        Matcher(report.playbooks),
        metrics=sink.metrics,
        dispatcher=dispatcher,
        kube=kube,
        dry_run=settings.dry_run,
        deadline_s=settings.action_deadline_s,
        journal=journal,
        drill_dry_run=settings.drill.force_dry_run,
        guards=Guards(
            settings.guards,
            clock=clock,
            registry=sink.metrics.registry,
            own_namespace=own_namespace(),
        ),
        suppressor=Suppressor(settings.suppress, clock=clock, registry=sink.metrics.registry),
    )
    if kube is not None and needed:
        sink.readiness.append(_kube_ready(kube))
    sink.journal = journal
    app[DAEMON] = Daemon(settings, sink.metrics, sink.queue, pipeline, sink)
    reloader = PlaybookReloader(
        settings.playbooks,
        registry=load_builtin_actions(),
        notifiers=list(settings.notifiers),
        apply=lambda new: setattr(pipeline, "matcher", Matcher(new.playbooks)),
        metrics=sink.metrics,
        interval_s=settings.reload_interval_s,
        loaded=len(report.playbooks),
    )
    reloader.start()
    resources.push_async_callback(reloader.close)
    resumed = await journal.pending() if journal is not None else []
    sink.queue.put_resumed(resumed)
    workers = asyncio.create_task(run_workers(sink.queue, pipeline, count=settings.server.workers))
    pruning = (
        asyncio.create_task(_prune_forever(journal, settings)) if journal is not None else None
    )

    async def stop() -> None:
        if pruning is not None:
            pruning.cancel()
        await _shut_down(sink.queue, dispatcher, workers)

    resources.push_async_callback(stop)
    log.info(
        "responder_started",
        playbooks=len(report.playbooks),
        dry_run=settings.dry_run,
        kubernetes=kube is not None,
        notifiers=sorted(notifiers),
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


async def _shut_down(
    queue: AlertQueue, dispatcher: Dispatcher, workers: asyncio.Task[None]
) -> None:
    log.info("responder_stopping", queued=len(queue))
    try:
        async with asyncio.timeout(SHUTDOWN_GRACE_S):
            await queue.wait_idle()
    except TimeoutError:
        # What is left stays pending in the journal and is resumed at the next start.
        log.error("shutdown_incomplete", unhandled=len(queue))
    await dispatcher.drain(SHUTDOWN_GRACE_S / 4)
    workers.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await workers


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


def _kube_ready(kube: Kube) -> ReadinessCheck:
    async def check() -> str | None:
        try:
            await kube.ping()
        except KubeError as error:
            return f"Kubernetes API unreachable: {error}"
        return None

    return check
