"""Measure how fast ``responder serve`` acknowledges and acts on alerts, next to bare aiohttp.

Run from the repository root: ``python -m bench.run`` (about 4 minutes on 2 cores, a third of
it the burst of 100,000 alerts) or ``--quick`` (a smoke run of under a minute whose figures mean
little). ``--repeat N`` runs everything N times and reports the median of each figure.
BENCHMARKS.md describes the method and the figures of a full run. Every process here is started
on 127.0.0.1 and stopped at the end:

- the bare aiohttp app (``bench.bare``), the limit of this stack;
- the Kubernetes API test server with 2 ms of latency per request (``bench.kubeapi``);
- ``responder serve`` with the journal on, generated playbooks and ``dry_run: false``;
- one load generator process per phase (``bench.loadgen``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp
import yaml

if __package__ in (None, ""):
    # Run as a file (python bench/run.py): make the repository root importable.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import profile
from bench.loadgen import BEARER_TOKEN
from bench.stats import summarize
from bench.workload import REPO, AlertFactory, load_samples, playbook_set
from tests.serve import child_pid, run_responder

STARTUP_TIMEOUT_S = 30.0
# The daemon drains its queue for up to 20 s on SIGTERM, and this leaves room for the rest.
STOP_TIMEOUT_S = 40.0
SEED_CHUNK = 2000
POD_PATH = re.compile(r"^/api/v1/namespaces/(?P<namespace>[^/]+)/pods/(?P<pod>[^/]+)$")


@dataclass(frozen=True)
class Plan:
    """Counts and durations of one run. Every phase stops at its count or its time limit."""

    throughput_s: float
    throughput_max: int
    latency_s: float
    rates: tuple[int, ...]
    burst: int
    burst_limit_s: float
    playbooks: int
    playbook_counts: tuple[int, ...]
    scaling_s: float
    warmup: int
    drain_limit_s: float
    clock_samples: int


FULL = Plan(
    throughput_s=10,
    throughput_max=60_000,
    latency_s=10,
    rates=(500, 1000),
    burst=100_000,
    burst_limit_s=600,
    playbooks=200,
    playbook_counts=(10, 100, 1000),
    scaling_s=5,
    warmup=300,
    drain_limit_s=120,
    clock_samples=1000,
)
QUICK = Plan(
    throughput_s=1.0,
    throughput_max=800,
    latency_s=1.0,
    rates=(500, 1000),
    burst=1_000,
    burst_limit_s=20,
    playbooks=200,
    playbook_counts=(10, 100, 1000),
    scaling_s=1.0,
    warmup=20,
    drain_limit_s=15,
    clock_samples=50,
)

CONCURRENCY = (1, 32)
SCALING_CONCURRENCY = 32


# --- processes -------------------------------------------------------------------------------


class Server:
    """A helper server process that prints ``{"port": N}`` and stops when its stdin closes."""

    def __init__(self, process: asyncio.subprocess.Process, port: int) -> None:
        self.process = process
        self.url = f"http://127.0.0.1:{port}"

    @classmethod
    async def start(cls, module: str, *args: str) -> Server:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            module,
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            cwd=REPO,
        )
        assert process.stdout is not None
        try:
            line = await asyncio.wait_for(process.stdout.readline(), STARTUP_TIMEOUT_S)
            port = int(json.loads(line)["port"])
        except (TimeoutError, ValueError, KeyError) as error:
            await _stop_process(process)
            raise RuntimeError(f"{module} did not start: {error!r}") from error
        return cls(process, port)

    async def stop(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        await _stop_process(self.process)


async def _stop_process(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(process.wait(), STOP_TIMEOUT_S)
    except TimeoutError:
        process.kill()
        await process.wait()


class Daemon:
    """``responder serve`` with its config, playbooks, journal and log file in one directory."""

    def __init__(self, process: asyncio.subprocess.Process, url: str, log_path: Path) -> None:
        self.process = process
        self.url = url
        self.log_path = log_path
        self._log_offset = 0

    @classmethod
    async def start(cls, directory: Path, kube_url: str, playbooks: int) -> Daemon:
        port = free_port()
        config_path = write_config(directory, kube_url, playbooks, port)
        log_path = directory / "responder.log"
        with log_path.open("wb") as log_file:
            process = await run_responder(
                "serve",
                "--config",
                str(config_path),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
                cwd=directory,
            )
        daemon = cls(process, f"http://127.0.0.1:{port}", log_path)
        await daemon.wait_ready()
        return daemon

    async def wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline and self.process.returncode is None:
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(f"{self.url}/readyz") as response:
                        if response.status == 200:
                            return
                await asyncio.sleep(0.1)
        await self.stop()
        raise RuntimeError(f"responder did not become ready; end of its log:\n{self.log_tail()}")

    def log_tail(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")[-3000:]

    async def stop(self) -> None:
        await _stop_process(self.process)

    def worker_pid(self) -> int:
        """Return the pid of the worker process that ``responder serve`` started."""
        pid = child_pid(self.process.pid)
        if pid is None:
            raise RuntimeError(f"responder serve (pid {self.process.pid}) has no worker process")
        return pid

    def rss_kib(self) -> int:
        """Return the resident memory of the sink and the worker process together."""
        return _rss_kib(self.process.pid) + _rss_kib(self.worker_pid())

    async def queue_depth(self, session: aiohttp.ClientSession) -> int:
        async with session.get(f"{self.url}/metrics") as response:
            text = await response.text()
        found = re.search(r"^responder_queue_depth (\S+)$", text, re.MULTILINE)
        return int(float(found.group(1))) if found else 0

    async def wait_drained(self, limit_s: float) -> float:
        """Wait until the queue is empty and the last alerts taken are done. Return the wait."""
        started = time.monotonic()
        async with aiohttp.ClientSession() as session:
            while time.monotonic() - started < limit_s:
                if await self.queue_depth(session) == 0:
                    break
                await asyncio.sleep(0.2)
        # Workers may still hold the last alerts they took; each takes a few API calls.
        await asyncio.sleep(1.0)
        return time.monotonic() - started

    def action_outcomes(self) -> dict[str, int]:
        """Count ``action_done`` log lines by action and outcome since the last call."""
        outcomes: Counter[str] = Counter()
        with self.log_path.open("rb") as log_file:
            log_file.seek(self._log_offset)
            data = log_file.read()
        end = data.rfind(b"\n") + 1
        self._log_offset += end
        for line in data[:end].splitlines():
            if b'"action_done"' not in line:
                continue
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                outcomes[f"{entry.get('action')}:{entry.get('outcome')}"] += 1
        return dict(sorted(outcomes.items()))


def write_config(directory: Path, kube_url: str, playbooks: int, port: int) -> Path:
    """Write the playbooks, the kubeconfig and the settings file, and return the settings file."""
    directory.mkdir(parents=True, exist_ok=True)
    playbook_path = directory / "playbooks.yaml"
    documents = {"playbooks": playbook_set(playbooks)}
    playbook_path.write_text(yaml.safe_dump(documents, sort_keys=False), encoding="utf-8")
    kubeconfig = write_kubeconfig(directory / "kubeconfig", kube_url)
    config = {
        "playbooks": [str(playbook_path)],
        "dry_run": False,
        "log_format": "json",
        "log_level": "info",
        "server": {"host": "127.0.0.1", "port": port},
        "journal": {"path": str(directory / "journal.db")},
        "kubernetes": {"kubeconfig": str(kubeconfig), "required": True},
        "auth": {"mode": "bearer", "token": BEARER_TOKEN},
    }
    config_path = directory / "responder.yaml"
    config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return config_path


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def write_kubeconfig(path: Path, server: str) -> Path:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "bench", "cluster": {"server": server}}],
        "users": [{"name": "bench", "user": {"token": "unused-token"}}],
        "contexts": [{"name": "bench", "context": {"cluster": "bench", "user": "bench"}}],
        "current-context": "bench",
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


async def load(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one load generator process and return its results."""
    limit = spec["duration_s"] + 60
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.loadgen",
        json.dumps(spec),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=REPO,
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), limit)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise RuntimeError(f"load generator timed out after {limit} s: {spec}") from None
    if process.returncode != 0:
        raise RuntimeError(f"load generator failed: {stderr.decode(errors='replace')[-2000:]}")
    result: dict[str, Any] = json.loads(stdout)
    return result


