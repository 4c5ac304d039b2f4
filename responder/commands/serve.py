"""``responder serve``: load settings and playbooks, then run the sink until SIGTERM."""

from __future__ import annotations

import errno
import signal
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web

from responder.daemon import DAEMON, build_app
from responder.drill.record import check_writable
from responder.errors import ConfigError
from responder.ingest.auth import warn_if_open
from responder.ingest.tls import server_ssl_context
from responder.record.logs import configure_logging
from responder.settings import load_settings
from responder.workers.process import load_playbook_set

log = structlog.get_logger("responder")


def serve(config: Path | None, overrides: dict[str, Any]) -> int:
    """Run the daemon in the foreground; return the exit status."""
    # SIGHUP reloads the playbooks once the worker process runs. Before that, its default
    # action would end the process.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    settings = load_settings(config, **overrides)
    configure_logging(settings.log_format, settings.log_level)
    if settings.record is not None:
        check_writable(settings.record)
    report = load_playbook_set(settings)
    if not report.ok:
        raise ConfigError(
            "invalid playbooks, not starting:\n" + "\n".join(f"  {e}" for e in report.errors)
        )
    for warning in report.warnings:
        log.warning("playbook_risky", message=warning)
    if not report.playbooks:
        log.warning(
            "no_playbooks",
            paths=[str(path) for path in settings.playbooks],
            effect="alerts are accepted and logged, and no action runs",
        )
    ssl_context = server_ssl_context(settings.tls)
    app = build_app(settings, report)
    warn_if_open(settings.auth)
    log.info(
        "starting",
        host=settings.server.host,
        port=settings.server.port,
        tls=ssl_context is not None,
        client_certificates=settings.tls.client_ca_file is not None,
    )
    # run_app turns SIGTERM and SIGINT into a graceful stop that runs the cleanup context.
    try:
        web.run_app(
            app,
            host=settings.server.host,
            port=settings.server.port,
            print=None,
            access_log=None,
            shutdown_timeout=5.0,
            ssl_context=ssl_context,
        )
    except OSError as error:
        if error.errno not in (errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES):
            raise
        raise ConfigError(
            f"cannot listen on {settings.server.host}:{settings.server.port}: "
            f"{error.strerror or error}; choose another address with --listen or server.port"
        ) from None
    daemon = app.get(DAEMON)
    if daemon is not None and daemon.workers.failed is not None:
        log.error("responder_failed", reason=daemon.workers.failed)
        return 1
    return 0
