"""Retries of Kubernetes API calls: what is retried, how long it waits, and when it gives up."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from random import Random

import pytest
import pytest_asyncio
from kubernetes_asyncio.client import ApiClient, Configuration

from responder.act.kube import Kube, RetryPolicy
from responder.errors import KubeError
from tests.kubeapi import KubeApiServer


class Sleeps:
    """Records each backoff instead of waiting."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest_asyncio.fixture
async def client(kube_api: KubeApiServer, tmp_path: Path) -> AsyncIterator[tuple[Kube, Sleeps]]:
    base = await Kube.connect(kubeconfig=kube_api.write_kubeconfig(tmp_path / "kubeconfig"))
    sleeps = Sleeps()
    kube = Kube(
        base.api_client,
        request_timeout_s=1.0,
        retry=RetryPolicy(attempts=4, base_s=0.1, cap_s=2.0),
        sleep=sleeps,
        random=Random(7),
    )
    yield kube, sleeps
    await kube.close()


@pytest.mark.parametrize("status", [500, 502, 503, 429])
async def test_transient_status_retried(
    client: tuple[Kube, Sleeps], kube_api: KubeApiServer, status: int
) -> None:
    kube, sleeps = client
    kube_api.fail_next("GET", "/version*", status, times=2)
    await kube.ping()
    assert 3 == len(kube_api.requests_to("GET", "/version*"))
    assert 2 == len(sleeps.waits)
    assert 2 == kube.retries


@pytest.mark.parametrize("status", [400, 403, 404, 409, 422])
async def test_client_errors_not_retried(
    client: tuple[Kube, Sleeps], kube_api: KubeApiServer, status: int
) -> None:
    kube, sleeps = client
    kube_api.fail_next("GET", "/version*", status)
    with pytest.raises(KubeError) as caught:
        await kube.ping()
    assert status == caught.value.status
    assert [] == sleeps.waits
    assert 1 == len(kube_api.requests_to("GET", "/version*"))


async def test_gives_up_after_attempts(
    client: tuple[Kube, Sleeps], kube_api: KubeApiServer
) -> None:
    kube, sleeps = client
    kube_api.fail_next("GET", "/version*", 500, times=None)
    with pytest.raises(KubeError) as caught:
        await kube.ping()
    assert 500 == caught.value.status
    assert 4 == len(kube_api.requests_to("GET", "/version*"))
    assert 3 == len(sleeps.waits)


async def test_backoff_capped_with_jitter(
    client: tuple[Kube, Sleeps], kube_api: KubeApiServer
) -> None:
    kube, sleeps = client
    kube_api.fail_next("GET", "/version*", 503, times=None)
    with pytest.raises(KubeError):
        await kube.ping()
    ceilings = [0.1, 0.2, 0.4]
    assert all(0 <= wait <= ceiling for wait, ceiling in zip(sleeps.waits, ceilings, strict=True))
    assert len(set(sleeps.waits)) == len(sleeps.waits)


async def test_retry_after_honoured(client: tuple[Kube, Sleeps], kube_api: KubeApiServer) -> None:
    kube, sleeps = client
    kube_api.fail_next("GET", "/version*", 429, retry_after=1)
    await kube.ping()
    assert [1.0] == [round(wait, 3) for wait in sleeps.waits]


async def test_retry_after_capped(client: tuple[Kube, Sleeps], kube_api: KubeApiServer) -> None:
    kube, sleeps = client
    kube_api.fail_next("GET", "/version*", 429, retry_after=3600)
    await kube.ping()
    assert [2.0] == sleeps.waits


async def test_timeout_retried(client: tuple[Kube, Sleeps], kube_api: KubeApiServer) -> None:
    kube, sleeps = client
    kube_api.delay("GET", "/version*", 3.0, times=1)
    await kube.ping()
    assert 1 == len(sleeps.waits)
    assert 2 == len(kube_api.requests_to("GET", "/version*"))


async def test_connection_refused_retried() -> None:
    configuration = Configuration()
    # Port 9 on loopback: nothing listens there on these machines, so the connection is refused.
    configuration.host = "http://127.0.0.1:9"
    sleeps = Sleeps()
    kube = Kube(ApiClient(configuration), retry=RetryPolicy(attempts=3), sleep=sleeps)
    try:
        with pytest.raises(KubeError) as caught:
            await kube.ping()
    finally:
        await kube.close()
    assert 0 == caught.value.status
    assert 2 == len(sleeps.waits)
