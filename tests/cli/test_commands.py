"""The ``responder`` commands: check, replay and release, run as a user runs them."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import structlog

from responder.act.base import ActionContext, load_builtin_actions
from responder.act.kube import Kube
from responder.cli import main
from responder.ingest.alert import Alert
from tests.kubeapi.server import KubeApiServer
from tests.samples import SAMPLES
from tests.serve import run_responder

REPO = Path(__file__).resolve().parents[2]
PLAYBOOKS = REPO / "playbooks"


def test_check_shipped_playbooks(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["check", str(PLAYBOOKS)])
    out = capsys.readouterr().out
    assert 0 == status
    assert "0 errors: valid" in out


def test_check_invalid_exits_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("playbooks:\n  - name: p\n    actions: [{action: reboot_node}]\n")
    status = main(["check", str(path)])
    captured = capsys.readouterr()
    assert 1 == status
    assert "unknown action 'reboot_node'" in captured.err
    assert "1 errors: invalid" in captured.out


def test_check_notifiers_against_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "responder.yaml"
    config.write_text("notifiers: {oncall: {type: log}}\n")
    status = main(["check", str(PLAYBOOKS), "--config", str(config)])
    captured = capsys.readouterr()
    assert 1 == status
    assert "unknown notifier 'security'; configured notifiers: oncall" in captured.err


def test_check_missing_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["check", str(tmp_path / "absent")])
    assert 1 == status
    assert "not found" in capsys.readouterr().err


def test_replay_json_plan(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(
        [
            "replay",
            str(SAMPLES / "falco-direct.jsonl"),
            "--dry-run",
            "--playbooks",
            str(PLAYBOOKS),
            "--output",
            "json",
        ]
    )
    rows = json.loads(capsys.readouterr().out)["alerts"]
    assert 0 == status
    assert 15 == len(rows)
    first = rows[0]
    assert "Terminal shell in container" == first["rule"]
    assert ["shell-in-container"] == first["playbooks"]
    expected = ["label_pod", "isolate_pod", "create_event"]
    assert expected == [action["name"] for action in first["actions"]]
    dropper = rows[1]
    assert ["drop-and-execute"] == dropper["playbooks"]


def test_replay_table_marks_internal(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(
        [
            "replay",
            str(SAMPLES / "falcosidekick.jsonl"),
            "--dry-run",
            "--playbooks",
            str(PLAYBOOKS),
        ]
    )
    out = capsys.readouterr().out
    assert 0 == status
    assert "ignored: internal event" in out
    assert "13 alerts" in out


def test_replay_bad_line_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "alerts.jsonl"
    path.write_text('{"rule": "x"}\n')
    status = main(["replay", str(path), "--dry-run", "--playbooks", str(PLAYBOOKS)])
    assert 1 == status
    assert f"{path}:1: not a Falco alert" in capsys.readouterr().err


def test_replay_plans_without_dry_run(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["replay", str(SAMPLES / "falco-direct.jsonl"), "--playbooks", str(PLAYBOOKS)])
    assert 0 == status
    assert "15 alerts" in capsys.readouterr().out


def test_release_invalid_target(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["release", "no-slash"])
    assert 1 == status
    assert "write NAMESPACE/POD" in capsys.readouterr().err


async def test_release_removes_quarantine(tmp_path: Path) -> None:
    async with KubeApiServer() as cluster:
        cluster.add_namespace("shop")
        cluster.add_pod("shop", "web-0", labels={"app": "web"})
        kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig")
        spec = load_builtin_actions().get("isolate_pod")
        assert spec is not None
        alert = Alert.model_validate(
            {
                "rule": "Terminal shell in container",
                "priority": "Notice",
                "time": "2026-03-14T12:31:06.118273645Z",
                "output_fields": {"k8s.ns.name": "shop", "k8s.pod.name": "web-0"},
            }
        )
        kube = await Kube.connect(kubeconfig=kubeconfig)
        try:
            context = ActionContext(
                alert=alert,
                alert_id="a1",
                playbook="p",
                dry_run=False,
                kube=kube,
                log=structlog.get_logger(),
            )
            isolated = await spec.run(context, spec.parameters())
        finally:
            await kube.close()
        assert "success" == isolated.outcome.value
        assert 1 == len(cluster.list_objects("networkpolicies", "shop"))

        process = await run_responder("release", "shop/web-0", "--kubeconfig", str(kubeconfig))
        out, err = await asyncio.wait_for(process.communicate(), timeout=30)
        assert 0 == process.returncode, err.decode()
        assert [] == cluster.list_objects("networkpolicies", "shop")
        pod = cluster.get_object("pods", "web-0", "shop")
        assert pod is not None
        assert "falco-responder.io/quarantine" not in pod["metadata"]["labels"]
        assert out.decode().strip()


def test_check_warns_match_all_delete(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "wide.yaml"
    path.write_text("playbooks:\n  - name: everything\n    actions: [{action: delete_pod}]\n")
    status = main(["check", str(path)])
    captured = capsys.readouterr()
    assert 0 == status
    assert "'everything' matches every alert and runs delete_pod" in captured.err
