"""Settings: file, environment and flags in that order; secrets from env and files."""

from __future__ import annotations

from pathlib import Path

import pytest

from responder.errors import ConfigError
from responder.settings import load_settings


def test_defaults() -> None:
    settings = load_settings()
    assert 2804 == settings.server.port
    assert "0.0.0.0" == settings.server.host
    assert 1024 * 1024 == settings.server.max_body_bytes
    assert settings.dry_run is False


def test_file_then_env_then_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "responder.yaml"
    path.write_text("server: {port: 9000, workers: 3}\ndry_run: false\n", encoding="utf-8")
    monkeypatch.setenv("RESPONDER_SERVER__PORT", "9100")
    monkeypatch.setenv("RESPONDER_DRY_RUN", "true")
    settings = load_settings(path, server={"host": "127.0.0.1"})
    assert 9100 == settings.server.port
    assert 3 == settings.server.workers
    assert "127.0.0.1" == settings.server.host
    assert settings.dry_run is True


def test_unknown_key_named(tmp_path: Path) -> None:
    path = tmp_path / "responder.yaml"
    path.write_text("server: {prot: 9000}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"server\.prot: unknown key; allowed: host, port"):
        load_settings(path)


def test_invalid_value_named(tmp_path: Path) -> None:
    path = tmp_path / "responder.yaml"
    path.write_text("server: {port: 70000}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"server\.port: Input should be less than or equal"):
        load_settings(path)


def test_secret_from_env_and_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret_file = tmp_path / "hmac"
    secret_file.write_text("file-secret\n", encoding="utf-8")
    monkeypatch.setenv("HOOK_URL", "http://127.0.0.1:9/hook")
    path = tmp_path / "responder.yaml"
    path.write_text(
        "notifiers:\n  siem:\n    type: webhook\n    url: {env: HOOK_URL}\n"
        f"    hmac_secret: {{file: {secret_file}}}\n",
        encoding="utf-8",
    )
    notifier = load_settings(path).notifiers["siem"]
    assert "http://127.0.0.1:9/hook" == notifier.url.get_secret_value()  # type: ignore[union-attr]
    assert "file-secret" == notifier.hmac_secret.get_secret_value()  # type: ignore[union-attr]
    assert "file-secret" not in repr(notifier)


def test_missing_secret_env_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ABSENT_HOOK_URL", raising=False)
    path = tmp_path / "responder.yaml"
    path.write_text(
        "notifiers:\n  siem: {type: webhook, url: {env: ABSENT_HOOK_URL}}\n", encoding="utf-8"
    )
    with pytest.raises(ConfigError, match="environment variable 'ABSENT_HOOK_URL' is not set"):
        load_settings(path)


def test_unreadable_config_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_settings(tmp_path / "absent.yaml")
