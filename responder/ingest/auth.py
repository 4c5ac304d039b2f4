"""Authentication of the senders that POST alerts: a bearer token or HTTP basic auth.

Falcosidekick can send custom headers, so it can send ``Authorization: Bearer <token>``. Falco's
``http_output`` can carry credentials only in its URL (``http://user:pass@host:2804/``), which
libcurl sends as basic auth. Anyone who can reach an open sink can forge alerts and make the
responder act on pods, so running without authentication needs ``allow_unauthenticated: true``.

Basic auth over plain HTTP sends the password in clear text; use TLS (``responder.ingest.tls``)
wherever the network between Falco and the responder is not trusted.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import time
from collections.abc import Callable
from typing import Literal, Self

import structlog
from aiohttp import hdrs, web
from aiohttp.typedefs import Handler, Middleware
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from responder.errors import ConfigError
from responder.ingest.server import error_response
from responder.record.metrics import Metrics
from responder.secret import Secret

log = structlog.get_logger("responder.ingest.auth")

# Probes and Prometheus scrape these without credentials; they reveal no alert data.
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
REALM = "falco-responder"
# Rejected requests are counted in the metric every time, but logged at most once per interval,
# so that a flood of unauthenticated requests cannot flood the log.
REJECTION_LOG_INTERVAL_S = 60.0

AuthMode = Literal["bearer", "basic", "none"]

# A shorter token or password is open to guessing by a sender that tries many. 16 random
# characters from a password generator, or the 64 of `openssl rand -hex 32`, are not.
MIN_SECRET_LENGTH = 16
# The value of deploy/base/secret.example.yaml, which must be replaced before use.
PLACEHOLDER_PREFIX = "REPLACE-ME"


class AuthSettings(BaseModel):
    """Authentication of requests to the sink; the health and metrics endpoints stay open."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    mode: AuthMode = "bearer"
    """``bearer`` (Authorization: Bearer), ``basic`` (user and password) or ``none``."""
    token: Secret | None = None
    """The bearer token that senders present, in ``bearer`` mode."""
    username: str | None = None
    """The basic auth user name, in ``basic`` mode. It must not contain ``:``."""
    password: Secret | None = None
    """The basic auth password, in ``basic`` mode."""
    allow_unauthenticated: bool = False
    """Accept alerts from anyone who can reach the sink; required with ``mode: none``."""

    @model_validator(mode="after")
    def _check_credentials(self) -> Self:
        problems: list[str] = []
        if self.mode == "bearer":
            if self.token is None or not self.token.get_secret_value():
                problems.append(
                    "auth.token is missing: set auth.token (a literal, {env: NAME} or "
                    "{file: PATH}) for mode bearer, or set auth.mode: none together with "
                    "auth.allow_unauthenticated: true to run without authentication"
                )
            else:
                token = self.token.get_secret_value()
                problems.extend(_unsendable(token) or _weak("auth.token", token))
        elif self.mode == "basic":
            if not self.username:
                problems.append("auth.username is missing: set it for mode basic")
            elif ":" in self.username:
                problems.append(
                    "auth.username contains ':', which basic auth cannot carry; "
                    "choose a user name without it"
                )
            if self.password is None or not self.password.get_secret_value():
                problems.append(
                    "auth.password is missing: set it for mode basic (a literal, {env: NAME} "
                    "or {file: PATH})"
                )
            else:
                problems.extend(_weak("auth.password", self.password.get_secret_value()))
        elif not self.allow_unauthenticated:
            problems.append(
                "auth.mode is none but auth.allow_unauthenticated is not true: anyone who can "
                "reach the sink could forge alerts; set auth.allow_unauthenticated: true to "
                "accept that, or configure mode bearer or basic"
            )
        if problems:
            raise ValueError("; ".join(problems))
        return self


def _unsendable(token: str) -> list[str]:
    """Return the problem with a bearer token that no Authorization header can match.

    The sink strips the header, so a token with spaces or a newline around it never matches,
    and a control or format character (such as a byte-order mark) is invisible in a config."""
    if token != token.strip():
        return [
            "auth.token starts or ends with whitespace, such as the newline of a file or an "
            "environment variable, which no sender can present; remove it"
        ]
    if not token.isprintable():
        return [
            "auth.token contains a control or format character, such as a byte-order mark; "
            "write it as plain text, for example the output of `openssl rand -hex 32`"
        ]
    return []


def _weak(name: str, secret: str) -> list[str]:
    """Return the problem with a secret that is too short or still the placeholder.

    The message never contains the secret."""
    fix = "generate one with `openssl rand -hex 32`"
    if secret.strip().lstrip("\ufeff").upper().startswith(PLACEHOLDER_PREFIX):
        return [f"{name} is still the placeholder of secret.example.yaml: {fix}"]
    if len(secret) < MIN_SECRET_LENGTH:
        return [
            f"{name} has {len(secret)} characters, fewer than {MIN_SECRET_LENGTH}: a short "
            f"secret can be guessed; {fix}"
        ]
    return []


