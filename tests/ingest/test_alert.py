"""The alert model: priorities, exact times, typed fields, and the target an alert names."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from responder.ingest.alert import Alert, HostTarget, PodTarget, Priority, Timestamp
from tests.samples import host_alert_document, sample_alert, sample_document, sample_lines


@pytest.mark.parametrize("name", ["falco-direct", "falcosidekick"])
def test_every_sample_line_parses(name: str) -> None:
    lines = sample_lines(name)
    alerts = [Alert.model_validate_json(line) for line in lines]
    assert len(lines) == len(alerts)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("INFO", Priority.INFORMATIONAL),
        ("info", Priority.INFORMATIONAL),
        ("Informational", Priority.INFORMATIONAL),
        ("WARNING", Priority.WARNING),
        ("warn", Priority.WARNING),
        ("Emergency", Priority.EMERGENCY),
        (" critical ", Priority.CRITICAL),
        ("DEBUG", Priority.DEBUG),
    ],
)
def test_priority_aliases(text: str, expected: Priority) -> None:
    assert expected == Priority.parse(text)


def test_priority_rank_order() -> None:
    names = [
        "emergency",
        "alert",
        "critical",
        "error",
        "warning",
        "notice",
        "informational",
        "debug",
    ]
    ranked = sorted((Priority.parse(name) for name in names), reverse=True)
    assert names == [str(priority) for priority in ranked]


def test_priority_invalid_names_choices() -> None:
    with pytest.raises(ValueError, match=r"invalid priority 'severe'.*emergency"):
        Priority.parse("severe")


@pytest.mark.parametrize(
    ("text", "expected_ns"),
    [
        ("2026-03-14T12:31:06.118273645Z", 1773491466118273645),
        ("2026-03-14T13:02:11.45009312Z", 1773493331450093120),
        ("2026-03-14T13:15:44Z", 1773494144000000000),
        ("2026-03-14T14:15:44.000000001+01:00", 1773494144000000001),
    ],
    ids=["falco-nanoseconds", "sidekick-trimmed", "whole-seconds", "offset"],
)
def test_time_exact_to_nanosecond(text: str, expected_ns: int) -> None:
    assert expected_ns == Timestamp.parse(text).epoch_ns


def test_time_formats_back_exactly() -> None:
    text = "2026-03-14T12:31:06.118273645Z"
    assert text == Timestamp.parse(text).isoformat()


def test_time_invalid_rejected() -> None:
    with pytest.raises(ValueError, match="invalid time '14/03/2026'"):
        Timestamp.parse("14/03/2026")


def test_nineteen_digit_integer_exact() -> None:
    alert = sample_alert("falco-direct", 1)
    assert 1773491466118273645 == alert.output_fields["evt.time"]


def test_field_types_kept() -> None:
    alert = sample_alert("falco-direct", 14)
    assert alert.output_fields["container.privileged"] is False
    assert 48213 == alert.output_fields["proc.pid"]


def test_null_field_reads_as_missing() -> None:
    alert = sample_alert("falco-direct", 12)
    assert alert.output_fields["proc.aname[5]"] is None
    assert alert.field("proc.aname[5]") is None


def test_pod_target_from_k8s_fields() -> None:
    alert = sample_alert("falco-direct", 1)
    expected = PodTarget("shop", "frontend-6d5f7b9c8d-x2kqp", "3ad7b26ded6d", "node-1")
    assert expected == alert.target


def test_pod_target_from_k8smeta_fields() -> None:
    document = sample_document("falco-direct", 13)
    for key in ("k8s.ns.name", "k8s.pod.name"):
        document["output_fields"][key] = "<NA>"
    alert = Alert.model_validate(document)
    assert PodTarget("ci", "runner-5b7d9c8f4-8xkz2", "c0ffee123456", "node-2") == alert.target


def test_host_target_when_container_is_host() -> None:
    alert = Alert.model_validate(host_alert_document())
    assert HostTarget("node-1") == alert.target


@pytest.mark.parametrize("missing", [None, "", "<NA>"], ids=["null", "empty", "NA"])
def test_missing_pod_name_is_no_target(missing: object) -> None:
    document = sample_document("falco-direct", 1)
    document["output_fields"]["k8s.pod.name"] = missing
    assert Alert.model_validate(document).target is None


def test_audit_pod_target() -> None:
    alert = sample_alert("falcosidekick", 8)
    assert PodTarget("shop", "frontend-6d5f7b9c8d-x2kqp") == alert.target


def test_audit_non_pod_resource_no_target() -> None:
    document = sample_document("falcosidekick", 8)
    document["output_fields"]["ka.target.resource"] = "configmaps"
    assert Alert.model_validate(document).target is None


def test_cloudtrail_no_target() -> None:
    assert sample_alert("falcosidekick", 9).target is None


@pytest.mark.parametrize("line", [10, 13], ids=["sidekick-test-rule", "falco-internal"])
def test_internal_events_flagged(line: int) -> None:
    alert = sample_alert("falcosidekick", line)
    assert alert.is_internal
    assert alert.target is None


def test_sidekick_escapes_decoded() -> None:
    alert = sample_alert("falcosidekick", 2)
    assert "ls > /dev/null && id" in alert.output_fields["proc.cmdline"]


def test_non_ascii_and_long_output() -> None:
    document = sample_document("falco-direct", 1)
    document["output"] = "Ünïcödé ✓ 日本語 " * 400
    document["output_fields"]["proc.cmdline"] = "echo 'größe'"
    alert = Alert.model_validate_json(json.dumps(document))
    assert document["output"] == alert.output
    assert "echo 'größe'" == alert.output_fields["proc.cmdline"]


def test_missing_rule_rejected() -> None:
    document = sample_document("falco-direct", 1)
    del document["rule"]
    with pytest.raises(ValidationError, match="rule"):
        Alert.model_validate(document)


def test_round_trip_keeps_time() -> None:
    alert = sample_alert("falco-direct", 2)
    again = Alert.model_validate(alert.to_json())
    assert alert.time == again.time
    assert alert.output_fields == again.output_fields


@pytest.mark.parametrize(
    ("namespace", "pod"),
    [("shop", ".."), ("shop", "a/b"), ("..", "web-0"), ("Shop", "web-0"), ("shop", "web_0")],
    ids=["dotdot-pod", "slash", "dotdot-namespace", "uppercase", "underscore"],
)
def test_invalid_names_no_target(namespace: str, pod: str) -> None:
    document = sample_document("falco-direct", 1)
    document["output_fields"]["k8s.ns.name"] = namespace
    document["output_fields"]["k8s.pod.name"] = pod
    assert Alert.model_validate(document).target is None


@pytest.mark.parametrize("text", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_time_outside_datetime_range(text: str) -> None:
    with pytest.raises(ValueError, match="outside the years 1 to 9999"):
        Timestamp.parse(text)
