"""The load generator, run in a process of its own so that it does not share an event loop.

Run as ``python -m bench.loadgen SPEC``, where SPEC is a JSON object (see ``LoadSpec``). It prints
one JSON object with the results on stdout. Every mode stops by itself: after ``max_requests``
requests or ``duration_s`` seconds, whichever comes first, and no request waits longer than
``REQUEST_TIMEOUT_S``.

Modes:

- ``closed``: ``concurrency`` clients, each sends its next alert when the response to its last
  one arrived;
- ``open``: one alert every ``1 / rate`` seconds on a fixed schedule, whatever the responses, and
  latency counted from the scheduled moment, so that a slow response cannot hide the queueing it
  causes behind it;
- ``burst``: like ``closed``, but an alert rejected with 503 is sent again after its Retry-After;
- ``clock``: sequential GETs of the test server's ``/_bench/clock``, to measure one loopback hop.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from bench.stats import summarize
from bench.workload import AlertFactory, load_samples

REQUEST_TIMEOUT_S = 10.0
# Maximum pause before sending again an alert that the daemon rejected as busy (503). The pause
# is the response's Retry-After, as a well-behaved sender's would be, up to this bound.
MAX_BUSY_PAUSE_S = 1.0
# The token the benchmark configures in the daemon; the bare app ignores the header.
BEARER_TOKEN = "bench-token-2f8c51d9e04b"
HEADERS = {"Content-Type": "application/json", "Authorization": f"Bearer {BEARER_TOKEN}"}


@dataclass
class LoadSpec:
    """The settings of one run of the load generator."""

    url: str
    mode: str
    duration_s: float
    max_requests: int
    concurrency: int = 1
    rate: float = 0.0
    tag: str = "load"
    unique_pods: bool = False
    record_pods: bool = False
    """Return the send time of every matched alert, by pod, for the Kubernetes call latency."""
    warmup_requests: int = 0
    """Requests sent first and left out of every figure, to open connections and warm caches."""


@dataclass
class Tally:
    """The responses of one run: status counts, errors, latencies and send times."""

    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    retry_after_s: float = 0.0
    """The Retry-After of the last 503, in seconds."""
    lags_ms: list[float] = field(default_factory=list)
    sent_at: dict[str, int] = field(default_factory=dict)
    first_send: float | None = None
    last_answer: float = 0.0
    first_cpu_s: float = 0.0
    """CPU time of this process at the first send and at the last response."""
    last_cpu_s: float = 0.0

    @property
    def ok(self) -> int:
        return sum(count for status, count in self.statuses.items() if 200 <= status < 300)


async def post(
    session: aiohttp.ClientSession, url: str, body: bytes, tally: Tally, started: float
) -> int | None:
    """Send one alert; record its status and latency from ``started`` (a monotonic time)."""
    try:
        async with session.post(url, data=body, headers=HEADERS) as response:
            await response.read()
            status = response.status
            if status == 503:
                tally.retry_after_s = _seconds(response.headers.get("Retry-After"))
    except (aiohttp.ClientError, TimeoutError) as error:
        tally.errors[type(error).__name__] += 1
        return None
    now = time.monotonic()
    tally.statuses[status] += 1
    tally.latencies_ms.append((now - started) * 1000)
    tally.last_answer = now
    tally.last_cpu_s = time.process_time()
    return status


def _seconds(header: str | None) -> float:
    try:
        return min(MAX_BUSY_PAUSE_S, max(0.0, float(header or 0)))
    except ValueError:
        return MAX_BUSY_PAUSE_S


def _session(connections: int) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=connections),
        timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S),
    )


async def warm_up(spec: LoadSpec, factory: AlertFactory, session: aiohttp.ClientSession) -> int:
    tally = Tally()
    for index in range(spec.warmup_requests):
        await post(session, spec.url, factory.payload(index).body, tally, time.monotonic())
    return spec.warmup_requests


async def run_closed(spec: LoadSpec, *, retry_busy: bool) -> Tally:
    factory = AlertFactory(load_samples(), spec.tag, unique_pods=spec.unique_pods)
    tally = Tally()
    async with _session(spec.concurrency) as session:
        next_index = await warm_up(spec, factory, session)
        limit = next_index + spec.max_requests
        start = time.monotonic()
        end = start + spec.duration_s
        tally.first_send = start
        tally.first_cpu_s = time.process_time()

        async def client() -> None:
            nonlocal next_index
            while next_index < limit and time.monotonic() < end:
                index = next_index
                next_index += 1
                payload = factory.payload(index)
                while time.monotonic() < end:
                    sent = time.monotonic()
                    if spec.record_pods and payload.pod is not None:
                        tally.sent_at[payload.pod] = time.monotonic_ns()
                    status = await post(session, spec.url, payload.body, tally, sent)
                    if status != 503 or not retry_busy:
                        break
                    await asyncio.sleep(tally.retry_after_s)

        await asyncio.gather(*(client() for _ in range(spec.concurrency)))
    return tally


async def run_open(spec: LoadSpec) -> Tally:
    factory = AlertFactory(load_samples(), spec.tag, unique_pods=spec.unique_pods)
    tally = Tally()
    total = min(spec.max_requests, int(spec.rate * spec.duration_s))
    interval = 1.0 / spec.rate
    tasks: set[asyncio.Task[int | None]] = set()
    # Enough connections that a slow response never delays the next send on the schedule.
    async with _session(max(64, int(spec.rate * 0.2))) as session:
        offset = await warm_up(spec, factory, session)
        start = time.monotonic() + 0.05
        tally.first_send = start
        tally.first_cpu_s = time.process_time()
        index = 0
        while index < total:
            now = time.monotonic()
            if now > start + spec.duration_s + REQUEST_TIMEOUT_S:
                break
            # Send everything that is due; a late loop catches up instead of dropping sends.
            while index < total and start + index * interval <= now:
                scheduled = start + index * interval
                payload = factory.payload(offset + index)
                tally.lags_ms.append((time.monotonic() - scheduled) * 1000)
                if spec.record_pods and payload.pod is not None:
                    tally.sent_at[payload.pod] = time.monotonic_ns()
                task = asyncio.create_task(post(session, spec.url, payload.body, tally, scheduled))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                index += 1
            await asyncio.sleep(max(0.0, start + index * interval - time.monotonic()))
        if tasks:
            await asyncio.wait(tasks, timeout=REQUEST_TIMEOUT_S + 1)
    return tally


async def run_clock(spec: LoadSpec) -> dict[str, Any]:
    hops_ms: list[float] = []
    async with _session(1) as session:
        for _ in range(spec.max_requests):
            sent = time.monotonic_ns()
            async with session.get(spec.url) as response:
                arrived = (await response.json())["monotonic_ns"]
            hops_ms.append((arrived - sent) / 1e6)
    return {"hop_ms": summarize(hops_ms[spec.warmup_requests :])}


def report(tally: Tally) -> dict[str, Any]:
    elapsed = max(1e-9, tally.last_answer - (tally.first_send or tally.last_answer))
    return {
        "ok": tally.ok,
        "statuses": {str(status): count for status, count in sorted(tally.statuses.items())},
        "errors": dict(tally.errors),
        "elapsed_s": round(elapsed, 3),
        "throughput": tally.ok / elapsed if tally.ok else 0.0,
        "latency_ms": summarize(tally.latencies_ms),
        "send_lag_ms": summarize(tally.lags_ms),
        "cpu_percent": round(100 * max(0.0, tally.last_cpu_s - tally.first_cpu_s) / elapsed),
        # The measured part of the phase in CLOCK_MONOTONIC seconds, which every process of the
        # machine shares.
        "window": [tally.first_send or tally.last_answer, tally.last_answer],
        "sent_at": tally.sent_at,
    }


async def run(spec: LoadSpec) -> dict[str, Any]:
    if spec.mode == "closed":
        return report(await run_closed(spec, retry_busy=False))
    if spec.mode == "burst":
        return report(await run_closed(spec, retry_busy=True))
    if spec.mode == "open":
        return report(await run_open(spec))
    if spec.mode == "clock":
        return await run_clock(spec)
    raise SystemExit(f"invalid mode {spec.mode!r}: use closed, open, burst or clock")


def main() -> None:
    if len(sys.argv) != 2:
        raise SystemExit("usage: python -m bench.loadgen SPEC_JSON")
    spec = LoadSpec(**json.loads(sys.argv[1]))
    json.dump(asyncio.run(run(spec)), sys.stdout)


if __name__ == "__main__":
    main()
