"""Slack notifier against a real aiohttp receiver on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import aiohttp
import pytest
from structlog.testing import capture_logs

from responder.errors import ConfigError, NotifyError
from responder.notify.base import Report
from responder.notify.config import SlackConfig, build_notifier
from responder.notify.slack import (
    CONTEXT_ELEMENTS_MAX,
    CONTEXT_TEXT_MAX,
    FIELD_COUNT_MAX,
    FIELD_TEXT_MAX,
    HEADER_TEXT_MAX,
    SECTION_TEXT_MAX,
    SlackNotifier,
    build_message,
)

from .conftest import URL_TOKEN, Receiver, RecordingSleep

# For tests that only build messages: a loopback URL that nothing is ever sent to.
UNUSED_URL = "http://127.0.0.1:9/unused"


def slack_config(url: str, **changes: Any) -> SlackConfig:
    return SlackConfig.model_validate({"type": "slack", "webhook_url": url, **changes})


def notifier(
    url: str,
    session: aiohttp.ClientSession,
    sleep: RecordingSleep,
    clock: Callable[[], float] = time.time,
    **changes: Any,
) -> SlackNotifier:
    config = slack_config(url, **changes)
    return SlackNotifier("oncall", config, session=session, sleep=sleep, clock=clock)


def mrkdwn_texts(message: dict[str, Any]) -> Iterator[str]:
    """Yield every text of the message that Slack parses as mrkdwn."""
    yield message["text"]
    for block in message["blocks"]:
        if block["type"] == "section":
            if "text" in block:
                yield block["text"]["text"]
            for item in block.get("fields", []):
                yield item["text"]
        elif block["type"] == "context":
            for element in block["elements"]:
                yield element["text"]


def output_text(message: dict[str, Any]) -> str:
    sections = [b for b in message["blocks"] if b["type"] == "section" and "text" in b]
    found = [s["text"]["text"] for s in sections if s["text"]["text"].startswith("*Output*")]
    assert len(found) == 1
    return str(found[0])


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Nothing listens on the port once the probe socket is closed.
    return f"http://127.0.0.1:{port}/services/T000/B000/{URL_TOKEN}"


async def test_slack_200_delivers_blocks(
    receiver: Receiver, session: aiohttp.ClientSession, sleep: RecordingSleep, report: Report
) -> None:
    await notifier(receiver.url, session, sleep).send(report)

    assert 1 == len(receiver.requests)
    sent = json.loads(receiver.requests[0].body)
    assert "Falco Warning: Shell Spawned in Container" == sent["blocks"][0]["text"]["text"]
    assert "application/json" in receiver.requests[0].headers["Content-Type"]
    assert ["header", "section", "section", "section", "section", "section", "context"] == [
        block["type"] for block in sent["blocks"]
    ]
    assert [] == sleep.waits


async def test_slack_fields_name_pod(report: Report) -> None:
    message = build_message(report, slack_config(UNUSED_URL))

    fields = [item["text"] for item in message["blocks"][1]["fields"]]
    assert "*Namespace*\npayments" in fields
    assert "*Pod*\npayments-api-7c9b5d4f6-qwz8m" in fields
    assert "*Rule*\nShell Spawned in Container" in fields
    assert "*Priority*\nWarning" in fields


async def test_slack_actions_and_outcomes(report: Report) -> None:
    message = build_message(report, slack_config(UNUSED_URL))

    actions = next(t for t in mrkdwn_texts(message) if t.startswith("*Actions*"))
    assert "label_pod: success (labelled" in actions
    assert "delete_pod: dry_run (would delete the pod)" in actions


async def test_slack_429_honours_retry_after(
    receiver: Receiver, session: aiohttp.ClientSession, sleep: RecordingSleep, report: Report
) -> None:
    receiver.reply(429, "rate_limited", {"Retry-After": "7"})
    receiver.reply(200, "ok")

    await notifier(receiver.url, session, sleep).send(report)

    assert [7.0] == sleep.waits
    assert 2 == len(receiver.requests)


async def test_slack_429_retry_after_http_date(
    receiver: Receiver, session: aiohttp.ClientSession, sleep: RecordingSleep, report: Report
) -> None:
    receiver.reply(429, "rate_limited", {"Retry-After": "Sat, 14 Mar 2026 12:55:12 GMT"})
    receiver.reply(200, "ok")
    twelve_seconds_before = 1_773_492_900.0  # 2026-03-14T12:55:00Z

    await notifier(receiver.url, session, sleep, lambda: twelve_seconds_before).send(report)

    assert [12.0] == sleep.waits


async def test_slack_429_retry_after_over_cap(
    receiver: Receiver, session: aiohttp.ClientSession, sleep: RecordingSleep, report: Report
) -> None:
    receiver.reply(429, "rate_limited", {"Retry-After": "3600"})

    with pytest.raises(NotifyError) as caught:
        await notifier(receiver.url, session, sleep, max_retry_wait_s=30).send(report)

    assert 429 == caught.value.status
    assert [] == sleep.waits
    assert 1 == len(receiver.requests)


async def test_slack_429_without_retry_after_backs_off(
    receiver: Receiver, session: aiohttp.ClientSession, sleep: RecordingSleep, report: Report
) -> None:
    receiver.reply(429, "rate_limited")
    receiver.reply(200, "ok")

    await notifier(receiver.url, session, sleep).send(report)

    assert [0.5] == sleep.waits


async def test_slack_500_gives_up(
    receiver: Receiver, session: aiohttp.ClientSession, sleep: RecordingSleep, report: Report
) -> None:
    receiver.reply(500, "internal error")

    with pytest.raises(NotifyError) as caught:
        await notifier(receiver.url, session, sleep).send(report)

    assert 500 == caught.value.status
    assert 3 == len(receiver.requests)
    assert [0.5, 1.0] == sleep.waits


async def test_slack_backoff_capped(
    receiver: Receiver, session: aiohttp.ClientSession, sleep: RecordingSleep, report: Report
) -> None:
    receiver.reply(503, "unavailable")

    with pytest.raises(NotifyError):
        await notifier(receiver.url, session, sleep, max_retries=5, max_retry_wait_s=2).send(
            report
        )

    assert [0.5, 1.0, 2.0, 2.0, 2.0] == sleep.waits


async def test_slack_400_not_retried(
    receiver: Receiver, session: aiohttp.ClientSession, sleep: RecordingSleep, report: Report
) -> None:
    receiver.reply(400, "invalid_blocks")

    with pytest.raises(NotifyError) as caught:
        await notifier(receiver.url, session, sleep).send(report)

    assert 400 == caught.value.status
    assert 1 == len(receiver.requests)
    assert "invalid_blocks" in str(caught.value)


async def test_slack_connection_refused(
    session: aiohttp.ClientSession, sleep: RecordingSleep, report: Report
) -> None:
    with pytest.raises(NotifyError) as caught:
        await notifier(closed_port_url(), session, sleep).send(report)

    assert caught.value.status is None
    assert "Connection refused" in str(caught.value)
    assert [0.5, 1.0] == sleep.waits


async def test_slack_timeout(
    receiver: Receiver, session: aiohttp.ClientSession, sleep: RecordingSleep, report: Report
) -> None:
    receiver.reply(200, "ok", delay_s=1.0)

    with pytest.raises(NotifyError) as caught:
        await notifier(receiver.url, session, sleep, timeout_s=0.2, max_retries=0).send(report)

    assert "timed out after 0.2 s" in str(caught.value)


async def test_slack_limits_large_output(make_report: Callable[..., Report]) -> None:
    base = make_report()
    long_alert = base.alert.model_copy(
        update={"output": "x&<" * 3400, "rule": "R" * 400, "hostname": "h" * 2500}
    )
    message = build_message(
        make_report(alert=long_alert, notes=("n" * 5000,)),
        slack_config(UNUSED_URL),
    )

    header = message["blocks"][0]["text"]["text"]
    assert len(header) <= HEADER_TEXT_MAX
    assert header.endswith("more characters)")
    for block in message["blocks"]:
        if block["type"] == "section" and "text" in block:
            assert len(block["text"]["text"]) <= SECTION_TEXT_MAX
        if block["type"] == "section" and "fields" in block:
            assert len(block["fields"]) <= FIELD_COUNT_MAX
            for item in block["fields"]:
                assert len(item["text"]) <= FIELD_TEXT_MAX
        if block["type"] == "context":
            assert len(block["elements"]) <= CONTEXT_ELEMENTS_MAX
            for element in block["elements"]:
                assert len(element["text"]) <= CONTEXT_TEXT_MAX
    assert len(message["blocks"]) <= 50
    output = output_text(message)
    assert "… (cut, " in output
    assert output.endswith("more characters)```")


async def test_slack_escapes_mrkdwn(make_report: Callable[..., Report]) -> None:
    base = make_report()
    hostile = base.alert.model_copy(
        update={
            "output": "<!channel> <https://evil.example|click here> & more",
            "rule": "Rule <@U123>",
        }
    )
    message = build_message(make_report(alert=hostile), slack_config(UNUSED_URL))

    texts = list(mrkdwn_texts(message))
    assert [] == [t for t in texts if "<!channel>" in t or "<@U123>" in t or "<https" in t]
    assert "&lt;!channel&gt; &lt;https://evil.example|click here&gt; &amp; more" in output_text(
        message
    )
    assert "*Rule*\nRule &lt;@U123&gt;" in [i["text"] for i in message["blocks"][1]["fields"]]


async def test_slack_text_objects_verbatim(report: Report) -> None:
    message = build_message(report, slack_config(UNUSED_URL))

    for block in message["blocks"]:
        for item in [block.get("text"), *block.get("fields", []), *block.get("elements", [])]:
            if item is not None and item["type"] == "mrkdwn":
                assert item["verbatim"] is True


async def test_slack_code_fence_stays_closed(make_report: Callable[..., Report]) -> None:
    base = make_report()
    fenced = base.alert.model_copy(update={"output": "before ``` *bold* ``` after"})
    message = build_message(make_report(alert=fenced), slack_config(UNUSED_URL))

    assert 2 == output_text(message).count("```")


async def test_slack_drill_prefix(make_report: Callable[..., Report]) -> None:
    base = make_report()
    drill = make_report(alert=base.alert.model_copy(update={"drill": True}))
    message = build_message(drill, slack_config(UNUSED_URL))

    assert (
        "[DRILL] Falco Warning: Shell Spawned in Container" == message["blocks"][0]["text"]["text"]
    )
    assert message["text"].startswith("[DRILL] ")


async def test_slack_dry_run_prefix(make_report: Callable[..., Report]) -> None:
    message = build_message(make_report(dry_run=True), slack_config(UNUSED_URL))

    assert message["blocks"][0]["text"]["text"].startswith("[DRY RUN] Falco Warning")


async def test_slack_channel_override(report: Report) -> None:
    config = slack_config(UNUSED_URL, channel="#security", username="fr")
    message = build_message(report, config)

    assert "#security" == message["channel"]
    assert "fr" == message["username"]


async def test_slack_secret_not_in_error_or_logs(
    receiver: Receiver, session: aiohttp.ClientSession, sleep: RecordingSleep, report: Report
) -> None:
    receiver.reply(404, "no_service")
    slack = notifier(receiver.url, session, sleep)

    with capture_logs() as logs, pytest.raises(NotifyError) as caught:
        await slack.send(report)

    assert URL_TOKEN not in str(caught.value)
    assert URL_TOKEN not in repr(caught.value)
    assert URL_TOKEN not in repr(logs)
    assert URL_TOKEN not in repr(slack)
    assert "'oncall'" in str(caught.value)


async def test_slack_secret_not_in_network_error(
    session: aiohttp.ClientSession, sleep: RecordingSleep, report: Report
) -> None:
    with capture_logs() as logs, pytest.raises(NotifyError) as caught:
        await notifier(closed_port_url(), session, sleep).send(report)

    assert URL_TOKEN not in str(caught.value)
    assert caught.value.__cause__ is None
    assert URL_TOKEN not in repr(logs)


async def test_slack_logs_events(
    receiver: Receiver, session: aiohttp.ClientSession, sleep: RecordingSleep, report: Report
) -> None:
    receiver.reply(500, "internal error")
    receiver.reply(200, "ok")

    with capture_logs() as logs:
        await notifier(receiver.url, session, sleep).send(report)

    assert ["notification_retry", "notification_sent"] == [entry["event"] for entry in logs]
    assert {"oncall"} == {entry["notifier"] for entry in logs}
    assert {"a1b2c3d4"} == {entry["alert_id"] for entry in logs}
    assert {"quarantine-shell"} == {entry["playbook"] for entry in logs}


async def test_build_notifier_rejects_bad_url(session: aiohttp.ClientSession) -> None:
    config = slack_config(f"ftp://127.0.0.1/{URL_TOKEN}")

    with pytest.raises(ConfigError) as caught:
        build_notifier("oncall", config, session=session)

    assert URL_TOKEN not in str(caught.value)
    assert "webhook_url" in str(caught.value)
