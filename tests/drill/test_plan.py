"""The in-process plan against the Kubernetes API test server: reads, and dry-run writes only."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from responder.drill.record import Record
from responder.drill.replay import ReplayOptions, run_replay
from responder.ingest.alert import Alert
from responder.settings import load_settings
from tests.drill.helpers import PLAYBOOKS, write_recording
from tests.kubeapi.seed import container_id
from tests.kubeapi.server import KubeApiServer
from tests.samples import sample_document
from tests.serve import POD, seed_shop

WRITES = ("POST", "PUT", "PATCH", "DELETE")


def shell_record(line: int = 1) -> Record:
    document = sample_document("falco-direct", line)
    full_id = container_id("shop", POD, "frontend").split("://", 1)[1]
    document["output_fields"]["container.id"] = full_id[:12]
    received = Alert.model_validate(document).time.epoch_ns
    return Record(received, document)


async def plan_json(
    tmp_path: Path, server: KubeApiServer, records: list[Record]
) -> dict[str, Any]:
    kubeconfig = server.write_kubeconfig(tmp_path / "kubeconfig")
    recording = write_recording(tmp_path / "drill.jsonl", records)
    settings = load_settings(None, playbooks=[PLAYBOOKS], kubernetes={"kubeconfig": kubeconfig})
    out = io.StringIO()
    status = await run_replay(recording, settings, ReplayOptions(output="json"), stdout=out)
    assert 0 == status
    report: dict[str, Any] = json.loads(out.getvalue())
    return report


async def test_plan_reads_cluster(tmp_path: Path) -> None:
    async with KubeApiServer() as server:
        seed_shop(server)
        await plan_json(tmp_path, server, [shell_record()])
        reads = server.requests_to("GET", f"/api/v1/namespaces/shop/pods/{POD}")
    assert reads


async def test_plan_writes_are_dry_run(tmp_path: Path) -> None:
    async with KubeApiServer() as server:
        seed_shop(server)
        await plan_json(tmp_path, server, [shell_record()])
        writes = [r for r in server.requests if r.method in WRITES]
    assert writes
    assert ["All"] * len(writes) == [request.query.get("dryRun") for request in writes]


async def test_plan_persists_nothing(tmp_path: Path) -> None:
    async with KubeApiServer() as server:
        seed_shop(server)
        await plan_json(tmp_path, server, [shell_record()])
        pod = server.get_object("pods", POD, "shop") or {}
        policies = server.list_objects("networkpolicies", "shop")
        events = server.list_objects("events", "shop")
    assert "falco-responder.io/rule" not in pod["metadata"]["labels"]
    assert [] == policies
    assert [] == events


async def test_plan_reports_outcomes(tmp_path: Path) -> None:
    async with KubeApiServer() as server:
        seed_shop(server)
        report = await plan_json(tmp_path, server, [shell_record()])
    actions = report["alerts"][0]["actions"]
    assert ["label_pod", "isolate_pod", "create_event"] == [a["name"] for a in actions]
    assert {"dry_run"} == {a["outcome"] for a in actions}


async def test_plan_missing_pod_reported(tmp_path: Path) -> None:
    async with KubeApiServer() as server:
        server.add_namespace("shop")
        report = await plan_json(tmp_path, server, [shell_record()])
    outcomes = [a["outcome"] for a in report["alerts"][0]["actions"]]
    assert "dry_run" not in outcomes


async def test_plan_without_kube(tmp_path: Path) -> None:
    recording = write_recording(tmp_path / "drill.jsonl", [shell_record()])
    settings = load_settings(None, playbooks=[PLAYBOOKS])
    out = io.StringIO()
    await run_replay(recording, settings, ReplayOptions(output="json"), stdout=out)
    (action, *_) = json.loads(out.getvalue())["alerts"][0]["actions"]
    assert "dry_run" == action["outcome"]
    assert action["reason"].startswith("would run label_pod")


async def test_plan_stale_alert_refused(tmp_path: Path) -> None:
    record = sample_document("falco-direct", 2)
    late = Record(Alert.model_validate(record).time.epoch_ns + 3600 * 10**9, record)
    recording = write_recording(tmp_path / "drill.jsonl", [late])
    settings = load_settings(None, playbooks=[PLAYBOOKS])
    out = io.StringIO()
    await run_replay(recording, settings, ReplayOptions(output="json"), stdout=out)
    report = json.loads(out.getvalue())
    outcomes = {a["name"]: a["outcome"] for a in report["alerts"][0]["actions"]}
    assert "stale" == outcomes["delete_pod"]
    assert {"stale": 2} == report["totals"]["refusals"]


async def test_plan_duplicate_suppressed(tmp_path: Path) -> None:
    recording = write_recording(tmp_path / "drill.jsonl", [shell_record(), shell_record()])
    settings = load_settings(None, playbooks=[PLAYBOOKS])
    out = io.StringIO()
    await run_replay(recording, settings, ReplayOptions(output="json"), stdout=out)
    report = json.loads(out.getvalue())
    assert [] == report["alerts"][0]["suppressed"]
    assert 1 == len(report["alerts"][1]["suppressed"])
    assert {"suppressed": 1} == report["totals"]["refusals"]


async def test_plan_refused_alert_not_suppressed(tmp_path: Path) -> None:
    # The daemon lets the next identical alert respond when a guard refused the first one.
    record = sample_document("falco-direct", 2)
    late_ns = Alert.model_validate(record).time.epoch_ns + 3600 * 10**9
    late = [Record(late_ns, record), Record(late_ns + 10**9, record)]
    recording = write_recording(tmp_path / "drill.jsonl", late)
    settings = load_settings(None, playbooks=[PLAYBOOKS])
    out = io.StringIO()
    await run_replay(recording, settings, ReplayOptions(output="json"), stdout=out)
    first, second = json.loads(out.getvalue())["alerts"]
    assert [] == second["suppressed"]
    outcomes = [{a["name"]: a["outcome"] for a in row["actions"]} for row in (first, second)]
    assert ["stale", "stale"] == [row["delete_pod"] for row in outcomes]


class ClosedPipe(io.StringIO):
    """Standard output whose reader went away, as with ``| head``."""

    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


async def test_plan_html_written_before_closed_pipe(tmp_path: Path) -> None:
    recording = write_recording(tmp_path / "drill.jsonl", [shell_record()])
    settings = load_settings(None, playbooks=[PLAYBOOKS])
    html = tmp_path / "report.html"
    options = ReplayOptions(output="json", html=html)
    with pytest.raises(BrokenPipeError):
        await run_replay(recording, settings, options, stdout=ClosedPipe())
    assert html.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