# --- the Kubernetes API test server ----------------------------------------------------------


async def seed(session: aiohttp.ClientSession, kube_url: str, factory: AlertFactory, count: int):
    pods = factory.matched_pods(count)
    for start in range(0, len(pods), SEED_CHUNK):
        chunk = [list(pod) for pod in pods[start : start + SEED_CHUNK]]
        async with session.post(f"{kube_url}/_bench/seed", json={"pods": chunk}) as response:
            response.raise_for_status()
    return len(pods)


async def arrivals(session: aiohttp.ClientSession, kube_url: str) -> list[list[Any]]:
    async with session.get(f"{kube_url}/_bench/arrivals") as response:
        response.raise_for_status()
        found: list[list[Any]] = await response.json()
        return found


def first_call_latency(sent_at: dict[str, int], calls: list[list[Any]]) -> dict[str, Any]:
    """Match each alert's send time with the first API request about its pod."""
    first: dict[str, int] = {}
    for arrived, _method, path in calls:
        found = POD_PATH.match(path)
        if found is None:
            continue
        pod = found.group("pod")
        if pod in sent_at and pod not in first:
            first[pod] = arrived
    delays = [(first[pod] - sent) / 1e6 for pod, sent in sent_at.items() if pod in first]
    return {
        "ms": summarize(delays),
        "alerts": len(sent_at),
        "without_call": len(sent_at) - len(first),
    }


