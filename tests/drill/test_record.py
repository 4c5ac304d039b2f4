"""Recordings: append, read, retime, and export from the journal."""

from __future__ import annotations

import asyncio
import itertools
import json
import subprocess
import sys
from pathlib import Path

import pytest

from responder.cli import main
from responder.drill.record import append_records, read_recording, read_records, retime
from responder.errors import ConfigError
from responder.ingest.alert import Alert, Timestamp
from responder.store.queue import QueuedAlert
from responder.store.sqlite import SqliteJournal
from tests.drill.helpers import PLAYBOOKS, sample_records
from tests.samples import sample_document, sample_line


def test_append_then_read(tmp_path: Path) -> None:
    path = tmp_path / "drill.jsonl"
    alerts = [sample_document("falco-direct", 1), sample_document("falco-direct", 2)]
    append_records(path, 1_773_491_466_000_000_001, alerts)
    records = read_records(path)
    assert alerts == [record.alert for record in records]
    assert [1_773_491_466_000_000_001] * 2 == [record.received_ns for record in records]


def test_append_received_has_nine_digits(tmp_path: Path) -> None:
    path = tmp_path / "drill.jsonl"
    append_records(path, 1_773_491_466_000_000_001, [sample_document("falco-direct", 1)])
    document = json.loads(path.read_text())
    assert "2026-03-14T12:31:06.000000001Z" == document["received"]


def test_append_after_partial_line(tmp_path: Path) -> None:
    path = tmp_path / "drill.jsonl"
    path.write_text('{"received":"2026-03-14T12:00:00.000000000Z","alert":{"rule"')
    append_records(path, 1_773_491_466_000_000_000, [sample_document("falco-direct", 1)])
    recording = read_recording(path)
    assert [1] == recording.skipped_lines
    assert 1 == len(recording.records)


def test_append_mode_is_private(tmp_path: Path) -> None:
    path = tmp_path / "drill.jsonl"
    append_records(path, 1, [sample_document("falco-direct", 1)])
    assert 0o600 == path.stat().st_mode & 0o777


def test_read_bare_alert_line(tmp_path: Path) -> None:
    path = tmp_path / "bare.jsonl"
    path.write_text(sample_line("falco-direct", 1) + "\n")
    (record,) = read_records(path)
    alert = Alert.model_validate(record.alert)
    assert alert.time.epoch_ns == record.received_ns


def test_read_invalid_line_named(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text("not json\n")
    with pytest.raises(ConfigError) as raised:
        read_records(path)
    assert f"{path}:1: invalid JSON" in str(raised.value)


def test_retime_keeps_gaps() -> None:
    records = sample_records([1, 2, 3], gap_s=5.0)
    now_ns = Timestamp.parse("2030-01-01T00:00:00Z").epoch_ns
    shifted = retime(records, now_ns)
    times = [Alert.model_validate(r.alert).time.epoch_ns for r in shifted]
    assert now_ns == max(times)
    assert [r.received_ns for r in shifted] == times
    assert [5_000_000_000, 5_000_000_000] == [b - a for a, b in itertools.pairwise(times)]
    assert [r.received_ns - records[0].received_ns for r in records] == [
        r.received_ns - shifted[0].received_ns for r in shifted
    ]


async def _fill_journal(path: Path, numbers: list[int]) -> list[QueuedAlert]:
    journal = await SqliteJournal(path).open()
    items = [
        QueuedAlert(Alert.model_validate(sample_document("falco-direct", n))) for n in numbers
    ]
    await journal.append(items)
    await journal.close()
    return items


def test_export_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    journal = tmp_path / "journal.db"
    items = asyncio.run(_fill_journal(journal, [1, 2, 13]))
    output = tmp_path / "export.jsonl"
    status = main(["export", "--journal", str(journal), "--output", str(output)])
    records = read_records(output)
    assert 0 == status
    assert [item.alert.to_json() for item in items] == [record.alert for record in records]
    assert [item.received_ns for item in items] == [record.received_ns for record in records]
    assert "exported 3 alerts" in capsys.readouterr().err


def test_export_filters_by_rule(tmp_path: Path) -> None:
    journal = tmp_path / "journal.db"
    asyncio.run(_fill_journal(journal, [1, 2, 13]))
    output = tmp_path / "export.jsonl"
    rule = "Outbound Connection to C2 Servers"
    main(["export", "--journal", str(journal), "--rule", rule, "--output", str(output)])
    assert [rule] == [record.alert["rule"] for record in read_records(output)]


def test_export_then_replay(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    journal = tmp_path / "journal.db"
    asyncio.run(_fill_journal(journal, [1]))
    output = tmp_path / "export.jsonl"
    main(["export", "--journal", str(journal), "--output", str(output)])
    capsys.readouterr()
    status = main(["replay", str(output), "--playbooks", str(PLAYBOOKS), "--output", "json"])
    report = json.loads(capsys.readouterr().out)
    assert 0 == status
    assert ["shell-in-container"] == report["alerts"][0]["playbooks"]


def test_serve_rejects_unwritable_recording(tmp_path: Path) -> None:
    playbooks = tmp_path / "playbooks.yaml"
    playbooks.write_text("playbooks: []\n")
    config = tmp_path / "responder.yaml"
    config.write_text(
        f"playbooks: [{playbooks}]\n"
        "auth: {mode: none, allow_unauthenticated: true}\n"
        f"journal: {{path: {tmp_path / 'journal.db'}}}\n"
    )
    target = tmp_path / "missing" / "drill.jsonl"
    # A process of its own: serve configures logging for the whole process.
    command = [sys.executable, "-m", "responder", "serve", "--config", str(config)]
    finished = subprocess.run(
        [*command, "--record", str(target)], capture_output=True, text=True, timeout=60
    )
    assert 0 != finished.returncode
    assert f"cannot write the recording '{target}': No such file or directory" in finished.stderr
    assert not (tmp_path / "journal.db").exists()
