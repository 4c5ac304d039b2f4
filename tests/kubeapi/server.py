"""An aiohttp server on loopback that speaks the Kubernetes REST API for tests."""

from __future__ import annotations

import asyncio
import fnmatch
import json
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml
from aiohttp import web

from tests.kubeapi.handlers import RestHandlers, Target, error_response, json_response, parse_path
from tests.kubeapi.seed import SeedHelpers
from tests.kubeapi.status import (
    ApiError,
    forbidden,
    internal_error,
    modified_conflict,
    not_found,
    status_for_code,
    unauthorized,
)
from tests.kubeapi.store import Deletion, ObjectStore
from tests.kubeapi.validate import SchemaValidator

VERBS_BY_METHOD = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server received it; `body` is parsed JSON, raw text, or None."""

    method: str
    path: str
    query: dict[str, str]
    content_type: str
    body: Any


@dataclass
class RequestRule:
    """A failure or delay that applies to requests matching `method` and a glob `pattern`."""

    method: str
    pattern: str
    status: int | None = None
    times: int | None = 1
    retry_after: int | None = None
    message: str | None = None
    delay: float = 0.0
    hits: int = field(default=0)

    def matches(self, method: str, path: str) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        method_matches = self.method in ("*", method.upper())
        return method_matches and fnmatch.fnmatchcase(path, self.pattern)


class KubeApiServer(SeedHelpers):
    """Kubernetes API test server: real REST paths, Status errors and schema validation."""

    def __init__(
        self,
        *,
        kubernetes_version: str = "1.36",
        token: str | None = None,
        user: str = "system:serviceaccount:falco:falco-responder",
        graceful_pod_deletion: bool = False,
        latency: float = 0.0,
    ) -> None:
        self.validator = SchemaValidator(kubernetes_version)
        self.kubernetes_version = self.validator.version
        self.store = ObjectStore(self.validator, graceful_pod_deletion)
        self.handlers = RestHandlers(self.store)
        self.token = token
        self.user = user
        self.latency = latency
        self.requests: list[RecordedRequest] = []
        self.rules: list[RequestRule] = []
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    @property
    def url(self) -> str:
        if self._port is None:
            raise RuntimeError("KubeApiServer is not started; call await server.start() first")
        return f"http://127.0.0.1:{self._port}"

    @property
    def deletions(self) -> list[Deletion]:
        return self.store.deletions

    async def start(self) -> None:
        app = web.Application(client_max_size=3 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = self._runner.addresses[0][1]

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> KubeApiServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    def fail_next(
        self,
        method: str,
        path_pattern: str,
        status: int,
        times: int | None = 1,
        retry_after: int | None = None,
        message: str | None = None,
    ) -> RequestRule:
        """Fail the next `times` matching requests with a Status of code `status`.

        `method` is an HTTP method or `*`; `path_pattern` is an fnmatch glob over the path,
        in which `*` also matches `/`. `times=None` keeps failing until `clear_rules()`.
        """
        rule = RequestRule(method, path_pattern, status, times, retry_after, message)
        self.rules.append(rule)
        return rule

    def delay(
        self, method: str, path_pattern: str, seconds: float, times: int | None = None
    ) -> RequestRule:
        """Delay matching requests by `seconds` before the server handles them."""
        rule = RequestRule(method, path_pattern, None, times, delay=seconds)
        self.rules.append(rule)
        return rule

    def clear_rules(self) -> None:
        self.rules.clear()

    def requests_to(self, method: str, path_pattern: str) -> list[RecordedRequest]:
        """Return the recorded requests that match `method` (or `*`) and a glob pattern."""
        return [
            item
            for item in self.requests
            if method in ("*", item.method) and fnmatch.fnmatchcase(item.path, path_pattern)
        ]

    def write_kubeconfig(self, path: str | Path, namespace: str = "default") -> Path:
        """Write a kubeconfig with a plain-HTTP cluster and a token user for this server."""
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "kubeapi-test", "cluster": {"server": self.url}}],
            "users": [{"name": "kubeapi-test", "user": {"token": self.token or "unused-token"}}],
            "contexts": [
                {
                    "name": "kubeapi-test",
                    "context": {
                        "cluster": "kubeapi-test",
                        "user": "kubeapi-test",
                        "namespace": namespace,
                    },
                }
            ],
            "current-context": "kubeapi-test",
        }
        target = Path(path)
        target.write_text(yaml.safe_dump(config, sort_keys=False))
        return target

    def version_info(self) -> dict[str, str]:
        major, minor = self.kubernetes_version.split(".")[:2]
        return {
            "major": major,
            "minor": minor,
            "gitVersion": f"v{self.kubernetes_version}",
            "gitCommit": "0" * 40,
            "gitTreeState": "clean",
            "buildDate": "2026-01-01T00:00:00Z",
            "goVersion": "go1.24.0",
            "compiler": "gc",
            "platform": "linux/amd64",
        }

    def _record(self, request: web.Request, raw: bytes) -> None:
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw.decode(errors="replace")
        self.requests.append(
            RecordedRequest(
                request.method, request.path, dict(request.query), request.content_type, body
            )
        )

    def _injected_error(self, rule: RequestRule, request: web.Request) -> ApiError:
        assert rule.status is not None
        target: Target | None
        try:
            target = parse_path(request.path)
        except ApiError:
            target = None
        if rule.message is None and target is not None:
            name = target.name or ""
            verb = VERBS_BY_METHOD.get(request.method, target.verb)
            if rule.status == 403:
                error = forbidden(target.resource, name, target.namespace or "", verb, self.user)
                error.retry_after = rule.retry_after
                return error
            if rule.status == 404 and name:
                return not_found(target.resource, name)
            if rule.status == 409 and name:
                return modified_conflict(target.resource, name)
        if rule.status == 500 and rule.message is None:
            return internal_error("injected failure")
        default_messages = {
            429: "Too many requests, please try again later.",
            503: "the server is currently unable to handle the request",
        }
        message = rule.message or default_messages.get(
            rule.status, f"the server responded with the status code {rule.status}"
        )
        return status_for_code(rule.status, message, rule.retry_after)

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        self._record(request, raw)
        if self.latency:
            await asyncio.sleep(self.latency)
        for rule in [rule for rule in self.rules if rule.delay and rule.status is None]:
            if rule.matches(request.method, request.path):
                rule.hits += 1
                await asyncio.sleep(rule.delay)
        try:
            if self.token is not None:
                if request.headers.get("Authorization") != f"Bearer {self.token}":
                    raise unauthorized()
            for rule in self.rules:
                if rule.status is not None and rule.matches(request.method, request.path):
                    rule.hits += 1
                    raise self._injected_error(rule, request)
            if request.path.rstrip("/") == "/version" and request.method == "GET":
                return json_response(self.version_info())
            return await self.handlers.handle(request, parse_path(request.path), raw)
        except ApiError as error:
            return error_response(error)
