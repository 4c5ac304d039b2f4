"""The action registry: every response action, its typed parameters and the RBAC it needs.

An action is an async function registered with ``@action``. Its parameters are a pydantic model,
so that a playbook is validated in full when it is loaded, not when an alert arrives. The RBAC
rules declared here are the source of the ClusterRole that ``deploy/`` ships.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import structlog
from pydantic import BaseModel, ConfigDict

from responder.act.results import ActionResult
from responder.ingest.alert import Alert, HostTarget, PodTarget, Target

if TYPE_CHECKING:
    from responder.act.kube import Kube


class Parameters(BaseModel):
    """Base of every action's parameters: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


P = TypeVar("P", bound=Parameters)


@dataclass(frozen=True)
class PolicyRule:
    """One RBAC rule an action needs, in the shape of a ClusterRole rule."""

    api_group: str
    resource: str
    verbs: tuple[str, ...]


@dataclass
class ActionContext:
    """Everything an action may read while it runs for one alert and one playbook."""

    alert: Alert
    alert_id: str
    playbook: str
    dry_run: bool
    kube: Kube | None
    log: structlog.stdlib.BoundLogger
    # Results of the steps before this one in the same playbook.
    previous: list[ActionResult] = field(default_factory=list)

    @property
    def target(self) -> Target | None:
        return self.alert.target

    @property
    def pod(self) -> PodTarget | None:
        target = self.alert.target
        return target if isinstance(target, PodTarget) else None

    @property
    def host(self) -> HostTarget | None:
        target = self.alert.target
        return target if isinstance(target, HostTarget) else None


ActionFunction = Callable[[ActionContext, Any], Awaitable[ActionResult]]


@dataclass(frozen=True)
class ActionSpec(Generic[P]):
    """A registered action. ``destructive`` actions are the ones guards ration and refuse."""

    name: str
    parameters: type[P]
    run: ActionFunction
    summary: str
    destructive: bool = False
    needs_kube: bool = True
    # Target kinds the action works on: "pod", "node" (a host alert, or a pod's node).
    targets: frozenset[str] = frozenset({"pod"})
    rbac: tuple[PolicyRule, ...] = ()
    # The action changes the node, so the guards check the node's protection label too.
    acts_on_node: bool = False


class Registry:
    """Action specs by name. The module-level ``ACTIONS`` is filled at import time."""

    def __init__(self) -> None:
        self._specs: dict[str, ActionSpec[Any]] = {}

    def add(self, spec: ActionSpec[Any]) -> None:
        if spec.name in self._specs:
            raise ValueError(f"action {spec.name!r} is registered twice")
        self._specs[spec.name] = spec

    def get(self, name: str) -> ActionSpec[Any] | None:
        return self._specs.get(name)

    def names(self) -> list[str]:
        return sorted(self._specs)

    def __iter__(self) -> Any:
        return iter(self._specs.values())


ACTIONS = Registry()


def action(
    name: str,
    *,
    parameters: type[P],
    summary: str,
    destructive: bool = False,
    needs_kube: bool = True,
    targets: frozenset[str] = frozenset({"pod"}),
    rbac: tuple[PolicyRule, ...] = (),
    acts_on_node: bool = False,
) -> Callable[[Callable[[ActionContext, P], Awaitable[ActionResult]]], ActionSpec[P]]:
    """Register an async function as the action ``name``."""

    def register(run: Callable[[ActionContext, P], Awaitable[ActionResult]]) -> ActionSpec[P]:
        spec = ActionSpec(
            name=name,
            parameters=parameters,
            run=run,
            summary=summary,
            destructive=destructive,
            needs_kube=needs_kube,
            targets=targets,
            rbac=rbac,
            acts_on_node=acts_on_node,
        )
        ACTIONS.add(spec)
        return spec

    return register


def load_builtin_actions() -> Registry:
    """Import the modules that register the shipped actions, and return the registry."""
    import responder.act.kubernetes  # noqa: F401

    return ACTIONS
