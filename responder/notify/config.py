"""Settings of the notifiers, and the factory that turns one into a ``Notifier``.

Each notifier has a ``type`` key that selects its model, so a settings file lists them as::

    notifiers:
      oncall-slack:
        type: slack
        webhook_url: {env: SLACK_WEBHOOK_URL}
      security-mail:
        type: email
        host: smtp.internal
        sender: falco-responder@example.com
        recipients: [secops@example.com]

URLs, passwords, header values and signing keys are ``Secret`` values. Checks that involve a
model holding a secret (URL scheme, header names, AUTH settings) run when the notifier is built
and raise ``ConfigError`` naming the notifier, because a pydantic ``ValidationError`` prints
the input of the failing validator, secrets included.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

import aiohttp
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from responder.errors import ConfigError
from responder.notify.base import Notifier
from responder.secret import Secret

# An RFC 9110 field name: one or more token characters.
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

# Headers that the webhook notifier sets itself. A custom value would break the signature or
# the body's media type.
RESERVED_HEADERS = frozenset(
    {"content-type", "content-length", "host", "x-responder-signature", "x-responder-timestamp"}
)


class _NotifierSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _HttpSettings(_NotifierSettings):
    timeout_s: float = Field(
        default=10.0,
        gt=0,
        le=300,
        description=(
            "Seconds allowed for one HTTP request, from connect to the end of the response "
            "(default 10). Bounds how long one attempt can hold a worker."
        ),
    )
    max_retries: int = Field(
        default=2,
        ge=0,
        le=10,
        description=(
            "Attempts after the first one on 429, 5xx, timeouts and connection errors "
            "(default 2). Other 4xx statuses are never retried because they do not go away."
        ),
    )
    max_retry_wait_s: float = Field(
        default=30.0,
        ge=0,
        le=600,
        description=(
            "Longest wait in seconds before one retry (default 30). A 429 whose Retry-After is "
            "longer fails at once, so that a receiver cannot hold a worker for hours."
        ),
    )


class SlackConfig(_HttpSettings):
    """A Slack incoming webhook."""

    type: Literal["slack"] = Field(description="Selects this notifier: always 'slack'.")
    webhook_url: Secret = Field(
        description=(
            "Incoming webhook URL (https://hooks.slack.com/services/...). No default. It is a "
            "secret because anyone who has it can post to the channel."
        )
    )
    channel: str | None = Field(
        default=None,
        min_length=1,
        description=(
            "Channel override such as '#security' (default: the webhook's own channel). Only "
            "legacy webhooks honour it; webhooks of Slack apps always post to their channel."
        ),
    )
    username: str | None = Field(
        default=None,
        min_length=1,
        description="Display name override (default: the app's name). Legacy webhooks only.",
    )


class EmailConfig(_NotifierSettings):
    """An SMTP server that relays the report as a text and HTML mail."""

    type: Literal["email"] = Field(description="Selects this notifier: always 'email'.")
    host: str = Field(min_length=1, description="SMTP server host name or IP address. No default.")
    port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description=(
            "SMTP server TCP port (default: 587 for starttls, 465 for tls, 25 for none, the "
            "registered submission, submissions and SMTP ports)."
        ),
    )
    security: Literal["starttls", "tls", "none"] = Field(
        default="starttls",
        description=(
            "Transport security (default starttls): 'starttls' upgrades a plain connection "
            "and fails if the server cannot, 'tls' is TLS from the first byte, 'none' sends "
            "in clear text and is meant for a relay on the same host or pod."
        ),
    )
    username: str | None = Field(
        default=None, min_length=1, description="Login for SMTP AUTH (default: no AUTH)."
    )
    password: Secret | None = Field(
        default=None, description="Password for SMTP AUTH; required when username is set."
    )
    sender: str = Field(description="Envelope sender and From address. No default.")
    recipients: list[str] = Field(
        min_length=1, description="Envelope recipients and To addresses; at least one."
    )
    timeout_s: float = Field(
        default=30.0,
        gt=0,
        le=300,
        description=(
            "Seconds allowed for each SMTP step: connect, TLS handshake and each command "
            "(default 30). Bounds how long a stuck server can hold a worker."
        ),
    )
    ca_file: Path | None = Field(
        default=None,
        description=(
            "PEM file of CA certificates that replaces the system trust store when the server "
            "certificate is verified (default: system store). For servers with a private CA."
        ),
    )

    @field_validator("sender")
    @classmethod
    def _check_sender(cls, value: str) -> str:
        return _check_address(value)

    @field_validator("recipients")
    @classmethod
    def _check_recipients(cls, value: list[str]) -> list[str]:
        return [_check_address(address) for address in value]

    @property
    def effective_port(self) -> int:
        """The configured port, or the registered port of the chosen security."""
        if self.port is not None:
            return self.port
        return {"starttls": 587, "tls": 465, "none": 25}[self.security]


class WebhookConfig(_HttpSettings):
    """Any HTTP endpoint that accepts the report as JSON, optionally signed with HMAC-SHA256."""

    type: Literal["webhook"] = Field(description="Selects this notifier: always 'webhook'.")
    url: Secret = Field(
        description=(
            "http or https URL that receives a POST per report. No default. It is a secret "
            "because such URLs often carry a token."
        )
    )
    headers: dict[str, Secret] = Field(
        default_factory=dict,
        description=(
            "Extra request headers, such as Authorization (default none). Values are secrets. "
            "Content-Type and the X-Responder-* signature headers cannot be overridden."
        ),
    )
    hmac_secret: Secret | None = Field(
        default=None,
        description=(
            "Key for the X-Responder-Signature header (default: requests are not signed). "
            "See responder.notify.webhook for the signed string."
        ),
    )


class LogConfig(_NotifierSettings):
    """The responder's own log: each report becomes one ``notification`` log event."""

    type: Literal["log"] = Field(description="Selects this notifier: always 'log'.")


