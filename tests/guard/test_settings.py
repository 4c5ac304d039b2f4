"""GuardSettings, SuppressSettings and own_namespace."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from responder.errors import ConfigError
from responder.guard.settings import (
    GuardSettings,
    SuppressSettings,
    own_namespace,
    protected_namespaces,
)


def test_guard_defaults() -> None:
    settings = GuardSettings()
    assert ["kube-system", "kube-public", "kube-node-lease"] == settings.protected_namespaces
    assert "falco-responder.io/protected" == settings.protection_label
    assert 600.0 == settings.budget.window_s
    assert 10 == settings.budget.cluster_max
    assert 3 == settings.budget.namespace_max
    assert 600.0 == settings.max_alert_age_s


def test_suppress_defaults() -> None:
    settings = SuppressSettings()
    assert 60.0 == settings.dedup_window_s
    assert settings.key_fields is None
    assert 300.0 == settings.cooldown_s
    assert 10_000 == settings.max_keys


def test_guard_unknown_key() -> None:
    with pytest.raises(ValidationError, match="extra"):
        GuardSettings.model_validate({"budget": {"cluster_maximum": 5}})


def test_suppress_unknown_key() -> None:
    with pytest.raises(ValidationError, match="extra"):
        SuppressSettings.model_validate({"window_s": 5})


def test_guard_empty_namespace() -> None:
    with pytest.raises(ValidationError, match="must not be empty"):
        GuardSettings(protected_namespaces=["kube-system", " "])


def test_suppress_empty_key_field() -> None:
    with pytest.raises(ValidationError, match="must not be empty"):
        SuppressSettings(key_fields=["proc.cmdline", ""])


def test_suppress_negative_window() -> None:
    with pytest.raises(ValidationError, match="greater than or equal to 0"):
        SuppressSettings(dedup_window_s=-1)


def test_own_namespace_env(tmp_path: Path) -> None:
    namespace_file = tmp_path / "namespace"
    namespace_file.write_text("from-file")
    found = own_namespace({"POD_NAMESPACE": "falco"}, namespace_file)
    assert "falco" == found


def test_own_namespace_process_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("POD_NAMESPACE", "security")
    assert "security" == own_namespace(namespace_file=tmp_path / "absent")


def test_own_namespace_file(tmp_path: Path) -> None:
    namespace_file = tmp_path / "namespace"
    namespace_file.write_text("falco\n")
    assert "falco" == own_namespace({}, namespace_file)


def test_own_namespace_blank_env(tmp_path: Path) -> None:
    namespace_file = tmp_path / "namespace"
    namespace_file.write_text("falco")
    assert "falco" == own_namespace({"POD_NAMESPACE": "  "}, namespace_file)


def test_own_namespace_outside_cluster(tmp_path: Path) -> None:
    assert own_namespace({}, tmp_path / "absent") is None


def test_own_namespace_empty_file(tmp_path: Path) -> None:
    namespace_file = tmp_path / "namespace"
    namespace_file.write_text("\n")
    assert own_namespace({}, namespace_file) is None


def test_own_namespace_unreadable(tmp_path: Path) -> None:
    # A directory in place of the file cannot be read, which is not the same as no file.
    with pytest.raises(ConfigError, match="POD_NAMESPACE"):
        own_namespace({}, tmp_path)


def test_protected_adds_own() -> None:
    names = protected_namespaces(GuardSettings(), "falco")
    assert frozenset({"kube-system", "kube-public", "kube-node-lease", "falco"}) == names


def test_protected_without_own() -> None:
    names = protected_namespaces(GuardSettings(protected_namespaces=[]), None)
    assert frozenset() == names
