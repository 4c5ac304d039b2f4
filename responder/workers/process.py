"""The worker process: it matches, guards, acts and notifies for the alerts the sink accepted.

The sink process starts it as ``python -m responder.workers.process FD PARENT_PID``. FD is the
worker process's end of a socket pair (see ``channel``). Messages from the sink:

- ``("start", settings, journal_on)``, first: the process loads the playbooks, connects to
  Kubernetes and replies ``("started", kubernetes_connected)`` or ``("failed", message)``;
- ``("alerts", [(item, decisions), ...])``: accepted alerts, in order, each resumed one with the
  decisions that the journal contains for it;
- ``("ping", number)``, ``("metrics", number)`` and ``("ready", number)``: the reply has the
  same kind and number;
- ``("drain",)``: finish what was accepted, within ``SHUTDOWN_GRACE_S``, and exit.

Messages to the sink: ``("record", decision)`` and ``("finish", alert_id)`` for the journal,
which only the sink writes, and ``("handled", alert_id)`` when a worker is done with an alert,
which gives its room in the sink's queue back.

The process dies with the sink. It requests SIGKILL from the kernel for when its parent exits,
takes SIGINT and SIGTERM without acting because the sink decides when it stops, and exits at
once when the channel closes. SIGHUP reloads the playbooks, and the sink forwards the SIGHUP it
receives.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp
import structlog

from responder.act.base import load_builtin_actions
from responder.act.kube import Kube
from responder.clock import SystemClock
from responder.errors import ConfigError, KubeError
from responder.guard.policy import Guards
from responder.guard.settings import own_namespace
from responder.guard.suppress import Suppressor
from responder.match.loader import LoadReport, load_playbooks
from responder.match.matcher import Matcher
from responder.match.reload import PlaybookReloader
from responder.notify.config import build_notifier
from responder.notify.dispatch import Dispatcher
from responder.pipeline import Pipeline
from responder.record.logs import configure_logging
from responder.record.metrics import Metrics, exposition
from responder.settings import Settings
from responder.store.journal import Decision
from responder.store.queue import AlertQueue, QueuedAlert
from responder.workers.channel import Channel, ChannelClosed, Message
from responder.workers.pool import run_workers

log = structlog.get_logger("responder.workers")

# Time given on shutdown to finish accepted alerts and queued notifications, in seconds: the
# actions get all but NOTIFY_DRAIN_S of it, the notifications still queued the rest. Kubernetes
# sends SIGKILL 30 s after SIGTERM by default, and the sink's own stop takes up to 5 s more.
SHUTDOWN_GRACE_S = 20.0
NOTIFY_DRAIN_S = 5.0

# Exit status when the sink closed the channel without a drain request.
EXIT_ORPHANED = 70

_PR_SET_PDEATHSIG = 1


def load_playbook_set(settings: Settings, *, check_notifiers: bool = True) -> LoadReport:
    """Load the configured playbooks against the registered actions and configured notifiers."""
    notifiers = list(settings.notifiers) if check_notifiers else None
    return load_playbooks(settings.playbooks, registry=load_builtin_actions(), notifiers=notifiers)


def uses_kubernetes(report: LoadReport) -> bool:
    return any(step.spec.needs_kube for loaded in report.playbooks for step in loaded.steps)


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


class SinkLink:
    """The worker process's ``DecisionLog``. Decisions and finished alerts go to the sink,
    which writes them to the journal. The decisions of a resumed alert arrive with the alert."""

    def __init__(self, channel: Channel) -> None:
        self._channel = channel
        self._resumed: dict[str, list[Decision]] = {}

    def remember(self, alert_id: str, decisions: list[Decision]) -> None:
        self._resumed[alert_id] = decisions

    def record_soon(self, decision: Decision) -> None:
        self._send("record", decision)

    def finish_soon(self, alert_id: str) -> None:
        self._send("finish", alert_id)

    async def decisions(self, alert_id: str) -> list[Decision]:
        return self._resumed.pop(alert_id, [])

    def forget(self, alert_id: str) -> None:
        """Drop the decisions of a handled alert that the pipeline did not read, such as one
        that no playbook matches since a reload."""
        self._resumed.pop(alert_id, None)

    def _send(self, *message: object) -> None:
        try:
            self._channel.send(*message)
        except ChannelClosed as error:
            # The pipeline logs the error; the alert stays pending in the journal.
            raise RuntimeError(str(error)) from error


@dataclass
class Workers:
    """The running parts of the worker process."""

    pipeline: Pipeline
    kube: Kube | None
    needs_kube: bool
    task: asyncio.Task[None]
    dispatcher: Dispatcher


async def start_workers(
    settings: Settings,
    report: LoadReport,
    *,
    metrics: Metrics,
    queue: AlertQueue,
    journal: SinkLink | None,
    on_handled: Callable[[QueuedAlert], None],
    resources: contextlib.AsyncExitStack,
) -> Workers:
    """Open the clients and start the workers, registering how to close each on ``resources``.

    Each part is registered as soon as it runs, so that a failure later in the start closes it
    too."""
    needed = uses_kubernetes(report)
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
    dispatcher = Dispatcher(notifiers, metrics=metrics)
    dispatcher.start()
    resources.push_async_callback(dispatcher.close)
    clock = SystemClock()
    pipeline = Pipeline(
        Matcher(report.playbooks),
        metrics=metrics,
        dispatcher=dispatcher,
        kube=kube,
        dry_run=settings.dry_run,
        deadline_s=settings.action_deadline_s,
        journal=journal,
        drill_dry_run=settings.drill.force_dry_run,
        guards=Guards(
            settings.guards,
            clock=clock,
            registry=metrics.registry,
            own_namespace=own_namespace(),
        ),
        suppressor=Suppressor(settings.suppress, clock=clock, registry=metrics.registry),
    )
    reloader = PlaybookReloader(
        settings.playbooks,
        registry=load_builtin_actions(),
        notifiers=list(settings.notifiers),
        apply=lambda new: setattr(pipeline, "matcher", Matcher(new.playbooks)),
        metrics=metrics,
        interval_s=settings.reload_interval_s,
        loaded=len(report.playbooks),
    )
    reloader.start()
    resources.push_async_callback(reloader.close)
    task = asyncio.create_task(
        run_workers(queue, pipeline, count=settings.server.workers, on_handled=on_handled)
    )
    resources.callback(task.cancel)
    return Workers(pipeline, kube, needed, task, dispatcher)


async def serve(sock: socket.socket) -> int:
    """Run the worker process on its end of the channel; return the exit status."""
    channel = await Channel.open(sock)
    (kind, settings, journal_on), *_ = await channel.receive()
    if kind != "start":
        raise ChannelClosed(f"expected start from the sink, got {kind!r}")
    configure_logging(settings.log_format, settings.log_level)

    metrics = Metrics()
    # The sink bounds what it sends by its own queue's capacity.
    queue = AlertQueue(sys.maxsize)
    link = SinkLink(channel) if journal_on else None
    async with contextlib.AsyncExitStack() as resources:
        try:
            report = load_playbook_set(settings)
            if not report.ok:
                raise ConfigError("invalid playbooks:\n" + "\n".join(report.errors))
            metrics.playbooks_loaded.set(len(report.playbooks))
            workers = await start_workers(
                settings,
                report,
                metrics=metrics,
                queue=queue,
                journal=link,
                on_handled=lambda item: _handled(channel, link, item),
                resources=resources,
            )
        except ConfigError as error:
            channel.send("failed", str(error))
            await channel.close()
            return 1

        channel.send("started", workers.kube is not None)
        await _answer(channel, queue, link, workers, metrics)
        await _shut_down(queue, workers)
    await channel.close()
    return 0


def _handled(channel: Channel, link: SinkLink | None, item: QueuedAlert) -> None:
    if link is not None:
        link.forget(item.id)
    channel.send("handled", item.id)


async def _answer(
    channel: Channel,
    queue: AlertQueue,
    link: SinkLink | None,
    workers: Workers,
    metrics: Metrics,
) -> None:
    """Take the sink's messages until it requests a drain."""
    requests: set[asyncio.Task[None]] = set()
    while True:
        try:
            messages = await channel.receive()
        except ChannelClosed:
            # The sink is gone without a drain request. What it accepted stays pending in the
            # journal, and nothing this process did from now on could be recorded.
            log.error("worker_process_orphaned", effect="exiting at once")
            os._exit(EXIT_ORPHANED)
        for message in messages:
            kind = message[0]
            if kind == "alerts":
                items = []
                for item, decisions in message[1]:
                    if link is not None and decisions is not None:
                        link.remember(item.id, decisions)
                    items.append(item)
                queue.put_resumed(items)
            elif kind == "drain":
                for task in requests:
                    task.cancel()
                return
            else:
                task = asyncio.create_task(_reply(channel, message, workers, metrics))
                requests.add(task)
                task.add_done_callback(requests.discard)


