"""The HTTP sink that Falco's ``http_output`` and Falcosidekick's webhook POST alerts to.

Falco and Falcosidekick send one request at a time and never retry, so the sink responds as soon
as the alerts are in the queue (202) and runs actions later. Errors come with a JSON body:
``{"error": reason, "message": sentence}``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from responder.drill.record import append_records
from responder.errors import IngestError
from responder.ingest.alert import Timestamp
from responder.ingest.decode import decode_request
from responder.record.metrics import Metrics, exposition
from responder.store.journal import AlertRecord, Journal
from responder.store.queue import AlertQueue, QueuedAlert

log = structlog.get_logger("responder.ingest")

# A header that marks every alert of a request as a drill.
DRILL_HEADER = "X-Responder-Drill"

# A check of /healthz or /readyz: it returns None when healthy, or a sentence saying why not.
HealthCheck = Callable[[], Awaitable[str | None]]


@dataclass
class Sink:
    """The state the handlers share, stored in the application under ``SINK``."""

    queue: AlertQueue
    metrics: Metrics
    retry_after_s: int = 1
    max_body_bytes: int = 1024 * 1024
    journal: Journal | None = None
    """The store of accepted alerts, written before the 202. None keeps them in memory only."""
    record_path: Path | None = None
    """A JSONL file that receives every accepted alert as it arrived (serve --record)."""
    busy_log: ThrottledLog = field(default_factory=lambda: ThrottledLog(log, interval_s=1.0))
    # The checks of /readyz: a failed one takes the pod out of its Service.
    readiness: list[HealthCheck] = field(default_factory=list)
    # The checks of /healthz: a failed one makes the kubelet restart the container.
    liveness: list[HealthCheck] = field(default_factory=list)
    worker_metrics: Callable[[], Awaitable[bytes]] | None = None
    """The worker process's metrics in the text format. With it, /metrics shows the sink's
    own families from ``metrics`` and the rest from the worker process."""


SINK = web.AppKey("sink", Sink)


class ThrottledLog:
    """Logs at most one event per interval, with the count of those left out since the last."""

    def __init__(self, logger: Any, *, interval_s: float) -> None:
        self._logger = logger
        self._interval_s = interval_s
        self._last = -float("inf")
        self._skipped = 0

    def warning(self, event: str, **fields: Any) -> None:
        now = time.monotonic()
        if now - self._last < self._interval_s:
            self._skipped += 1
            return
        self._logger.warning(event, **fields, repeats_not_logged=self._skipped)
        self._last = now
        self._skipped = 0


def error_response(status: int, reason: str, message: str) -> web.Response:
    return web.json_response({"error": reason, "message": message}, status=status)


async def receive(request: web.Request) -> web.Response:
    """Accept one alert, a JSON array of alerts, or newline-delimited JSON."""
    sink = request.app[SINK]
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        sink.metrics.alerts_rejected.labels("too_large").inc()
        log.warning("request_rejected", reason="too_large", limit=sink.max_body_bytes)
        return error_response(
            413,
            "too_large",
            f"body larger than the limit of {sink.max_body_bytes} bytes; "
            "send smaller batches or raise server.max_body_bytes",
        )
    except RequestPayloadError as error:
        # A body declared as gzip that does not decompress, or a connection cut mid-body.
        sink.metrics.alerts_rejected.labels("invalid_encoding").inc()
        log.warning("request_rejected", reason="invalid_encoding", error=str(error))
        return error_response(
            400,
            "invalid_encoding",
            "the body could not be read: check that Content-Encoding matches the body "
            "(gzip or none)",
        )
    drill = request.headers.get(DRILL_HEADER, "").lower() in ("1", "true", "yes")
    try:
        alerts, documents = decode_request(body, drill=drill)
    except IngestError as error:
        sink.metrics.alerts_rejected.labels(error.reason).inc()
        log.warning("request_rejected", reason=error.reason, message=str(error))
        return error_response(error.status, error.reason, str(error))
    items = [QueuedAlert(alert) for alert in alerts]
    if not sink.queue.reserve(len(items)):
        sink.metrics.alerts_rejected.labels("queue_full").inc()
        # A sender that retries at once meets a full queue thousands of times a second.
        sink.busy_log.warning("request_rejected", reason="queue_full", alerts=len(items))
        return _busy(sink, "queue_full", "the responder is busy")
    if sink.journal is not None:
        try:
            await sink.journal.append(items)
        except asyncio.CancelledError:
            # The request was cut off (at shutdown, say): give the room back before leaving.
            sink.queue.release(len(items))
            raise
        except Exception as error:
            sink.queue.release(len(items))
            sink.metrics.alerts_rejected.labels("journal_unavailable").inc()
            log.error("journal_append_failed", error=f"{type(error).__name__}: {error}")
            return _busy(sink, "journal_unavailable", "the journal cannot store alerts now")
    sink.queue.put_reserved(items)
    if sink.record_path is not None:
        await _record(sink, sink.record_path, items[0].received_ns, documents)
    sink.metrics.queue_depth.set(len(sink.queue))
    for item in items:
        alert = item.alert
        labels = sink.metrics.alert_labels(alert.rule, str(alert.priority), alert.source)
        sink.metrics.alerts_received.labels(*labels).inc()
    log.debug("alerts_accepted", count=len(items), alert_ids=[item.id for item in items])
    return web.json_response(
        {"accepted": len(items), "ids": [item.id for item in items]}, status=202
    )


async def _record(sink: Sink, path: Path, received_ns: int, documents: list[Any]) -> None:
    try:
        await asyncio.to_thread(append_records, path, received_ns, documents)
    except Exception as error:
        # The alerts are accepted and journaled; only the drill recording misses them.
        log.error("record_failed", path=str(path), error=str(error), alerts=len(documents))


def _busy(sink: Sink, reason: str, message: str) -> web.Response:
    response = error_response(503, reason, f"{message}; send again after Retry-After seconds")
    response.headers["Retry-After"] = str(sink.retry_after_s)
    return response


async def healthz(request: web.Request) -> web.Response:
    problems = await _problems(request.app[SINK].liveness)
    if problems:
        return web.json_response({"status": "unhealthy", "problems": problems}, status=503)
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    problems = await _problems(request.app[SINK].readiness)
    if problems:
        return web.json_response({"status": "not ready", "problems": problems}, status=503)
    return web.json_response({"status": "ready"})


async def _problems(checks: list[HealthCheck]) -> list[str]:
    return [problem for check in checks if (problem := await check()) is not None]


async def metrics(request: web.Request) -> web.Response:
    sink = request.app[SINK]
    sink.metrics.queue_depth.set(len(sink.queue))
    if sink.worker_metrics is None:
        payload = generate_latest(sink.metrics.registry)
    else:
        payload = exposition(sink.metrics.registry, sink=True) + await sink.worker_metrics()
    response = web.Response(body=payload)
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response


async def get_alert(request: web.Request) -> web.Response:
    """Return one alert with every decision made about it, from the journal."""
    sink = request.app[SINK]
    alert_id = request.match_info["alert_id"]
    if sink.journal is None:
        return error_response(404, "no_journal", "the responder runs without a journal")
    record = await sink.journal.get(alert_id)
    if record is None:
        return error_response(404, "not_found", f"alert {alert_id!r} not found in the journal")
    return web.json_response(record_json(record))


def record_json(record: AlertRecord) -> dict[str, Any]:
    """Return an alert record as the API and ``responder history --output json`` show it."""
    return {
        "id": record.id,
        "received": Timestamp(record.received_ns).isoformat(),
        "state": record.state,
        "finished": Timestamp(record.finished_ns).isoformat() if record.finished_ns else None,
        "alert": record.alert,
        "decisions": [
            {
                "at": Timestamp(decision.at_ns).isoformat(),
                "kind": decision.kind,
                "playbook": decision.playbook,
                "name": decision.name,
                "step": decision.step,
                "outcome": decision.outcome,
                "reason": decision.reason,
                "details": decision.details,
            }
            for decision in record.decisions
        ],
    }


async def method_not_allowed(request: web.Request) -> web.Response:
    return error_response(405, "method_not_allowed", "POST alerts to /")


def create_health_app(sink: Sink) -> web.Application:
    """Build the application of ``server.health_port``: health, readiness and metrics only."""
    app = web.Application()
    app[SINK] = sink
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    return app


def create_app(sink: Sink) -> web.Application:
    """Build the sink application. ``sink.max_body_bytes`` applies after gzip decoding."""
    app = web.Application(client_max_size=sink.max_body_bytes)
    app[SINK] = sink
    app.router.add_post("/", receive)
    app.router.add_get("/", method_not_allowed)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/api/v1/alerts/{alert_id}", get_alert)
    return app
