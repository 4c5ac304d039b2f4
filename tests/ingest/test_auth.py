"""Authentication of the sink: bearer tokens, basic auth as Falco sends it, and open endpoints."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from pydantic import ValidationError
from structlog.testing import capture_logs

from responder.ingest.auth import AuthSettings, auth_middleware, warn_if_open
from responder.ingest.server import Sink, create_app
from responder.record.metrics import Metrics
from responder.store.queue import AlertQueue
from tests.samples import sample_line

TOKEN = "s3cr3t-token-with-enough-entropy"
USER = "falco"
# ':' '@' and '/' must be percent-encoded in a URL, as a Falco operator would write them.
PASSWORD = "p@ss:w0rd/x-9d41f0c2"


@pytest.fixture
def sink() -> Sink:
    return Sink(queue=AlertQueue(20), metrics=Metrics(), max_body_bytes=64 * 1024)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def start(sink: Sink, settings: AuthSettings) -> TestServer:
    app = create_app(sink)
    app.middlewares.append(auth_middleware(settings, sink.metrics))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server


@pytest.fixture
async def bearer_server(sink: Sink) -> AsyncIterator[TestServer]:
    server = await start(sink, AuthSettings(mode="bearer", token=TOKEN))
    yield server
    await server.close()


@pytest.fixture
async def basic_server(sink: Sink) -> AsyncIterator[TestServer]:
    server = await start(sink, AuthSettings(mode="basic", username=USER, password=PASSWORD))
    yield server
    await server.close()


def alert_body() -> bytes:
    return sample_line("falco-direct", 1).encode()


async def post(
    session: aiohttp.ClientSession, url: str | object, **kwargs: object
) -> tuple[int, dict[str, object], dict[str, str]]:
    async with session.post(url, data=alert_body(), **kwargs) as response:  # type: ignore[arg-type]
        return response.status, await response.json(), dict(response.headers)


async def rejected_count(session: aiohttp.ClientSession, server: TestServer) -> str:
    async with session.get(server.make_url("/metrics")) as response:
        text = await response.text()
    for line in text.splitlines():
        if line.startswith('responder_alerts_rejected_total{reason="unauthorized"}'):
            return line.rsplit(" ", 1)[1]
    return "absent"


async def test_bearer_missing_gets_401(
    session: aiohttp.ClientSession, bearer_server: TestServer, sink: Sink
) -> None:
    status, answer, headers = await post(session, bearer_server.make_url("/"))
    assert 401 == status
    assert "unauthorized" == answer["error"]
    assert headers["WWW-Authenticate"].startswith("Bearer ")
    assert 0 == len(sink.queue)
    assert "1.0" == await rejected_count(session, bearer_server)


async def test_bearer_wrong_gets_401(
    session: aiohttp.ClientSession, bearer_server: TestServer, sink: Sink
) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}x"}
    status, answer, _ = await post(session, bearer_server.make_url("/"), headers=headers)
    assert 401 == status
    assert "unauthorized" == answer["error"]
    assert 0 == len(sink.queue)


@pytest.mark.parametrize(
    "header",
    [f"Basic {TOKEN}", TOKEN, "Bearer", f"Bearer {TOKEN[:-1]}", "Bearer tökén"],
    ids=["basic-scheme", "no-scheme", "empty", "prefix", "non-ascii"],
)
async def test_bearer_malformed_gets_401(
    session: aiohttp.ClientSession, bearer_server: TestServer, sink: Sink, header: str
) -> None:
    status, _, _ = await post(
        session, bearer_server.make_url("/"), headers={"Authorization": header}
    )
    assert 401 == status
    assert 0 == len(sink.queue)


async def test_bearer_right_gets_202(
    session: aiohttp.ClientSession, bearer_server: TestServer, sink: Sink
) -> None:
    headers = {"Authorization": f"bearer {TOKEN}"}
    status, answer, _ = await post(session, bearer_server.make_url("/"), headers=headers)
    assert 202 == status
    assert 1 == answer["accepted"]
    assert 1 == len(sink.queue)


async def test_basic_url_credentials_get_202(
    session: aiohttp.ClientSession, basic_server: TestServer, sink: Sink
) -> None:
    # Falco's http_output takes credentials only in the URL; libcurl sends them as basic auth,
    # and so does aiohttp.
    url = basic_server.make_url("/").with_user(USER).with_password(PASSWORD)
    assert "p%40ss%3Aw0rd%2Fx-9d41f0c2@127.0.0.1" in str(url)
    status, answer, _ = await post(session, url)
    assert 202 == status
    assert 1 == answer["accepted"]
    assert 1 == len(sink.queue)


async def test_basic_url_wrong_password_gets_401(
    session: aiohttp.ClientSession, basic_server: TestServer, sink: Sink
) -> None:
    url = basic_server.make_url("/").with_user(USER).with_password(PASSWORD + "x")
    status, _, _ = await post(session, url)
    assert 401 == status
    assert 0 == len(sink.queue)


async def test_basic_utf8_password_gets_202(session: aiohttp.ClientSession, sink: Sink) -> None:
    # libcurl and Go send a non-ASCII password as its UTF-8 bytes.
    password = "pässwörd-für-den-sink"
    server = await start(sink, AuthSettings(mode="basic", username=USER, password=password))
    try:
        headers = {"Authorization": aiohttp.encode_basic_auth(USER, password)}
        status, _, _ = await post(session, server.make_url("/"), headers=headers)
    finally:
        await server.close()
    assert 202 == status


@pytest.mark.parametrize(
    "header",
    [
        "Basic " + base64.b64encode(f"{USER}:wrong".encode()).decode(),
        "Basic " + base64.b64encode(f"other:{PASSWORD}".encode()).decode(),
        "Basic not-base64!",
        "Basic " + base64.b64encode(USER.encode()).decode(),
        f"Bearer {PASSWORD}",
    ],
    ids=["wrong-password", "wrong-user", "invalid-base64", "no-colon", "bearer-scheme"],
)
async def test_basic_wrong_gets_401(
    session: aiohttp.ClientSession, basic_server: TestServer, sink: Sink, header: str
) -> None:
    status, _, headers = await post(
        session, basic_server.make_url("/"), headers={"Authorization": header}
    )
    assert 401 == status
    assert headers["WWW-Authenticate"].startswith("Basic ")
    assert 0 == len(sink.queue)


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
async def test_open_paths_need_no_credentials(
    session: aiohttp.ClientSession, bearer_server: TestServer, path: str
) -> None:
    async with session.get(bearer_server.make_url(path)) as response:
        assert 200 == response.status


async def test_other_paths_need_credentials(
    session: aiohttp.ClientSession, bearer_server: TestServer
) -> None:
    async with session.get(bearer_server.make_url("/")) as response:
        assert 401 == response.status
    async with session.get(bearer_server.make_url("/healthz/extra")) as response:
        assert 401 == response.status


async def test_none_mode_lets_everything_in(session: aiohttp.ClientSession, sink: Sink) -> None:
    settings = AuthSettings(mode="none", allow_unauthenticated=True)
    server = await start(sink, settings)
    try:
        status, _, _ = await post(session, server.make_url("/"))
    finally:
        await server.close()
    assert 202 == status


async def test_rejection_logs_no_credentials(
    session: aiohttp.ClientSession, bearer_server: TestServer
) -> None:
    headers = {"Authorization": "Bearer guessed-token-value"}
    with capture_logs() as logs:
        await post(session, bearer_server.make_url("/"), headers=headers)
    rejected = [entry for entry in logs if entry["event"] == "request_rejected"]
    assert 1 == len(rejected)
    assert "bearer" == rejected[0]["scheme"]
    assert "guessed-token-value" not in repr(logs)


async def test_repeated_rejections_log_once(
    session: aiohttp.ClientSession, bearer_server: TestServer
) -> None:
    with capture_logs() as logs:
        for _ in range(5):
            await post(session, bearer_server.make_url("/"))
    assert 1 == sum(entry["event"] == "request_rejected" for entry in logs)
    assert "5.0" == await rejected_count(session, bearer_server)


def test_settings_none_needs_allow() -> None:
    with pytest.raises(ValidationError) as caught:
        AuthSettings(mode="none")
    assert "auth.allow_unauthenticated: true" in str(caught.value)


def test_settings_bearer_needs_token() -> None:
    with pytest.raises(ValidationError) as caught:
        AuthSettings()
    assert "auth.token is missing" in str(caught.value)


def test_settings_basic_names_missing() -> None:
    with pytest.raises(ValidationError) as caught:
        AuthSettings(mode="basic")
    assert "auth.username is missing" in str(caught.value)
    assert "auth.password is missing" in str(caught.value)


def test_settings_basic_rejects_colon_user() -> None:
    with pytest.raises(ValidationError) as caught:
        AuthSettings(mode="basic", username="a:b", password="x")
    assert "contains ':'" in str(caught.value)


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"mode": "bearer", "token": "t0k"}, "auth.token has 3 characters, fewer than 16"),
        ({"mode": "bearer", "token": "15-characters.."}, "auth.token has 15 characters"),
        ({"mode": "basic", "username": "falco", "password": "hunter2"}, "auth.password has 7"),
        (
            {"mode": "bearer", "token": "REPLACE-ME-with-a-random-token"},
            "auth.token is still the placeholder",
        ),
    ],
)
def test_settings_reject_weak_secret(settings: dict[str, str], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        AuthSettings.model_validate(settings)
    message = str(caught.value)
    assert field in message
    assert "openssl rand -hex 32" in message
    secret = settings.get("token") or settings["password"]
    assert secret not in message


@pytest.mark.parametrize(
    ("token", "problem"),
    [
        (" " * 16, "starts or ends with whitespace"),
        ("abc" + " " * 13, "starts or ends with whitespace"),
        ("0123456789abcdef\n", "starts or ends with whitespace"),
        ("\ufeff0123456789abcdef", "contains a control or format character"),
        ("0123456789\x07abcdef", "contains a control or format character"),
    ],
)
def test_settings_reject_unsendable_token(token: str, problem: str) -> None:
    with pytest.raises(ValidationError) as caught:
        AuthSettings(mode="bearer", token=token)
    assert f"auth.token {problem}" in str(caught.value)


def test_settings_reject_placeholder_after_bom() -> None:
    with pytest.raises(ValidationError) as caught:
        AuthSettings(mode="basic", username="falco", password="\ufeffREPLACE-ME-password-1")
    assert "auth.password is still the placeholder" in str(caught.value)


def test_settings_token_from_env_newline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SINK_TOKEN", "0123456789abcdef0123\n")
    with pytest.raises(ValidationError) as caught:
        AuthSettings.model_validate({"mode": "bearer", "token": {"env": "SINK_TOKEN"}})
    assert "auth.token starts or ends with whitespace" in str(caught.value)


def test_settings_accept_16_characters() -> None:
    settings = AuthSettings(mode="bearer", token="16-characters..!")
    assert settings.token is not None
    assert 16 == len(settings.token.get_secret_value())


def test_settings_token_from_file(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n", encoding="utf-8")
    settings = AuthSettings.model_validate({"mode": "bearer", "token": {"file": str(path)}})
    assert settings.token is not None
    assert TOKEN == settings.token.get_secret_value()
    assert TOKEN not in repr(settings)


def test_settings_error_hides_token() -> None:
    with pytest.raises(ValidationError) as caught:
        AuthSettings.model_validate({"mode": "bearer", "token": TOKEN, "extra": 1})
    assert TOKEN not in str(caught.value)


def test_warn_if_open_warns() -> None:
    with capture_logs() as logs:
        is_open = warn_if_open(AuthSettings(mode="none", allow_unauthenticated=True))
    assert is_open
    assert ["authentication_disabled"] == [entry["event"] for entry in logs]
    assert "warning" == logs[0]["log_level"]


def test_warn_if_open_quiet_with_auth() -> None:
    with capture_logs() as logs:
        is_open = warn_if_open(AuthSettings(mode="bearer", token=TOKEN))
    assert not is_open
    assert [] == logs