# --- phases ----------------------------------------------------------------------------------


@dataclass
class Context:
    plan: Plan
    workdir: Path
    kube: Server
    session: aiohttp.ClientSession
    profile_dir: Path | None
    progress: bool

    def say(self, message: str) -> None:
        if self.progress:
            print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def closed_spec(
    url: str, plan: Plan, concurrency: int, duration_s: float, tag: str
) -> dict[str, Any]:
    return {
        "url": url,
        "mode": "closed",
        "concurrency": concurrency,
        "duration_s": duration_s,
        "max_requests": plan.throughput_max,
        "warmup_requests": plan.warmup,
        "tag": tag,
        "unique_pods": True,
    }


async def seed_for(ctx: Context, spec: dict[str, Any]) -> None:
    """Seed the pods of every matched alert that ``spec`` may send, warm-up included."""
    factory = AlertFactory(load_samples(), spec["tag"], unique_pods=True)
    count = spec["max_requests"] + spec.get("warmup_requests", 0)
    await seed(ctx.session, ctx.kube.url, factory, count)


def open_spec(url: str, plan: Plan, rate: int, tag: str) -> dict[str, Any]:
    return {
        "url": url,
        "mode": "open",
        "rate": rate,
        "duration_s": plan.latency_s,
        "max_requests": int(rate * plan.latency_s),
        "warmup_requests": plan.warmup,
        "tag": tag,
        "unique_pods": True,
        "record_pods": True,
    }


def cpu_seconds(pid: int) -> float:
    """User and system CPU time the process has used, from ``/proc/PID/stat``."""
    stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8")
    # The command name in parentheses may hold spaces; the fields after it are fixed.
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def profiled_load(
    ctx: Context,
    spec: dict[str, Any],
    name: str,
    processes: dict[str, int],
    daemon: Daemon | None = None,
) -> dict[str, Any]:
    """Run a load and note the CPU share of each of ``processes`` (name to pid) while it ran.

    With ``--profile``, sample the sink and the worker process with py-spy meanwhile."""
    samplers: dict[str, tuple[asyncio.subprocess.Process, Path]] = {}
    if ctx.profile_dir is not None and daemon is not None:
        for process, pid in (("sink", daemon.process.pid), ("workers", daemon.worker_pid())):
            output = ctx.profile_dir / f"{name}.{process}.txt"
            # The load generator needs about a second to start and warm up before the phase
            # begins.
            sampler = await profile.record(pid, spec["duration_s"] + 1, output)
            samplers[process] = (sampler, output)
    readings: list[tuple[float, dict[str, float]]] = []
    reading = asyncio.create_task(read_cpu(processes, readings))
    try:
        result = await load(spec)
    finally:
        reading.cancel()
    start, end = result.pop("window")
    result["cpu_percent"] = {
        "load generator": result.pop("cpu_percent"),
        **cpu_shares(readings, start, end),
    }
    for process, (sampler, output) in samplers.items():
        await sampler.wait()
        if output.exists():
            result.setdefault("profile", {})[process] = asdict(profile.summarize_profile(output))
    return result


CPU_READING_INTERVAL_S = 0.05


