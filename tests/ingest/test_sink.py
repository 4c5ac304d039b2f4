"""The HTTP sink: shapes of bodies, encodings, limits and error responses."""

from __future__ import annotations

import gzip
import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from responder.ingest.server import DRILL_HEADER, Sink, create_app
from responder.record.metrics import MAX_LABEL_VALUES, Metrics
from responder.store.queue import AlertQueue
from tests.samples import sample_line, sample_lines

MAX_BODY = 64 * 1024


@pytest.fixture
async def sink() -> Sink:
    return Sink(queue=AlertQueue(20), metrics=Metrics(), retry_after_s=3, max_body_bytes=MAX_BODY)


@pytest.fixture
async def server(sink: Sink) -> AsyncIterator[TestServer]:
    server = TestServer(create_app(sink), host="127.0.0.1")
    await server.start_server()
    yield server
    await server.close()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def post(
    session: aiohttp.ClientSession, server: TestServer, body: bytes, **headers: str
) -> tuple[int, dict[str, object], dict[str, str]]:
    async with session.post(server.make_url("/"), data=body, headers=headers) as response:
        return response.status, await response.json(), dict(response.headers)


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("falco-direct", "application/json"),
        ("falcosidekick", "application/json; charset=utf-8"),
        ("falco-direct", "text/plain"),
    ],
)
async def test_single_alert_accepted(
    session: aiohttp.ClientSession,
    server: TestServer,
    sink: Sink,
    name: str,
    content_type: str,
) -> None:
    body = sample_line(name, 1).encode()
    status, answer, _ = await post(session, server, body, **{"Content-Type": content_type})
    assert 202 == status
    assert 1 == answer["accepted"]
    assert 1 == len(sink.queue)


async def test_array_accepted(
    session: aiohttp.ClientSession, server: TestServer, sink: Sink
) -> None:
    lines = sample_lines("falco-direct")[:5]
    body = ("[" + ",".join(lines) + "]").encode()
    status, answer, _ = await post(session, server, body)
    assert 202 == status
    assert 5 == answer["accepted"]
    assert 5 == len(sink.queue)


async def test_ndjson_accepted(
    session: aiohttp.ClientSession, server: TestServer, sink: Sink
) -> None:
    body = ("\n".join(sample_lines("falcosidekick")[:4]) + "\n").encode()
    status, _, _ = await post(session, server, body, **{"Content-Type": "application/x-ndjson"})
    assert 202 == status
    assert 4 == len(sink.queue)


async def test_gzip_body_accepted(
    session: aiohttp.ClientSession, server: TestServer, sink: Sink
) -> None:
    body = gzip.compress(sample_line("falco-direct", 2).encode())
    status, _, _ = await post(session, server, body, **{"Content-Encoding": "gzip"})
    assert 202 == status
    queued = await sink.queue.get()
    assert "Drop and execute new binary in container" == queued.alert.rule


async def test_invalid_json_names_position(
    session: aiohttp.ClientSession, server: TestServer
) -> None:
    status, answer, _ = await post(session, server, b'{"rule": "x",')
    assert 400 == status
    assert "invalid_json" == answer["error"]
    assert "line 1 column" in str(answer["message"])


async def test_not_an_alert_names_field(
    session: aiohttp.ClientSession, server: TestServer
) -> None:
    status, answer, _ = await post(
        session, server, b'{"rule": "x", "time": "2026-03-14T12:00:00Z"}'
    )
    assert 400 == status
    assert "not_an_alert" == answer["error"]
    assert "priority is missing" in str(answer["message"])


async def test_bad_batch_item_rejects_batch(
    session: aiohttp.ClientSession, server: TestServer, sink: Sink
) -> None:
    lines = [sample_line("falco-direct", 1), '{"rule": "x"}', sample_line("falco-direct", 2)]
    status, answer, _ = await post(session, server, "\n".join(lines).encode())
    assert 400 == status
    assert "alert 2 of 3" in str(answer["message"])
    assert 0 == len(sink.queue)


@pytest.mark.parametrize(
    "body",
    [b"", b"   ", b"[]", b"42", b'"text"', b"[1, 2]", b"\xff\xfe{}"],
    ids=["empty", "blank", "empty-array", "number", "string", "numbers", "invalid-utf8"],
)
async def test_malformed_bodies_get_400(
    session: aiohttp.ClientSession, server: TestServer, sink: Sink, body: bytes
) -> None:
    status, answer, _ = await post(session, server, body)
    assert 400 == status
    assert answer["message"]
    assert 0 == len(sink.queue)


async def test_deep_json_rejected(session: aiohttp.ClientSession, server: TestServer) -> None:
    document = json.loads(sample_line("falco-direct", 1))
    nested: object = 1
    for _ in range(100):
        nested = [nested]
    document["output_fields"]["deep"] = nested
    status, answer, _ = await post(session, server, json.dumps(document).encode())
    assert 400 == status
    assert "too_deep" == answer["error"]


