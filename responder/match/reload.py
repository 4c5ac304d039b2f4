"""Reload the playbooks while the daemon runs: when their files change, and on SIGHUP.

Changes are found by polling a cheap signature of the playbook paths (resolved targets, inode,
mtime, size) rather than by inotify, for two reasons:

* A Kubernetes ConfigMap volume updates by writing a new ``..<timestamp>`` directory and
  renaming the ``..data`` symlink onto it. The files the responder opens are symlinks through
  ``..data``, so a watch on them, or on their old targets, reports no event for the swap.
* inotify reports nothing for changes made by another host on a network filesystem.

A new set replaces the old one only when the whole set loads without error, so that a broken
edit never leaves the responder with half of its playbooks.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import weakref
from collections.abc import Callable, Iterable, Sequence
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import Self

import structlog
from prometheus_client import CollectorRegistry, Counter

from responder.act.base import Registry
from responder.match.loader import LoadReport, load_playbooks, playbook_files
from responder.record.metrics import Metrics

log = structlog.get_logger("responder.match.reload")

DEFAULT_INTERVAL_S = 2.0

# One (path, kind, resolved target, device, inode, mtime in ns, size) entry per path.
PathState = tuple[str, str, str, int, int, int, int]
Signature = tuple[PathState, ...]

_RELOAD_COUNTERS: weakref.WeakKeyDictionary[CollectorRegistry, Counter] = (
    weakref.WeakKeyDictionary()
)


class ReloadResult(StrEnum):
    """The outcome of one check."""

    UNCHANGED = "unchanged"
    SUCCESS = "success"
    FAILED = "failed"


def reload_counter(metrics: Metrics) -> Counter:
    """Return ``responder_playbook_reloads_total{result}`` in the registry of ``metrics``.

    The counter is created once per registry, because a registry rejects a second metric of
    the same name."""
    counter = _RELOAD_COUNTERS.get(metrics.registry)
    if counter is None:
        counter = Counter(
            "responder_playbook_reloads",
            "Playbook reloads by result (success, failed).",
            ["result"],
            registry=metrics.registry,
        )
        _RELOAD_COUNTERS[metrics.registry] = counter
    return counter


def _path_state(path: Path, kind: str) -> PathState:
    try:
        resolved = os.path.realpath(path)
        status = os.stat(path)
    except OSError as error:
        # A missing or unreadable path is part of the state, so that its return is a change.
        return (str(path), f"{kind}:error:{error.errno}", "", 0, 0, 0, 0)
    return (
        str(path),
        kind,
        resolved,
        status.st_dev,
        status.st_ino,
        status.st_mtime_ns,
        status.st_size,
    )


def path_signature(paths: Iterable[Path]) -> Signature:
    """Compute the state of the playbook paths that changes whenever their contents may have.

    Directories are included, because adding, removing or renaming an entry, such as the
    ``..data`` swap of a ConfigMap volume, changes the directory's mtime. Each YAML file is
    included with its resolved target, so a symlink that now points elsewhere is a change."""
    configured = list(paths)
    states = [_path_state(path, "configured") for path in configured]
    try:
        files, _ = playbook_files(configured)
    except OSError as error:
        # An unreadable directory is a state of its own; loading reports it in full.
        return (*states, (str(error.filename), f"listing:error:{error.errno}", "", 0, 0, 0, 0))
    states.extend(_path_state(file, "file") for file in files)
    return tuple(states)


class PlaybookReloader:
    """Watch the playbook paths and hand each valid new set to ``apply``.

    ``apply`` is called on the event loop with a LoadReport that has no errors; it must swap
    the set in use, for example ``pipeline.matcher = Matcher(report.playbooks)``. Use it as an
    async context manager, or call ``start`` and ``close``."""

    def __init__(
        self,
        paths: Sequence[Path],
        *,
        registry: Registry,
        notifiers: Iterable[str] | None,
        apply: Callable[[LoadReport], None],
        metrics: Metrics,
        interval_s: float = DEFAULT_INTERVAL_S,
        loaded: int = 0,
    ) -> None:
        if interval_s <= 0:
            raise ValueError(f"interval_s must be positive, got {interval_s}")
        self.paths = tuple(paths)
        self.registry = registry
        self.notifiers = tuple(notifiers) if notifiers is not None else None
        self.apply = apply
        self.metrics = metrics
        self.interval_s = interval_s
        self.reloads = reload_counter(metrics)
        self.loaded = loaded
        """Playbooks in the set in use."""
        # NOTE: taken here, not at the first load, so a change made between the caller's
        # first load and this moment is picked up only at the next change or SIGHUP.
        self._signature = path_signature(self.paths)
        self._lock = asyncio.Lock()
        self._poller: asyncio.Task[None] | None = None
        self._signal_tasks: set[asyncio.Task[ReloadResult]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._signal_installed = False
        self._previous = signal.getsignal(signal.SIGHUP)

    async def check_now(self, *, force: bool = False, trigger: str = "poll") -> ReloadResult:
        """Reload when the paths changed since the last check, or always with ``force``.

        A failed load keeps the set in use and is not retried until the paths change again."""
        async with self._lock:
            signature = await asyncio.to_thread(path_signature, self.paths)
            if not force and signature == self._signature:
                return ReloadResult.UNCHANGED
            # The signature is taken before loading, so an edit during the load is seen as
            # a change at the next check.
            self._signature = signature
            report = await asyncio.to_thread(
                load_playbooks, self.paths, registry=self.registry, notifiers=self.notifiers
            )
            errors = list(report.errors)
            if report.ok and not report.playbooks and self.loaded > 0:
                # An emptied ConfigMap or directory would silently turn every response off.
                errors.append(
                    "no playbooks found in "
                    + ", ".join(str(path) for path in self.paths)
                    + "; restart the responder to run without playbooks on purpose"
                )
            if errors:
                self.reloads.labels(ReloadResult.FAILED.value).inc()
                log.error(
                    "playbooks_reload_failed",
                    trigger=trigger,
                    errors=errors,
                    effect="the playbooks loaded before stay in use",
                )
                return ReloadResult.FAILED
            self.apply(report)
            self.loaded = len(report.playbooks)
            self.reloads.labels(ReloadResult.SUCCESS.value).inc()
            self.metrics.playbooks_loaded.set(len(report.playbooks))
            level = log.info if report.playbooks else log.warning
            level(
                "playbooks_reloaded",
                trigger=trigger,
                playbooks=len(report.playbooks),
                files=[str(path) for path in report.files],
            )
            return ReloadResult.SUCCESS

    def start(self) -> None:
        """Start polling and install the SIGHUP handler; call from the running event loop."""
        if self._poller is not None:
            raise RuntimeError("the playbook reloader is already started")
        self._loop = asyncio.get_running_loop()
        self._poller = self._loop.create_task(self._poll(), name="playbook-reloader")
        try:
            self._previous = signal.getsignal(signal.SIGHUP)
            self._loop.add_signal_handler(signal.SIGHUP, self._on_sighup)
        except (NotImplementedError, RuntimeError, ValueError, AttributeError) as error:
            # Event loops off the main thread, and platforms without SIGHUP, cannot take it.
            log.warning("playbook_sighup_unavailable", error=str(error), effect="polling only")
        else:
            self._signal_installed = True
        log.info(
            "playbook_watch_started",
            paths=[str(path) for path in self.paths],
            interval_s=self.interval_s,
            sighup=self._signal_installed,
        )

    async def close(self) -> None:
        """Stop polling, remove the SIGHUP handler and cancel reloads still running."""
        if self._signal_installed and self._loop is not None:
            self._loop.remove_signal_handler(signal.SIGHUP)
            # remove_signal_handler leaves the default action, which ends the process: the
            # handler from before start() comes back instead.
            signal.signal(signal.SIGHUP, self._previous)
            self._signal_installed = False
        tasks = [task for task in (self._poller, *self._signal_tasks) if task is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._poller = None
        self._signal_tasks.clear()

    async def __aenter__(self) -> Self:
        self.start()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    def _on_sighup(self) -> None:
        if self._loop is None:
            return
        log.info("playbook_reload_requested", trigger="sighup")
        task = self._loop.create_task(self._checked(force=True, trigger="sighup"))
        self._signal_tasks.add(task)
        task.add_done_callback(self._signal_tasks.discard)

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            await self._checked(force=False, trigger="poll")

    async def _checked(self, *, force: bool, trigger: str) -> ReloadResult:
        # A failure in ``apply`` or a filesystem error must not end the watch for good.
        try:
            return await self.check_now(force=force, trigger=trigger)
        except Exception as error:
            self.reloads.labels(ReloadResult.FAILED.value).inc()
            log.exception("playbooks_reload_failed", trigger=trigger, error=str(error))
            return ReloadResult.FAILED