async def read_cpu(processes: dict[str, int], readings: list[tuple[float, dict[str, float]]]):
    """Append the CPU time of each process to ``readings`` every 50 ms until cancelled."""
    while True:
        now = time.monotonic()
        readings.append((now, {name: cpu_seconds(pid) for name, pid in processes.items()}))
        await asyncio.sleep(CPU_READING_INTERVAL_S)


def cpu_shares(
    readings: list[tuple[float, dict[str, float]]], start: float, end: float
) -> dict[str, int]:
    """Return each process's CPU share, in percent of a core, between the first and the last
    reading inside the window from ``start`` to ``end``."""
    inside = [reading for reading in readings if start <= reading[0] <= end]
    if len(inside) < 2:
        return {}
    (first_at, first), (last_at, last) = inside[0], inside[-1]
    return {name: round(100 * (last[name] - first[name]) / (last_at - first_at)) for name in first}


def responder_processes(ctx: Context, daemon: Daemon) -> dict[str, int]:
    return {
        "sink": daemon.process.pid,
        "workers": daemon.worker_pid(),
        "test server": ctx.kube.process.pid,
    }


def _rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text(encoding="utf-8")
    found = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    if found is None:
        raise RuntimeError(f"no VmRSS in /proc/{pid}/status")
    return int(found.group(1))


async def bare_phases(ctx: Context, bare: Server) -> dict[str, Any]:
    plan = ctx.plan
    results: dict[str, Any] = {}
    for concurrency in CONCURRENCY:
        ctx.say(f"bare aiohttp: closed loop, concurrency {concurrency}")
        spec = closed_spec(bare.url, plan, concurrency, plan.throughput_s, f"b{concurrency}")
        processes = {"bare app": bare.process.pid}
        results[f"closed_c{concurrency}"] = await profiled_load(
            ctx, spec, f"bare_c{concurrency}", processes
        )
    for rate in plan.rates:
        ctx.say(f"bare aiohttp: open loop, {rate} alerts/s")
        spec = open_spec(bare.url, plan, rate, f"b{rate}")
        processes = {"bare app": bare.process.pid}
        results[f"open_{rate}"] = await profiled_load(ctx, spec, f"bare_{rate}", processes)
    return results


async def responder_phases(ctx: Context, daemon: Daemon) -> dict[str, Any]:
    plan = ctx.plan
    results: dict[str, Any] = {}
    # Every alert names a pod of its own, because the daemon drops repeats of an alert as
    # duplicates, and repeats would measure that shortcut instead of the actions.
    for concurrency in CONCURRENCY:
        ctx.say(f"responder: closed loop, concurrency {concurrency}")
        spec = closed_spec(daemon.url, plan, concurrency, plan.throughput_s, f"c{concurrency}")
        await seed_for(ctx, spec)
        processes = responder_processes(ctx, daemon)
        result = await profiled_load(ctx, spec, f"closed_c{concurrency}", processes, daemon)
        result["drain_s"] = await daemon.wait_drained(plan.drain_limit_s)
        result["outcomes"] = daemon.action_outcomes()
        await arrivals(ctx.session, ctx.kube.url)
        results[f"closed_c{concurrency}"] = result
    for rate in plan.rates:
        ctx.say(f"responder: open loop, {rate} alerts/s")
        spec = open_spec(daemon.url, plan, rate, f"r{rate}")
        await seed_for(ctx, spec)
        processes = responder_processes(ctx, daemon)
        result = await profiled_load(ctx, spec, f"open_{rate}", processes, daemon)
        result["drain_s"] = await daemon.wait_drained(plan.drain_limit_s)
        result["outcomes"] = daemon.action_outcomes()
        calls = await arrivals(ctx.session, ctx.kube.url)
        result["first_call"] = first_call_latency(result.pop("sent_at"), calls)
        results[f"open_{rate}"] = result
    results["burst"] = await burst_phase(ctx, daemon)
    return results


async def burst_phase(ctx: Context, daemon: Daemon) -> dict[str, Any]:
    plan = ctx.plan
    factory = AlertFactory(load_samples(), "m", unique_pods=True)
    seeded = await seed(ctx.session, ctx.kube.url, factory, plan.burst)
    await daemon.wait_drained(plan.drain_limit_s)
    before = daemon.rss_kib()
    ctx.say(f"responder: burst of {plan.burst} alerts with unique pods, RSS {before} KiB")
    spec = {
        "url": daemon.url,
        "mode": "burst",
        "concurrency": 32,
        "duration_s": plan.burst_limit_s,
        "max_requests": plan.burst,
        "tag": "m",
        "unique_pods": True,
    }
    result = await load(spec)
    result.pop("sent_at")
    result["drain_s"] = await daemon.wait_drained(plan.drain_limit_s)
    # Let the periodic work (journal pruning, garbage collection) settle before the reading.
    await asyncio.sleep(2.0)
    result["rss_before_kib"] = before
    result["rss_after_kib"] = daemon.rss_kib()
    result["seeded_pods"] = seeded
    result["outcomes"] = daemon.action_outcomes()
    await arrivals(ctx.session, ctx.kube.url)
    return result


