"""TLS and mutual TLS of the sink, with certificates from throwaway CAs made by trustme."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
import trustme
from aiohttp.test_utils import TestServer
from pydantic import ValidationError

from responder.errors import ConfigError
from responder.ingest.server import Sink, create_app
from responder.ingest.tls import TlsSettings, server_ssl_context
from responder.record.metrics import Metrics
from responder.store.queue import AlertQueue
from tests.samples import sample_line

# Client errors that a failed or refused handshake surfaces as. With TLS 1.3 the server checks
# the client certificate after the client considers the handshake done, so the failure may
# arrive as a reset or a closed connection on the first request instead of an SSL error.
HANDSHAKE_FAILED = (aiohttp.ClientError, ssl.SSLError, ConnectionError)


@dataclass
class Pki:
    ca: trustme.CA
    settings: TlsSettings


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def pki(ca: trustme.CA, tmp_path: Path) -> Pki:
    server_cert = ca.issue_cert("127.0.0.1")
    cert_file = tmp_path / "server.pem"
    key_file = tmp_path / "server.key"
    ca_file = tmp_path / "ca.pem"
    cert_file.write_bytes(b"".join(blob.bytes() for blob in server_cert.cert_chain_pems))
    server_cert.private_key_pem.write_to_path(str(key_file))
    ca.cert_pem.write_to_path(str(ca_file))
    settings = TlsSettings(cert_file=cert_file, key_file=key_file, client_ca_file=ca_file)
    return Pki(ca, settings)


@pytest.fixture
def sink() -> Sink:
    return Sink(queue=AlertQueue(20), metrics=Metrics(), max_body_bytes=64 * 1024)


@pytest.fixture
async def mtls_server(pki: Pki, sink: Sink) -> AsyncIterator[TestServer]:
    context = server_ssl_context(pki.settings)
    server = TestServer(create_app(sink), host="127.0.0.1", scheme="https")
    await server.start_server(ssl=context)
    yield server
    await server.close()


def client_context(trusted: trustme.CA, client_ca: trustme.CA | None) -> ssl.SSLContext:
    """Trust ``trusted`` for the server and present a certificate from ``client_ca``, if any."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    trusted.configure_trust(context)
    if client_ca is not None:
        client_ca.issue_cert("falco@example.org").configure_cert(context)
    return context


async def post(server: TestServer, context: ssl.SSLContext) -> int:
    connector = aiohttp.TCPConnector(ssl=context)
    async with aiohttp.ClientSession(connector=connector) as session:
        body = sample_line("falco-direct", 1).encode()
        async with session.post(server.make_url("/"), data=body) as response:
            return response.status


async def test_mtls_trusted_client_gets_202(mtls_server: TestServer, pki: Pki, sink: Sink) -> None:
    status = await post(mtls_server, client_context(pki.ca, client_ca=pki.ca))
    assert 202 == status
    assert 1 == len(sink.queue)


async def test_mtls_no_client_cert_fails(mtls_server: TestServer, pki: Pki, sink: Sink) -> None:
    with pytest.raises(HANDSHAKE_FAILED):
        await post(mtls_server, client_context(pki.ca, client_ca=None))
    assert 0 == len(sink.queue)


async def test_mtls_other_ca_cert_fails(mtls_server: TestServer, pki: Pki, sink: Sink) -> None:
    with pytest.raises(HANDSHAKE_FAILED):
        await post(mtls_server, client_context(pki.ca, client_ca=trustme.CA()))
    assert 0 == len(sink.queue)


async def test_tls_without_client_ca_gets_202(pki: Pki, sink: Sink) -> None:
    settings = pki.settings.model_copy(update={"client_ca_file": None})
    server = TestServer(create_app(sink), host="127.0.0.1", scheme="https")
    await server.start_server(ssl=server_ssl_context(settings))
    try:
        status = await post(server, client_context(pki.ca, client_ca=None))
    finally:
        await server.close()
    assert 202 == status


def test_context_settings(pki: Pki) -> None:
    context = server_ssl_context(pki.settings)
    assert context is not None
    assert ssl.TLSVersion.TLSv1_2 == context.minimum_version
    assert ssl.CERT_REQUIRED == context.verify_mode
    # Only the configured CA signs client certificates, never the system store.
    assert 1 == len(context.get_ca_certs())


def test_context_without_client_ca(pki: Pki) -> None:
    settings = pki.settings.model_copy(update={"client_ca_file": None})
    context = server_ssl_context(settings)
    assert context is not None
    assert ssl.CERT_NONE == context.verify_mode


def test_context_none_without_tls() -> None:
    assert server_ssl_context(TlsSettings()) is None


def test_missing_cert_names_file(pki: Pki, tmp_path: Path) -> None:
    missing = tmp_path / "absent.pem"
    settings = pki.settings.model_copy(update={"cert_file": missing})
    with pytest.raises(ConfigError) as caught:
        server_ssl_context(settings)
    assert f"cannot read tls.cert_file {str(missing)!r}" in str(caught.value)


@pytest.mark.parametrize("field", ["cert_file", "key_file", "client_ca_file"])
def test_invalid_file_named(pki: Pki, tmp_path: Path, field: str) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    settings = pki.settings.model_copy(update={field: junk})
    with pytest.raises(ConfigError) as caught:
        server_ssl_context(settings)
    assert f"invalid tls.{field} {str(junk)!r}" in str(caught.value)


def test_binary_file_named(pki: Pki, tmp_path: Path) -> None:
    binary = tmp_path / "server.der"
    binary.write_bytes(b"\x30\x82\xff\xfe")
    settings = pki.settings.model_copy(update={"cert_file": binary})
    with pytest.raises(ConfigError) as caught:
        server_ssl_context(settings)
    assert "invalid tls.cert_file" in str(caught.value)
    assert "non-ASCII" in str(caught.value)


def test_mismatched_key_named(pki: Pki, tmp_path: Path) -> None:
    other_key = tmp_path / "other.key"
    trustme.CA().issue_cert("127.0.0.1").private_key_pem.write_to_path(str(other_key))
    settings = pki.settings.model_copy(update={"key_file": other_key})
    with pytest.raises(ConfigError) as caught:
        server_ssl_context(settings)
    assert f"tls.key_file {str(other_key)!r} is not the private key" in str(caught.value)


def test_encrypted_key_rejected(pki: Pki, tmp_path: Path) -> None:
    serialization = pytest.importorskip("cryptography.hazmat.primitives.serialization")
    assert pki.settings.key_file is not None
    key = serialization.load_pem_private_key(pki.settings.key_file.read_bytes(), None)
    encrypted = tmp_path / "encrypted.key"
    encrypted.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"passphrase"),
        )
    )
    settings = pki.settings.model_copy(update={"key_file": encrypted})
    with pytest.raises(ConfigError) as caught:
        server_ssl_context(settings)
    assert "the key is encrypted" in str(caught.value)


@pytest.mark.parametrize(
    ("values", "missing"),
    [
        ({"cert_file": "a.pem"}, "tls.key_file is missing"),
        ({"key_file": "a.key"}, "tls.cert_file is missing"),
        ({"client_ca_file": "ca.pem"}, "tls.client_ca_file needs TLS"),
    ],
    ids=["cert-only", "key-only", "ca-only"],
)
def test_settings_name_missing(values: dict[str, str], missing: str) -> None:
    with pytest.raises(ValidationError) as caught:
        TlsSettings.model_validate(values)
    assert missing in str(caught.value)
