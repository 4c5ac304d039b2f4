"""Object validation: the OpenAPI schema through kubernetes-validate, plus metadata rules.

kube-apiserver validates names, labels and annotations in Go code, outside the OpenAPI
schema, so those rules are copied here from k8s.io/apimachinery/pkg/util/validation.
"""

from __future__ import annotations

import json
import re
from functools import cache
from importlib import resources as importlib_resources
from typing import Any

import jsonschema
import kubernetes_validate
from kubernetes_validate.utils import all_versions, major_minor
from referencing import Registry, Resource

from tests.kubeapi.resources import EVENTS, NAMESPACES, ResourceType
from tests.kubeapi.status import ApiError, FieldError, internal_error, invalid

DNS1123_LABEL = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_SUBDOMAIN = DNS1123_LABEL + r"(\." + DNS1123_LABEL + ")*"
QUALIFIED_NAME = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
LABEL_VALUE = "(" + QUALIFIED_NAME + ")?"

SUBDOMAIN_MESSAGE = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' "
    "or '.', and must start and end with an alphanumeric character (e.g. 'example.com', "
    f"regex used for validation is '{DNS1123_SUBDOMAIN}')"
)
LABEL_MESSAGE = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', "
    f"regex used for validation is '{DNS1123_LABEL}')"
)
QUALIFIED_NAME_MESSAGE = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and "
    "end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex "
    f"used for validation is '{QUALIFIED_NAME}')"
)
LABEL_VALUE_MESSAGE = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    f"'my_value',  or '12345', regex used for validation is '{LABEL_VALUE}')"
)


def schema_version(requested: str) -> str:
    """Return the newest schema version shipped by kubernetes-validate that is not newer."""
    requested_minor = tuple(int(part) for part in major_minor(requested.lstrip("v")).split("."))
    shipped = [
        version
        for version in all_versions()
        if tuple(int(part) for part in major_minor(version).split(".")) <= requested_minor
    ]
    if not shipped:
        raise ValueError(
            f"kubernetes-validate ships no schema for Kubernetes {requested}; "
            f"shipped versions: {', '.join(all_versions())}"
        )
    return str(shipped[-1])


@cache
def _load_schema_file(version: str, filename: str) -> dict[str, Any]:
    folder = importlib_resources.files("kubernetes_validate").joinpath(
        f"kubernetes-json-schema/v{version}-local-strict"
    )
    loaded: dict[str, Any] = json.loads(folder.joinpath(filename).read_text())
    return loaded


def _go_value(value: Any) -> str:
    """Render a value roughly as `field.Error` prints it (%q for strings)."""
    text = json.dumps(value)
    return text if len(text) <= 100 else text[:97] + "..."


def field_path(parts: list[str | int]) -> str:
    """Join a JSON path the way Kubernetes prints field paths: `spec.containers[0].name`."""
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


class SchemaValidator:
    """Validates objects against one Kubernetes version's strict OpenAPI schema."""

    def __init__(self, kubernetes_version: str) -> None:
        self.version = schema_version(kubernetes_version)
        self.definitions: dict[str, Any] = _load_schema_file(self.version, "_definitions.json")[
            "$defs"
        ]
        self._validators: dict[tuple[str, str], jsonschema.protocols.Validator] = {}

    def root_schema(self, resource: ResourceType) -> dict[str, Any]:
        api_version = resource.api_version.split("/")
        group = api_version[0].split(".")[0] + "-" if len(api_version) == 2 else ""
        filename = f"{resource.kind.lower()}-{group}{api_version[-1]}.json"
        return _load_schema_file(self.version, filename)

    def resolve(self, node: dict[str, Any] | None) -> dict[str, Any] | None:
        """Follow a `$ref` into the definitions, keeping the referring node's extensions."""
        if node is None or "$ref" not in node:
            return node
        target = self.definitions[node["$ref"].rsplit("/", 1)[-1]]
        return {**target, **{k: v for k, v in node.items() if k.startswith("x-kubernetes")}}

    def property_schema(self, node: dict[str, Any] | None, name: str) -> dict[str, Any] | None:
        node = self.resolve(node)
        if node is None:
            return None
        if name in node.get("properties", {}):
            return self.resolve(node["properties"][name])
        extra = node.get("additionalProperties")
        return self.resolve(extra) if isinstance(extra, dict) else None

    def items_schema(self, node: dict[str, Any] | None) -> dict[str, Any] | None:
        node = self.resolve(node)
        return self.resolve(node.get("items")) if node else None

    def validate(self, resource: ResourceType, obj: dict[str, Any]) -> None:
        """Raise a 422 `Invalid` ApiError if `obj` breaks the schema or the metadata rules."""
        metadata = obj.get("metadata") or {}
        name = str(metadata.get("name") or metadata.get("generateName") or "")
        errors = metadata_errors(resource, metadata)
        try:
            self._validator(obj["apiVersion"], obj["kind"]).validate(obj)
        except jsonschema.ValidationError as error:
            errors.append(_schema_field_error(error))
        except kubernetes_validate.SchemaNotFoundError as error:
            raise internal_error(error.message) from error
        if errors:
            raise invalid(resource.group, resource.kind, name, errors)

    def _validator(self, api_version: str, kind: str) -> jsonschema.protocols.Validator:
        """Return the validator that ``kubernetes_validate.validate(obj, version, strict=True)``
        builds, built once per kind.

        kubernetes_validate reads the schema files and builds a new validator on every call,
        which took about 7 ms for a Pod here. A validator built once checks a Pod in 0.2 ms."""
        key = (api_version, kind)
        validator = self._validators.get(key)
        if validator is None:
            # "rbac.authorization.k8s.io/v1" is in files named "<kind>-rbac-v1.json".
            group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
            try:
                schema = _load_schema_file(self.version, f"{kind.lower()}-{group_version}.json")
            except FileNotFoundError as error:
                raise kubernetes_validate.SchemaNotFoundError(
                    version=self.version, kind=kind, api_version=api_version
                ) from error
            definitions = _load_schema_file(self.version, "_definitions.json")
            registry: Registry[Any] = Resource.from_contents(schema) @ Registry()
            registry = Resource.from_contents(definitions) @ registry
            validator = jsonschema.validators.Draft202012Validator(schema, registry=registry)
            self._validators[key] = validator
        return validator