def _as_bytes(value: str) -> bytes:
    # compare_digest takes str only when it is ASCII; surrogatepass encodes any header value
    # without raising, and no such value equals valid UTF-8 credentials.
    return value.encode("utf-8", "surrogatepass")


def _split_authorization(header: str) -> tuple[str, str]:
    scheme, _, credentials = header.strip().partition(" ")
    # The scheme name is case-insensitive (RFC 9110, section 11.1).
    return scheme.lower(), credentials.strip()


def _bearer_checker(token: str) -> Callable[[str], bool]:
    expected = _as_bytes(token)

    def check(header: str) -> bool:
        scheme, credentials = _split_authorization(header)
        matches = hmac.compare_digest(expected, _as_bytes(credentials))
        return scheme == "bearer" and matches

    return check


def _basic_checker(username: str, password: str) -> Callable[[str], bool]:
    # libcurl and Go's net/http send the user name and password as UTF-8 bytes. The whole
    # "user:password" pair is compared in one call, so the response time does not reveal
    # which part was wrong.
    expected = _as_bytes(f"{username}:{password}")

    def check(header: str) -> bool:
        scheme, credentials = _split_authorization(header)
        try:
            presented = base64.b64decode(credentials, validate=True)
        except (binascii.Error, ValueError):
            presented = b""
        matches = hmac.compare_digest(expected, presented)
        return scheme == "basic" and matches

    return check


def _challenge(settings: AuthSettings) -> str:
    if settings.mode == "basic":
        return f'Basic realm="{REALM}", charset="UTF-8"'
    return f'Bearer realm="{REALM}"'


def _presented_scheme(header: str | None) -> str:
    """Name the scheme a request used, for the log; never the credentials."""
    if header is None:
        return "none"
    scheme, _ = _split_authorization(header)
    return scheme if scheme in ("bearer", "basic") else "other"


class _RejectionLog:
    """Log rejected requests at most once per interval, with the number left out meanwhile."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._next_log = 0.0
        self._suppressed = 0

    def rejected(self, request: web.Request) -> None:
        now = time.monotonic()
        if now < self._next_log:
            self._suppressed += 1
            return
        log.warning(
            "request_rejected",
            reason="unauthorized",
            remote=request.remote,
            method=request.method,
            path=request.path,
            scheme=_presented_scheme(request.headers.get(hdrs.AUTHORIZATION)),
            suppressed_since_last=self._suppressed,
        )
        self._suppressed = 0
        self._next_log = now + self.interval_s


def auth_middleware(settings: AuthSettings, metrics: Metrics) -> Middleware:
    """Build a middleware that rejects requests without valid credentials with 401.

    ``/healthz``, ``/readyz`` and ``/metrics`` stay open. The middleware runs before the handler
    reads the body, so an unauthenticated sender cannot make the sink parse or decompress it."""
    check: Callable[[str], bool] | None
    if settings.mode == "bearer" and settings.token is not None:
        check = _bearer_checker(settings.token.get_secret_value())
    elif (
        settings.mode == "basic"
        and settings.username is not None
        and settings.password is not None
    ):
        check = _basic_checker(settings.username, settings.password.get_secret_value())
    elif settings.mode == "none":
        check = None
    else:
        # AuthSettings validation makes this unreachable; fail closed if it is bypassed.
        raise ValueError(f"auth mode {settings.mode!r} has no credentials configured")
    challenge = _challenge(settings)
    rejections = _RejectionLog(REJECTION_LOG_INTERVAL_S)

    @web.middleware
    async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
        if check is None or request.path in OPEN_PATHS:
            return await handler(request)
        header = request.headers.get(hdrs.AUTHORIZATION)
        if header is not None and check(header):
            return await handler(request)
        metrics.alerts_rejected.labels("unauthorized").inc()
        rejections.rejected(request)
        response = error_response(
            401,
            "unauthorized",
            "missing or invalid credentials: send the configured bearer token or basic auth "
            "credentials in the Authorization header",
        )
        response.headers[hdrs.WWW_AUTHENTICATE] = challenge
        return response

    return authenticate


def warn_if_open(settings: AuthSettings) -> bool:
    """Log a warning when the sink accepts alerts without authentication; return True then."""
    if settings.mode != "none":
        return False
    log.warning(
        "authentication_disabled",
        effect="anyone who can reach the sink can send alerts that trigger response actions",
        fix="set auth.mode to bearer or basic with credentials",
    )
    return True


def checked_auth(settings: AuthSettings) -> AuthSettings:
    """Validate auth settings that may have been left at their unchecked default.

    ``Settings`` builds its default without validation, so that commands other than ``serve``
    work without credentials. ``serve`` calls this, and starts only with a complete setup.
    """
    try:
        return AuthSettings.model_validate(dict(settings))
    except ValidationError as error:
        problems = "; ".join(
            str(item["msg"]).removeprefix("Value error, ") for item in error.errors()
        )
        raise ConfigError(f"invalid authentication settings: {problems}") from None
