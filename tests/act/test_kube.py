"""Kube: loading a kubeconfig, proxies, bodies read as dicts, and failures as KubeError."""

from __future__ import annotations

import base64
import os
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import trustme
from aiohttp import web
from kubernetes_asyncio.client import ApiClient

from responder.act.kube import Kube, RetryPolicy, nested
from responder.errors import ConfigError, KubeError
from tests.kubeapi import KubeApiServer


async def connect(server: KubeApiServer, tmp_path: Path, timeout_s: float = 5.0) -> Kube:
    path = server.write_kubeconfig(tmp_path / "kubeconfig")
    return await Kube.connect(kubeconfig=path, request_timeout_s=timeout_s)


async def test_ping_ok(kube_api: KubeApiServer, tmp_path: Path) -> None:
    kube = await connect(kube_api, tmp_path)
    try:
        await kube.ping()
    finally:
        await kube.close()
    assert 1 == len(kube_api.requests_to("GET", "/version*"))


async def test_ping_server_error(kube_api: KubeApiServer, tmp_path: Path) -> None:
    kube_api.fail_next("GET", "/version*", 500, times=None)
    kube = await connect(kube_api, tmp_path)
    try:
        with pytest.raises(KubeError) as caught:
            await kube.ping()
    finally:
        await kube.close()
    assert 500 == caught.value.status
    assert "InternalError" == caught.value.reason
    assert "get_code: 500 InternalError: Internal error occurred: injected failure" == str(
        caught.value
    )


@pytest.mark.parametrize("method", ["call", "read"])
async def test_not_found_reason(method: str, kube_api: KubeApiServer, tmp_path: Path) -> None:
    kube = await connect(kube_api, tmp_path)
    send = getattr(kube, method)
    try:
        with pytest.raises(KubeError) as caught:
            await send(kube.core.read_namespaced_pod, "ghost", "default")
    finally:
        await kube.close()
    assert 404 == caught.value.status
    assert "NotFound" == caught.value.reason
    assert 'read_namespaced_pod: 404 NotFound: pods "ghost" not found' == str(caught.value)


async def test_call_timeout(kube_api: KubeApiServer, tmp_path: Path) -> None:
    kube_api.delay("GET", "/version*", 2.0)
    kube = await connect(kube_api, tmp_path, timeout_s=0.2)
    try:
        with pytest.raises(KubeError) as caught:
            await kube.ping()
    finally:
        await kube.close()
    assert 0 == caught.value.status
    assert "Timeout" == caught.value.reason
    assert isinstance(caught.value.__cause__, TimeoutError)


async def test_call_connection_refused(kube_api: KubeApiServer, tmp_path: Path) -> None:
    path = kube_api.write_kubeconfig(tmp_path / "kubeconfig")
    await kube_api.close()
    kube = await Kube.connect(kubeconfig=path)
    try:
        with pytest.raises(KubeError) as caught:
            await kube.ping()
    finally:
        await kube.close()
    assert 0 == caught.value.status
    assert "no response from the API server" in str(caught.value)


async def test_connect_missing_kubeconfig(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"kubeconfig .*absent not found: set kubernetes"):
        await Kube.connect(kubeconfig=tmp_path / "absent")


async def test_connect_kubeconfig_env(
    kube_api: KubeApiServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = kube_api.write_kubeconfig(tmp_path / "kubeconfig")
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(path))
    kube = await Kube.connect()
    try:
        await kube.ping()
    finally:
        await kube.close()
    assert kube_api.url == kube.api_client.configuration.host


async def test_connect_explicit_beats_cluster(
    kube_api: KubeApiServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
    kube = await connect(kube_api, tmp_path)
    await kube.close()
    assert kube_api.url == kube.api_client.configuration.host


async def test_connect_in_cluster_files_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    # The service account files do not exist outside a pod, so loading fails before any request.
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "6443")
    with pytest.raises(ConfigError, match="in-cluster"):
        await Kube.connect()


async def test_timeout_must_be_positive() -> None:
    async with ApiClient() as api_client:
        with pytest.raises(ValueError, match="request_timeout_s"):
            Kube(api_client, request_timeout_s=0)


async def test_read_returns_dict(kube_api: KubeApiServer, tmp_path: Path) -> None:
    kube_api.add_pod("default", "web", labels={"app": "web"})
    kube = await connect(kube_api, tmp_path)
    try:
        pod = await kube.read(kube.core.read_namespaced_pod, "web", "default")
    finally:
        await kube.close()
    assert {"app": "web"} == pod["metadata"]["labels"]
    assert "Running" == pod["status"]["phase"]


async def test_read_retries_a_server_error(kube_api: KubeApiServer, tmp_path: Path) -> None:
    kube_api.add_pod("default", "web")
    kube_api.fail_next("GET", "/api/v1/namespaces/default/pods/web", 503)
    path = kube_api.write_kubeconfig(tmp_path / "kubeconfig")
    kube = await Kube.connect(kubeconfig=path, retry=RetryPolicy(base_s=0.01))
    try:
        pod = await kube.read(kube.core.read_namespaced_pod, "web", "default")
    finally:
        await kube.close()
    assert "web" == pod["metadata"]["name"]
    assert 1 == kube.retries
    assert 2 == len(kube_api.requests_to("GET", "/api/v1/namespaces/default/pods/web"))