NotifierConfig = Annotated[
    SlackConfig | EmailConfig | WebhookConfig | LogConfig, Field(discriminator="type")
]


def _check_address(value: str) -> str:
    address = value.strip()
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain or any(char.isspace() for char in address):
        raise ValueError(f"invalid mail address {value!r}: expected one such as name@example.com")
    return address


def check_http_url(name: str, field: str, url: SecretStr) -> str:
    """Check that a secret URL is http(s) with a host, and return its value.

    Raises ``ConfigError`` naming the notifier and field but not the URL.
    """
    try:
        parts = urlsplit(url.get_secret_value())
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            f"notifier {name!r}: {field} is not an http or https URL with a host "
            "(the value is a secret and is not shown)"
        )
    return url.get_secret_value()


def check_headers(name: str, headers: dict[str, SecretStr]) -> dict[str, str]:
    """Check custom header names and values, and return them with the values revealed.

    Raises ``ConfigError`` naming the notifier and header but never the value.
    """
    checked: dict[str, str] = {}
    for header, secret in headers.items():
        if not _HEADER_NAME.match(header):
            raise ConfigError(f"notifier {name!r}: invalid header name {header!r}")
        if header.lower() in RESERVED_HEADERS:
            raise ConfigError(
                f"notifier {name!r}: header {header!r} is set by the notifier itself; "
                "remove it from headers"
            )
        value = secret.get_secret_value()
        if any(char in value for char in "\r\n\0"):
            raise ConfigError(
                f"notifier {name!r}: the value of header {header!r} contains a line break "
                "or NUL (the value is a secret and is not shown)"
            )
        checked[header] = value
    return checked


def check_email_auth(name: str, config: EmailConfig) -> None:
    """Check that AUTH settings are complete and never sent in clear text."""
    if (config.username is None) != (config.password is None):
        raise ConfigError(
            f"notifier {name!r}: username and password must be set together, or neither"
        )
    if config.password is not None and config.security == "none":
        raise ConfigError(
            f"notifier {name!r}: SMTP AUTH with security 'none' would send the password in "
            "clear text; set security to 'starttls' or 'tls'"
        )


def build_notifier(
    name: str, config: NotifierConfig, *, session: aiohttp.ClientSession
) -> Notifier:
    """Create the notifier that ``config`` selects.

    The HTTP notifiers share ``session``, which the caller owns and closes, so their ``close``
    leaves it open. Raises ``ConfigError`` when a secret URL is not a usable http(s) URL.
    """
    # Imported here because each notifier module imports this one for its settings type.
    from responder.notify.email import EmailNotifier
    from responder.notify.log import LogNotifier
    from responder.notify.slack import SlackNotifier
    from responder.notify.webhook import WebhookNotifier

    if isinstance(config, SlackConfig):
        return SlackNotifier(name, config, session=session)
    if isinstance(config, EmailConfig):
        return EmailNotifier(name, config)
    if isinstance(config, LogConfig):
        return LogNotifier(name)
    return WebhookNotifier(name, config, session=session)
