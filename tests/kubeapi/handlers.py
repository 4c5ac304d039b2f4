"""REST verb handlers: the request decoding and responses of k8s.io/apiserver handlers."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import yaml
from aiohttp import web

from tests.kubeapi.patch import (
    APPLY_PATCH,
    JSON_PATCH,
    MERGE_PATCH,
    STRATEGIC_MERGE_PATCH,
    SUPPORTED_PATCH_TYPES,
    MergeKeyError,
    PatchApplyError,
    PatchFormatError,
    StrategicMerge,
    json_patch,
    merge_patch,
)
from tests.kubeapi.resources import ResourceType, find_resource
from tests.kubeapi.selectors import field_matcher, label_matcher
from tests.kubeapi.status import (
    ApiError,
    FieldError,
    bad_request,
    internal_error,
    invalid,
    method_not_allowed,
    path_not_found,
    unsupported_media_type,
)
from tests.kubeapi.store import ObjectStore

BODY_MEDIA_TYPES = ["application/json", "application/yaml", "application/vnd.kubernetes.protobuf"]
PROPAGATION_POLICIES = ["Foreground", "Background", "Orphan"]


@dataclass(frozen=True)
class Target:
    """What a request path names: a resource, and optionally a namespace and a name."""

    resource: ResourceType
    namespace: str | None
    name: str | None

    @property
    def verb(self) -> str:
        return "get" if self.name else "list"


def parse_path(path: str) -> Target:
    """Resolve `/api/v1/...` or `/apis/{group}/{version}/...`; raise 404 if nothing is served."""
    segments = [segment for segment in path.strip("/").split("/") if segment]
    if segments[:2] == ["api", "v1"]:
        group, version, rest = "", "v1", segments[2:]
    elif len(segments) >= 3 and segments[0] == "apis":
        group, version, rest = segments[1], segments[2], segments[3:]
    else:
        raise path_not_found()
    namespace: str | None = None
    if len(rest) in (3, 4) and rest[0] == "namespaces":
        namespace, rest = rest[1], rest[2:]
    if len(rest) not in (1, 2):
        raise path_not_found()
    resource = find_resource(group, version, rest[0])
    name = rest[1] if len(rest) == 2 else None
    if resource is None or (namespace is not None and not resource.namespaced):
        raise path_not_found()
    if namespace is None and resource.namespaced and name is not None:
        raise path_not_found()
    return Target(resource, namespace, name)


def json_response(body: dict[str, Any], status: int = 200) -> web.Response:
    return web.json_response(body, status=status)


def error_response(error: ApiError) -> web.Response:
    response = json_response(error.status(), error.code)
    if error.retry_after is not None:
        response.headers["Retry-After"] = str(error.retry_after)
    return response


def check_dry_run(values: list[str], options_kind: str) -> bool:
    """Return whether the request is a dry run; raise 422 for values other than `All`."""
    if any(value != "All" for value in values):
        rendered = "[]string{" + ", ".join(json.dumps(value) for value in values) + "}"
        raise invalid(
            "meta.k8s.io",
            options_kind,
            "",
            [
                FieldError(
                    "FieldValueNotSupported",
                    "dryRun",
                    f'Unsupported value: {rendered}: supported values: "All"',
                )
            ],
        )
    return bool(values)


def decode_body(raw: bytes, content_type: str) -> Any:
    """Decode a JSON or YAML object body; raise 415 or 400 as kube-apiserver does."""
    if content_type not in ("application/json", "application/yaml", ""):
        raise unsupported_media_type(BODY_MEDIA_TYPES)
    try:
        if content_type == "application/yaml":
            return yaml.safe_load(raw)
        return json.loads(raw)
    except (ValueError, yaml.YAMLError) as error:
        raise bad_request(f"couldn't get version/kind; json parse error: {error}") from error


class RestHandlers:
    """Dispatches one parsed request to the store and builds the HTTP response."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        self.strategic = StrategicMerge(store.validator)

    async def handle(self, request: web.Request, target: Target, raw: bytes) -> web.Response:
        method = request.method
        if target.name is None:
            if method == "GET":
                return self.list(request, target)
            # A namespaced resource listed across all namespaces accepts only GET.
            scoped = target.namespace is not None or not target.resource.namespaced
            if method == "POST" and scoped:
                return self.create(request, target, raw)
            if method == "DELETE" and scoped:
                return self.delete_collection(request, target, raw)
            raise method_not_allowed()
        if method == "GET":
            obj = self.store.get(target.resource, target.namespace, target.name)
            return json_response(obj)
        if method == "PUT":
            return self.replace(request, target, raw)
        if method == "PATCH":
            return self.patch(request, target, raw)
        if method == "DELETE":
            return self.delete(request, target, raw)
        raise method_not_allowed()

    def list(self, request: web.Request, target: Target) -> web.Response:
        query = request.query
        if query.get("watch") in ("true", "1"):
            # NOTE: watch streams are not implemented; a real server would stream events.
            raise bad_request("watch requests are not supported by the test API server")
        limit_text = query.get("limit", "0") or "0"
        if not limit_text.isdigit():
            raise bad_request(f'invalid value for limit: "{limit_text}"')
        matchers = [
            label_matcher(query.get("labelSelector")),
            field_matcher(target.resource, query.get("fieldSelector")),
        ]
        body = self.store.list(
            target.resource, target.namespace, matchers, int(limit_text), query.get("continue", "")
        )
        return json_response(body)

    def create(self, request: web.Request, target: Target, raw: bytes) -> web.Response:
        dry_run = check_dry_run(request.query.getall("dryRun", []), "CreateOptions")
        body = decode_body(raw, request.content_type)
        obj = self.store.create(target.resource, target.namespace or "", body, dry_run)
        return json_response(obj, 201)

    def replace(self, request: web.Request, target: Target, raw: bytes) -> web.Response:
        dry_run = check_dry_run(request.query.getall("dryRun", []), "UpdateOptions")
        body = decode_body(raw, request.content_type)
        assert target.name is not None
        obj, created = self.store.update(
            target.resource, target.namespace or "", target.name, body, dry_run
        )
        return json_response(obj, 201 if created else 200)

    def patch(self, request: web.Request, target: Target, raw: bytes) -> web.Response:
        content_type = request.content_type
        if content_type == APPLY_PATCH:
            # NOTE: server-side apply needs managedFields tracking, which this server lacks.
            raise ApiError(
                415,
                "UnsupportedMediaType",
                "server-side apply is not supported by the test API server",
            )
        if content_type not in SUPPORTED_PATCH_TYPES:
            raise unsupported_media_type(SUPPORTED_PATCH_TYPES)
        dry_run = check_dry_run(request.query.getall("dryRun", []), "PatchOptions")
        try:
            document = json.loads(raw)
        except ValueError as error:
            raise bad_request(f"error decoding patch: {error}") from error
        assert target.name is not None
        current = self.store.get(target.resource, target.namespace, target.name)
        try:
            if content_type == MERGE_PATCH:
                patched = merge_patch(current, document)
            elif content_type == JSON_PATCH:
                patched = json_patch(current, document)
            else:
                assert content_type == STRATEGIC_MERGE_PATCH
                root = self.store.validator.root_schema(target.resource)
                patched = self.strategic.apply(current, document, root)
        except PatchFormatError as error:
            raise bad_request(str(error)) from error
        except PatchApplyError as error:
            raise ApiError(
                422,
                "Invalid",
                "the server rejected our request due to an error in our request",
                {"causes": [{"reason": "UnexpectedServerResponse", "message": str(error)}]},
            ) from error
        except MergeKeyError as error:
            raise internal_error(str(error)) from error
        obj, _ = self.store.update(
            target.resource, target.namespace or "", target.name, patched, dry_run
        )
        return json_response(obj)

    def _delete_options(self, request: web.Request, raw: bytes) -> tuple[dict[str, Any], bool]:
        # A non-empty body replaces the query parameters entirely, as in handlers/delete.go.
        if raw.strip():
            options = decode_body(raw, request.content_type or "application/json")
            if not isinstance(options, dict):
                raise bad_request("the body of a delete request must be a DeleteOptions object")
        else:
            options = {}
            query = request.query
            if "gracePeriodSeconds" in query:
                options["gracePeriodSeconds"] = query["gracePeriodSeconds"]
            if "propagationPolicy" in query:
                options["propagationPolicy"] = query["propagationPolicy"]
            options["dryRun"] = query.getall("dryRun", [])
        grace = options.get("gracePeriodSeconds")
        if grace is not None:
            try:
                options["gracePeriodSeconds"] = int(grace)
            except (TypeError, ValueError) as error:
                raise bad_request(f"invalid gracePeriodSeconds: {grace!r}") from error
        policy = options.get("propagationPolicy")
        if policy is not None and policy not in PROPAGATION_POLICIES:
            supported = ", ".join(f'"{item}"' for item in PROPAGATION_POLICIES)
            raise invalid(
                "meta.k8s.io",
                "DeleteOptions",
                "",
                [
                    FieldError(
                        "FieldValueNotSupported",
                        "propagationPolicy",
                        f'Unsupported value: "{policy}": supported values: {supported}',
                    )
                ],
            )
        dry_run = check_dry_run(list(options.get("dryRun") or []), "DeleteOptions")
        return options, dry_run

    def delete(self, request: web.Request, target: Target, raw: bytes) -> web.Response:
        options, dry_run = self._delete_options(request, raw)
        assert target.name is not None
        obj, removed = self.store.delete(
            target.resource, target.namespace or "", target.name, options, dry_run
        )
        if target.resource.returns_deleted_object:
            return json_response(obj, 200 if removed else 202)
        details: dict[str, Any] = {"name": target.name}
        if target.resource.group:
            details["group"] = target.resource.group
        details["kind"] = target.resource.plural
        details["uid"] = obj["metadata"]["uid"]
        status = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": details,
        }
        return json_response(status, 200 if removed else 202)

    def delete_collection(self, request: web.Request, target: Target, raw: bytes) -> web.Response:
        options, dry_run = self._delete_options(request, raw)
        matchers = [
            label_matcher(request.query.get("labelSelector")),
            field_matcher(target.resource, request.query.get("fieldSelector")),
        ]
        listed = self.store.list(target.resource, target.namespace, matchers)
        deleted = []
        for item in listed["items"]:
            meta = item["metadata"]
            obj, _ = self.store.delete(
                target.resource, meta.get("namespace", ""), meta["name"], options, dry_run
            )
            deleted.append(obj)
        listed["items"] = deleted
        return json_response(listed)
