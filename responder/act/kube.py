"""The Kubernetes API client the actions share: one kubernetes_asyncio ``ApiClient`` and its APIs.

Every request goes through ``Kube.call``, which sets the request timeout, adds ``dryRun=All``
when asked, and maps ``ApiException``, ``aiohttp.ClientError`` and timeouts to ``KubeError``.
Retries, when they come, belong in ``call`` too.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
from kubernetes_asyncio import config as kube_config
from kubernetes_asyncio.client import (
    ApiClient,
    AppsV1Api,
    Configuration,
    CoreV1Api,
    NetworkingV1Api,
    V1DeleteOptions,
    VersionApi,
)
from kubernetes_asyncio.client.exceptions import ApiException

from responder.errors import ConfigError, KubeError

T = TypeVar("T")

# The value of the dryRun query parameter that runs admission and validation but persists nothing.
DRY_RUN_ALL = "All"
# Set by the kubelet in every pod; its presence means the responder runs inside a cluster.
SERVICE_HOST_ENV = "KUBERNETES_SERVICE_HOST"
DEFAULT_KUBECONFIG = Path("~/.kube/config")


class Kube:
    """One connection to the Kubernetes API server, with the API groups the actions use."""

    def __init__(self, api_client: ApiClient, *, request_timeout_s: float = 10.0) -> None:
        if request_timeout_s <= 0:
            raise ValueError(f"invalid request_timeout_s {request_timeout_s}: must be positive")
        self.api_client = api_client
        self.request_timeout_s = request_timeout_s
        self.core = CoreV1Api(api_client)
        self.apps = AppsV1Api(api_client)
        self.networking = NetworkingV1Api(api_client)
        self.version = VersionApi(api_client)

    @classmethod
    async def connect(
        cls,
        *,
        kubeconfig: Path | None = None,
        context: str | None = None,
        request_timeout_s: float = 10.0,
    ) -> Kube:
        """Load the in-cluster service account or a kubeconfig file and return a client.

        The service account is used when ``KUBERNETES_SERVICE_HOST`` is set and no kubeconfig
        is given. Otherwise the kubeconfig is ``kubeconfig``, else ``$KUBECONFIG``, else
        ``~/.kube/config``. Raises ConfigError when the configuration cannot be loaded.
        No request is sent: call ``ping`` to check that the server responds.
        """
        configuration = Configuration()
        if kubeconfig is None and os.environ.get(SERVICE_HOST_ENV):
            try:
                kube_config.load_incluster_config(  # type: ignore[no-untyped-call]
                    client_configuration=configuration
                )
            except kube_config.ConfigException as error:
                raise ConfigError(f"in-cluster Kubernetes configuration: {error}") from error
        else:
            path = _kubeconfig_path(kubeconfig)
            try:
                await kube_config.load_kube_config(
                    config_file=path,
                    context=context,
                    client_configuration=configuration,
                    # The loader would otherwise write refreshed tokens back to the file.
                    persist_config=False,
                )
            except (kube_config.ConfigException, OSError, ValueError) as error:
                raise ConfigError(f"kubeconfig {path}: {error}") from error
        return cls(ApiClient(configuration), request_timeout_s=request_timeout_s)

    async def call(
        self,
        request: Callable[..., Awaitable[T]],
        *args: Any,
        dry_run: bool = False,
        **kwargs: Any,
    ) -> T:
        """Send one API request with the timeout set, and raise KubeError when it fails.

        ``request`` is a bound method of ``core``, ``apps``, ``networking`` or ``version``.
        With ``dry_run`` the server validates a write and persists nothing.
        """
        if dry_run:
            kwargs["dry_run"] = DRY_RUN_ALL
            body = kwargs.get("body")
            if isinstance(body, V1DeleteOptions):
                # The API server ignores the query parameters of a DELETE that has a body.
                body = copy.copy(body)
                body.dry_run = [DRY_RUN_ALL]
                kwargs["body"] = body
        operation = getattr(request, "__name__", "request")
        try:
            return await request(*args, _request_timeout=self.request_timeout_s, **kwargs)
        except ApiException as error:
            raise _api_error(operation, error) from error
        except TimeoutError as error:
            # Checked before ClientError because aiohttp's ServerTimeoutError is both.
            message = f"{operation}: timed out after {self.request_timeout_s:g} s"
            raise KubeError(message, status=0, reason="Timeout") from error
        except aiohttp.ClientError as error:
            message = f"{operation}: no response from the API server: {error}"
            raise KubeError(message, status=0, reason=type(error).__name__) from error

    async def ping(self) -> None:
        """Send GET /version, raising KubeError when the API server does not respond."""
        await self.call(self.version.get_code)

    async def close(self) -> None:
        await self.api_client.close()

    def serialize(self, model: object) -> Any:
        """Return a client model as the JSON the API server sends, with camelCase keys."""
        return self.api_client.sanitize_for_serialization(model)


def _kubeconfig_path(explicit: Path | None) -> str:
    if explicit is not None:
        return str(explicit)
    # KUBECONFIG may list several files; the loader merges them as kubectl does.
    from_env = os.environ.get("KUBECONFIG")
    if from_env:
        return from_env
    return str(DEFAULT_KUBECONFIG.expanduser())


def _api_error(operation: str, error: ApiException) -> KubeError:
    """Build a KubeError from the Status object in the body, or from the HTTP status line."""
    status = int(error.status or 0)
    reason = str(error.reason or "")
    message = ""
    raw: object = error.body
    body = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    if isinstance(body, str) and body:
        try:
            parsed = json.loads(body)
        except ValueError:
            message = body[:500]
        else:
            if isinstance(parsed, dict) and parsed.get("kind") == "Status":
                reason = str(parsed.get("reason") or reason)
                message = str(parsed.get("message") or "")
    text = f"{operation}: {status} {reason}"
    if message:
        text = f"{text}: {message}"
    return KubeError(text, status=status, reason=reason)