async def _reply(channel: Channel, message: Message, workers: Workers, metrics: Metrics) -> None:
    kind, request = message[0], message[1]
    if kind == "ping":
        channel.send(kind, request, True)
    elif kind == "metrics":
        channel.send(kind, request, exposition(metrics.registry, sink=False))
    elif kind == "ready":
        channel.send(kind, request, await _problems(workers))
    else:
        log.error("worker_message_unknown", kind=kind)


async def _problems(workers: Workers) -> list[str]:
    """Return why the workers cannot act, or nothing when they can."""
    if workers.kube is None or not workers.needs_kube:
        return []
    try:
        await workers.kube.ping()
    except KubeError as error:
        return [f"Kubernetes API unreachable: {error}"]
    return []


async def _shut_down(queue: AlertQueue, workers: Workers) -> None:
    log.info("responder_stopping", queued=len(queue))
    try:
        async with asyncio.timeout(SHUTDOWN_GRACE_S - NOTIFY_DRAIN_S):
            await queue.wait_idle()
    except TimeoutError:
        # What is left stays pending in the journal and is resumed at the next start.
        log.error("shutdown_incomplete", unhandled=len(queue))
    await workers.dispatcher.drain(NOTIFY_DRAIN_S)
    workers.task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await workers.task


def _die_with_parent(parent: int) -> None:
    """Ask the kernel for SIGKILL when the sink process exits, and exit if it already has."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:
        sys.exit(EXIT_ORPHANED)


def _ignore(signum: int, frame: object) -> None:
    """Take a signal without acting: the sink decides when this process stops, and a SIGHUP
    before the playbook reloader runs or after it stops has nothing to reload."""


def main(argv: list[str]) -> int:
    if len(argv) != 2 or not all(arg.isdigit() for arg in argv):
        print(
            "usage: python -m responder.workers.process FD PARENT_PID; `responder serve` "
            "starts it",
            file=sys.stderr,
        )
        return 2
    _die_with_parent(int(argv[1]))
    # A handler that does nothing, rather than SIG_IGN: programs this process starts, such as
    # a kubeconfig credential plugin, would inherit an ignored signal, but not a handler. The
    # playbook reloader takes SIGHUP over once it runs, and gives it back here when it stops.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _ignore)
    status = asyncio.run(serve(socket.socket(fileno=int(argv[0]))))
    # The interpreter puts the default actions back for Python handlers as it exits, and the
    # default action of SIGHUP ends the process with a signal, not with the status.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
