"""Sending recorded alerts: pacing, the drill mark, the token, and 503 with Retry-After."""

from __future__ import annotations

from responder.drill.record import retime
from responder.drill.send import Sender, SendOptions
from responder.ingest.alert import Timestamp
from tests.drill.helpers import FakeTime, receiver, sample_records


async def test_speed_scales_gaps() -> None:
    fake = FakeTime()
    async with receiver() as server:
        options = SendOptions(url=server.url, speed=2.0)
        await Sender(options, clock=fake.clock, sleep=fake.sleep).send(
            sample_records([1, 2, 3], gap_s=10.0)
        )
    assert [5.0, 5.0] == fake.sleeps


async def test_rate_fixed_pace() -> None:
    fake = FakeTime()
    async with receiver() as server:
        options = SendOptions(url=server.url, rate=4.0)
        await Sender(options, clock=fake.clock, sleep=fake.sleep).send(
            sample_records([1, 2, 3], gap_s=60.0)
        )
    assert [0.25, 0.25] == fake.sleeps


async def test_max_alerts_stops() -> None:
    async with receiver() as server:
        result = await Sender(SendOptions(url=server.url, rate=1000, max_alerts=2)).send(
            sample_records([1, 2, 3])
        )
    assert 2 == len(server.bodies)
    assert "maximum number of alerts" == result.stopped_by


async def test_max_seconds_stops() -> None:
    fake = FakeTime()
    async with receiver() as server:
        options = SendOptions(url=server.url, max_seconds=15.0)
        result = await Sender(options, clock=fake.clock, sleep=fake.sleep).send(
            sample_records([1, 2, 3], gap_s=10.0)
        )
    assert 2 == len(server.bodies)
    assert "maximum duration" == result.stopped_by


async def test_alert_sent_as_recorded() -> None:
    records = sample_records([1])
    async with receiver() as server:
        await Sender(SendOptions(url=server.url)).send(records)
    assert [records[0].alert] == server.bodies


async def test_drill_header_and_token() -> None:
    async with receiver() as server:
        await Sender(SendOptions(url=server.url, token="s3cret")).send(sample_records([1]))
    (headers,) = server.headers
    assert "true" == headers["X-Responder-Drill"]
    assert "Bearer s3cret" == headers["Authorization"]


async def test_no_drill_mark() -> None:
    async with receiver() as server:
        await Sender(SendOptions(url=server.url, drill_mark=False)).send(sample_records([1]))
    (headers,) = server.headers
    assert "X-Responder-Drill" not in headers


async def test_retime_sends_recent_times() -> None:
    now_ns = Timestamp.now().epoch_ns
    records = retime(sample_records([1, 2], gap_s=3.0), now_ns)
    async with receiver() as server:
        await Sender(SendOptions(url=server.url, rate=1000)).send(records)
    times = [Timestamp.parse(body["time"]).epoch_ns for body in server.bodies]
    assert now_ns == times[-1]
    assert 3_000_000_000 == times[1] - times[0]


async def test_busy_waits_retry_after() -> None:
    fake = FakeTime()
    async with receiver(busy=2) as server:
        result = await Sender(
            SendOptions(url=server.url), clock=fake.clock, sleep=fake.sleep
        ).send(sample_records([1]))
    (answer,) = result.answers
    assert [2.0, 2.0] == fake.sleeps
    assert 3 == answer.attempts
    assert 202 == answer.status
    assert "id-1" == answer.alert_id


async def test_busy_retries_bounded() -> None:
    fake = FakeTime()
    async with receiver(busy=10) as server:
        options = SendOptions(url=server.url, max_retries=2)
        result = await Sender(options, clock=fake.clock, sleep=fake.sleep).send(
            sample_records([1])
        )
    (answer,) = result.answers
    assert 3 == answer.attempts
    assert 503 == answer.status
    assert "rejected 1 (1 with 503)" in result.summary()


async def test_concurrency_sends_all() -> None:
    async with receiver() as server:
        result = await Sender(SendOptions(url=server.url, rate=1000, concurrency=3)).send(
            sample_records([1, 2, 3, 4, 5])
        )
    assert 5 == sum(answer.accepted for answer in result.answers)


async def test_refused_connection_recorded() -> None:
    async with receiver() as server:
        url = server.url
    result = await Sender(SendOptions(url=url)).send(sample_records([1]))
    (answer,) = result.answers
    assert answer.status is None
    assert answer.error is not None
