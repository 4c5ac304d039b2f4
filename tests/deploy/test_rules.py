"""The Falco rules files in rules/ are well-formed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.manifests import ROOT

RULE_FILES = sorted((ROOT / "rules").glob("*.yaml"))
# Falco accepts these in any case; INFO is a synonym of INFORMATIONAL.
PRIORITIES = {
    "emergency",
    "alert",
    "critical",
    "error",
    "warning",
    "notice",
    "informational",
    "info",
    "debug",
}
RULE_KEYS = ("rule", "desc", "condition", "output", "priority")


def _items(path: Path) -> list[dict[str, Any]]:
    return yaml.safe_load(path.read_text())


def _by_kind(kind: str) -> list[tuple[str, dict[str, Any]]]:
    return [(p.name, item) for p in RULE_FILES for item in _items(p) if kind in item]


def _item_id(item: tuple[str, dict[str, Any]]) -> str:
    file_name, entry = item
    name = entry.get("rule") or entry.get("macro") or entry.get("list")
    return f"{file_name}:{name}"


def test_rule_files_exist() -> None:
    assert RULE_FILES


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_file_is_list_of_maps(path: Path) -> None:
    items = _items(path)
    assert isinstance(items, list)
    for item in items:
        assert isinstance(item, dict)
        assert 1 == len({"rule", "macro", "list", "required_engine_version"} & set(item)), item


def _new_rules() -> list[tuple[str, dict[str, Any]]]:
    # An entry with `append` or `override` changes a rule defined elsewhere and may omit keys.
    return [i for i in _by_kind("rule") if not i[1].get("append") and "override" not in i[1]]


@pytest.mark.parametrize("item", _new_rules(), ids=_item_id)
def test_rule_has_keys(item: tuple[str, dict[str, Any]]) -> None:
    rule = item[1]
    for key in RULE_KEYS:
        assert isinstance(rule.get(key), str), f"missing or non-string {key}"
        assert rule[key].strip(), f"empty {key}"


@pytest.mark.parametrize("item", _new_rules(), ids=_item_id)
def test_rule_priority_valid(item: tuple[str, dict[str, Any]]) -> None:
    assert item[1]["priority"].lower() in PRIORITIES


@pytest.mark.parametrize("item", _by_kind("rule"), ids=_item_id)
def test_rule_tags_list(item: tuple[str, dict[str, Any]]) -> None:
    if "tags" in item[1]:
        assert isinstance(item[1]["tags"], list)
        assert all(isinstance(tag, str) for tag in item[1]["tags"])


@pytest.mark.parametrize("item", _by_kind("list"), ids=_item_id)
def test_list_well_formed(item: tuple[str, dict[str, Any]]) -> None:
    assert isinstance(item[1]["list"], str)
    assert isinstance(item[1]["items"], list)


def test_macros_well_formed() -> None:
    # A loop rather than parameters, because the shipped file defines no macro yet.
    for _, macro in _by_kind("macro"):
        assert isinstance(macro["macro"], str)
        assert isinstance(macro["condition"], str), macro["macro"]
        assert macro["condition"].strip(), macro["macro"]


def test_rule_names_unique() -> None:
    names = [entry["rule"] for _, entry in _new_rules()]
    assert sorted(set(names)) == sorted(names)


def test_lists_are_used() -> None:
    conditions = " ".join(rule["condition"] for _, rule in _new_rules())
    for _, entry in _by_kind("list"):
        assert f"({entry['list']})" in conditions.replace(" ", ""), entry["list"]
