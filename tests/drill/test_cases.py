"""``responder test``: the shipped playbook tests, failures with a diff, invalid test files."""

from __future__ import annotations

from pathlib import Path

import pytest

from responder.cli import main
from tests.drill.helpers import PLAYBOOKS, REPO

SAMPLES = REPO / "tests" / "samples" / "falco-direct.jsonl"


def write_case(tmp_path: Path, expect: str, extra: str = "") -> Path:
    path = tmp_path / "case.yaml"
    path.write_text(
        "tests:\n"
        "  - name: shell is isolated\n"
        f"    alert_file: {SAMPLES}\n"
        "    alert_line: 1\n"
        f"    playbooks: [{PLAYBOOKS}]\n"
        f"{extra}"
        f"    expect: {expect}\n",
        encoding="utf-8",
    )
    return path


def test_shipped_tests_pass(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["test", str(PLAYBOOKS / "tests")])
    out = capsys.readouterr().out
    assert 0 == status, out
    assert " 0 failed" in out


def test_shipped_tests_cover_playbooks() -> None:
    texts = " ".join(path.read_text() for path in (PLAYBOOKS / "tests").glob("*.yaml"))
    names = ["shell-in-container", "drop-and-execute", "outbound-c2", "container-escape"]
    names.append("notify-serious")
    assert [] == [name for name in names if f"[{name}" not in texts]


def test_case_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_case(tmp_path, "{playbooks: [shell-in-container]}")
    assert 0 == main(["test", str(path)])


def test_wrong_actions_diff(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_case(tmp_path, "{actions: [label_pod, delete_pod]}")
    status = main(["test", str(path)])
    out = capsys.readouterr().out
    assert 1 == status
    assert "FAIL" in out
    assert "-delete_pod" in out
    assert "+isolate_pod" in out
    assert "--- expected" in out
    assert "+++ actual" in out


def test_not_playbooks_diff(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_case(tmp_path, "{not_playbooks: [shell-in-container]}")
    status = main(["test", str(path)])
    out = capsys.readouterr().out
    assert 1 == status
    assert "+shell-in-container" in out


def test_patch_changes_match(tmp_path: Path) -> None:
    patch = "    alert_patch: {output_fields: {k8s.ns.name: kube-system}}\n"
    path = write_case(tmp_path, "{playbooks: []}", extra=patch)
    assert 0 == main(["test", str(path)])


def test_unknown_key_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_case(tmp_path, "{playbooks: []}", extra="    alert_pach: {}\n")
    status = main(["test", str(path)])
    err = capsys.readouterr().err
    assert 1 == status
    assert f"{path}: test 'shell is isolated': unknown key 'alert_pach'" in err


def test_unknown_expect_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_case(tmp_path, "{action: [label_pod]}")
    status = main(["test", str(path)])
    assert 1 == status
    assert "expect: unknown key 'action'" in capsys.readouterr().err


def test_check_ignores_tests_dir(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["check", str(PLAYBOOKS)])
    assert 0 == status
    assert "5 playbooks valid" in capsys.readouterr().out