async def scaling_phases(ctx: Context) -> dict[str, Any]:
    plan = ctx.plan
    results: dict[str, Any] = {}
    for count in plan.playbook_counts:
        ctx.say(f"responder with {count} playbooks: closed loop, concurrency 32")
        daemon = await Daemon.start(ctx.workdir / f"playbooks-{count}", ctx.kube.url, count)
        try:
            spec = closed_spec(daemon.url, plan, SCALING_CONCURRENCY, plan.scaling_s, f"p{count}")
            await seed_for(ctx, spec)
            processes = responder_processes(ctx, daemon)
            result = await profiled_load(ctx, spec, f"playbooks_{count}", processes, daemon)
        finally:
            # No drain wait: only the acknowledgements count here, and the daemon finishes or
            # keeps pending what is left when it stops.
            await daemon.stop()
        result["outcomes"] = daemon.action_outcomes()
        await arrivals(ctx.session, ctx.kube.url)
        result.pop("sent_at")
        results[str(count)] = result
    return results


async def clock_phase(ctx: Context) -> dict[str, Any]:
    spec = {
        "url": f"{ctx.kube.url}/_bench/clock",
        "mode": "clock",
        "duration_s": 30,
        "max_requests": ctx.plan.clock_samples,
        "warmup_requests": 10,
    }
    return await load(spec)


@contextlib.asynccontextmanager
async def servers(latency: float) -> AsyncIterator[tuple[Server, Server]]:
    kube = await Server.start("bench.kubeapi", "--latency", str(latency))
    try:
        bare = await Server.start("bench.bare")
        try:
            yield kube, bare
        finally:
            await bare.stop()
    finally:
        await kube.stop()


async def measure(plan: Plan, workdir: Path, profile_dir: Path | None, progress: bool):
    results: dict[str, Any] = {}
    async with servers(0.002) as (kube, bare), aiohttp.ClientSession() as session:
        ctx = Context(plan, workdir, kube, session, profile_dir, progress)
        results["clock"] = await clock_phase(ctx)
        results["bare"] = await bare_phases(ctx, bare)
        ctx.say(f"starting responder with {plan.playbooks} playbooks")
        daemon = await Daemon.start(workdir / "main", kube.url, plan.playbooks)
        try:
            results["responder"] = await responder_phases(ctx, daemon)
        finally:
            await daemon.stop()
        results["scaling"] = await scaling_phases(ctx)
    return results


