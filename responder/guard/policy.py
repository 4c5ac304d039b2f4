"""Guards that every action passes before it runs, so that a noisy rule or a forged alert cannot
turn the responder into a kill switch.

Only destructive actions (``ActionSpec.destructive``) are guarded. They are rejected when the
alert's namespace is protected, when the pod or its namespace carries the protection label, when
the alert is stale, or when the destructive-action budget is spent. Labels, annotations, events
and notifications always pass, in protected namespaces too: they change nothing a workload
depends on, and they are the record a person reads to decide what to do by hand.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter

from responder.act.base import ActionContext, ActionSpec, PolicyRule
from responder.act.kube import Kube, nested
from responder.act.results import CHANGED, ActionResult, Outcome
from responder.clock import Clock
from responder.errors import KubeError
from responder.guard.budget import (
    CLUSTER_SCOPE,
    Budget,
    BudgetExhausted,
    BudgetStore,
    InMemoryBudgetStore,
)
from responder.guard.settings import GuardSettings, protected_namespaces
from responder.ingest.alert import PodTarget

# The values of the guard label of responder_guard_refusals_total.
PROTECTED_NAMESPACE = "protected_namespace"
PROTECTION_LABEL = "protection_label"
STALE = "stale"
BUDGET_CLUSTER = "budget_cluster"
BUDGET_NAMESPACE = "budget_namespace"
GUARDS = (PROTECTED_NAMESPACE, PROTECTION_LABEL, STALE, BUDGET_CLUSTER, BUDGET_NAMESPACE)

# The Outcome value of a refusal by each guard.
REFUSAL_OUTCOMES = {
    PROTECTED_NAMESPACE: "protected",
    PROTECTION_LABEL: "protected",
    STALE: "stale",
    BUDGET_CLUSTER: "budget_exhausted",
    BUDGET_NAMESPACE: "budget_exhausted",
}

# The reads behind the protection label check. Without them every destructive action is rejected,
# so the ClusterRole must grant them next to the actions' own rules. Nodes are read only for an
# action that changes a node.
GUARD_RBAC = (
    PolicyRule("", "pods", ("get",)),
    PolicyRule("", "namespaces", ("get",)),
    PolicyRule("", "nodes", ("get",)),
)

NANOSECONDS = 1_000_000_000


def refusal_outcome(guard: str) -> Outcome:
    """Return the Outcome of a refusal by ``guard``."""
    return Outcome(REFUSAL_OUTCOMES[guard])


class Guards:
    """The checks before each action, and the budget bookkeeping after it."""

    def __init__(
        self,
        settings: GuardSettings,
        *,
        clock: Clock,
        registry: CollectorRegistry,
        own_namespace: str | None = None,
        store: BudgetStore | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.protected = protected_namespaces(settings, own_namespace)
        self.store: BudgetStore = store if store is not None else InMemoryBudgetStore()
        self.budget = Budget(settings.budget, self.store)
        self.refusals = Counter(
            "responder_guard_refusals",
            "Destructive actions rejected by a guard, by guard.",
            ["guard"],
            registry=registry,
        )
        for guard in GUARDS:
            self.refusals.labels(guard)

    async def check(self, spec: ActionSpec[Any], context: ActionContext) -> ActionResult | None:
        """Return a refusal when ``spec`` must not run for this alert, else None.

        The checks run cheapest first and the budget last, so that a rejected action never
        spends a token. In dry-run every check runs, but the budget is only read.
        """
        if not spec.destructive:
            return None
        result = self._check_age(spec, context)
        if result is None:
            result = self._check_namespace(spec, context)
        if result is None:
            result = await self._check_labels(spec, context)
        if result is None:
            result = self._take_budget(spec, context)
        return result

    def settle(self, spec: ActionSpec[Any], context: ActionContext, result: ActionResult) -> None:
        """Give the budget token back unless the action succeeded and changed its target.

        A failed action changed nothing that acts on the pod. The one destructive action with
        two writes, isolate_pod at pod scope, selects the pod by the label it writes last. So a
        policy written before a failed label selects no pod.
        """
        if spec.destructive:
            keep = result.outcome is Outcome.SUCCESS and result.details.get(CHANGED, True)
            self.budget.settle(context, spec.name, keep=bool(keep))

    def _check_age(self, spec: ActionSpec[Any], context: ActionContext) -> ActionResult | None:
        max_age_s = self.settings.max_alert_age_s
        age_s = (self.clock.time_ns() - context.alert.time.epoch_ns) / NANOSECONDS
        if age_s > max_age_s:
            reason = (
                f"the alert is {age_s:.0f} s old, past the maximum age of {max_age_s:g} s; "
                "destructive actions do not run on stale alerts"
            )
            return self._refuse(spec, STALE, reason)
        # A time far ahead of the clock comes from a skewed node or a forged alert, and an alert
        # dated in the future would otherwise never grow stale.
        if -age_s > max_age_s:
            reason = (
                f"the alert time is {-age_s:.0f} s ahead of the responder's clock, past the "
                f"maximum of {max_age_s:g} s; destructive actions do not run on it"
            )
            return self._refuse(spec, STALE, reason)
        return None

    def _check_namespace(
        self, spec: ActionSpec[Any], context: ActionContext
    ) -> ActionResult | None:
        pod = context.pod
        if pod is None or pod.namespace not in self.protected:
            return None
        reason = f"namespace {pod.namespace} is protected; destructive actions do not run there"
        return self._refuse(spec, PROTECTED_NAMESPACE, reason)

    async def _check_labels(
        self, spec: ActionSpec[Any], context: ActionContext
    ) -> ActionResult | None:
        pod, host = context.pod, context.host
        if pod is None and (host is None or not spec.acts_on_node):
            # Only an action that changes a node can act on a host alert.
            return None
        kube = context.kube
        if kube is None:
            if context.dry_run:
                return None
            target = f"pod {pod}" if pod is not None else f"node {host.node if host else ''}"
            reason = (
                f"cannot read the protection label of {target}: no Kubernetes client is "
                "configured, and a target that cannot be checked is not acted on"
            )
            return self._refuse(spec, PROTECTION_LABEL, reason)
        label = self.settings.protection_label
        subject = ""
        try:
            node_name = host.node if host is not None else None
            if pod is not None:
                subject = f"pod {pod}"
                found = await _read(kube, kube.core.read_namespaced_pod, pod.pod, pod.namespace)
                if _is_set(_labels(found).get(label)):
                    reason = f"{subject} has the label {label}=true; destructive actions skip it"
                    return self._refuse(spec, PROTECTION_LABEL, reason)
                subject = f"namespace {pod.namespace}"
                namespace = await _read(kube, kube.core.read_namespace, pod.namespace)
                if _is_set(_labels(namespace).get(label)):
                    reason = (
                        f"{subject} has the label {label}=true; destructive actions skip its pods"
                    )
                    return self._refuse(spec, PROTECTION_LABEL, reason)
                node_name = nested(found, "spec", "nodeName")
            if spec.acts_on_node and node_name:
                subject = f"node {node_name}"
                node = await _read(kube, kube.core.read_node, node_name)
                if _is_set(_labels(node).get(label)):
                    reason = f"{subject} has the label {label}=true; destructive actions skip it"
                    return self._refuse(spec, PROTECTION_LABEL, reason)
        except KubeError as error:
            context.log.warning(
                "protection_label_read_failed",
                subject=subject,
                status=error.status,
                error=str(error),
            )
            reason = (
                f"cannot read the labels of {subject}: {error}; a target whose protection label "
                "cannot be checked is not acted on"
            )
            return self._refuse(spec, PROTECTION_LABEL, reason)
        return None

    def _take_budget(self, spec: ActionSpec[Any], context: ActionContext) -> ActionResult | None:
        pod = context.pod
        namespace = pod.namespace if pod is not None else None
        now_s = self.clock.monotonic()
        exhausted = self.budget.take(
            context, spec.name, namespace, now_s, consume=not context.dry_run
        )
        if exhausted is None:
            return None
        return self._refuse_budget(spec, exhausted, pod)

    def _refuse_budget(
        self, spec: ActionSpec[Any], exhausted: BudgetExhausted, pod: PodTarget | None
    ) -> ActionResult:
        scope = exhausted.scope
        if scope.key == CLUSTER_SCOPE:
            guard, where = BUDGET_CLUSTER, "the cluster"
        else:
            namespace = pod.namespace if pod is not None else scope.key
            guard, where = BUDGET_NAMESPACE, f"namespace {namespace}"
        if scope.limit == 0:
            reason = f"the destructive-action budget of {where} is 0; no destructive action runs"
        else:
            reason = (
                f"the destructive-action budget of {where} is spent: {exhausted.used} of "
                f"{scope.limit} ran in the last {scope.window_s:g} s; the next one is allowed "
                f"in {exhausted.retry_after_s:.0f} s"
            )
        return self._refuse(spec, guard, reason)

    def _refuse(self, spec: ActionSpec[Any], guard: str, reason: str) -> ActionResult:
        self.refusals.labels(guard).inc()
        details = {"guard": guard, "outcome": REFUSAL_OUTCOMES[guard]}
        return ActionResult(spec.name, refusal_outcome(guard), reason, details=details)


async def _read(kube: Kube, request: Any, *args: str) -> dict[str, Any] | None:
    # An object that is not found is left to the action's own target check, which reports it.
    try:
        return await kube.read(request, *args)
    except KubeError as error:
        if error.status == 404:
            return None
        raise


def _labels(found: dict[str, Any] | None) -> dict[str, Any]:
    return dict(nested(found, "metadata", "labels") or {})


def _is_set(value: str | None) -> bool:
    # Any case of "true" protects: a misspelt "True" must not leave a pod unprotected.
    return value is not None and value.strip().lower() == "true"
