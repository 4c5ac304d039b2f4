"""Notifier settings: the discriminated union, secrets, defaults and build_notifier."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pydantic import TypeAdapter, ValidationError

from responder.errors import ConfigError
from responder.notify.config import (
    EmailConfig,
    NotifierConfig,
    SlackConfig,
    WebhookConfig,
    build_notifier,
)
from responder.notify.email import EmailNotifier
from responder.notify.slack import SlackNotifier
from responder.notify.webhook import WebhookNotifier

ADAPTER: TypeAdapter[Any] = TypeAdapter(NotifierConfig)
EMAIL = {
    "type": "email",
    "host": "127.0.0.1",
    "sender": "falco-responder@example.com",
    "recipients": ["secops@example.com"],
}


def test_config_selects_model_by_type() -> None:
    assert isinstance(
        ADAPTER.validate_python({"type": "slack", "webhook_url": "http://127.0.0.1:9/x"}),
        SlackConfig,
    )
    assert isinstance(ADAPTER.validate_python(EMAIL), EmailConfig)
    assert isinstance(
        ADAPTER.validate_python({"type": "webhook", "url": "http://127.0.0.1:9/x"}),
        WebhookConfig,
    )


def test_config_unknown_type_rejected() -> None:
    with pytest.raises(ValidationError):
        ADAPTER.validate_python({"type": "pager", "url": "http://127.0.0.1:9/x"})


def test_config_extra_key_rejected() -> None:
    with pytest.raises(ValidationError) as caught:
        ADAPTER.validate_python({"type": "slack", "webhook_url": "http://x", "chanel": "#a"})

    assert "chanel" in str(caught.value)


def test_config_secret_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_SLACK_URL", "http://127.0.0.1:9/from-env")

    config = ADAPTER.validate_python({"type": "slack", "webhook_url": {"env": "TEST_SLACK_URL"}})

    assert "http://127.0.0.1:9/from-env" == config.webhook_url.get_secret_value()
    assert "from-env" not in repr(config)


def test_config_secret_from_file(tmp_path: Path) -> None:
    secret_file = tmp_path / "key"
    secret_file.write_text("file-key\n", encoding="utf-8")

    config = ADAPTER.validate_python(
        {"type": "webhook", "url": "http://127.0.0.1:9/x", "hmac_secret": {"file": secret_file}}
    )

    assert "file-key" == config.hmac_secret.get_secret_value()


def test_config_http_defaults() -> None:
    config = SlackConfig.model_validate({"type": "slack", "webhook_url": "http://127.0.0.1:9/x"})

    assert 10.0 == config.timeout_s
    assert 2 == config.max_retries
    assert 30.0 == config.max_retry_wait_s


@pytest.mark.parametrize(("security", "port"), [("starttls", 587), ("tls", 465), ("none", 25)])
def test_email_default_port(security: str, port: int) -> None:
    config = EmailConfig.model_validate({**EMAIL, "security": security})

    assert port == config.effective_port


def test_email_needs_recipient() -> None:
    with pytest.raises(ValidationError):
        EmailConfig.model_validate({**EMAIL, "recipients": []})


def test_email_invalid_address_rejected() -> None:
    with pytest.raises(ValidationError) as caught:
        EmailConfig.model_validate({**EMAIL, "recipients": ["secops example.com"]})

    assert "invalid mail address" in str(caught.value)


def test_email_password_without_username(session: aiohttp.ClientSession) -> None:
    config = EmailConfig.model_validate({**EMAIL, "password": "pw-5e1"})

    with pytest.raises(ConfigError) as caught:
        build_notifier("mail", config, session=session)

    assert "username and password" in str(caught.value)
    assert "pw-5e1" not in str(caught.value)


def test_email_missing_ca_file(session: aiohttp.ClientSession, tmp_path: Path) -> None:
    config = EmailConfig.model_validate({**EMAIL, "ca_file": tmp_path / "missing.pem"})

    with pytest.raises(ConfigError) as caught:
        build_notifier("mail", config, session=session)

    assert "ca_file" in str(caught.value)


def test_build_notifier_types(session: aiohttp.ClientSession) -> None:
    slack = ADAPTER.validate_python({"type": "slack", "webhook_url": "http://127.0.0.1:9/x"})
    hook = ADAPTER.validate_python({"type": "webhook", "url": "https://127.0.0.1:9/x"})

    assert isinstance(build_notifier("a", slack, session=session), SlackNotifier)
    assert isinstance(
        build_notifier("b", ADAPTER.validate_python(EMAIL), session=session), EmailNotifier
    )
    assert isinstance(build_notifier("c", hook, session=session), WebhookNotifier)
    assert "c" == build_notifier("c", hook, session=session).name


def test_build_notifier_url_without_host(session: aiohttp.ClientSession) -> None:
    config = ADAPTER.validate_python({"type": "webhook", "url": "http:///no-host-token"})

    with pytest.raises(ConfigError) as caught:
        build_notifier("siem", config, session=session)

    assert "no-host-token" not in str(caught.value)