# --- the report ------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8")
    model = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.MULTILINE)
    meminfo = Path("/proc/meminfo").read_text(encoding="utf-8")
    memory = re.search(r"^MemTotal:\s+(\d+) kB", meminfo, re.MULTILINE)
    return {
        "cores": len(os.sched_getaffinity(0)),
        "memory_gib": round(int(memory.group(1)) / 1024**2, 1) if memory else None,
        "cpu": model.group(1).strip() if model else platform.processor(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "aiohttp": aiohttp.__version__,
        "commit": _git("rev-parse", "--short", "HEAD"),
        # The daemon under test is the working tree, so uncommitted changes are measured too.
        "uncommitted_changes": bool(_git("status", "--porcelain", "--", "responder")),
    }


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, check=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip()


@dataclass
class Row:
    """One line of the table: a figure, its bare-aiohttp counterpart and the target verdict."""

    figure: str
    value: float | None
    bare: float | None = None
    target: str = ""
    passed: bool | None = None

    @property
    def ratio(self) -> float | None:
        if self.value is None or not self.bare:
            return None
        return self.value / self.bare


def rows(results: dict[str, Any], plan: Plan) -> list[Row]:
    bare, responder, scaling = results["bare"], results["responder"], results["scaling"]
    table: list[Row] = []
    for concurrency in CONCURRENCY:
        key = f"closed_c{concurrency}"
        value, base = responder[key]["throughput"], bare[key]["throughput"]
        table.append(
            Row(
                f"throughput c={concurrency} (2xx/s)",
                value,
                base,
                ">= 70 % of bare",
                value >= 0.7 * base,
            )
        )

    result = responder[f"closed_c{CONCURRENCY[-1]}"]
    # The drain wait ends with a fixed second of grace, which is not handling time.
    busy_s = result["elapsed_s"] + result["drain_s"] - 1.0
    table.append(
        Row(
            f"alerts handled after c={CONCURRENCY[-1]}, sent to drained (per s)",
            result["ok"] / busy_s if busy_s > 0 else None,
        )
    )

    for rate in plan.rates:
        key = f"open_{rate}"
        ours, base = responder[key]["latency_ms"], bare[key]["latency_ms"]
        for name, label in (("p50", "p50"), ("p99", "p99"), ("p999", "p99.9")):
            row = Row(f"ack {label} at {rate}/s (ms)", ours[name], base[name])
            if rate == 1000 and name == "p99":
                row.target, row.passed = "<= 5 ms", ours[name] is not None and ours[name] <= 5
            table.append(row)
        table.append(Row(f"achieved rate at {rate}/s (2xx/s)", responder[key]["throughput"], None))
    for rate in plan.rates:
        first = responder[f"open_{rate}"]["first_call"]["ms"]
        table.append(Row(f"received -> first API call p50 at {rate}/s (ms)", first["p50"]))
        p99 = first["p99"]
        table.append(
            Row(
                f"received -> first API call p99 at {rate}/s (ms)",
                p99,
                target="<= 20 ms",
                passed=p99 is not None and p99 <= 20,
            )
        )

    burst = responder["burst"]
    before, after = burst["rss_before_kib"] / 1024, burst["rss_after_kib"] / 1024
    table.append(Row(f"RSS before {plan.burst} alerts (MiB)", before))
    table.append(
        Row(
            f"RSS after {plan.burst} alerts (MiB)",
            after,
            target="<= 120 % of before",
            passed=after <= 1.2 * before,
        )
    )
    table.append(Row(f"burst of {plan.burst}, accepted (2xx/s)", burst["throughput"]))

    base = bare[f"closed_c{SCALING_CONCURRENCY}"]["throughput"]
    smallest = scaling[str(plan.playbook_counts[0])]["throughput"]
    for count in plan.playbook_counts:
        value = scaling[str(count)]["throughput"]
        row = Row(f"throughput, {count} playbooks, c={SCALING_CONCURRENCY} (2xx/s)", value, base)
        if count == plan.playbook_counts[-1] and count != plan.playbook_counts[0]:
            row.target = f">= 80 % of {plan.playbook_counts[0]} playbooks"
            row.passed = value >= 0.8 * smallest
        table.append(row)
    return table


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2f}"


def render(results: dict[str, Any], table: list[Row], spreads: list[str] | None = None) -> str:
    """Return the report as text; ``spreads`` gives the responder's range over repeated runs."""
    info = results["machine"]
    lines = [
        f"machine: {info['cores']} cores, {info['memory_gib']} GiB, {info['cpu']}; "
        f"Linux {info['kernel']}, Python {info['python']}, aiohttp {info['aiohttp']}",
        f"responder: commit {info['commit']}"
        + (", with uncommitted changes" if info["uncommitted_changes"] else ""),
        "The load generator, the Kubernetes API test server and the server under test share "
        "these cores.",
        "",
    ]
    header: tuple[str, ...] = ("figure", "responder", "bare aiohttp", "ratio", "target", "result")
    if spreads is not None:
        runs = len(results["runs"])
        lines.insert(-1, f"Each figure is the median of {runs} runs; 'range' is the responder's.")
        header += ("range",)
    cells = [header]
    for index, row in enumerate(table):
        verdict = ""
        if row.passed is not None:
            verdict = "PASS" if row.passed else "MISS"
        ratio = "-" if row.ratio is None else f"{row.ratio:.2f}"
        line = (row.figure, _number(row.value), _number(row.bare), ratio, row.target, verdict)
        if spreads is not None:
            line += (spreads[index],)
        cells.append(line)
    widths = [max(len(line[column]) for line in cells) for column in range(len(header))]
    for index, line in enumerate(cells):
        lines.append(
            "  ".join(
                cell.ljust(width) if column in (0, 4) else cell.rjust(width)
                for column, (cell, width) in enumerate(zip(line, widths, strict=True))
            ).rstrip()
        )
        if index == 0:
            lines.append("  ".join("-" * width for width in widths))
    hop = results["clock"]["hop_ms"]
    lines += [
        "",
        f"one loopback hop (load generator -> test server handler): p50 {_number(hop['p50'])} "
        f"ms, p99 {_number(hop['p99'])} ms. The received -> first API call figures include "
        "about two such hops.",
    ]
    for key in ("closed_c1", "closed_c32", "open_500", "open_1000", "burst"):
        outcomes = results["responder"].get(key, {}).get("outcomes")
        if outcomes is not None:
            lines.append(f"action outcomes, {key}: {outcomes or 'none'}")
    lines.append("CPU share of each process during a phase (100 % is one core):")
    for side in ("bare", "responder"):
        for key in ("closed_c1", "closed_c32", "open_500", "open_1000"):
            cpu = results[side].get(key, {}).get("cpu_percent")
            if cpu is not None:
                shares = ", ".join(f"{process} {percent} %" for process, percent in cpu.items())
                lines.append(f"  {side} {key}: {shares}")
    return "\n".join(lines)


