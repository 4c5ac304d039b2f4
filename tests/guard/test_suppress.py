"""Suppressor: deduplication window, cooldown per playbook and target, digest, key bounds."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from responder.clock import FakeClock
from responder.guard.settings import SuppressSettings
from responder.guard.suppress import Suppressor, dedup_key, is_volatile
from responder.guard.suppress_store import SWEEP_INTERVAL_S, InMemorySuppressionStore
from tests.guard.helpers import PLAYBOOK, POD, host_alert, in_namespace, make_alert

OTHER_PLAYBOOK = "notify-security"


def make_suppressor(
    clock: FakeClock, registry: CollectorRegistry, **settings: object
) -> Suppressor:
    return Suppressor(SuppressSettings.model_validate(settings), clock=clock, registry=registry)


def suppressed(registry: CollectorRegistry, reason: str) -> float | None:
    return registry.get_sample_value("responder_alerts_suppressed_total", {"reason": reason})


def key_count(suppressor: Suppressor) -> tuple[int, int]:
    store = suppressor.store
    assert isinstance(store, InMemorySuppressionStore)
    return store.key_count()


@pytest.mark.parametrize(
    "name",
    [
        "evt.time",
        "evt.rawtime",
        "evt.num",
        "proc.pid",
        "proc.ppid",
        "thread.tid",
        "fd.cport",
        "proc.apid[2]",
        "ka.auditid",
    ],
)
def test_volatile_field(name: str) -> None:
    assert is_volatile(name)


@pytest.mark.parametrize(
    "name", ["proc.cmdline", "proc.name", "proc.aname[2]", "user.name", "fd.name", "k8s.pod.name"]
)
def test_stable_field(name: str) -> None:
    assert not is_volatile(name)


def test_key_ignores_uuid_and_time() -> None:
    first = make_alert(uuid="7f3c", time="2026-03-14T12:31:07Z")
    assert dedup_key(make_alert(), None) == dedup_key(first, None)


def test_key_fields_given() -> None:
    other_user = make_alert({"user.name": "nobody"})
    assert dedup_key(make_alert(), ["proc.cmdline"]) == dedup_key(other_user, ["proc.cmdline"])


def test_key_fields_empty() -> None:
    other_cmdline = make_alert({"proc.cmdline": "sh -c id"})
    assert dedup_key(make_alert(), []) == dedup_key(other_cmdline, [])


def test_key_rule_differs() -> None:
    other_rule = make_alert(rule="Read sensitive file untrusted")
    assert dedup_key(make_alert(), None) != dedup_key(other_rule, None)


def test_key_target_differs() -> None:
    other_pod = in_namespace("shop", "frontend-6d5f7b9c8d-q9w8e")
    assert dedup_key(make_alert(), None) != dedup_key(other_pod, None)


def test_duplicate_first_passes(clock: FakeClock, registry: CollectorRegistry) -> None:
    assert not make_suppressor(clock, registry).duplicate(make_alert())


def test_duplicate_identical(clock: FakeClock, registry: CollectorRegistry) -> None:
    suppressor = make_suppressor(clock, registry)
    suppressor.duplicate(make_alert())
    clock.advance(1)
    assert suppressor.duplicate(make_alert())
    assert 1.0 == suppressed(registry, "duplicate")


def test_duplicate_other_pid(clock: FakeClock, registry: CollectorRegistry) -> None:
    suppressor = make_suppressor(clock, registry)
    suppressor.duplicate(make_alert())
    assert suppressor.duplicate(make_alert({"proc.pid": 4243, "evt.time": 1773491467}))


def test_duplicate_other_time(clock: FakeClock, registry: CollectorRegistry) -> None:
    suppressor = make_suppressor(clock, registry)
    suppressor.duplicate(make_alert())
    assert suppressor.duplicate(make_alert(time="2026-03-14T12:31:36Z"))


def test_duplicate_other_cmdline(clock: FakeClock, registry: CollectorRegistry) -> None:
    suppressor = make_suppressor(clock, registry)
    suppressor.duplicate(make_alert())
    assert not suppressor.duplicate(make_alert({"proc.cmdline": "bash -i"}))


def test_duplicate_window_from_first(clock: FakeClock, registry: CollectorRegistry) -> None:
    # The window does not slide with each duplicate, so a steady stream still gets responses.
    suppressor = make_suppressor(clock, registry)
    suppressor.duplicate(make_alert())
    clock.advance(50)
    suppressor.duplicate(make_alert())
    clock.advance(10)
    assert not suppressor.duplicate(make_alert())


def test_duplicate_after_window(clock: FakeClock, registry: CollectorRegistry) -> None:
    suppressor = make_suppressor(clock, registry)
    suppressor.duplicate(make_alert())
    clock.advance(61)
    assert not suppressor.duplicate(make_alert())


def test_duplicate_disabled(clock: FakeClock, registry: CollectorRegistry) -> None:
    suppressor = make_suppressor(clock, registry, dedup_window_s=0)
    suppressor.duplicate(make_alert())
    assert not suppressor.duplicate(make_alert())
    assert (0, 0) == key_count(suppressor)


def test_digest_after_window(clock: FakeClock, registry: CollectorRegistry) -> None:
    suppressor = make_suppressor(clock, registry)
    suppressor.duplicate(make_alert())
    assert [] == suppressor.digest(make_alert(), PLAYBOOK)
    for _ in range(12):
        clock.advance(1)
        suppressor.duplicate(make_alert({"proc.pid": 5000}))
    clock.advance(49)
    assert not suppressor.duplicate(make_alert())
    expected = ["12 identical alerts suppressed in the last 61 s"]
    assert expected == suppressor.digest(make_alert(), PLAYBOOK)


def test_digest_resets(clock: FakeClock, registry: CollectorRegistry) -> None:
    suppressor = make_suppressor(clock, registry)
    suppressor.duplicate(make_alert())
    suppressor.duplicate(make_alert())
    suppressor.digest(make_alert(), PLAYBOOK)
    assert [] == suppressor.digest(make_alert(), PLAYBOOK)


def test_digest_singular(clock: FakeClock, registry: CollectorRegistry) -> None:
    suppressor = make_suppressor(clock, registry)
    suppressor.duplicate(make_alert())
    suppressor.duplicate(make_alert())
    clock.advance(5)
    expected = ["1 identical alert suppressed in the last 5 s"]
    assert expected == suppressor.digest(make_alert(), PLAYBOOK)


def test_digest_per_playbook(clock: FakeClock, registry: CollectorRegistry) -> None:
    suppressor = make_suppressor(clock, registry)
    suppressor.duplicate(make_alert())
    suppressor.duplicate(make_alert())
    suppressor.digest(make_alert(), PLAYBOOK)
    expected = ["1 identical alert suppressed in the last 0 s"]
    assert expected == suppressor.digest(make_alert(), OTHER_PLAYBOOK)


def test_digest_unknown_alert(clock: FakeClock, registry: CollectorRegistry) -> None:
    assert [] == make_suppressor(clock, registry).digest(make_alert(), PLAYBOOK)


def test_cooldown_first_passes(clock: FakeClock, registry: CollectorRegistry) -> None:
    assert not make_suppressor(clock, registry).cooldown(make_alert(), PLAYBOOK, None)


def test_cooldown_same_target(clock: FakeClock, registry: CollectorRegistry) -> None:
    suppressor = make_suppressor(clock, registry)
    suppressor.cooldown(make_alert(), PLAYBOOK, None)
    clock.advance(299)
    assert suppressor.cooldown(make_alert({"proc.cmdline": "sh"}), PLAYBOOK, None)
    assert 1.0 == suppressed(registry, "cooldown")


def test_cooldown_other_target(clock: FakeClock, registry: CollectorRegistry) -> None:
    suppressor = make_suppressor(clock, registry)
    suppressor.cooldown(make_alert(), PLAYBOOK, None)
    other_pod = in_namespace("shop", "frontend-6d5f7b9c8d-q9w8e")
    assert not suppressor.cooldown(other_pod, PLAYBOOK, None)


def test_cooldown_other_playbook(clock: FakeClock, registry: CollectorRegistry) -> None:
    suppressor = make_suppressor(clock, registry)
    suppressor.cooldown(make_alert(), PLAYBOOK, None)
    assert not suppressor.cooldown(make_alert(), OTHER_PLAYBOOK, None)


def test_cooldown_ends(clock: FakeClock, registry: CollectorRegistry) -> None:
    suppressor = make_suppressor(clock, registry)
    suppressor.cooldown(make_alert(), PLAYBOOK, None)
    clock.advance(300)
    assert not suppressor.cooldown(make_alert(), PLAYBOOK, None)


def test_cooldown_playbook_override(clock: FakeClock, registry: CollectorRegistry) -> None:
    suppressor = make_suppressor(clock, registry)
    suppressor.cooldown(make_alert(), PLAYBOOK, 10.0)
    clock.advance(10)
    assert not suppressor.cooldown(make_alert(), PLAYBOOK, 10.0)


def test_cooldown_zero(clock: FakeClock, registry: CollectorRegistry) -> None:
    suppressor = make_suppressor(clock, registry)
    suppressor.cooldown(make_alert(), PLAYBOOK, 0.0)
    assert not suppressor.cooldown(make_alert(), PLAYBOOK, 0.0)


def test_cooldown_no_target(clock: FakeClock, registry: CollectorRegistry) -> None:
    # Alerts that name no Kubernetes object share a cooldown only when they are identical.
    suppressor = make_suppressor(clock, registry)
    cloud = make_alert(source="aws_cloudtrail")
    suppressor.cooldown(cloud, PLAYBOOK, None)
    other = make_alert({"user.name": "admin"}, source="aws_cloudtrail")
    assert not suppressor.cooldown(other, PLAYBOOK, None)


def test_cooldown_digest(clock: FakeClock, registry: CollectorRegistry) -> None:
    suppressor = make_suppressor(clock, registry)
    suppressor.cooldown(make_alert(), PLAYBOOK, None)
    for _ in range(2):
        clock.advance(100)
        suppressor.cooldown(make_alert(), PLAYBOOK, None)
    clock.advance(110)
    assert not suppressor.cooldown(make_alert(), PLAYBOOK, None)
    expected = [
        f"2 alerts on shop/{POD} suppressed in the last 310 s by the 300 s cooldown of "
        f"playbook {PLAYBOOK}"
    ]
    assert expected == suppressor.digest(make_alert(), PLAYBOOK)


def test_cooldown_digest_resets(clock: FakeClock, registry: CollectorRegistry) -> None:
    suppressor = make_suppressor(clock, registry)
    suppressor.cooldown(make_alert(), PLAYBOOK, None)
    suppressor.cooldown(make_alert(), PLAYBOOK, None)
    suppressor.digest(make_alert(), PLAYBOOK)
    assert [] == suppressor.digest(make_alert(), PLAYBOOK)


def test_keys_bounded(clock: FakeClock, registry: CollectorRegistry) -> None:
    suppressor = make_suppressor(clock, registry, max_keys=3)
    for index in range(4):
        suppressor.duplicate(make_alert({"proc.cmdline": f"bash {index}"}))
    assert (3, 0) == key_count(suppressor)
    labels = {"kind": "dedup"}
    assert 1.0 == registry.get_sample_value("responder_suppression_keys_evicted_total", labels)


def test_keys_evict_oldest(clock: FakeClock, registry: CollectorRegistry) -> None:
    suppressor = make_suppressor(clock, registry, max_keys=2)
    suppressor.duplicate(make_alert({"proc.cmdline": "bash 0"}))
    suppressor.duplicate(make_alert({"proc.cmdline": "bash 1"}))
    suppressor.duplicate(make_alert({"proc.cmdline": "bash 0"}))
    suppressor.duplicate(make_alert({"proc.cmdline": "bash 2"}))
    # "bash 1" was the least recently seen, so it was dropped and gets a response again.
    assert suppressor.duplicate(make_alert({"proc.cmdline": "bash 0"}))
    assert not suppressor.duplicate(make_alert({"proc.cmdline": "bash 1"}))


def test_keys_cooldown_bounded(clock: FakeClock, registry: CollectorRegistry) -> None:
    suppressor = make_suppressor(clock, registry, max_keys=2)
    for index in range(3):
        suppressor.cooldown(in_namespace("shop", f"web-{index}"), PLAYBOOK, None)
    assert (0, 2) == key_count(suppressor)


def test_keys_expire(clock: FakeClock, registry: CollectorRegistry) -> None:
    suppressor = make_suppressor(clock, registry)
    for index in range(5):
        suppressor.duplicate(make_alert({"proc.cmdline": f"bash {index}"}))
        suppressor.cooldown(in_namespace("shop", f"web-{index}"), PLAYBOOK, None)
    clock.advance(300 + SWEEP_INTERVAL_S)
    suppressor.duplicate(host_alert())
    assert (1, 0) == key_count(suppressor)


def test_keys_kept_for_digest(clock: FakeClock, registry: CollectorRegistry) -> None:
    suppressor = make_suppressor(clock, registry)
    suppressor.duplicate(make_alert())
    suppressor.duplicate(make_alert())
    clock.advance(600)
    suppressor.duplicate(host_alert())
    assert (2, 0) == key_count(suppressor)


def test_keys_retention(clock: FakeClock, registry: CollectorRegistry) -> None:
    suppressor = make_suppressor(clock, registry, digest_retention_s=120)
    suppressor.duplicate(make_alert())
    suppressor.duplicate(make_alert())
    clock.advance(120)
    suppressor.duplicate(host_alert())
    assert (1, 0) == key_count(suppressor)


def test_node_and_pod_cooldowns_apart(clock: FakeClock, registry: CollectorRegistry) -> None:
    suppressor = make_suppressor(clock, registry, cooldown_s=300)
    node = make_alert({"container.id": "host"}, hostname="web-1")
    pod = make_alert({"k8s.ns.name": "node", "k8s.pod.name": "web-1"})
    assert "node/web-1" == str(node.target)
    assert "node/web-1" == str(pod.target)
    assert not suppressor.cooldown(node, PLAYBOOK, None)
    assert not suppressor.cooldown(pod, PLAYBOOK, None)
