"""Guards: protected namespaces, the protection label, staleness and the budget, per action."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from responder.act.base import load_builtin_actions
from responder.act.kube import Kube
from responder.act.results import Outcome
from responder.clock import FakeClock
from responder.guard.budget import CLUSTER_SCOPE, InMemoryBudgetStore, namespace_scope
from responder.guard.policy import GUARD_RBAC, Guards
from responder.guard.settings import BudgetSettings, GuardSettings, own_namespace
from tests.guard.helpers import (
    CORDON,
    DELETE,
    LABEL,
    LABEL_POD,
    NAMESPACE,
    NAMESPACE_PATH,
    NODE,
    POD,
    POD_PATH,
    host_alert,
    in_namespace,
    make_alert,
    make_context,
    result,
)
from tests.kubeapi import KubeApiServer


def make_guards(
    clock: FakeClock,
    registry: CollectorRegistry,
    *,
    own: str | None = None,
    cluster_max: int = 10,
    namespace_max: int = 3,
) -> Guards:
    budget = BudgetSettings(cluster_max=cluster_max, namespace_max=namespace_max)
    return Guards(GuardSettings(budget=budget), clock=clock, registry=registry, own_namespace=own)


def refusals(registry: CollectorRegistry, guard: str) -> float | None:
    return registry.get_sample_value("responder_guard_refusals_total", {"guard": guard})


def seed(server: KubeApiServer, *, pod_labels: dict[str, str] | None = None) -> None:
    server.add_namespace(NAMESPACE)
    server.add_pod(NAMESPACE, POD, labels=pod_labels)


def used(guards: Guards, key: str, clock: FakeClock) -> int:
    store = guards.store
    assert isinstance(store, InMemoryBudgetStore)
    return store.used(key, clock.monotonic())


@pytest.mark.parametrize("namespace", ["kube-system", "kube-public", "kube-node-lease"])
async def test_protected_default(
    namespace: str, clock: FakeClock, registry: CollectorRegistry
) -> None:
    guards = make_guards(clock, registry)
    refused = await guards.check(DELETE, make_context(in_namespace(namespace)))
    assert refused is not None
    assert Outcome.PROTECTED == refused.outcome
    assert "protected_namespace" == refused.details["guard"]
    assert "protected" == refused.details["outcome"]
    assert f"namespace {namespace} is protected" in refused.reason
    assert 1.0 == refusals(registry, "protected_namespace")


async def test_protected_own_from_env(
    monkeypatch: pytest.MonkeyPatch, clock: FakeClock, registry: CollectorRegistry
) -> None:
    monkeypatch.setenv("POD_NAMESPACE", "falco")
    guards = make_guards(clock, registry, own=own_namespace())
    refused = await guards.check(DELETE, make_context(in_namespace("falco")))
    assert refused is not None
    assert "protected_namespace" == refused.details["guard"]


async def test_protected_allows_labels(clock: FakeClock, registry: CollectorRegistry) -> None:
    guards = make_guards(clock, registry)
    assert await guards.check(LABEL_POD, make_context(in_namespace("kube-system"))) is None


async def test_protected_spends_no_budget(clock: FakeClock, registry: CollectorRegistry) -> None:
    guards = make_guards(clock, registry)
    await guards.check(DELETE, make_context(in_namespace("kube-system")))
    assert 0 == used(guards, CLUSTER_SCOPE, clock)


async def test_label_on_pod(
    kube_api: KubeApiServer, kube: Kube, clock: FakeClock, registry: CollectorRegistry
) -> None:
    seed(kube_api, pod_labels={LABEL: "true"})
    guards = make_guards(clock, registry)
    refused = await guards.check(DELETE, make_context(kube=kube))
    assert refused is not None
    assert "protection_label" == refused.details["guard"]
    assert f"pod {NAMESPACE}/{POD} has the label {LABEL}=true" in refused.reason
    assert 1.0 == refusals(registry, "protection_label")


async def test_label_on_namespace(
    kube_api: KubeApiServer, kube: Kube, clock: FakeClock, registry: CollectorRegistry
) -> None:
    kube_api.add_namespace(NAMESPACE, labels={LABEL: "true"})
    kube_api.add_pod(NAMESPACE, POD)
    guards = make_guards(clock, registry)
    refused = await guards.check(DELETE, make_context(kube=kube))
    assert refused is not None
    assert "protection_label" == refused.details["guard"]
    assert f"namespace {NAMESPACE} has the label {LABEL}=true" in refused.reason


async def test_label_any_case(
    kube_api: KubeApiServer, kube: Kube, clock: FakeClock, registry: CollectorRegistry
) -> None:
    seed(kube_api, pod_labels={LABEL: "True"})
    guards = make_guards(clock, registry)
    refused = await guards.check(DELETE, make_context(kube=kube))
    assert refused is not None
    assert "protection_label" == refused.details["guard"]


async def test_label_false_passes(
    kube_api: KubeApiServer, kube: Kube, clock: FakeClock, registry: CollectorRegistry
) -> None:
    seed(kube_api, pod_labels={LABEL: "false"})
    guards = make_guards(clock, registry)
    assert await guards.check(DELETE, make_context(kube=kube)) is None


async def test_unlabelled_pod_passes(
    kube_api: KubeApiServer, kube: Kube, clock: FakeClock, registry: CollectorRegistry
) -> None:
    seed(kube_api)
    guards = make_guards(clock, registry)
    assert await guards.check(DELETE, make_context(kube=kube)) is None
    assert 1 == used(guards, CLUSTER_SCOPE, clock)
    assert 1 == used(guards, namespace_scope(NAMESPACE), clock)


async def test_label_pod_read_fails_closed(
    kube_api: KubeApiServer, kube: Kube, clock: FakeClock, registry: CollectorRegistry
) -> None:
    seed(kube_api)
    kube_api.fail_next("GET", POD_PATH, 403)
    guards = make_guards(clock, registry)
    refused = await guards.check(DELETE, make_context(kube=kube))
    assert refused is not None
    assert "protection_label" == refused.details["guard"]
    assert f"cannot read the labels of pod {NAMESPACE}/{POD}" in refused.reason
    assert 0 == used(guards, CLUSTER_SCOPE, clock)


async def test_label_namespace_read_fails_closed(
    kube_api: KubeApiServer, kube: Kube, clock: FakeClock, registry: CollectorRegistry
) -> None:
    seed(kube_api)
    kube_api.fail_next("GET", NAMESPACE_PATH, 403)
    guards = make_guards(clock, registry)
    refused = await guards.check(DELETE, make_context(kube=kube))
    assert refused is not None
    assert f"cannot read the labels of namespace {NAMESPACE}" in refused.reason


async def test_label_missing_pod_passes(
    kube_api: KubeApiServer, kube: Kube, clock: FakeClock, registry: CollectorRegistry
) -> None:
    # The action's own target check reports a missing pod, so the guard lets it pass.
    kube_api.add_namespace(NAMESPACE)
    guards = make_guards(clock, registry)
    assert await guards.check(DELETE, make_context(kube=kube)) is None


async def test_label_missing_pod_namespace_labelled(
    kube_api: KubeApiServer, kube: Kube, clock: FakeClock, registry: CollectorRegistry
) -> None:
    kube_api.add_namespace(NAMESPACE, labels={LABEL: "true"})
    guards = make_guards(clock, registry)
    refused = await guards.check(DELETE, make_context(kube=kube))
    assert refused is not None
    assert "protection_label" == refused.details["guard"]


async def test_label_without_kube(clock: FakeClock, registry: CollectorRegistry) -> None:
    guards = make_guards(clock, registry)
    refused = await guards.check(DELETE, make_context(kube=None))
    assert refused is not None
    assert "no Kubernetes client is configured" in refused.reason


async def test_label_without_kube_dry_run(clock: FakeClock, registry: CollectorRegistry) -> None:
    guards = make_guards(clock, registry)
    assert await guards.check(DELETE, make_context(kube=None, dry_run=True)) is None


async def test_stale_refused(clock: FakeClock, registry: CollectorRegistry) -> None:
    guards = make_guards(clock, registry)
    clock.advance(601)
    refused = await guards.check(DELETE, make_context(host_alert()))
    assert refused is not None
    assert "stale" == refused.details["guard"]
    assert "past the maximum age of 600 s" in refused.reason
    assert 1.0 == refusals(registry, "stale")


async def test_stale_allows_labels(clock: FakeClock, registry: CollectorRegistry) -> None:
    guards = make_guards(clock, registry)
    clock.advance(601)
    assert await guards.check(LABEL_POD, make_context(host_alert())) is None


async def test_stale_at_limit_passes(clock: FakeClock, registry: CollectorRegistry) -> None:
    guards = make_guards(clock, registry)
    # The sample alert is 0.118 s ahead of the clock's start.
    clock.advance(599)
    assert await guards.check(DELETE, make_context(host_alert())) is None


async def test_stale_future_refused(clock: FakeClock, registry: CollectorRegistry) -> None:
    guards = make_guards(clock, registry)
    future = make_alert(time="2026-03-14T12:45:00Z")
    refused = await guards.check(DELETE, make_context(future))
    assert refused is not None
    assert "stale" == refused.details["guard"]
    assert "ahead of the responder's clock" in refused.reason


async def test_budget_cluster_spent(clock: FakeClock, registry: CollectorRegistry) -> None:
    guards = make_guards(clock, registry, cluster_max=2)
    for _ in range(2):
        assert await guards.check(DELETE, make_context(host_alert())) is None
    clock.advance(100)
    refused = await guards.check(DELETE, make_context(host_alert()))
    assert refused is not None
    assert "budget_cluster" == refused.details["guard"]
    assert "budget_exhausted" == refused.details["outcome"]
    assert "2 of 2 ran in the last 600 s" in refused.reason
    assert "the next one is allowed in 500 s" in refused.reason
    assert 1.0 == refusals(registry, "budget_cluster")


async def test_budget_cluster_window_passes(clock: FakeClock, registry: CollectorRegistry) -> None:
    guards = make_guards(clock, registry, cluster_max=1)
    assert await guards.check(DELETE, make_context(host_alert())) is None
    clock.advance(300)
    assert await guards.check(DELETE, make_context(host_alert())) is not None
    # The alerts must stay fresh while the budget window passes.
    clock.advance(300)
    fresh = make_alert({"container.id": "host"}, time="2026-03-14T12:41:06Z")
    assert await guards.check(DELETE, make_context(fresh)) is None


async def test_budget_zero(clock: FakeClock, registry: CollectorRegistry) -> None:
    guards = make_guards(clock, registry, cluster_max=0)
    refused = await guards.check(DELETE, make_context(host_alert()))
    assert refused is not None
    assert "budget of the cluster is 0" in refused.reason


async def test_budget_namespace_spent(
    kube_api: KubeApiServer, kube: Kube, clock: FakeClock, registry: CollectorRegistry
) -> None:
    seed(kube_api)
    kube_api.add_namespace("blog")
    kube_api.add_pod("blog", "web")
    guards = make_guards(clock, registry, namespace_max=2)
    for _ in range(2):
        assert await guards.check(DELETE, make_context(kube=kube)) is None
    refused = await guards.check(DELETE, make_context(kube=kube))
    assert refused is not None
    assert "budget_namespace" == refused.details["guard"]
    assert f"budget of namespace {NAMESPACE} is spent" in refused.reason
    other = make_context(in_namespace("blog", "web"), kube=kube)
    assert await guards.check(DELETE, other) is None


async def test_budget_dry_run_reads_only(clock: FakeClock, registry: CollectorRegistry) -> None:
    guards = make_guards(clock, registry, cluster_max=1)
    for _ in range(3):
        assert await guards.check(DELETE, make_context(host_alert(), dry_run=True)) is None
    assert 0 == used(guards, CLUSTER_SCOPE, clock)


async def test_budget_dry_run_spent(clock: FakeClock, registry: CollectorRegistry) -> None:
    guards = make_guards(clock, registry, cluster_max=1)
    await guards.check(DELETE, make_context(host_alert()))
    refused = await guards.check(DELETE, make_context(host_alert(), dry_run=True))
    assert refused is not None
    assert "budget_cluster" == refused.details["guard"]


async def test_budget_labels_free(clock: FakeClock, registry: CollectorRegistry) -> None:
    guards = make_guards(clock, registry, cluster_max=1)
    for _ in range(3):
        assert await guards.check(LABEL_POD, make_context(host_alert())) is None
    assert 0 == used(guards, CLUSTER_SCOPE, clock)


@pytest.mark.parametrize(
    "outcome", [Outcome.FAILED, Outcome.ALREADY_GONE, Outcome.TARGET_MISMATCH]
)
async def test_settle_refunds(
    outcome: Outcome, clock: FakeClock, registry: CollectorRegistry
) -> None:
    guards = make_guards(clock, registry, cluster_max=1)
    context = make_context(host_alert())
    await guards.check(DELETE, context)
    guards.settle(DELETE, context, result(outcome))
    assert 0 == used(guards, CLUSTER_SCOPE, clock)
    assert await guards.check(DELETE, make_context(host_alert())) is None


async def test_settle_keeps_success(clock: FakeClock, registry: CollectorRegistry) -> None:
    guards = make_guards(clock, registry, cluster_max=1)
    context = make_context(host_alert())
    await guards.check(DELETE, context)
    guards.settle(DELETE, context, result(Outcome.SUCCESS))
    assert 1 == used(guards, CLUSTER_SCOPE, clock)
    assert 0 == guards.budget.pending()


async def test_settle_other_context(clock: FakeClock, registry: CollectorRegistry) -> None:
    guards = make_guards(clock, registry, cluster_max=2)
    await guards.check(DELETE, make_context(host_alert()))
    guards.settle(DELETE, make_context(host_alert()), result(Outcome.FAILED))
    assert 1 == used(guards, CLUSTER_SCOPE, clock)


async def test_settle_refused(clock: FakeClock, registry: CollectorRegistry) -> None:
    guards = make_guards(clock, registry, cluster_max=1)
    await guards.check(DELETE, make_context(host_alert()))
    context = make_context(host_alert())
    refused = await guards.check(DELETE, context)
    assert refused is not None
    guards.settle(DELETE, context, refused)
    assert 1 == used(guards, CLUSTER_SCOPE, clock)


def test_refusals_start_at_zero(clock: FakeClock, registry: CollectorRegistry) -> None:
    make_guards(clock, registry)
    assert 0.0 == refusals(registry, "budget_namespace")


async def test_label_on_node_of_host_alert(
    kube_api: KubeApiServer, kube: Kube, clock: FakeClock, registry: CollectorRegistry
) -> None:
    kube_api.add_node(NODE, labels={LABEL: "true"})
    guards = make_guards(clock, registry)
    refused = await guards.check(CORDON, make_context(host_alert(), kube=kube))
    assert refused is not None
    assert Outcome.PROTECTED == refused.outcome
    assert "protection_label" == refused.details["guard"]
    assert f"node {NODE} has the label {LABEL}=true" in refused.reason
    assert 0 == used(guards, CLUSTER_SCOPE, clock)


async def test_label_on_node_of_pod(
    kube_api: KubeApiServer, kube: Kube, clock: FakeClock, registry: CollectorRegistry
) -> None:
    kube_api.add_namespace(NAMESPACE)
    kube_api.add_pod(NAMESPACE, POD, node_name=NODE)
    kube_api.add_node(NODE, labels={LABEL: "true"})
    guards = make_guards(clock, registry)
    refused = await guards.check(CORDON, make_context(kube=kube))
    assert refused is not None
    assert f"node {NODE} has the label {LABEL}=true" in refused.reason
    # Deleting the pod does not change the node, so the node's label does not protect it.
    assert await guards.check(DELETE, make_context(kube=kube)) is None


async def test_unlabelled_node_passes(
    kube_api: KubeApiServer, kube: Kube, clock: FakeClock, registry: CollectorRegistry
) -> None:
    kube_api.add_node(NODE, labels={"kubernetes.io/os": "linux"})
    guards = make_guards(clock, registry)
    assert await guards.check(CORDON, make_context(host_alert(), kube=kube)) is None
    assert 1 == len(kube_api.requests_to("GET", f"/api/v1/nodes/{NODE}"))


async def test_missing_node_left_to_action(
    kube: Kube, clock: FakeClock, registry: CollectorRegistry
) -> None:
    guards = make_guards(clock, registry)
    assert await guards.check(CORDON, make_context(host_alert(), kube=kube)) is None


async def test_label_node_read_fails_closed(
    kube_api: KubeApiServer, kube: Kube, clock: FakeClock, registry: CollectorRegistry
) -> None:
    kube_api.add_node(NODE)
    kube_api.fail_next("GET", f"/api/v1/nodes/{NODE}", 403)
    guards = make_guards(clock, registry)
    refused = await guards.check(CORDON, make_context(host_alert(), kube=kube))
    assert refused is not None
    assert "protection_label" == refused.details["guard"]
    assert refused.reason.startswith(f"cannot read the labels of node {NODE}: ")


async def test_label_node_without_kube(clock: FakeClock, registry: CollectorRegistry) -> None:
    guards = make_guards(clock, registry)
    refused = await guards.check(CORDON, make_context(host_alert()))
    assert refused is not None
    assert refused.reason.startswith(f"cannot read the protection label of node {NODE}")


def test_cordon_acts_on_node() -> None:
    specs = {spec.name: spec for spec in load_builtin_actions()}
    assert ["cordon_node"] == [name for name, spec in specs.items() if spec.acts_on_node]


def test_rbac_reads_labels() -> None:
    resources = {rule.resource for rule in GUARD_RBAC if "get" in rule.verbs}
    assert {"pods", "namespaces", "nodes"} == resources