def _at_least_one(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(
            f"invalid count {text!r}: use a whole number of 1 or more"
        )
    return value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--quick", action="store_true", help="small counts: a smoke run of under a minute"
    )
    parser.add_argument(
        "--output", choices=("table", "json"), default="table", help="format of the results"
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        help="keep configs, journals, daemon logs and results.json here "
        "(default: a temporary directory)",
    )
    parser.add_argument(
        "--repeat",
        type=_at_least_one,
        default=1,
        metavar="N",
        help="run everything N times and report the median of each figure (default 1)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="sample the daemon with py-spy in each phase and write the stacks to DIR",
    )
    return parser.parse_args(argv)


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    plan = QUICK if args.quick else FULL
    with contextlib.ExitStack() as stack:
        if args.workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-")))
        else:
            workdir = args.workdir
        progress = args.output == "table"
        runs = []
        for number in range(1, args.repeat + 1):
            directory = workdir if args.repeat == 1 else workdir / f"run-{number}"
            runs.append(await measure(plan, directory, args.profile, progress))
    results = runs[0] if len(runs) == 1 else {**median_results(runs), "runs": runs}
    results["machine"] = machine()
    results["plan"] = asdict(plan)
    results["figures"] = [{**asdict(row), "ratio": row.ratio} for row in rows(results, plan)]
    return results


def median_results(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Return the results of the first run with every measured number replaced by the runs'
    median. Figures derived from several numbers, such as ratios, are then computed from the
    medians."""

    def merge(values: list[Any]) -> Any:
        first = values[0]
        if isinstance(first, dict):
            merged = {}
            for key in first:
                if all(isinstance(value, dict) and key in value for value in values):
                    merged[key] = merge([value[key] for value in values])
                else:
                    merged[key] = first[key]
            return merged
        if all(isinstance(value, int) and not isinstance(value, bool) for value in values):
            # A count stays a whole number: the middle one, or the lower of the two middle ones.
            return statistics.median_low(values)
        if all(isinstance(value, int | float) and not isinstance(value, bool) for value in values):
            return statistics.median(values)
        return first

    merged: dict[str, Any] = merge(runs)
    return merged


def spreads(results: dict[str, Any], plan: Plan) -> list[str]:
    """Return for each row of the table the responder's lowest and highest value in the runs."""
    tables = [rows(run, plan) for run in results["runs"]]
    ranges = []
    for cells in zip(*tables, strict=True):
        values = [row.value for row in cells if row.value is not None]
        ranges.append(f"{_number(min(values))}-{_number(max(values))}" if values else "-")
    return ranges


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.profile is not None:
        if profile.py_spy() is None:
            raise SystemExit("--profile needs py-spy: pip install py-spy")
        args.profile.mkdir(parents=True, exist_ok=True)
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
    results = asyncio.run(main_async(args))
    if args.workdir is not None:
        (args.workdir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    if args.output == "json":
        json.dump(results, sys.stdout, indent=2)
        print()
    else:
        plan = QUICK if args.quick else FULL
        ranges = spreads(results, plan) if "runs" in results else None
        print(render(results, rows(results, plan), ranges))
    return 0


if __name__ == "__main__":
    sys.exit(main())
