"""``replay --to`` against a live ``responder serve``, and the report from its decisions."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest_asyncio

from responder.drill.record import Record
from responder.drill.replay import ReplayOptions, run_replay
from responder.drill.send import SendOptions
from responder.settings import load_settings
from tests.drill.helpers import PLAYBOOKS, sample_records, write_recording
from tests.serve import Daemon, run_responder, start_daemon, stop

SCRIPT = "<script>alert(1)</script>"
TOKEN = "drill-test-token"


@pytest_asyncio.fixture
async def daemon(tmp_path: Path) -> AsyncIterator[Daemon]:
    config = {
        "playbooks": [str(PLAYBOOKS)],
        # A kubeconfig that does not exist keeps the daemon off any cluster.
        "kubernetes": {"kubeconfig": str(tmp_path / "absent-kubeconfig")},
        "journal": {"path": str(tmp_path / "journal.db")},
        "dry_run": True,
        "log_format": "json",
        "notifiers": {"security": {"type": "log"}},
        "auth": {"token": TOKEN},
    }
    running = await start_daemon(tmp_path, config)
    try:
        yield running
    finally:
        await stop(running)


def drill_records() -> list[Record]:
    records = sample_records([1, 3, 11], gap_s=0.01)
    shell = records[0]
    records[0] = Record(shell.received_ns, {**shell.alert, "output": f"shell {SCRIPT}"})
    return records


async def drill(tmp_path: Path, daemon: Daemon, output: str) -> tuple[str, Path]:
    recording = write_recording(tmp_path / "drill.jsonl", drill_records())
    html = tmp_path / "report.html"
    options = ReplayOptions(
        output=output,
        html=html,
        retime=True,
        send=SendOptions(url=daemon.url + "/", token=TOKEN),
        wait_s=10.0,
    )
    out = io.StringIO()
    status = await run_replay(recording, load_settings(None), options, stdout=out)
    assert 0 == status
    return out.getvalue(), html


async def test_daemon_json_report(tmp_path: Path, daemon: Daemon) -> None:
    text, _ = await drill(tmp_path, daemon, "json")
    report: dict[str, Any] = json.loads(text)
    shell, unmatched, notified = report["alerts"]
    assert "daemon" == report["mode"]
    assert 3 == report["send"]["accepted"]
    assert ["shell-in-container"] == shell["playbooks"]
    assert ["label_pod", "isolate_pod", "create_event"] == [a["name"] for a in shell["actions"]]
    assert {"dry_run"} == {a["outcome"] for a in shell["actions"]}, shell["actions"]
    assert [] == unmatched["playbooks"]
    assert ["notify-serious"] == notified["playbooks"]
    assert "done" == shell["state"]
    assert 202 == shell["status"]
    assert {"dry_run": 3} == report["totals"]["actions"]


async def test_daemon_table_report(tmp_path: Path, daemon: Daemon) -> None:
    text, _ = await drill(tmp_path, daemon, "table")
    assert "sent 3, accepted 3, rejected 0" in text
    assert "shell-in-container/isolate_pod=dry_run" in text
    assert "3 alerts, 2 matched at least one playbook" in text


class Links(HTMLParser):
    """Collects the attributes that load or link elsewhere, and the script elements."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            self.scripts += 1
        for name, value in attrs:
            if name in ("src", "href", "action", "xlink:href") and value:
                self.urls.append(value)


async def test_daemon_html_self_contained(tmp_path: Path, daemon: Daemon) -> None:
    _, html = await drill(tmp_path, daemon, "json")
    parser = Links()
    text = html.read_text(encoding="utf-8")
    parser.feed(text)
    assert [] == [url for url in parser.urls if url.startswith(("http:", "https:", "//"))]
    assert "@import" not in text
    assert "<svg" in text


async def test_daemon_html_escapes_output(tmp_path: Path, daemon: Daemon) -> None:
    _, html = await drill(tmp_path, daemon, "json")
    parser = Links()
    text = html.read_text(encoding="utf-8")
    parser.feed(text)
    assert 0 == parser.scripts
    assert SCRIPT not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text


async def test_daemon_token_from_file(tmp_path: Path, daemon: Daemon) -> None:
    recording = write_recording(tmp_path / "drill.jsonl", drill_records())
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n", encoding="utf-8")
    command = ["replay", str(recording), "--retime"]
    command += ["--to", daemon.url + "/", "--token-file", str(token_file)]
    command += ["--output", "json", "--wait", "10"]
    process = await run_responder(*command, cwd=tmp_path)
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert 0 == process.returncode, stderr.decode()
    assert 3 == json.loads(stdout)["send"]["accepted"]
    assert TOKEN.encode() not in stdout + stderr
