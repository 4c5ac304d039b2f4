"""InMemoryBudgetStore and Budget: sliding windows, all-or-none takes and reservations."""

from __future__ import annotations

from responder.guard.budget import (
    CLUSTER_SCOPE,
    Budget,
    BudgetExhausted,
    BudgetGrant,
    BudgetScope,
    InMemoryBudgetStore,
    namespace_scope,
)
from responder.guard.settings import BudgetSettings

CLUSTER = BudgetScope(CLUSTER_SCOPE, 3, 600.0)
SHOP = BudgetScope(namespace_scope("shop"), 1, 600.0)


def test_store_grants_token() -> None:
    store = InMemoryBudgetStore()
    grant = store.acquire([CLUSTER], 0.0, consume=True)
    assert isinstance(grant, BudgetGrant)
    assert grant.token is not None


def test_store_check_only() -> None:
    store = InMemoryBudgetStore()
    assert BudgetGrant(None) == store.acquire([CLUSTER], 0.0, consume=False)
    assert 0 == store.used(CLUSTER_SCOPE, 0.0)


def test_store_all_or_none() -> None:
    store = InMemoryBudgetStore()
    store.acquire([CLUSTER, SHOP], 0.0, consume=True)
    exhausted = store.acquire([CLUSTER, SHOP], 1.0, consume=True)
    assert isinstance(exhausted, BudgetExhausted)
    assert SHOP == exhausted.scope
    assert 1 == store.used(CLUSTER_SCOPE, 1.0)


def test_store_retry_after() -> None:
    store = InMemoryBudgetStore()
    store.acquire([SHOP], 10.0, consume=True)
    exhausted = store.acquire([SHOP], 110.0, consume=True)
    assert isinstance(exhausted, BudgetExhausted)
    assert 500.0 == exhausted.retry_after_s
    assert 1 == exhausted.used


def test_store_window_slides() -> None:
    store = InMemoryBudgetStore()
    for now_s in (0.0, 100.0, 200.0):
        store.acquire([CLUSTER], now_s, consume=True)
    assert isinstance(store.acquire([CLUSTER], 599.0, consume=True), BudgetExhausted)
    # The token of t=0 leaves at t=600, and the others stay until 700 and 800.
    assert isinstance(store.acquire([CLUSTER], 600.0, consume=True), BudgetGrant)
    assert 3 == store.used(CLUSTER_SCOPE, 600.0)


def test_store_release() -> None:
    store = InMemoryBudgetStore()
    grant = store.acquire([CLUSTER, SHOP], 0.0, consume=True)
    assert isinstance(grant, BudgetGrant)
    assert grant.token is not None
    assert store.release(grant.token)
    assert 0 == store.used(CLUSTER_SCOPE, 0.0)
    assert 0 == store.used(SHOP.key, 0.0)


def test_store_release_unknown() -> None:
    assert not InMemoryBudgetStore().release("42")


def test_store_drops_empty_scopes() -> None:
    store = InMemoryBudgetStore()
    for index in range(3):
        scope = BudgetScope(namespace_scope(f"team-{index}"), 1, 600.0)
        store.acquire([CLUSTER, scope], float(index), consume=True)
    assert 4 == store.scope_count()
    store.acquire([], 700.0, consume=False)
    assert 0 == store.scope_count()


def test_budget_namespace_scope() -> None:
    store = InMemoryBudgetStore()
    budget = Budget(BudgetSettings(namespace_max=1), store)
    holder = object()
    assert budget.take(holder, "delete_pod", "shop", 0.0, consume=True) is None
    exhausted = budget.take(object(), "delete_pod", "shop", 1.0, consume=True)
    assert exhausted is not None
    assert namespace_scope("shop") == exhausted.scope.key


def test_budget_no_namespace() -> None:
    store = InMemoryBudgetStore()
    budget = Budget(BudgetSettings(namespace_max=0), store)
    assert budget.take(object(), "cordon_node", None, 0.0, consume=True) is None


def test_budget_settle_release() -> None:
    store = InMemoryBudgetStore()
    budget = Budget(BudgetSettings(), store)
    holder = object()
    budget.take(holder, "delete_pod", "shop", 0.0, consume=True)
    budget.settle(holder, "delete_pod", keep=False)
    assert 0 == store.used(CLUSTER_SCOPE, 0.0)


def test_budget_settle_per_action() -> None:
    store = InMemoryBudgetStore()
    budget = Budget(BudgetSettings(), store)
    holder = object()
    budget.take(holder, "delete_pod", "shop", 0.0, consume=True)
    budget.take(holder, "isolate_pod", "shop", 0.0, consume=True)
    budget.settle(holder, "isolate_pod", keep=False)
    assert 1 == store.used(CLUSTER_SCOPE, 0.0)


def test_budget_settle_twice() -> None:
    store = InMemoryBudgetStore()
    budget = Budget(BudgetSettings(), store)
    first, second = object(), object()
    budget.take(first, "delete_pod", "shop", 0.0, consume=True)
    budget.take(second, "delete_pod", "shop", 0.0, consume=True)
    budget.settle(first, "delete_pod", keep=False)
    budget.settle(first, "delete_pod", keep=False)
    assert 1 == store.used(CLUSTER_SCOPE, 0.0)


def test_budget_forgets_unsettled() -> None:
    budget = Budget(BudgetSettings(window_s=60.0), InMemoryBudgetStore())
    budget.take(object(), "delete_pod", "shop", 0.0, consume=True)
    budget.take(object(), "delete_pod", "shop", 61.0, consume=False)
    assert 0 == budget.pending()
