"""Fixtures for the action tests: a Kube client connected to the Kubernetes API test server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio

from responder.act.base import load_builtin_actions
from responder.act.kube import Kube
from tests.act.helpers import seed_cluster
from tests.kubeapi import KubeApiServer

load_builtin_actions()


@pytest_asyncio.fixture
async def kube(kube_api: KubeApiServer, tmp_path: Path) -> AsyncIterator[Kube]:
    """A client for the test server, loaded from a kubeconfig written for it alone."""
    seed_cluster(kube_api)
    path = kube_api.write_kubeconfig(tmp_path / "kubeconfig")
    client = await Kube.connect(kubeconfig=path, request_timeout_s=5.0)
    yield client
    await client.close()
