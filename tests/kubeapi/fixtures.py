"""Pytest fixtures for the Kubernetes API test server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from tests.kubeapi.server import KubeApiServer


@pytest_asyncio.fixture
async def kube_api() -> AsyncIterator[KubeApiServer]:
    """Start a KubeApiServer with namespace `default`, and close it after the test."""
    async with KubeApiServer() as server:
        server.add_namespace("default")
        yield server
