"""Shared pieces of the drill tests: sample records, a fake clock, a receiving server."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from responder.drill.record import Record, format_record
from responder.ingest.alert import Timestamp
from tests.samples import sample_document

REPO = Path(__file__).resolve().parents[2]
PLAYBOOKS = REPO / "playbooks"
NANOSECONDS = 1_000_000_000


def sample_records(numbers: list[int], gap_s: float = 1.0) -> list[Record]:
    """Records of falco-direct sample lines, received ``gap_s`` apart."""
    start = Timestamp.parse("2026-03-14T12:00:00Z").epoch_ns
    return [
        Record(start + int(index * gap_s * NANOSECONDS), sample_document("falco-direct", number))
        for index, number in enumerate(numbers)
    ]


def write_recording(path: Path, records: list[Record]) -> Path:
    text = "".join(format_record(r.received_ns, r.alert) + "\n" for r in records)
    path.write_text(text, encoding="utf-8")
    return path


class FakeTime:
    """A monotonic clock that only ``sleep`` moves, and the list of sleeps asked for."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.now += seconds


@dataclass
class Receiver:
    """A sink stand-in: keeps every request, returns 503 for the first ``busy`` ones."""

    busy: int = 0
    retry_after: str = "2"
    bodies: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.headers.append(dict(request.headers))
        if self.busy > 0:
            self.busy -= 1
            return web.json_response(
                {"error": "queue_full", "message": "busy"},
                status=503,
                headers={"Retry-After": self.retry_after},
            )
        self.bodies.append(json.loads(await request.read()))
        return web.json_response({"accepted": 1, "ids": [f"id-{len(self.bodies)}"]}, status=202)


@asynccontextmanager
async def receiver(busy: int = 0) -> AsyncIterator[Receiver]:
    state = Receiver(busy=busy)
    app = web.Application()
    app.router.add_post("/", state.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    state.url = f"http://127.0.0.1:{runner.addresses[0][1]}/"
    try:
        yield state
    finally:
        await runner.cleanup()
