"""Configuration: a YAML file, then ``RESPONDER_*`` environment variables, then command-line flags.

Nested fields are set from the environment with ``__``, for example
``RESPONDER_SERVER__PORT=8080`` or ``RESPONDER_KUBERNETES__KUBECONFIG=/etc/kubeconfig``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from responder.errors import ConfigError
from responder.guard.settings import GuardSettings, SuppressSettings
from responder.ingest.auth import AuthSettings
from responder.ingest.tls import TlsSettings
from responder.match.loader import describe_errors
from responder.notify.config import NotifierConfig

# Falcosidekick, its UI and Falco Talon listen on 2801 to 2803; this is the next free port.
DEFAULT_PORT = 2804
MIB = 1024 * 1024


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ServerSettings(Section):
    """The HTTP sink."""

    host: str = "0.0.0.0"
    """Address to listen on. All interfaces by default, because the sink runs in a pod."""
    port: int = Field(DEFAULT_PORT, ge=1, le=65535)
    max_body_bytes: int = Field(MIB, ge=1024)
    """Largest request body, after gzip decoding, in bytes. Larger bodies get 413."""
    queue_size: int = Field(10_000, ge=1)
    """Accepted alerts not yet handled by a worker. When full, the sink responds 503 with
    Retry-After."""
    retry_after_s: int = Field(1, ge=1)
    """Seconds sent in Retry-After with a 503."""
    health_port: int | None = Field(None, ge=1, le=65535)
    """A second port, plain HTTP without authentication, that serves only /healthz, /readyz and
    /metrics: for kubelet probes and Prometheus when the sink requires client certificates.
    The sink's port serves them too."""
    workers: int = Field(64, ge=1, le=1024)
    """Alerts handled at once in the worker process. A worker spends most of its time waiting
    on the Kubernetes API, so many share one core: with 64, the benchmark's worker process
    handled about 2,200 alerts/s."""

    @model_validator(mode="after")
    def _check_health_port(self) -> Self:
        if self.health_port is not None and self.health_port == self.port:
            raise ValueError(
                f"server.health_port {self.health_port} is the sink's port; choose another "
                "port, such as 8081, or leave it unset"
            )
        return self


class KubernetesSettings(Section):
    """The Kubernetes API client."""

    kubeconfig: Path | None = None
    """A kubeconfig file. Default: in-cluster in a pod, else KUBECONFIG or ~/.kube/config."""
    context: str | None = None
    request_timeout_s: float = Field(10.0, gt=0)
    """Timeout of one API request in seconds."""
    required: bool = False
    """Refuse to start without a Kubernetes configuration, instead of running without one."""


class JournalSettings(Section):
    """The durable journal of accepted alerts and decisions."""

    path: Path | None = Path("responder-journal.db")
    """SQLite file, relative to the working directory unless absolute. In a pod, a volume such
    as /var/lib/responder/journal.db. Null keeps alerts in memory only: a restart loses them."""
    commit_window_s: float = Field(0.0, ge=0, le=0.1)
    """Extra seconds to wait for more writes before a commit. Writes that arrive while a commit
    flushes always share the next one, so 0 groups them under load and adds no latency when
    alerts are few. bench/journal.py measured a 1 ms window as four times slower at 1 writer."""
    synchronous: Literal["full", "normal"] = "full"
    """``full`` flushes each commit to disk, so an accepted alert survives a crash of the node.
    ``normal`` leaves the flush to the operating system: an accepted alert survives a crash of
    the process, not of the node, and acks come sooner (BENCHMARKS.md has the figures)."""
    max_age_s: float = Field(7 * 24 * 3600, gt=0)
    """Done alerts older than this are deleted. A week covers a typical incident review."""
    max_bytes: int = Field(512 * MIB, ge=MIB)
    """When the data grows past this, the oldest done alerts are deleted until it fits."""
    prune_interval_s: float = Field(300, gt=0)
    """How often the retention is applied, in seconds."""


class DrillSettings(Section):
    """Treatment of alerts marked as a drill (header X-Responder-Drill: true)."""

    force_dry_run: bool = True
    """Run drill alerts in dry-run whatever the playbook sets, so that an exercise deletes and
    isolates nothing unless the team sets this to false. Notification titles start with [DRILL]."""


class Settings(BaseSettings):
    """Everything ``responder serve`` needs."""

    model_config = SettingsConfigDict(
        env_prefix="RESPONDER_",
        env_nested_delimiter="__",
        extra="forbid",
        # A literal secret that fails validation must not be echoed in the error.
        hide_input_in_errors=True,
    )

    playbooks: list[Path] = [Path("playbooks")]
    """Playbook files or directories of them."""
    dry_run: bool = False
    """Run every playbook in dry-run: Kubernetes writes are sent with dryRun=All."""
    record: Path | None = None
    """A JSONL file that receives every accepted alert as it arrived, for drills and replay."""
    action_deadline_s: float = Field(30.0, gt=0)
    """Time one action may take, retries included, before it is counted as failed."""
    log_format: Literal["auto", "json", "console"] = "auto"
    """JSON lines, or a readable format; ``auto`` picks console on a terminal."""
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    server: ServerSettings = ServerSettings()
    journal: JournalSettings = JournalSettings()
    drill: DrillSettings = DrillSettings()
    auth: AuthSettings = Field(
        default_factory=AuthSettings.model_construct, validate_default=False
    )
    """Credentials every sender needs for POST / and the alerts API. ``serve`` refuses to start
    without them, unless auth.mode is none and auth.allow_unauthenticated is true."""
    tls: TlsSettings = TlsSettings()
    """TLS for the sink, and mTLS with a client CA."""
    reload_interval_s: float = Field(2.0, gt=0)
    """How often the playbook files are checked for changes, in seconds. SIGHUP reloads at once."""
    guards: GuardSettings = GuardSettings()
    suppress: SuppressSettings = SuppressSettings()
    kubernetes: KubernetesSettings = KubernetesSettings()
    notifiers: dict[str, NotifierConfig] = {}
    """Named notification targets that playbooks refer to in ``notify``."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # load_settings layers the file, the environment and the flags itself, so that a
        # variable overrides one key of a nested section and not the whole section.
        return (init_settings,)


def load_settings(path: Path | None = None, **overrides: Any) -> Settings:
    """Build the settings from a YAML file, the environment and ``overrides`` (flags)."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as error:
            raise ConfigError(f"cannot read config file {str(path)!r}: {error.strerror}") from None
        except yaml.YAMLError as error:
            raise ConfigError(f"{path}: invalid YAML: {error}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"{path}: expected a mapping of settings at the top level")
        data = loaded or {}
    environment = EnvSettingsSource(Settings)()
    try:
        return Settings(**_merge(data, environment, overrides))
    except ValidationError as error:
        # The value may come from the file, a RESPONDER_* variable or a flag.
        where = f"{path} (or RESPONDER_* variables)" if path is not None else "settings"
        lines = "\n".join(f"  {line}" for line in describe_errors(error, Settings))
        raise ConfigError(f"{where}: invalid configuration:\n{lines}") from None


def _merge(*layers: dict[str, Any]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            if isinstance(value, dict) and isinstance(merged.get(key), dict):
                merged[key] = _merge(merged[key], value)
            else:
                merged[key] = value
    return merged