def _schema_field_error(error: jsonschema.ValidationError) -> FieldError:
    path = field_path(list(error.absolute_path))
    if error.validator == "required":
        match = re.match(r"'([^']+)' is a required property", error.message)
        missing = match.group(1) if match else ""
        full = f"{path}.{missing}" if path and missing else path or missing
        return FieldError("FieldValueRequired", full, "Required value")
    if error.validator == "enum":
        supported = ", ".join(json.dumps(v) for v in error.validator_value)
        detail = f"Unsupported value: {_go_value(error.instance)}: supported values: {supported}"
        return FieldError("FieldValueNotSupported", path, detail)
    detail = f"Invalid value: {_go_value(error.instance)}: {error.message}"
    return FieldError("FieldValueInvalid", path, detail)


def _name_errors(value: str, pattern: str, message: str, limit: int) -> list[str]:
    problems = []
    if len(value) > limit:
        problems.append(f"must be no more than {limit} characters")
    if not re.fullmatch(pattern, value):
        problems.append(message)
    return problems


def qualified_name_problems(key: str) -> list[str]:
    """Return the reasons why `key` is not a valid label or annotation key."""
    prefix, _, name = key.rpartition("/")
    problems = []
    if "/" in key and not prefix:
        problems.append("prefix part must be non-empty")
    elif prefix:
        prefix_problems = _name_errors(prefix, DNS1123_SUBDOMAIN, SUBDOMAIN_MESSAGE, 253)
        problems += ["prefix part " + text for text in prefix_problems]
    if not name:
        problems.append("name part must be non-empty")
    else:
        if len(name) > 63:
            problems.append("name part must be no more than 63 characters")
        if not re.fullmatch(QUALIFIED_NAME, name):
            problems.append(QUALIFIED_NAME_MESSAGE)
    return problems


def _invalid_values(field: str, value: str, problems: list[str]) -> list[FieldError]:
    return [
        FieldError("FieldValueInvalid", field, f"Invalid value: {_go_value(value)}: {problem}")
        for problem in problems
    ]


def _object_name_problems(resource: ResourceType, name: str) -> list[str]:
    if resource is NAMESPACES:
        return _name_errors(name, DNS1123_LABEL, LABEL_MESSAGE, 63)
    if resource is EVENTS:
        # Event names only have to be valid path segments.
        if name in (".", "..") or "/" in name or "%" in name:
            return ["may not contain '/' or '%'"]
        return []
    return _name_errors(name, DNS1123_SUBDOMAIN, SUBDOMAIN_MESSAGE, 253)


def metadata_errors(resource: ResourceType, metadata: dict[str, Any]) -> list[FieldError]:
    """Check the ObjectMeta rules of `ValidateObjectMeta` that the schema cannot express."""
    errors: list[FieldError] = []
    name = metadata.get("name")
    if not name and not metadata.get("generateName"):
        errors.append(
            FieldError(
                "FieldValueRequired",
                "metadata.name",
                "Required value: name or generateName is required",
            )
        )
    elif isinstance(name, str):
        errors += _invalid_values("metadata.name", name, _object_name_problems(resource, name))
    for key, value in (metadata.get("labels") or {}).items():
        errors += _invalid_values("metadata.labels", key, qualified_name_problems(key))
        if isinstance(value, str):
            problems = _name_errors(value, LABEL_VALUE, LABEL_VALUE_MESSAGE, 63)
            errors += _invalid_values("metadata.labels", value, problems)
    for key in metadata.get("annotations") or {}:
        errors += _invalid_values("metadata.annotations", key, qualified_name_problems(key))
    return errors


__all__ = ["ApiError", "SchemaValidator", "field_path", "schema_version"]
