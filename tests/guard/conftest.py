"""Fixtures for the guard tests: a fake clock, a metrics registry, and a Kube client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from prometheus_client import CollectorRegistry

from responder.act.kube import Kube
from responder.clock import FakeClock
from tests.kubeapi import KubeApiServer


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest_asyncio.fixture
async def kube(kube_api: KubeApiServer, tmp_path: Path) -> AsyncIterator[Kube]:
    """A client for the test server; each test seeds the objects it reads."""
    path = kube_api.write_kubeconfig(tmp_path / "kubeconfig")
    client = await Kube.connect(kubeconfig=path, request_timeout_s=5.0)
    yield client
    await client.close()
