"""Fixtures for the notifier tests: a sample alert and report, an HTTP receiver and SMTP servers.

Every server listens on 127.0.0.1 on a port the kernel picks, so tests can run in parallel and
never reach another host.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default as default_policy
from typing import Any

import aiohttp
import pytest
import trustme
from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from multidict import CIMultiDictProxy

from responder.act.results import ActionResult, Outcome
from responder.ingest.alert import Alert
from responder.notify.base import Report

SAMPLE_ALERT = (
    '{"hostname":"node-2","output":"12:53:50.660104421: Warning Shell spawned in container '
    "(user=root shell=sh parent=python3 cmdline=sh -c id; uname -a pid=48213 container=api "
    "image=registry.example.com/payments/api:1.19.0 privileged=false "
    'pod=payments-api-7c9b5d4f6-qwz8m ns=payments)","output_fields":{"container.id":'
    '"9f1c2b7a4e55","container.name":"api","container.privileged":false,"evt.time":'
    '1773492830660104421,"k8s.ns.name":"payments","k8s.pod.name":"payments-api-7c9b5d4f6-qwz8m",'
    '"proc.cmdline":"sh -c id; uname -a","proc.name":"sh","proc.pid":48213,"user.name":"root"},'
    '"priority":"Warning","rule":"Shell Spawned in Container","source":"syscall","tags":'
    '["container","custom","shell"],"time":"2026-03-14T12:53:50.660104421Z"}'
)

# The secret part of every test URL; tests assert that it never shows up in errors or logs.
URL_TOKEN = "XOXB-SECRET-TOKEN-4f7a"
SMTP_USER = "responder"
SMTP_PASSWORD = "smtp-password-9c1e"


@pytest.fixture
def alert() -> Alert:
    return Alert.model_validate_json(SAMPLE_ALERT)


@pytest.fixture
def make_report(alert: Alert) -> Callable[..., Report]:
    """Return a factory of reports about the sample alert; keywords replace any field."""

    def make(**changes: Any) -> Report:
        values: dict[str, Any] = {
            "alert": alert,
            "alert_id": "a1b2c3d4",
            "playbook": "quarantine-shell",
            "description": "Isolate pods that spawn an interactive shell.",
            "results": (
                ActionResult(
                    "label_pod",
                    Outcome.SUCCESS,
                    "labelled payments/payments-api-7c9b5d4f6-qwz8m quarantine=true",
                    0.12,
                ),
                ActionResult("delete_pod", Outcome.DRY_RUN, "would delete the pod", 0.0),
            ),
            "dry_run": False,
            "notes": ("guard: namespace payments is allowed",),
        }
        values.update(changes)
        return Report(**values)

    return make


@pytest.fixture
def report(make_report: Callable[..., Report]) -> Report:
    return make_report()


class RecordingSleep:
    """Stands in for ``asyncio.sleep``: records each wait and returns at once."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def sleep() -> RecordingSleep:
    return RecordingSleep()


@dataclass
class Reply:
    status: int = 200
    text: str = "ok"
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


@dataclass
class Received:
    body: bytes
    headers: CIMultiDictProxy[str]


class Receiver:
    """An aiohttp server that records requests and responds with scripted replies.

    The last scripted reply repeats once the script is used up; with no script it returns 200 ok.
    """

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self._script: list[Reply] = []
        self.url = ""

    def reply(
        self,
        status: int = 200,
        text: str = "ok",
        headers: dict[str, str] | None = None,
        delay_s: float = 0.0,
    ) -> None:
        self._script.append(Reply(status, text, headers or {}, delay_s))

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append(Received(await request.read(), request.headers))
        index = min(len(self.requests), len(self._script)) - 1
        answer = self._script[index] if self._script else Reply()
        if answer.delay_s:
            await asyncio.sleep(answer.delay_s)
        return web.Response(status=answer.status, text=answer.text, headers=answer.headers)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    target = Receiver()
    app = web.Application()
    app.router.add_post(f"/services/T000/B000/{URL_TOKEN}", target.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    target.url = f"http://{host}:{port}/services/T000/B000/{URL_TOKEN}"
    yield target
    await runner.cleanup()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def ca_file(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture(scope="session")
def server_tls(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    return context


class MailStore:
    """aiosmtpd handler that keeps each accepted message and can reject recipients."""

    def __init__(self, reject_recipients: bool = False) -> None:
        self.reject_recipients = reject_recipients
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str | None, list[str]]] = []
        self.ciphers: list[object] = []
        self.logins: list[str] = []

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.reject_recipients:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        parsed = BytesParser(policy=default_policy).parsebytes(content)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        assert server.transport is not None
        self.ciphers.append(server.transport.get_extra_info("cipher"))
        return "250 Message accepted"

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        if not isinstance(data, LoginPassword):
            return AuthResult(success=False, handled=False)
        self.logins.append(data.login.decode())
        accepted = data.login.decode() == SMTP_USER and data.password.decode() == SMTP_PASSWORD
        # handled=False makes aiosmtpd send the 535 reply itself.
        return AuthResult(success=accepted, handled=False)


class EphemeralController(Controller):
    """aiosmtpd's threaded controller, listening on a port the kernel picks."""

    def _trigger_server(self) -> None:
        # Controller connects to self.port to start the protocol, so read the bound port first.
        assert isinstance(self.server, asyncio.Server)
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()  # type: ignore[no-untyped-call]


@dataclass
class MailServer:
    store: MailStore
    port: int


@pytest.fixture
def smtp_server(server_tls: ssl.SSLContext) -> Iterator[Callable[..., MailServer]]:
    """Return a starter of SMTP servers: mode is 'none', 'starttls' or 'tls'."""
    controllers: list[Controller] = []

    def start(mode: str = "none", *, auth: bool = False, reject: bool = False) -> MailServer:
        store = MailStore(reject_recipients=reject)
        options: dict[str, Any] = {"hostname": "127.0.0.1", "port": 0}
        if mode == "starttls":
            options.update(tls_context=server_tls, require_starttls=True)
        elif mode == "tls":
            options.update(ssl_context=server_tls)
        if auth:
            options.update(authenticator=store.authenticate, auth_required=True)
        controller = EphemeralController(store, **options)
        controller.start()
        controllers.append(controller)
        return MailServer(store, controller.port)

    yield start
    for controller in controllers:
        controller.stop()