async def test_oversized_body_gets_413(session: aiohttp.ClientSession, server: TestServer) -> None:
    status, answer, _ = await post(session, server, b"x" * (MAX_BODY + 1))
    assert 413 == status
    assert "too_large" == answer["error"]


async def test_gzip_bomb_gets_413(session: aiohttp.ClientSession, server: TestServer) -> None:
    bomb = gzip.compress(b"[" + b" " * (50 * MAX_BODY) + b"]")
    assert len(bomb) < MAX_BODY
    status, _, _ = await post(session, server, bomb, **{"Content-Encoding": "gzip"})
    assert 413 == status


async def test_full_queue_gets_503(
    session: aiohttp.ClientSession, server: TestServer, sink: Sink
) -> None:
    lines = sample_lines("falco-direct")
    await post(session, server, "\n".join(lines).encode())
    status, answer, headers = await post(session, server, "\n".join(lines[:6]).encode())
    assert 503 == status
    assert "queue_full" == answer["error"]
    assert "3" == headers["Retry-After"]
    assert 15 == len(sink.queue)


async def test_drill_header_marks_alerts(
    session: aiohttp.ClientSession, server: TestServer, sink: Sink
) -> None:
    await post(session, server, sample_line("falco-direct", 1).encode(), **{DRILL_HEADER: "true"})
    queued = await sink.queue.get()
    assert queued.alert.drill


async def test_health_endpoints(session: aiohttp.ClientSession, server: TestServer) -> None:
    async with session.get(server.make_url("/healthz")) as response:
        assert 200 == response.status
    async with session.get(server.make_url("/readyz")) as response:
        assert 200 == response.status


async def test_readyz_reports_problem(
    session: aiohttp.ClientSession, server: TestServer, sink: Sink
) -> None:
    async def unreachable() -> str | None:
        return "Kubernetes API unreachable"

    sink.readiness.append(unreachable)
    async with session.get(server.make_url("/readyz")) as response:
        body = await response.json()
    assert 503 == response.status
    assert ["Kubernetes API unreachable"] == body["problems"]


async def test_metrics_count_received_and_rejected(
    session: aiohttp.ClientSession, server: TestServer
) -> None:
    await post(session, server, sample_line("falco-direct", 1).encode())
    await post(session, server, b"{")
    async with session.get(server.make_url("/metrics")) as response:
        text = await response.text()
    assert (
        'responder_alerts_received_total{priority="notice",rule="Terminal shell in container",'
        'source="syscall"} 1.0' in text
    )
    assert 'responder_alerts_rejected_total{reason="invalid_json"} 1.0' in text


def test_rule_label_values_bounded() -> None:
    metrics = Metrics()
    labels = {
        metrics.alert_labels(f"rule {index}", "notice", "syscall")[0] for index in range(600)
    }
    assert MAX_LABEL_VALUES + 1 == len(labels)
    assert "other" in labels
    assert "other" == metrics.alert_labels("x" * 200, "notice", "syscall")[0]


async def test_record_appends_as_received(tmp_path: Path, session: aiohttp.ClientSession) -> None:
    recording = tmp_path / "alerts.jsonl"
    sink = Sink(queue=AlertQueue(20), metrics=Metrics(), record_path=recording)
    server = TestServer(create_app(sink), host="127.0.0.1")
    await server.start_server()
    try:
        lines = sample_lines("falcosidekick")[:2]
        await post(session, server, "\n".join(lines).encode())
        await post(session, server, b"{")
    finally:
        await server.close()
    records = [json.loads(line) for line in recording.read_text().splitlines()]
    assert [json.loads(line) for line in lines] == [record["alert"] for record in records]
    assert records[0]["received"] == records[1]["received"]
    assert 0o600 == recording.stat().st_mode & 0o777


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
async def test_non_finite_numbers_rejected(
    session: aiohttp.ClientSession, server: TestServer, sink: Sink, constant: str
) -> None:
    body = sample_line("falco-direct", 1).replace('"proc.tty":34816', f'"proc.tty":{constant}')
    status, answer, _ = await post(session, server, body.encode())
    assert 400 == status
    assert "invalid_json" == answer["error"]
    assert constant in str(answer["message"])
    assert 0 == len(sink.queue)


async def test_lone_surrogate_rejected(
    session: aiohttp.ClientSession, server: TestServer, sink: Sink
) -> None:
    body = sample_line("falco-direct", 1).replace('"output":"', '"output":"\\ud800 ', 1)
    status, answer, _ = await post(session, server, body.encode())
    assert 400 == status
    assert "lone surrogate \\ud800" in str(answer["message"])
    assert 0 == len(sink.queue)
