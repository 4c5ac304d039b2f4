"""server.health_port: probes and metrics in plain HTTP while the sink requires client certs."""

from __future__ import annotations

import json
import ssl
from pathlib import Path

import aiohttp
import pytest
import trustme

from responder.settings import Settings
from tests.samples import sample_document
from tests.serve import free_port, offline_config, start_daemon, stop

TOKEN = "health-port-token-7c1e"


def write_pki(ca: trustme.CA, tmp_path: Path) -> dict[str, str]:
    certificate = ca.issue_cert("127.0.0.1")
    cert_file, key_file, ca_file = tmp_path / "tls.crt", tmp_path / "tls.key", tmp_path / "ca.crt"
    cert_file.write_bytes(b"".join(blob.bytes() for blob in certificate.cert_chain_pems))
    certificate.private_key_pem.write_to_path(str(key_file))
    ca.cert_pem.write_to_path(str(ca_file))
    return {"cert_file": str(cert_file), "key_file": str(key_file), "client_ca_file": str(ca_file)}


async def test_probes_on_health_port_with_mtls(tmp_path: Path) -> None:
    ca = trustme.CA()
    health_port = free_port()
    config = {
        **offline_config(tmp_path, TOKEN, {"type": "log"}),
        "tls": write_pki(ca, tmp_path),
        "server": {"health_port": health_port},
    }
    health = f"http://127.0.0.1:{health_port}"
    daemon = await start_daemon(tmp_path, config, ready_url=f"{health}/readyz")
    sink = daemon.url.replace("http://", "https://")
    try:
        async with aiohttp.ClientSession() as session:
            for path in ("/healthz", "/readyz"):
                async with session.get(health + path) as response:
                    assert 200 == response.status, path
            # The health port has no sink: alerts go only to the port with TLS and auth.
            async with session.post(health + "/", data=b"{}") as response:
                assert 404 == response.status
            context = ssl.create_default_context()
            ca.configure_trust(context)
            ca.issue_cert("falco@example.org").configure_cert(context)
            headers = {"Authorization": f"Bearer {TOKEN}"}
            body = json.dumps(sample_document("falco-direct", 1))
            async with session.post(sink, data=body, headers=headers, ssl=context) as response:
                assert 202 == response.status
            async with session.get(health + "/metrics") as response:
                assert 200 == response.status
                metrics = await response.text()
    finally:
        await stop(daemon)
    assert "responder_alerts_received_total{" in metrics


def test_health_port_must_differ() -> None:
    with pytest.raises(ValueError, match=r"server\.health_port 2804 is the sink's port"):
        Settings.model_validate({"server": {"port": 2804, "health_port": 2804}})
