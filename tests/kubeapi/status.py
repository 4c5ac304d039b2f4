"""Kubernetes `Status` error objects with the messages that kube-apiserver sends.

The message formats follow k8s.io/apimachinery/pkg/api/errors (errors.go) and the
handlers in k8s.io/apiserver/pkg/endpoints/handlers.
"""

from __future__ import annotations

from typing import Any

from tests.kubeapi.resources import ResourceType

REASONS_BY_CODE: dict[int, str] = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    410: "Expired",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


class ApiError(Exception):
    """An error that the server returns to the client as a `Status` object."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        details: dict[str, Any] | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.retry_after = retry_after

    def status(self) -> dict[str, Any]:
        """Build the `Status` body."""
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
        }
        if self.details:
            body["details"] = self.details
        body["code"] = self.code
        return body


def resource_details(resource: ResourceType, name: str) -> dict[str, Any]:
    """Build `details` the way the server fills it: the group is omitted for the core group."""
    details: dict[str, Any] = {"name": name}
    if resource.group:
        details["group"] = resource.group
    details["kind"] = resource.plural
    return details


def not_found(resource: ResourceType, name: str) -> ApiError:
    return ApiError(
        404,
        "NotFound",
        f'{resource.qualified_resource} "{name}" not found',
        resource_details(resource, name),
    )


def already_exists(resource: ResourceType, name: str) -> ApiError:
    return ApiError(
        409,
        "AlreadyExists",
        f'{resource.qualified_resource} "{name}" already exists',
        resource_details(resource, name),
    )


def conflict(resource: ResourceType, name: str, cause: str) -> ApiError:
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {resource.qualified_resource} "{name}": {cause}',
        resource_details(resource, name),
    )


def modified_conflict(resource: ResourceType, name: str) -> ApiError:
    return conflict(
        resource,
        name,
        "the object has been modified; please apply your changes to the latest version "
        "and try again",
    )


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def internal_error(cause: str) -> ApiError:
    return ApiError(
        500,
        "InternalError",
        f"Internal error occurred: {cause}",
        {"causes": [{"message": cause}]},
    )


def forbidden(
    resource: ResourceType | None, name: str, namespace: str, verb: str, user: str
) -> ApiError:
    """Build the RBAC denial that kube-apiserver returns for `user`."""
    plural = resource.plural if resource else ""
    group = resource.group if resource else ""
    subject = resource.qualified_resource if resource else "the resource"
    prefix = f'{subject} "{name}"' if name else subject
    scope = f' in the namespace "{namespace}"' if namespace else " at the cluster scope"
    message = (
        f'{prefix} is forbidden: User "{user}" cannot {verb} resource "{plural}" '
        f'in API group "{group}"{scope}'
    )
    details = resource_details(resource, name) if resource else None
    if details is not None and not name:
        del details["name"]
    return ApiError(403, "Forbidden", message, details)


def unauthorized() -> ApiError:
    return ApiError(401, "Unauthorized", "Unauthorized")


def unsupported_media_type(accepted: list[str]) -> ApiError:
    return ApiError(
        415,
        "UnsupportedMediaType",
        "the body of the request was in an unknown format - accepted media types include: "
        + ", ".join(accepted),
    )


def method_not_allowed() -> ApiError:
    return ApiError(
        405,
        "MethodNotAllowed",
        "the server does not allow this method on the requested resource",
    )


def path_not_found() -> ApiError:
    return ApiError(404, "NotFound", "the server could not find the requested resource")


class FieldError:
    """One entry of a `field.ErrorList`, rendered as kube-apiserver renders it."""

    def __init__(self, cause_type: str, field: str, detail: str) -> None:
        self.cause_type = cause_type
        self.field = field
        self.detail = detail

    def body(self) -> str:
        return self.detail

    def text(self) -> str:
        return f"{self.field}: {self.detail}" if self.field else self.detail


def invalid(group: str, kind: str, name: str, errors: list[FieldError]) -> ApiError:
    """Build the 422 `Invalid` error of `errors.NewInvalid`."""
    qualified_kind = f"{kind}.{group}" if group else kind
    aggregate = (
        errors[0].text()
        if len(errors) == 1
        else ("[" + ", ".join(error.text() for error in errors) + "]")
    )
    details: dict[str, Any] = {"name": name}
    if group:
        details["group"] = group
    details["kind"] = kind
    details["causes"] = [
        {"reason": error.cause_type, "message": error.body(), "field": error.field}
        for error in errors
    ]
    return ApiError(422, "Invalid", f'{qualified_kind} "{name}" is invalid: {aggregate}', details)


def status_for_code(code: int, message: str, retry_after: int | None = None) -> ApiError:
    """Build a `Status` for an injected failure with the reason that belongs to `code`."""
    details: dict[str, Any] | None = None
    if retry_after is not None:
        details = {"retryAfterSeconds": retry_after}
    reason = REASONS_BY_CODE.get(code, "Unknown")
    return ApiError(code, reason, message, details, retry_after)