VERSION = {
    "major": "1",
    "minor": "36",
    "gitVersion": "v1.36.0",
    "gitCommit": "0" * 40,
    "gitTreeState": "clean",
    "buildDate": "2026-04-22T00:00:00Z",
    "goVersion": "go1.26.2",
    "compiler": "gc",
    "platform": "linux/amd64",
}


@pytest.fixture
async def proxy(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[list[str]]:
    """An HTTP proxy on loopback that records each request target and returns a version."""
    targets: list[str] = []

    async def respond(request: web.Request) -> web.Response:
        targets.append(str(request.url))
        credentials = request.headers.get("Proxy-Authorization")
        if credentials is not None:
            targets.append(credentials)
        return web.json_response(VERSION)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", respond)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    for name in ("HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("NETRC", "/nonexistent/netrc")
    try:
        yield targets
    finally:
        await runner.cleanup()


async def test_proxy_variables_read_at_connect(
    kube_api: KubeApiServer, tmp_path: Path, proxy: list[str]
) -> None:
    kube = await connect(kube_api, tmp_path)
    try:
        await kube.ping()
    finally:
        await kube.close()
    assert [f"{kube_api.url}/version/"] == proxy
    assert not kube_api.requests_to("GET", "/version*")
    # The variables are not read again for each request.
    assert kube.api_client.rest_client.pool_manager.trust_env is False


@pytest.mark.parametrize("case", ["NO_PROXY names the host", "the proxy's scheme is https"])
async def test_proxy_not_used(
    case: str,
    kube_api: KubeApiServer,
    tmp_path: Path,
    proxy: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if case.startswith("NO_PROXY"):
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    else:
        # aiohttp supports no proxy of scheme https, and its lookup from the environment skips one.
        port = os.environ["HTTP_PROXY"].rsplit(":", 1)[1]
        monkeypatch.setenv("HTTP_PROXY", f"https://127.0.0.1:{port}")
    kube = await connect(kube_api, tmp_path)
    try:
        await kube.ping()
    finally:
        await kube.close()
    assert [] == proxy
    assert 1 == len(kube_api.requests_to("GET", "/version*"))


async def test_proxy_credentials_from_netrc(
    kube_api: KubeApiServer, tmp_path: Path, proxy: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login scanner password proxy-secret\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    kube = await connect(kube_api, tmp_path)
    try:
        await kube.ping()
    finally:
        await kube.close()
    expected = aiohttp.encode_basic_auth("scanner", "proxy-secret")
    assert [f"{kube_api.url}/version/", expected] == proxy


async def test_read_html_body_named(tmp_path: Path) -> None:
    async def page(request: web.Request) -> web.Response:
        return web.Response(text="<html>login required</html>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/version/", page)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        f"clusters: [{{name: c, cluster: {{server: 'http://127.0.0.1:{port}'}}}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u}}]\n"
    )
    kube = await Kube.connect(kubeconfig=kubeconfig)
    try:
        with pytest.raises(KubeError) as caught:
            await kube.read(kube.version.get_code)
    finally:
        await kube.close()
        await runner.cleanup()
    assert "InvalidRequest" == caught.value.reason
    assert "not JSON (Content-Type text/html): '<html>login required</html>'" in str(caught.value)


async def test_untrusted_server_certificate(tmp_path: Path) -> None:
    async def version(request: web.Request) -> web.Response:
        return web.json_response(VERSION)

    server_ca, other_ca = trustme.CA(), trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ca.issue_cert("127.0.0.1").configure_cert(context)
    app = web.Application()
    app.router.add_get("/version/", version)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context).start()
    port = runner.addresses[0][1]
    authority = base64.b64encode(other_ca.cert_pem.bytes()).decode()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        f"clusters: [{{name: c, cluster: {{server: 'https://127.0.0.1:{port}', "
        f"certificate-authority-data: {authority}}}}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: c, context: {cluster: c, user: u}}]\n"
    )
    kube = await Kube.connect(kubeconfig=kubeconfig, retry=RetryPolicy(base_s=0.01))
    try:
        with pytest.raises(KubeError) as caught:
            await kube.ping()
    finally:
        await kube.close()
        await runner.cleanup()
    assert "TLSFailed" == caught.value.reason
    assert "get_code: TLS with the API server failed: " in str(caught.value)
    assert "check the certificate authority" in str(caught.value)
    assert 0 == kube.retries


def test_nested_reads_missing_levels() -> None:
    pod = {"metadata": {"labels": {"app": "web"}, "annotations": None}, "spec": []}
    assert {"app": "web"} == nested(pod, "metadata", "labels")
    assert "web" == nested(pod, "metadata", "labels", "app")
    assert nested(pod, "metadata", "annotations", "x") is None
    assert nested(pod, "status", "phase") is None
    assert nested(pod, "spec", "nodeName") is None
    assert nested(None, "metadata") is None
