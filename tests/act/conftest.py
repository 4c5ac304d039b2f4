"""Fixtures for the action tests: a Kube client connected to the Kubernetes API test server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from responder.act.base import load_builtin_actions
from responder.act.kube import Kube, RetryPolicy
from tests.act.helpers import seed_cluster
from tests.kubeapi import KubeApiServer

load_builtin_actions()


@pytest_asyncio.fixture
async def kube(kube_api: KubeApiServer, tmp_path: Path) -> AsyncIterator[Kube]:
    """A client for the test server, loaded from a kubeconfig written for it alone."""
    seed_cluster(kube_api)
    path = kube_api.write_kubeconfig(tmp_path / "kubeconfig")
    # Short backoff: a test that makes the server fail for good waits well under a second.
    retry = RetryPolicy(base_s=0.001, cap_s=0.01)
    client = await Kube.connect(kubeconfig=path, request_timeout_s=5.0, retry=retry)
    yield client
    await client.close()
