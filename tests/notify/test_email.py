"""Mail notifier against real aiosmtpd servers on 127.0.0.1: plain, STARTTLS, TLS and AUTH."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from structlog.testing import capture_logs

from responder.errors import ConfigError, NotifyError
from responder.notify.base import Report
from responder.notify.config import EmailConfig, build_notifier
from responder.notify.email import EmailNotifier

from .conftest import SMTP_PASSWORD, SMTP_USER, MailServer


def mailer(server: MailServer, security: str = "none", **changes: Any) -> EmailNotifier:
    config = EmailConfig.model_validate(
        {
            "type": "email",
            "host": "127.0.0.1",
            "port": server.port,
            "security": security,
            "sender": "falco-responder@example.com",
            "recipients": ["secops@example.com", "oncall@example.com"],
            "timeout_s": 5,
            **changes,
        }
    )
    return EmailNotifier("security-mail", config)


def parts(server: MailServer) -> dict[str, str]:
    message = server.store.messages[0]
    found: dict[str, str] = {}
    for part in message.walk():
        if not part.is_multipart():
            found[part.get_content_type()] = part.get_content()
    return found


async def test_email_plain_both_parts(
    smtp_server: Callable[..., MailServer], report: Report
) -> None:
    server = smtp_server("none")

    await mailer(server).send(report)

    assert 1 == len(server.store.messages)
    assert "multipart/alternative" == server.store.messages[0].get_content_type()
    assert ["text/html", "text/plain"] == sorted(parts(server))
    assert "Shell Spawned in Container" in parts(server)["text/plain"]
    assert "<h2>Falco Warning: Shell Spawned in Container</h2>" in parts(server)["text/html"]


async def test_email_subject(smtp_server: Callable[..., MailServer], report: Report) -> None:
    server = smtp_server("none")

    await mailer(server).send(report)

    assert (
        "Falco Warning: Shell Spawned in Container on payments/payments-api-7c9b5d4f6-qwz8m"
        == server.store.messages[0]["Subject"]
    )


async def test_email_headers(smtp_server: Callable[..., MailServer], report: Report) -> None:
    server = smtp_server("none")

    await mailer(server).send(report)

    message = server.store.messages[0]
    assert "auto-generated" == message["Auto-Submitted"]
    assert "Warning" == message["X-Falco-Priority"]
    assert "Shell Spawned in Container" == message["X-Falco-Rule"]
    assert "secops@example.com, oncall@example.com" == message["To"]
    assert message["Message-ID"].endswith("@example.com>")


async def test_email_envelope(smtp_server: Callable[..., MailServer], report: Report) -> None:
    server = smtp_server("none")

    await mailer(server).send(report)

    assert (
        "falco-responder@example.com",
        ["secops@example.com", "oncall@example.com"],
    ) == server.store.envelopes[0]
    assert server.store.ciphers[0] is None


async def test_email_text_lists_actions(
    smtp_server: Callable[..., MailServer], report: Report
) -> None:
    server = smtp_server("none")

    await mailer(server).send(report)

    text = parts(server)["text/plain"]
    assert "delete_pod: dry_run (would delete the pod)" in text
    assert "guard: namespace payments is allowed" in text
    assert "Pod: payments-api-7c9b5d4f6-qwz8m" in text


async def test_email_starttls(
    smtp_server: Callable[..., MailServer], ca_file: str, report: Report
) -> None:
    server = smtp_server("starttls")

    await mailer(server, "starttls", ca_file=ca_file).send(report)

    assert 1 == len(server.store.messages)
    assert server.store.ciphers[0] is not None


async def test_email_implicit_tls(
    smtp_server: Callable[..., MailServer], ca_file: str, report: Report
) -> None:
    server = smtp_server("tls")

    await mailer(server, "tls", ca_file=ca_file).send(report)

    assert 1 == len(server.store.messages)
    assert server.store.ciphers[0] is not None


async def test_email_untrusted_certificate(
    smtp_server: Callable[..., MailServer], report: Report
) -> None:
    server = smtp_server("tls")

    with pytest.raises(NotifyError) as caught:
        await mailer(server, "tls").send(report)

    assert "CERTIFICATE_VERIFY_FAILED" in str(caught.value)
    assert [] == server.store.messages


async def test_email_auth_accepted(
    smtp_server: Callable[..., MailServer], ca_file: str, report: Report
) -> None:
    server = smtp_server("starttls", auth=True)
    sender = mailer(
        server, "starttls", ca_file=ca_file, username=SMTP_USER, password=SMTP_PASSWORD
    )

    await sender.send(report)

    assert [SMTP_USER] == server.store.logins
    assert 1 == len(server.store.messages)


async def test_email_auth_rejected(
    smtp_server: Callable[..., MailServer], ca_file: str, report: Report
) -> None:
    server = smtp_server("starttls", auth=True)
    sender = mailer(server, "starttls", ca_file=ca_file, username=SMTP_USER, password="wrong")

    with capture_logs() as logs, pytest.raises(NotifyError) as caught:
        await sender.send(report)

    assert 535 == caught.value.status
    assert "wrong" not in str(caught.value)
    assert "wrong" not in repr(logs)
    assert isinstance(caught.value.__cause__, Exception)
    assert [] == server.store.messages


async def test_email_recipient_rejected(
    smtp_server: Callable[..., MailServer], report: Report
) -> None:
    server = smtp_server("none", reject=True)

    with capture_logs() as logs, pytest.raises(NotifyError) as caught:
        await mailer(server).send(report)

    assert 550 == caught.value.status
    assert "secops@example.com" in str(caught.value)
    assert ["notification_failed"] == [entry["event"] for entry in logs]
    assert "security-mail" == logs[0]["notifier"]


async def test_email_escapes_html(
    smtp_server: Callable[..., MailServer], make_report: Callable[..., Report]
) -> None:
    server = smtp_server("none")
    base = make_report()
    hostile = base.alert.model_copy(
        update={"output": "<script>alert(1)</script>", "rule": "Rule <b>x</b>"}
    )

    await mailer(server).send(make_report(alert=hostile))

    html = parts(server)["text/html"]
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "Rule &lt;b&gt;x&lt;/b&gt;" in html


async def test_email_subject_without_line_breaks(
    smtp_server: Callable[..., MailServer], make_report: Callable[..., Report]
) -> None:
    server = smtp_server("none")
    base = make_report()
    hostile = base.alert.model_copy(update={"rule": "Shell\r\nBcc: attacker@example.com"})

    await mailer(server).send(make_report(alert=hostile))

    message = server.store.messages[0]
    assert message["Bcc"] is None
    assert message["Subject"].startswith("Falco Warning: Shell Bcc: attacker@example.com")
    assert ["secops@example.com", "oncall@example.com"] == server.store.envelopes[0][1]


async def test_email_drill_subject(
    smtp_server: Callable[..., MailServer], make_report: Callable[..., Report]
) -> None:
    server = smtp_server("none")
    base = make_report()

    await mailer(server).send(make_report(alert=base.alert.model_copy(update={"drill": True})))

    assert server.store.messages[0]["Subject"].startswith("[DRILL] Falco Warning")


async def test_email_auth_in_clear_rejected(session: aiohttp.ClientSession) -> None:
    config = EmailConfig.model_validate(
        {
            "type": "email",
            "host": "127.0.0.1",
            "security": "none",
            "username": SMTP_USER,
            "password": SMTP_PASSWORD,
            "sender": "falco-responder@example.com",
            "recipients": ["secops@example.com"],
        }
    )

    with pytest.raises(ConfigError) as caught:
        build_notifier("security-mail", config, session=session)

    assert SMTP_PASSWORD not in str(caught.value)
    assert "clear text" in str(caught.value)
