"""Send recorded alerts to a running daemon, paced as they were recorded or at a fixed rate.

Each alert goes alone in one POST, as Falcosidekick sends them, over one keep-alive session, one
request at a time unless ``concurrency`` is raised. A 503 is sent again after its Retry-After,
a bounded number of times. Time is read through an injectable clock and sleep, so that tests
check the pacing without sleeping.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TextIO

import aiohttp

from responder.drill.record import Record

NANOSECONDS = 1_000_000_000
DRILL_HEADER = "X-Responder-Drill"

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class SendOptions:
    """Target address, pacing and bounds of one send."""

    url: str
    token: str | None = None
    drill_mark: bool = True
    concurrency: int = 1
    speed: float = 1.0
    """Recorded gaps are divided by this: 2 sends twice as fast. Ignored when ``rate`` is set."""
    rate: float | None = None
    """Alerts per second at a fixed pace, instead of the recorded gaps."""
    max_alerts: int | None = None
    max_seconds: float | None = None
    max_retries: int = 5
    """Times one alert is sent again after a 503, before its 503 counts as the response."""
    max_retry_after_s: float = 30.0
    """Maximum wait taken from a Retry-After header, in seconds."""
    timeout_s: float = 30.0


@dataclass
class Answer:
    """The daemon's response to one alert."""

    index: int
    status: int | None
    alert_id: str | None
    latency_s: float
    attempts: int
    error: str | None = None

    @property
    def accepted(self) -> bool:
        return self.status == 202


@dataclass
class SendResult:
    """Every response, and why sending stopped."""

    answers: list[Answer] = field(default_factory=list)
    duration_s: float = 0.0
    stopped_by: str = "end of file"

    def summary(self) -> str:
        accepted = sum(1 for answer in self.answers if answer.accepted)
        rejected: Counter[str] = Counter(
            str(answer.status) if answer.status is not None else "error"
            for answer in self.answers
            if not answer.accepted
        )
        rate = len(self.answers) / self.duration_s if self.duration_s > 0 else 0.0
        rejected_text = ", ".join(f"{n} with {status}" for status, n in sorted(rejected.items()))
        return (
            f"sent {len(self.answers)}, accepted {accepted}, "
            f"rejected {sum(rejected.values())}{f' ({rejected_text})' if rejected else ''}, "
            f"in {self.duration_s:.1f} s ({rate:.1f}/s); stopped at the {self.stopped_by}"
        )


def schedule(records: Sequence[Record], options: SendOptions) -> list[float]:
    """Return when to send each record, in seconds after the first is sent."""
    if options.rate is not None:
        return [index / options.rate for index in range(len(records))]
    if not records:
        return []
    first = records[0].received_ns
    return [max(0.0, (r.received_ns - first) / NANOSECONDS / options.speed) for r in records]


class Sender:
    """Sends records to one daemon and collects the responses."""

    def __init__(
        self,
        options: SendOptions,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        progress: TextIO | None = None,
    ) -> None:
        self.options = options
        self.clock = clock
        self.sleep = sleep
        self.progress = progress
        self.headers = {"Content-Type": "application/json"}
        if options.drill_mark:
            self.headers[DRILL_HEADER] = "true"
        if options.token:
            self.headers["Authorization"] = f"Bearer {options.token}"
        self._total = 0
        self._answered = 0
        self._accepted = 0

    async def send(self, records: Sequence[Record]) -> SendResult:
        options = self.options
        result = SendResult()
        limit = len(records) if options.max_alerts is None else options.max_alerts
        if limit < len(records):
            result.stopped_by = "maximum number of alerts"
        self._total = min(limit, len(records))
        slots = asyncio.Semaphore(options.concurrency)
        timeout = aiohttp.ClientTimeout(total=options.timeout_s)
        start = self.clock()
        async with aiohttp.ClientSession(timeout=timeout) as session:
            tasks: list[asyncio.Task[Answer]] = []
            for index, (record, due_s) in enumerate(
                zip(records[:limit], schedule(records[:limit], options), strict=True), 1
            ):
                if options.max_seconds is not None and due_s > options.max_seconds:
                    result.stopped_by = "maximum duration"
                    break
                wait_s = due_s - (self.clock() - start)
                if wait_s > 0:
                    await self.sleep(wait_s)
                await slots.acquire()
                if options.max_seconds is not None and self.clock() - start > options.max_seconds:
                    slots.release()
                    result.stopped_by = "maximum duration"
                    break
                task = asyncio.create_task(self._send_one(session, index, record))
                task.add_done_callback(lambda _: slots.release())
                tasks.append(task)
            result.answers = list(await asyncio.gather(*tasks))
        result.duration_s = self.clock() - start
        if self.progress is not None:
            self.progress.write("\n")
        return result

    async def _send_one(
        self, session: aiohttp.ClientSession, index: int, record: Record
    ) -> Answer:
        body = json.dumps(record.alert, separators=(",", ":"), ensure_ascii=False).encode()
        started = self.clock()
        answer = Answer(index, None, None, 0.0, 0)
        while True:
            answer.attempts += 1
            retry_after_s = await self._post(session, body, answer)
            if retry_after_s is None or answer.attempts > self.options.max_retries:
                break
            await self.sleep(retry_after_s)
        answer.latency_s = self.clock() - started
        self._show(answer)
        return answer

    async def _post(
        self, session: aiohttp.ClientSession, body: bytes, answer: Answer
    ) -> float | None:
        """POST once and fill ``answer``; return the seconds to wait before a retry, or None."""
        try:
            async with session.post(self.options.url, data=body, headers=self.headers) as response:
                answer.status = response.status
                text = await response.text()
                retry_after = response.headers.get("Retry-After")
        except (aiohttp.ClientError, TimeoutError) as error:
            answer.error = f"{type(error).__name__}: {error}"
            return None
        answer.error = None
        document = _json_or_none(text)
        if answer.status == 202 and isinstance(document, dict):
            ids = document.get("ids")
            if isinstance(ids, list) and ids:
                answer.alert_id = str(ids[0])
            return None
        if isinstance(document, dict) and isinstance(document.get("message"), str):
            answer.error = document["message"]
        else:
            answer.error = text[:200]
        if answer.status == 503:
            return self._retry_after(retry_after)
        return None

    def _retry_after(self, header: str | None) -> float:
        # Retry-After may also be an HTTP date; the daemon sends seconds, so a date waits 1 s.
        try:
            seconds = float(header) if header is not None else 1.0
        except ValueError:
            seconds = 1.0
        return min(max(seconds, 0.0), self.options.max_retry_after_s)

    def _show(self, answer: Answer) -> None:
        self._answered += 1
        self._accepted += answer.accepted
        if self.progress is None:
            return
        width = 30
        filled = width * self._answered // max(self._total, 1)
        bar = "#" * filled + "-" * (width - filled)
        self.progress.write(
            f"\r[{bar}] {self._answered}/{self._total} sent, {self._accepted} accepted"
        )
        self.progress.flush()


def _json_or_none(text: str) -> object:
    try:
        document: object = json.loads(text)
    except json.JSONDecodeError:
        return None
    return document
