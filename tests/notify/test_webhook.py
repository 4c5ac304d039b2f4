"""Webhook notifier against a real aiohttp receiver that checks the signature itself."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import aiohttp
import pytest
from structlog.testing import capture_logs

from responder.errors import ConfigError, NotifyError
from responder.notify.base import Report
from responder.notify.config import WebhookConfig, build_notifier
from responder.notify.webhook import WebhookNotifier

from .conftest import URL_TOKEN, Receiver, RecordingSleep

HMAC_KEY = "hmac-key-77d2"
BEARER = "Bearer header-secret-1b9e"


class SteppingClock:
    """A clock that starts at a fixed Unix time and moves ``step`` seconds per reading."""

    def __init__(self, start: float = 1_773_492_900.0, step: float = 0.0) -> None:
        self.now = start
        self.step = step

    def __call__(self) -> float:
        current = self.now
        self.now += self.step
        return current


def webhook(
    url: str,
    session: aiohttp.ClientSession,
    sleep: RecordingSleep,
    clock: SteppingClock | None = None,
    **changes: Any,
) -> WebhookNotifier:
    config = WebhookConfig.model_validate({"type": "webhook", "url": url, **changes})
    return WebhookNotifier(
        "siem", config, session=session, sleep=sleep, clock=clock or SteppingClock()
    )


def verify(body: bytes, timestamp: str, signature: str, key: str) -> bool:
    """Check a request the way a receiver would, following the module's documented scheme."""
    expected = hmac.new(key.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return hmac.compare_digest("sha256=" + expected, signature)


async def test_webhook_body(
    receiver: Receiver, session: aiohttp.ClientSession, sleep: RecordingSleep, report: Report
) -> None:
    await webhook(receiver.url, session, sleep).send(report)

    body = json.loads(receiver.requests[0].body)
    assert report.alert.to_json() == body["alert"]
    assert "a1b2c3d4" == body["alert_id"]
    assert "quarantine-shell" == body["playbook"]
    assert body["dry_run"] is False
    assert body["drill"] is False
    assert ["guard: namespace payments is allowed"] == body["notes"]
    assert {
        "action": "label_pod",
        "outcome": "success",
        "reason": "labelled payments/payments-api-7c9b5d4f6-qwz8m quarantine=true",
        "duration_s": 0.12,
    } == body["results"][0]
    assert ["label_pod", "delete_pod"] == [result["action"] for result in body["results"]]


async def test_webhook_keeps_alert_fields(
    receiver: Receiver, session: aiohttp.ClientSession, sleep: RecordingSleep, report: Report
) -> None:
    await webhook(receiver.url, session, sleep).send(report)

    alert = json.loads(receiver.requests[0].body)["alert"]
    assert "2026-03-14T12:53:50.660104421Z" == alert["time"]
    assert 1773492830660104421 == alert["output_fields"]["evt.time"]
    assert "application/json; charset=utf-8" == receiver.requests[0].headers["Content-Type"]


async def test_webhook_hmac_verified(
    receiver: Receiver, session: aiohttp.ClientSession, sleep: RecordingSleep, report: Report
) -> None:
    await webhook(receiver.url, session, sleep, hmac_secret=HMAC_KEY).send(report)

    request = receiver.requests[0]
    timestamp = request.headers["X-Responder-Timestamp"]
    assert "1773492900" == timestamp
    assert verify(request.body, timestamp, request.headers["X-Responder-Signature"], HMAC_KEY)


async def test_webhook_hmac_detects_tampering(
    receiver: Receiver, session: aiohttp.ClientSession, sleep: RecordingSleep, report: Report
) -> None:
    await webhook(receiver.url, session, sleep, hmac_secret=HMAC_KEY).send(report)

    request = receiver.requests[0]
    tampered = request.body.replace(b'"dry_run":false', b'"dry_run":true')
    assert tampered != request.body
    signature = request.headers["X-Responder-Signature"]
    assert not verify(tampered, request.headers["X-Responder-Timestamp"], signature, HMAC_KEY)
    assert not verify(request.body, "1773492901", signature, HMAC_KEY)


async def test_webhook_unsigned_has_no_signature(
    receiver: Receiver, session: aiohttp.ClientSession, sleep: RecordingSleep, report: Report
) -> None:
    await webhook(receiver.url, session, sleep).send(report)

    assert "X-Responder-Signature" not in receiver.requests[0].headers
    assert "X-Responder-Timestamp" not in receiver.requests[0].headers


async def test_webhook_retry_signed_again(
    receiver: Receiver, session: aiohttp.ClientSession, sleep: RecordingSleep, report: Report
) -> None:
    receiver.reply(503, "busy")
    receiver.reply(200, "ok")
    clock = SteppingClock(step=5.0)

    await webhook(receiver.url, session, sleep, clock, hmac_secret=HMAC_KEY).send(report)

    first, second = receiver.requests
    assert "1773492900" == first.headers["X-Responder-Timestamp"]
    assert "1773492905" == second.headers["X-Responder-Timestamp"]
    assert verify(
        second.body,
        second.headers["X-Responder-Timestamp"],
        second.headers["X-Responder-Signature"],
        HMAC_KEY,
    )


async def test_webhook_custom_headers(
    receiver: Receiver, session: aiohttp.ClientSession, sleep: RecordingSleep, report: Report
) -> None:
    headers = {"Authorization": BEARER, "X-Team": "secops"}

    await webhook(receiver.url, session, sleep, headers=headers).send(report)

    assert BEARER == receiver.requests[0].headers["Authorization"]
    assert "secops" == receiver.requests[0].headers["X-Team"]


async def test_webhook_non_2xx_raises(
    receiver: Receiver, session: aiohttp.ClientSession, sleep: RecordingSleep, report: Report
) -> None:
    receiver.reply(403, "forbidden")

    with pytest.raises(NotifyError) as caught:
        await webhook(receiver.url, session, sleep).send(report)

    assert 403 == caught.value.status
    assert 1 == len(receiver.requests)


async def test_webhook_redirect_not_followed(
    receiver: Receiver, session: aiohttp.ClientSession, sleep: RecordingSleep, report: Report
) -> None:
    receiver.reply(302, "", {"Location": "http://127.0.0.1:9/elsewhere"})

    with pytest.raises(NotifyError) as caught:
        await webhook(receiver.url, session, sleep).send(report)

    assert 302 == caught.value.status


async def test_webhook_secrets_not_in_error_or_logs(
    receiver: Receiver, session: aiohttp.ClientSession, sleep: RecordingSleep, report: Report
) -> None:
    receiver.reply(500, BEARER)
    sender = webhook(
        receiver.url,
        session,
        sleep,
        headers={"Authorization": BEARER},
        hmac_secret=HMAC_KEY,
        max_retries=1,
    )

    with capture_logs() as logs, pytest.raises(NotifyError) as caught:
        await sender.send(report)

    for secret in (URL_TOKEN, BEARER, HMAC_KEY):
        assert secret not in str(caught.value)
        assert secret not in repr(logs)
        assert secret not in repr(sender)
    assert ["notification_retry", "notification_failed"] == [entry["event"] for entry in logs]


async def test_webhook_reserved_header_rejected(session: aiohttp.ClientSession) -> None:
    config = WebhookConfig.model_validate(
        {
            "type": "webhook",
            "url": "http://127.0.0.1:9/unused",
            "headers": {"X-Responder-Signature": "sha256=forged"},
        }
    )

    with pytest.raises(ConfigError) as caught:
        build_notifier("siem", config, session=session)

    assert "X-Responder-Signature" in str(caught.value)


async def test_webhook_header_line_break_rejected(session: aiohttp.ClientSession) -> None:
    config = WebhookConfig.model_validate(
        {
            "type": "webhook",
            "url": "http://127.0.0.1:9/unused",
            "headers": {"Authorization": f"{BEARER}\r\nX-Injected: 1"},
        }
    )

    with pytest.raises(ConfigError) as caught:
        build_notifier("siem", config, session=session)

    assert BEARER not in str(caught.value)
    assert "line break" in str(caught.value)
