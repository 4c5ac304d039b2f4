"""Settings of the guards that stand between an alert and a destructive action.

An automated responder has cluster-wide power, so a noisy rule or a forged alert must not turn
it into a kill switch. ``GuardSettings`` configures what destructive actions may never touch and
how many they may change in a time window. ``SuppressSettings`` configures how repeated alerts are
collapsed before any playbook runs again.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from responder.errors import ConfigError

# Set from the pod's metadata.namespace with the downward API (env valueFrom.fieldRef).
POD_NAMESPACE_ENV = "POD_NAMESPACE"
# The kubelet mounts this file in every pod that automounts its service-account token.
SERVICE_ACCOUNT_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")

# The namespaces of the control plane and its add-ons, which a response must never break.
DEFAULT_PROTECTED_NAMESPACES = ("kube-system", "kube-public", "kube-node-lease")
DEFAULT_PROTECTION_LABEL = "falco-responder.io/protected"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BudgetSettings(_Section):
    """How many destructive actions may run in a sliding window, cluster-wide and per namespace.

    The defaults are conservative starting points: they let a real incident in a few pods be
    contained within minutes, and stop a noisy rule or a flood of forged alerts after a handful of
    pods. Raise them once the playbooks have run in dry-run against real traffic.
    """

    window_s: float = Field(600.0, gt=0)
    """Length of the sliding window in seconds. Default 600 (10 minutes), long enough to cover a
    burst of alerts from one incident and short enough that the budget comes back the same hour."""
    cluster_max: int = Field(10, ge=0)
    """Destructive actions allowed in one window across the whole cluster. Default 10, so that a
    misfiring rule disrupts at most ten workloads before a person looks. 0 allows none."""
    namespace_max: int = Field(3, ge=0)
    """Destructive actions allowed in one window in one namespace. Default 3, so that one team's
    namespace cannot use up the whole cluster budget and a replica set keeps some pods. 0 allows
    none."""


class GuardSettings(_Section):
    """Limits on destructive actions: protected namespaces and labels, a budget, a maximum age."""

    protected_namespaces: list[str] = Field(
        default_factory=lambda: list(DEFAULT_PROTECTED_NAMESPACES)
    )
    """Namespaces in which destructive actions are rejected. Default: kube-system, kube-public and
    kube-node-lease, because deleting or isolating a control-plane pod can take the cluster down.
    The responder's own namespace is added at run time (see ``own_namespace``), so that a forged
    alert cannot make the responder stop itself."""
    protection_label: str = Field(DEFAULT_PROTECTION_LABEL, min_length=1)
    """Label key that protects a pod or a whole namespace when its value is ``"true"``. Default
    ``falco-responder.io/protected``. Owners opt out of destructive responses with it without
    editing the responder's configuration."""
    budget: BudgetSettings = Field(default_factory=BudgetSettings)
    """Rate limits for destructive actions."""
    max_alert_age_s: float = Field(600.0, gt=0)
    """Maximum age of an alert in seconds, measured from the alert's ``time`` to the responder's
    clock. Default 600 (10 minutes). An older alert is likely a replay or the tail of a backlog,
    and its pod may since have been reused, so destructive actions are rejected for it."""

    @field_validator("protected_namespaces")
    @classmethod
    def _strip_namespaces(cls, value: list[str]) -> list[str]:
        names = [name.strip() for name in value]
        if any(not name for name in names):
            raise ValueError("invalid namespace name: names must not be empty")
        return names


class SuppressSettings(_Section):
    """Deduplication and cooldowns, which collapse repeated alerts before playbooks run again."""

    dedup_window_s: float = Field(60.0, ge=0)
    """Seconds after the first alert of a window during which identical alerts are suppressed.
    Default 60. Falco raises the same alert for every matching syscall, so one ``kubectl exec``
    loop can send hundreds a minute. 0 turns deduplication off."""
    key_fields: list[str] | None = None
    """Output fields that make two alerts of the same rule and target identical. Default None:
    every output field except the volatile ones (``VOLATILE_FIELDS`` and ``VOLATILE_PREFIXES`` in
    ``responder.guard.suppress``), which change on every event of an otherwise identical
    activity. An empty list keys on rule and target alone."""
    cooldown_s: float = Field(300.0, ge=0)
    """Seconds after a playbook ran for a target during which it does not run for that target
    again. Default 300 (5 minutes), time enough for a person to read the first notification. A
    playbook's own ``cooldown_s`` overrides it. 0 turns the cooldown off."""
    max_keys: int = Field(10_000, ge=1)
    """Maximum number of deduplication keys, and separately of cooldown keys, kept in memory.
    Default 10000: both maps full took about 8 MB under tracemalloc on CPython 3.11. Past it the
    least recently seen key is dropped, so its next alert gets a response again and its
    unreported count is lost. The destructive-action budget still limits those responses."""
    digest_retention_s: float = Field(3600.0, gt=0)
    """Seconds that counts of suppressed alerts wait for a response to report them in its
    notification. Default 3600 (1 hour). After that the key is forgotten, because a count from
    hours before no longer describes the current activity."""

    @field_validator("key_fields")
    @classmethod
    def _check_key_fields(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        names = [name.strip() for name in value]
        if any(not name for name in names):
            raise ValueError("invalid key field: field names must not be empty")
        return names


def own_namespace(
    environ: Mapping[str, str] | None = None,
    namespace_file: Path = SERVICE_ACCOUNT_NAMESPACE_FILE,
) -> str | None:
    """Return the namespace the responder runs in, or None when it runs outside a cluster.

    ``POD_NAMESPACE`` wins over the service-account file, so that a Deployment can set it with
    the downward API even when the token is not mounted. Raises ConfigError when the file exists
    but cannot be read, because the responder would then not know which namespace to protect.
    """
    variables = os.environ if environ is None else environ
    from_env = variables.get(POD_NAMESPACE_ENV, "").strip()
    if from_env:
        return from_env
    try:
        from_file = namespace_file.read_text(encoding="utf-8").strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as error:
        raise ConfigError(
            f"cannot read the responder's namespace from {namespace_file}: {error.strerror}; "
            f"set {POD_NAMESPACE_ENV} instead"
        ) from error
    return from_file or None


def protected_namespaces(settings: GuardSettings, own: str | None) -> frozenset[str]:
    """Return the configured protected namespaces plus the responder's own, when known."""
    names = set(settings.protected_namespaces)
    if own:
        names.add(own)
    return frozenset(names)
