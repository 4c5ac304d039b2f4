"""``responder serve`` runs the workers in a process of their own: its metrics, signals, drain,
start failures, and what happens when either process dies."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest_asyncio
import yaml
from aiohttp import web

from tests.serve import (
    REPO,
    Daemon,
    child_pid,
    eventually,
    free_port,
    hanging_kubeconfig,
    offline_config,
    process_gone,
    shell_alert,
    spawn_serve,
    start_daemon,
    stop,
)

TOKEN = "worker-process-token-07"
AUTHORIZED = {"Authorization": f"Bearer {TOKEN}"}


@dataclass
class Hook:
    """A webhook receiver on loopback that keeps the bodies it receives and can respond late."""

    url: str = ""
    delay_s: float = 0.0
    bodies: list[dict[str, Any]] = field(default_factory=list)

    async def receive(self, request: web.Request) -> web.Response:
        body = await request.json()
        await asyncio.sleep(self.delay_s)
        self.bodies.append(body)
        return web.Response(status=200)


@pytest_asyncio.fixture
async def hook() -> AsyncIterator[Hook]:
    receiver = Hook()
    app = web.Application()
    app.router.add_post("/hook", receiver.receive)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    receiver.url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    try:
        yield receiver
    finally:
        await runner.cleanup()


def config_for(tmp_path: Path, hook: Hook, **more: Any) -> dict[str, Any]:
    config = offline_config(tmp_path, TOKEN, {"type": "webhook", "url": hook.url})
    config["journal"] = {"path": str(tmp_path / "journal.db")}
    return {**config, **more}


async def post_alert(url: str) -> None:
    async with aiohttp.ClientSession(headers=AUTHORIZED) as session:
        async with session.post(url, data=json.dumps(shell_alert())) as response:
            assert 202 == response.status, await response.text()


async def scrape(url: str) -> str:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{url}/metrics") as response:
            assert 200 == response.status
            return await response.text()


def sample(metrics: str, name: str, **labels: str) -> float | None:
    """Return the value of the first sample of ``name`` that has ``labels``."""
    for line in metrics.splitlines():
        found = re.fullmatch(r"(\w+)(?:\{(.*)\})? (\S+)", line)
        if found is None or found[1] != name:
            continue
        have = dict(re.findall(r'(\w+)="([^"]*)"', found[2] or ""))
        if labels.items() <= have.items():
            return float(found[3])
    return None


async def wait_gone(pid: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process_gone(pid):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"process {pid} still runs after {timeout_s} s")


async def exited(daemon: Daemon) -> str:
    """Wait for serve to exit on its own, and return what it wrote to standard error."""
    _, stderr = await asyncio.wait_for(daemon.process.communicate(), timeout=30)
    return stderr.decode(errors="replace")


async def test_metrics_join_both_processes(tmp_path: Path, hook: Hook) -> None:
    daemon = await start_daemon(tmp_path, config_for(tmp_path, hook))
    try:
        await post_alert(daemon.url)
        await eventually(lambda: len(hook.bodies) == 1)
        metrics = await scrape(daemon.url)
    finally:
        await stop(daemon)
    # Kept by the sink process:
    rule = "Terminal shell in container"
    assert 1.0 == sample(metrics, "responder_alerts_received_total", rule=rule)
    # Kept by the worker process:
    assert 1.0 == sample(
        metrics, "responder_notifications_total", notifier="security", outcome="sent"
    )
    assert 1.0 == sample(
        metrics, "responder_playbook_matches_total", playbook="shell-in-container"
    )
    assert 5.0 == sample(metrics, "responder_playbooks_loaded")
    families = re.findall(r"^# TYPE (\S+)", metrics, re.MULTILINE)
    assert len(families) == len(set(families)), families
    sink = {"responder_queue_depth", "responder_alerts_rejected_total"}
    workers = {"responder_actions_total", "responder_guard_refusals_total"}
    assert sink | workers <= set(families)


async def test_worker_killed_stops_sink(tmp_path: Path, hook: Hook) -> None:
    # The webhook responds after the kill, so the alert is accepted and not finished.
    hook.delay_s = 30.0
    daemon = await start_daemon(tmp_path, config_for(tmp_path, hook))
    worker = child_pid(daemon.process.pid)
    assert worker is not None
    await post_alert(daemon.url)
    await asyncio.sleep(0.5)
    os.kill(worker, signal.SIGKILL)
    stderr = await exited(daemon)
    assert 1 == daemon.process.returncode, stderr
    assert '"event": "worker_process_exited"' in stderr
    assert hook.bodies == []

    # The next start resumes the alert and sends its notification.
    hook.delay_s = 0.0
    again = await start_daemon(tmp_path, config_for(tmp_path, hook))
    try:
        await eventually(lambda: len(hook.bodies) == 1)
    finally:
        stderr = await stop(again)
    assert '"resumed": 1' in stderr
    assert "Terminal shell in container" in json.dumps(hook.bodies[0])


async def test_sink_killed_takes_worker_along(tmp_path: Path, hook: Hook) -> None:
    daemon = await start_daemon(tmp_path, config_for(tmp_path, hook))
    worker = child_pid(daemon.process.pid)
    assert worker is not None
    daemon.process.kill()
    await daemon.process.wait()
    await wait_gone(worker)


async def test_ctrl_c_drains_accepted_alerts(tmp_path: Path, hook: Hook) -> None:
    """SIGINT to the terminal's process group reaches the sink only, which lets the worker
    process finish what it took before both exit."""
    hook.delay_s = 1.0
    daemon = await start_daemon(tmp_path, config_for(tmp_path, hook), new_session=True)
    worker = child_pid(daemon.process.pid)
    assert worker is not None
    await post_alert(daemon.url)
    await asyncio.sleep(0.3)
    os.killpg(daemon.process.pid, signal.SIGINT)
    stderr = await exited(daemon)
    assert 0 == daemon.process.returncode, stderr
    assert 1 == len(hook.bodies), stderr
    await wait_gone(worker)


async def test_sighup_reloads_worker_playbooks(tmp_path: Path, hook: Hook) -> None:
    playbooks = tmp_path / "playbooks"
    shutil.copytree(REPO / "playbooks", playbooks, ignore=shutil.ignore_patterns("tests"))
    config = config_for(tmp_path, hook, playbooks=[str(playbooks)], reload_interval_s=3600)
    daemon = await start_daemon(tmp_path, config)
    try:
        assert 5.0 == sample(await scrape(daemon.url), "responder_playbooks_loaded")
        extra = yaml.safe_load((playbooks / "shell-in-container.yaml").read_text())
        extra["playbooks"][0]["name"] = "shell-copy"
        (playbooks / "shell-copy.yaml").write_text(yaml.safe_dump(extra))
        daemon.process.send_signal(signal.SIGHUP)
        loaded: list[float | None] = []

        async def reloaded() -> None:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                loaded.append(sample(await scrape(daemon.url), "responder_playbooks_loaded"))
                if loaded[-1] == 6.0:
                    return
                await asyncio.sleep(0.1)

        await reloaded()
    finally:
        stderr = await stop(daemon)
    assert 6.0 == loaded[-1], stderr
    assert '"trigger": "sighup"' in stderr


async def test_worker_start_failure_named(tmp_path: Path, hook: Hook) -> None:
    config = config_for(
        tmp_path,
        hook,
        kubernetes={"kubeconfig": str(tmp_path / "absent"), "required": True},
        server={"host": "127.0.0.1", "port": free_port()},
    )
    process = await spawn_serve(tmp_path, config)
    _, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
    text = stderr.decode()
    assert 1 == process.returncode, text
    assert "responder: cannot load Kubernetes configuration: kubeconfig" in text
    assert str(tmp_path / "absent") in text


def caught_signals(pid: int) -> tuple[int, int]:
    """Return the masks of ignored and caught signals of ``pid``, from /proc."""
    status = Path(f"/proc/{pid}/status").read_text()
    ignored = int(re.search(r"^SigIgn:\s+(\w+)", status, re.MULTILINE)[1], 16)  # type: ignore[index]
    caught = int(re.search(r"^SigCgt:\s+(\w+)", status, re.MULTILINE)[1], 16)  # type: ignore[index]
    return ignored, caught


async def test_stuck_worker_fails_healthz(tmp_path: Path, hook: Hook) -> None:
    daemon = await start_daemon(tmp_path, config_for(tmp_path, hook))
    worker = child_pid(daemon.process.pid)
    assert worker is not None
    # SIGINT and SIGTERM are caught, not ignored: a program the worker process starts, such as
    # a credential plugin, gets the default actions back.
    ignored, caught = caught_signals(worker)
    for signum in (signal.SIGINT, signal.SIGTERM):
        assert not ignored & (1 << (signum - 1))
        assert caught & (1 << (signum - 1))
    try:
        async with aiohttp.ClientSession() as session:
            os.kill(worker, signal.SIGSTOP)
            try:
                async with session.get(f"{daemon.url}/healthz") as response:
                    stuck = (response.status, await response.json())
            finally:
                os.kill(worker, signal.SIGCONT)
            async with session.get(f"{daemon.url}/healthz") as response:
                alive = response.status
    finally:
        await stop(daemon)
    assert 503 == stuck[0]
    assert ["the worker process did not reply within 1.5 s"] == stuck[1]["problems"]
    assert 200 == alive


async def test_signals_during_hung_start(tmp_path: Path, hook: Hook) -> None:
    """SIGHUP while the worker process starts is not a reason to end it, and SIGTERM then stops
    both at once, with the credential plugin the worker process started."""
    kubeconfig, pid_file = hanging_kubeconfig(tmp_path)
    config = config_for(tmp_path, hook, kubernetes={"kubeconfig": str(kubeconfig)})
    config["server"] = {"host": "127.0.0.1", "port": free_port()}
    process = await spawn_serve(tmp_path, config)
    for _ in range(200):
        if pid_file.exists() and pid_file.read_text():
            break
        await asyncio.sleep(0.05)
    plugin = int(pid_file.read_text())
    try:
        process.send_signal(signal.SIGHUP)
        await asyncio.sleep(0.5)
        assert process.returncode is None
        process.send_signal(signal.SIGTERM)
        started = time.monotonic()
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
        text = stderr.decode()
        assert time.monotonic() - started < 10, text
        assert 0 == process.returncode, text
        assert '"reason": "stopped before it started"' in text
        await wait_gone(plugin)
    finally:
        if not process_gone(plugin):
            os.kill(plugin, signal.SIGKILL)


async def test_sighup_storm_during_drain(tmp_path: Path, hook: Hook) -> None:
    """SIGHUPs that a config reloader sends while serve drains must end neither process."""
    hook.delay_s = 1.0
    daemon = await start_daemon(tmp_path, config_for(tmp_path, hook))
    await post_alert(daemon.url)
    await asyncio.sleep(0.3)
    daemon.process.send_signal(signal.SIGTERM)
    # A signal every 20 ms until serve exits, 500 at most.
    for _ in range(500):
        if daemon.process.returncode is not None:
            break
        with contextlib.suppress(ProcessLookupError):
            daemon.process.send_signal(signal.SIGHUP)
        await asyncio.sleep(0.02)
    stderr = await exited(daemon)
    assert 0 == daemon.process.returncode, stderr
    assert '"status": 0, "event": "worker_process_stopped"' in stderr
    assert 1 == len(hook.bodies)


async def test_sighup_during_start_spared(tmp_path: Path, hook: Hook) -> None:
    """SIGHUPs from the moment serve ignores them, before the worker process has handlers."""
    config = config_for(tmp_path, hook)
    port = free_port()
    config["server"] = {"host": "127.0.0.1", "port": port}
    process = await spawn_serve(tmp_path, config)
    daemon = Daemon(process, f"http://127.0.0.1:{port}")
    # Python starts with the default action, which no program can change before it runs.
    for _ in range(500):
        ignored, caught = caught_signals(process.pid)
        if (ignored | caught) & (1 << (signal.SIGHUP - 1)):
            break
        await asyncio.sleep(0.01)
    ready = False
    async with aiohttp.ClientSession() as session:
        # A signal every 20 ms until serve is ready, 1,000 at most.
        for _ in range(1000):
            if process.returncode is not None:
                break
            process.send_signal(signal.SIGHUP)
            with contextlib.suppress(aiohttp.ClientConnectionError):
                async with session.get(f"{daemon.url}/readyz") as response:
                    ready = response.status == 200
            if ready:
                break
            await asyncio.sleep(0.02)
    stderr = await stop(daemon)
    assert ready, stderr
    assert 0 == process.returncode, stderr
