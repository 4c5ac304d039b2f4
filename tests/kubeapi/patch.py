"""The three PATCH formats of kube-apiserver: JSON merge, JSON patch and strategic merge.

Strategic merge reads `x-kubernetes-patch-strategy` and `x-kubernetes-patch-merge-key`
from the same OpenAPI definitions that validation uses, so every built-in field gets the
list semantics that its Go struct tags give it on a real server.
"""

from __future__ import annotations

import copy
from typing import Any

from tests.kubeapi.validate import SchemaValidator

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
# The order in which kube-apiserver lists the accepted patch types in its 415 message.
SUPPORTED_PATCH_TYPES = [JSON_PATCH, MERGE_PATCH, APPLY_PATCH, STRATEGIC_MERGE_PATCH]


class PatchFormatError(ValueError):
    """A malformed patch document, which kube-apiserver rejects with 400 BadRequest."""


class PatchApplyError(ValueError):
    """A well-formed JSON patch that does not apply to the object (422 Invalid)."""


class MergeKeyError(ValueError):
    """A strategic merge list entry without its merge key (500, as upstream returns)."""


def merge_patch(target: Any, patch: Any) -> Any:
    """Apply an RFC 7386 JSON merge patch and return the new document."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _pointer_tokens(pointer: str) -> list[str]:
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise PatchFormatError(f"JSON pointer must start with '/': {pointer!r}")
    return [part.replace("~1", "/").replace("~0", "~") for part in pointer[1:].split("/")]


def _list_index(container: list[Any], token: str, pointer: str, allow_end: bool) -> int:
    if token == "-" and allow_end:
        return len(container)
    if not token.isdigit():
        raise PatchApplyError(f"invalid array index {token!r} in path {pointer!r}")
    index = int(token)
    limit = len(container) if allow_end else len(container) - 1
    if index > limit:
        raise PatchApplyError(f"index {index} out of bounds in path {pointer!r}")
    return index


def _parent(doc: Any, pointer: str, operation: str) -> tuple[Any, str]:
    tokens = _pointer_tokens(pointer)
    if not tokens:
        raise PatchApplyError(f"{operation} operation does not apply to the document root")
    node = doc
    for token in tokens[:-1]:
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            raise PatchApplyError(
                f'{operation} operation does not apply: doc is missing path: "{pointer}": '
                "missing value"
            )
    return node, tokens[-1]


def _get(doc: Any, pointer: str, operation: str) -> Any:
    node = doc
    for token in _pointer_tokens(pointer):
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            raise PatchApplyError(
                f"{operation} operation does not apply: doc is missing key: {pointer}: "
                "missing value"
            )
    return node


def _add(doc: Any, pointer: str, value: Any) -> None:
    parent, token = _parent(doc, pointer, "add")
    if isinstance(parent, dict):
        parent[token] = value
    elif isinstance(parent, list):
        parent.insert(_list_index(parent, token, pointer, allow_end=True), value)
    else:
        raise PatchApplyError(f'add operation does not apply: doc is missing path: "{pointer}"')


def _remove(doc: Any, pointer: str, operation: str = "remove") -> Any:
    _get(doc, pointer, operation)
    parent, token = _parent(doc, pointer, operation)
    if isinstance(parent, dict):
        return parent.pop(token)
    return parent.pop(_list_index(parent, token, pointer, allow_end=False))


def json_patch(document: Any, operations: Any) -> Any:
    """Apply an RFC 6902 JSON patch and return the new document."""
    if not isinstance(operations, list):
        raise PatchFormatError(
            "json: cannot unmarshal object into Go value of type jsonpatch.Patch"
        )
    doc = copy.deepcopy(document)
    for operation in operations:
        if not isinstance(operation, dict) or not isinstance(operation.get("path"), str):
            raise PatchFormatError(f"invalid JSON patch operation: {operation!r}")
        op, path = operation.get("op"), operation["path"]
        if op in ("add", "replace", "test") and "value" not in operation:
            raise PatchFormatError(f"{op} operation at {path!r} has no value")
        value = copy.deepcopy(operation.get("value"))
        if op == "add":
            _add(doc, path, value)
        elif op == "remove":
            _remove(doc, path)
        elif op == "replace":
            if path == "":
                doc = value
                continue
            _remove(doc, path, "replace")
            _add(doc, path, value)
        elif op in ("move", "copy"):
            source = operation.get("from")
            if not isinstance(source, str):
                raise PatchFormatError(f"{op} operation at {path!r} has no 'from'")
            moved = (
                _remove(doc, source, op) if op == "move" else copy.deepcopy(_get(doc, source, op))
            )
            _add(doc, path, moved)
        elif op == "test":
            if _get(doc, path, "test") != value:
                raise PatchApplyError(f"testing value {path} failed: test failed")
        else:
            raise PatchFormatError(f"Unexpected kind: {op}")
    return doc


def _strip_directives(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: _strip_directives(item)
            for key, item in value.items()
            if not key.startswith("$") and item is not None
        }
    if isinstance(value, list):
        return [
            _strip_directives(item)
            for item in value
            if not (isinstance(item, dict) and "$patch" in item)
        ]
    return value


class StrategicMerge:
    """Applies strategic merge patches using the OpenAPI patch extensions of one version."""

    def __init__(self, schema: SchemaValidator) -> None:
        self.schema = schema

    def apply(self, original: dict[str, Any], patch: Any, root: dict[str, Any]) -> Any:
        if not isinstance(patch, dict):
            raise PatchFormatError("invalid JSON document: a strategic merge patch is an object")
        return self._merge_map(original, patch, root)

    def _merge_map(
        self, original: dict[str, Any], patch: dict[str, Any], node: dict[str, Any] | None
    ) -> dict[str, Any]:
        if patch.get("$patch") == "replace":
            replaced: dict[str, Any] = _strip_directives(patch)
            return replaced
        if "$patch" in patch and patch["$patch"] not in ("merge", "delete"):
            raise PatchFormatError(f"Unknown patch type: {patch['$patch']}")
        result = copy.deepcopy(original)
        for key, value in patch.items():
            if key.startswith("$deleteFromPrimitiveList/"):
                field = key.split("/", 1)[1]
                if not isinstance(value, list):
                    raise PatchFormatError("invalid patch format of primitive list")
                result[field] = [item for item in result.get(field) or [] if item not in value]
        for key, value in patch.items():
            if key.startswith("$"):
                continue
            child = self.schema.property_schema(node, key)
            current = result.get(key)
            if value is None:
                result.pop(key, None)
            elif isinstance(value, dict):
                if value.get("$patch") == "delete":
                    result.pop(key, None)
                else:
                    base = current if isinstance(current, dict) else {}
                    result[key] = self._merge_map(base, value, child)
            elif isinstance(value, list):
                base_list = current if isinstance(current, list) else []
                result[key] = self._merge_list(base_list, value, child)
            else:
                result[key] = value
        for key, order in patch.items():
            if key.startswith("$setElementOrder/"):
                field = key.split("/", 1)[1]
                child = self.schema.property_schema(node, field)
                if isinstance(result.get(field), list) and isinstance(order, list):
                    result[field] = self._reorder(result[field], order, child)
        if "$retainKeys" in patch:
            retain = patch["$retainKeys"]
            if not isinstance(retain, list):
                raise PatchFormatError("invalid patch format of retainKeys")
            result = {key: value for key, value in result.items() if key in retain}
        return result

    def _merge_list(
        self, original: list[Any], patch: list[Any], node: dict[str, Any] | None
    ) -> list[Any]:
        strategy = (node or {}).get("x-kubernetes-patch-strategy", "").split(",")
        merge_key = (node or {}).get("x-kubernetes-patch-merge-key")
        replace_all = any(
            isinstance(item, dict) and item.get("$patch") == "replace" for item in patch
        )
        if "merge" not in strategy or replace_all:
            replacement: list[Any] = _strip_directives(patch)
            return replacement
        if merge_key is None:
            merged = list(original)
            merged += [item for item in patch if item not in merged]
            return merged
        items_node = self.schema.items_schema(node)
        result = copy.deepcopy(original)
        for item in patch:
            if not isinstance(item, dict) or merge_key not in item:
                raise MergeKeyError(
                    f"map: {item} does not contain declared merge key: {merge_key}"
                )
            matches = [
                index
                for index, current in enumerate(result)
                if isinstance(current, dict) and current.get(merge_key) == item[merge_key]
            ]
            if item.get("$patch") == "delete":
                result = [entry for index, entry in enumerate(result) if index not in matches]
            elif matches:
                result[matches[0]] = self._merge_map(result[matches[0]], item, items_node)
            else:
                result.append(self._merge_map({}, item, items_node))
        return result

    @staticmethod
    def _reorder(items: list[Any], order: list[Any], node: dict[str, Any] | None) -> list[Any]:
        # NOTE: upstream interleaves entries missing from the order list by their old index.
        # Here they follow the ordered entries, which only matters for partial order lists.
        merge_key = (node or {}).get("x-kubernetes-patch-merge-key")

        def identity(item: Any) -> Any:
            return item.get(merge_key) if merge_key and isinstance(item, dict) else item

        expected = [identity(entry) for entry in order]
        ranked = [item for key in expected for item in items if identity(item) == key]
        return ranked + [item for item in items if identity(item) not in expected]
