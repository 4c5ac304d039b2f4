"""``responder serve`` as a subprocess, against the Kubernetes API test server and a real SMTP
server: an alert goes in, the pod is labelled and isolated, an Event is written, a mail arrives.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.kubeapi.server import KubeApiServer
from tests.serve import (
    POD,
    REPO,
    Daemon,
    eventually,
    free_port,
    offline_config,
    run_responder,
    seed_shop,
    shell_alert,
    start_daemon,
    stop,
)

TOKEN = "e2e-sink-token-0042"
AUTHORIZED = {"Authorization": f"Bearer {TOKEN}"}


class Mailbox:
    """An aiosmtpd handler that keeps every message it receives."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    handler = Mailbox()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield handler, controller.port
    finally:
        controller.stop()


@pytest_asyncio.fixture
async def cluster() -> AsyncIterator[KubeApiServer]:
    async with KubeApiServer() as server:
        seed_shop(server)
        yield server


async def start_mailing_daemon(tmp_path: Path, cluster: KubeApiServer, smtp_port: int) -> Daemon:
    kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig")
    config = {
        "playbooks": [str(REPO / "playbooks")],
        "kubernetes": {"kubeconfig": str(kubeconfig), "required": True},
        "log_format": "json",
        "auth": {"mode": "bearer", "token": TOKEN},
        "notifiers": {
            "security": {
                "type": "email",
                "host": "127.0.0.1",
                "port": smtp_port,
                "security": "none",
                "sender": "responder@example.com",
                "recipients": ["secops@example.com"],
            }
        },
    }
    return await start_daemon(tmp_path, config)


async def test_alert_labels_isolates_records_and_mails(
    tmp_path: Path, cluster: KubeApiServer, mailbox: tuple[Mailbox, int]
) -> None:
    handler, smtp_port = mailbox
    daemon = await start_mailing_daemon(tmp_path, cluster, smtp_port)
    try:
        async with aiohttp.ClientSession(headers=AUTHORIZED) as session:
            async with session.post(daemon.url, data=json.dumps(shell_alert())) as response:
                assert 202 == response.status
                (alert_id,) = (await response.json())["ids"]

        def pod_labelled() -> bool:
            pod = cluster.get_object("pods", POD, "shop") or {}
            labels = pod.get("metadata", {}).get("labels", {})
            return bool(labels.get("falco-responder.io/rule"))

        def policy_created() -> bool:
            return bool(cluster.list_objects("networkpolicies", "shop"))

        def event_created() -> bool:
            return bool(cluster.list_objects("events", "shop"))

        def mail_arrived() -> bool:
            return bool(handler.messages)

        await eventually(pod_labelled)
        await eventually(policy_created)
        await eventually(event_created)
        await eventually(mail_arrived)
        record = await fetch_record(daemon, alert_id)
    finally:
        stderr = await stop(daemon)
    assert 0 == daemon.process.returncode, stderr

    pod = cluster.get_object("pods", POD, "shop")
    assert pod is not None
    assert "Terminal-shell-in-container" == pod["metadata"]["labels"]["falco-responder.io/rule"]
    (policy,) = cluster.list_objects("networkpolicies", "shop")
    assert ["Ingress", "Egress"] == policy["spec"]["policyTypes"]
    (event,) = cluster.list_objects("events", "shop")
    assert pod["metadata"]["uid"] == event["involvedObject"]["uid"]
    (mail,) = handler.messages
    assert "Terminal shell in container" in mail["Subject"]
    logged = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    outcomes = {
        entry["action"]: entry["outcome"] for entry in logged if entry["event"] == "action_done"
    }
    assert {
        "label_pod": "success",
        "isolate_pod": "success",
        "create_event": "success",
    } == outcomes
    decided = {(d["kind"], d["name"]): d["outcome"] for d in record["decisions"]}
    assert "success" == decided[("action", "isolate_pod")]
    assert "sent" == decided[("notification", "security")]
    assert "done" == record["state"]


async def fetch_record(daemon: Daemon, alert_id: str) -> dict[str, Any]:
    """Fetch the alert from the alerts API once the journal shows it done."""
    record: dict[str, Any] = {}
    async with aiohttp.ClientSession(headers=AUTHORIZED) as session:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and record.get("state") != "done":
            async with session.get(f"{daemon.url}/api/v1/alerts/{alert_id}") as response:
                assert 200 == response.status
                record = await response.json()
            await asyncio.sleep(0.05)
    return record


async def test_history_lists_decisions(
    tmp_path: Path, cluster: KubeApiServer, mailbox: tuple[Mailbox, int]
) -> None:
    _, smtp_port = mailbox
    daemon = await start_mailing_daemon(tmp_path, cluster, smtp_port)
    try:
        async with aiohttp.ClientSession(headers=AUTHORIZED) as session:
            async with session.post(daemon.url, data=json.dumps(shell_alert())) as response:
                (alert_id,) = (await response.json())["ids"]
            async with session.get(f"{daemon.url}/api/v1/alerts/unknown") as response:
                assert 404 == response.status
        async with aiohttp.ClientSession() as forger:
            async with forger.post(daemon.url, data=json.dumps(shell_alert())) as response:
                assert 401 == response.status
            async with forger.get(f"{daemon.url}/api/v1/alerts/{alert_id}") as response:
                assert 401 == response.status
            async with forger.get(f"{daemon.url}/healthz") as response:
                assert 200 == response.status
        await fetch_record(daemon, alert_id)
    finally:
        await stop(daemon)
    journal = str(tmp_path / "responder-journal.db")
    process = await run_responder("history", "--journal", journal, "--namespace", "shop")
    out, err = await asyncio.wait_for(process.communicate(), timeout=30)
    text = out.decode()
    assert 0 == process.returncode, err.decode()
    assert "shell-in-container/isolate_pod=success" in text
    assert "shell-in-container/security=sent" in text
    assert "1 alert\n" in text


async def test_notification_through_proxy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Notifications honour HTTP_PROXY, as a daemon behind an egress proxy needs."""
    targets: list[str] = []

    async def forward(request: web.Request) -> web.Response:
        # The proxy responds in place of the webhook it was asked to reach.
        targets.append(f"{request.method} {request.url}")
        return web.Response(status=200)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", forward)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    proxy_port = runner.addresses[0][1]
    for name in ("HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy_port}")
    # A port that nothing listens on: only the proxy can deliver the notification.
    hook = f"http://127.0.0.1:{free_port()}/hook"
    config = offline_config(tmp_path, TOKEN, {"type": "webhook", "url": hook})
    daemon = await start_daemon(tmp_path, config)
    try:
        async with aiohttp.ClientSession(headers=AUTHORIZED) as session:
            async with session.post(daemon.url, data=json.dumps(shell_alert())) as response:
                assert 202 == response.status

        def delivered() -> bool:
            return bool(targets)

        await eventually(delivered)
    finally:
        await stop(daemon)
        await runner.cleanup()
    assert [f"POST {hook}"] == targets
