"""Crash: ``responder serve`` killed with SIGKILL while 1,000 alerts arrive, then restarted.

Every alert acknowledged with 202 must be handled exactly once in effect: each pod is deleted once
(the Kubernetes API test server counts the DELETE calls that removed a pod), and each accepted
alert reaches the webhook receiver, which counts deliveries by alert id.
"""

from __future__ import annotations

import asyncio
import collections
import json
import signal
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest_asyncio
import yaml
from aiohttp import web

from responder.ingest.alert import Timestamp
from tests.kubeapi.seed import container_id
from tests.kubeapi.server import KubeApiServer
from tests.serve import free_port, run_responder

ALERTS = 1000
KILL_AFTER = 400
WORKERS = 8
NAMESPACE = "drill"


def pod_name(index: int) -> str:
    return f"victim-{index:04d}"


def alert(index: int) -> dict[str, Any]:
    pod = pod_name(index)
    short_id = container_id(NAMESPACE, pod, "app").split("://", 1)[1][:12]
    return {
        "rule": "Crash drill",
        "priority": "Critical",
        "time": Timestamp.now().isoformat(),
        "source": "syscall",
        "hostname": "node-1",
        "output": f"crash drill alert {index}",
        "output_fields": {
            "container.id": short_id,
            "k8s.ns.name": NAMESPACE,
            "k8s.pod.name": pod,
            "proc.name": "bash",
        },
        "tags": ["drill"],
    }


class Receiver:
    """A webhook receiver on 127.0.0.1 that counts deliveries by alert id."""

    def __init__(self) -> None:
        self.deliveries: collections.Counter[str] = collections.Counter()
        self.pods: dict[str, str] = {}

    async def receive(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.deliveries[body["alert_id"]] += 1
        self.pods[body["alert_id"]] = body["alert"]["output_fields"]["k8s.pod.name"]
        return web.Response(text="ok")


@pytest_asyncio.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    handler = Receiver()
    app = web.Application()
    app.router.add_post("/", handler.receive)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield handler, f"http://127.0.0.1:{port}/"
    finally:
        await runner.cleanup()


@pytest_asyncio.fixture
async def cluster() -> AsyncIterator[KubeApiServer]:
    # 2 ms per request, so that work is still in flight when the process is killed.
    async with KubeApiServer(latency=0.002) as server:
        server.add_namespace(NAMESPACE)
        for index in range(ALERTS):
            server.add_pod(NAMESPACE, pod_name(index), labels={"app": "victim"})
        yield server


def write_config(tmp_path: Path, cluster: KubeApiServer, hook: str, port: int) -> Path:
    playbooks = tmp_path / "playbooks"
    playbooks.mkdir()
    (playbooks / "crash.yaml").write_text(
        yaml.safe_dump(
            {
                "playbooks": [
                    {
                        "name": "crash-drill",
                        "match": {"rules": ["Crash drill"]},
                        "actions": [{"action": "delete_pod", "parameters": {"grace_period_s": 0}}],
                        "notify": ["hook"],
                    }
                ]
            }
        )
    )
    config = {
        "playbooks": [str(playbooks)],
        "server": {"host": "127.0.0.1", "port": port, "workers": WORKERS},
        "kubernetes": {"kubeconfig": str(cluster.write_kubeconfig(tmp_path / "kubeconfig"))},
        "journal": {"path": str(tmp_path / "journal.db")},
        # Every alert must act: the default budget would stop deletes after ten.
        "guards": {"budget": {"cluster_max": 10 * ALERTS, "namespace_max": 10 * ALERTS}},
        "log_format": "json",
        "auth": {"token": "crash-test-token"},
        "log_level": "warning",
        "notifiers": {"hook": {"type": "webhook", "url": hook}},
    }
    path = tmp_path / "responder.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


async def start(config: Path, tmp_path: Path) -> asyncio.subprocess.Process:
    # The child keeps its own copy of the descriptor, so the file can close once it started.
    with (tmp_path / "stderr.log").open("ab") as log_file:
        return await run_responder(
            "serve",
            "--config",
            str(config),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=log_file,
            cwd=tmp_path,
        )


async def wait_ready(session: aiohttp.ClientSession, url: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            async with session.get(f"{url}/readyz") as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.05)
    raise AssertionError("responder did not become ready within 20 s")


async def send(
    session: aiohttp.ClientSession, url: str, indexes: list[int], acked: dict[int, str], stop: int
) -> list[int]:
    """POST each alert once, four at a time; return the indexes that got no 202."""
    failed: list[int] = []
    pending = list(indexes)

    async def sender() -> None:
        while pending and len(acked) < stop:
            index = pending.pop(0)
            try:
                async with session.post(url, json=alert(index)) as response:
                    if response.status == 202:
                        acked[index] = (await response.json())["ids"][0]
                    else:
                        failed.append(index)
            except aiohttp.ClientError:
                failed.append(index)

    await asyncio.gather(*(sender() for _ in range(4)))
    return failed + pending


def count_pending(path: Path) -> int:
    journal = sqlite3.connect(path)
    try:
        (count,) = journal.execute(
            "SELECT count(*) FROM alerts WHERE state = 'pending'"
        ).fetchone()
    finally:
        journal.close()
    return int(count)


async def test_kill_and_restart_acts_once(
    tmp_path: Path, cluster: KubeApiServer, receiver: tuple[Receiver, str]
) -> None:
    handler, hook = receiver
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    config = write_config(tmp_path, cluster, hook, port)
    acked: dict[int, str] = {}
    timeout = aiohttp.ClientTimeout(total=10)
    authorized = {"Authorization": "Bearer crash-test-token"}
    async with aiohttp.ClientSession(timeout=timeout, headers=authorized) as session:
        first = await start(config, tmp_path)
        await wait_ready(session, url)
        left = await send(session, f"{url}/", list(range(ALERTS)), acked, KILL_AFTER)
        first.send_signal(signal.SIGKILL)
        await first.wait()
        assert -signal.SIGKILL == first.returncode
        acked_before_kill = len(acked)
        pending_at_kill = count_pending(tmp_path / "journal.db")

        second = await start(config, tmp_path)
        try:
            await wait_ready(session, url)
            retry = await send(session, f"{url}/", left, acked, ALERTS + 1)
            assert [] == retry
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not set(acked.values()) <= set(
                handler.deliveries
            ):
                await asyncio.sleep(0.1)
        finally:
            second.send_signal(signal.SIGTERM)
            await asyncio.wait_for(second.wait(), timeout=30)
    assert 0 == second.returncode

    deletions = collections.Counter(
        deletion.name for deletion in cluster.deletions if not deletion.dry_run
    )
    acked_pods = {pod_name(index) for index in acked}
    missing = set(acked.values()) - set(handler.deliveries)
    duplicates = sum(count - 1 for count in handler.deliveries.values())
    assert KILL_AFTER <= acked_before_kill
    # The kill must leave work unfinished, or the restart would resume nothing.
    assert 0 < pending_at_kill
    assert ALERTS == len(acked)
    assert set() == missing
    assert acked_pods == set(deletions)
    assert {1} == set(deletions.values())
    # A crash between a delivery and its record can repeat that delivery once per worker.
    assert duplicates <= WORKERS

    journal = sqlite3.connect(tmp_path / "journal.db")
    try:
        states = dict(journal.execute("SELECT state, count(*) FROM alerts GROUP BY state"))
    finally:
        journal.close()
    assert {"done"} == set(states)
    report = {
        "acked_before_kill": acked_before_kill,
        "pending_at_kill": pending_at_kill,
        "duplicates": duplicates,
    }
    print(json.dumps(report))
