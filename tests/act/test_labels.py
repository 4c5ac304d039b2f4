"""label_pod and annotate_pod: load-time key checks, value rewriting and the merge patch."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from responder.act.kube import Kube
from responder.act.kubernetes.labels import (
    AnnotatePodParameters,
    LabelPodParameters,
    annotate_pod,
    label_pod,
)
from responder.act.kubernetes.names import sanitize_label_value
from responder.act.results import Outcome
from responder.match.template import render, template_values
from tests.act.helpers import NAMESPACE, POD, POD_PATH, context, pod_alert, seed_pod
from tests.kubeapi import KubeApiServer

LONG_RULE = "Terminal shell <NA> in container " + "x" * 67


def pod_labels(server: KubeApiServer) -> dict[str, str]:
    pod = server.get_object("Pod", POD, NAMESPACE)
    assert pod is not None
    labels: dict[str, str] = pod["metadata"].get("labels", {})
    return labels


def pod_annotations(server: KubeApiServer) -> dict[str, str]:
    pod = server.get_object("Pod", POD, NAMESPACE)
    assert pod is not None
    annotations: dict[str, str] = pod["metadata"].get("annotations", {})
    return annotations


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("terminal-shell", "terminal-shell"),
        ("Terminal shell in container", "Terminal-shell-in-container"),
        ("<NA>", ""),
        ("", ""),
        ("--a b--", "a-b"),
        ("x" * 70, "x" * 63),
        ("a" * 62 + " b", "a" * 62),
        ("café au lait", "caf-au-lait"),
        ("../etc/passwd", "etc-passwd"),
        ("10.0.0.1", "10.0.0.1"),
        ("2001:db8::1", "2001-0db8-0000-0000-0000-0000-0000-0001"),
        ("2001:db8:0:1::", "2001-0db8-0000-0001-0000-0000-0000-0000"),
        ("::ffff:10.0.0.1", "0000-0000-0000-0000-0000-ffff-0a00-0001"),
        ("fe80::1%eth0", "fe80-0000-0000-0000-0000-0000-0000-0001-eth0"),
        ("a:b", "a-b"),
    ],
)
def test_sanitize_label_value(value: str, expected: str) -> None:
    assert expected == sanitize_label_value(value)


def test_label_key_invalid_at_load() -> None:
    with pytest.raises(ValidationError, match="invalid key 'bad key'"):
        LabelPodParameters.model_validate({"set": {"bad key": "x"}})


def test_label_key_prefix_too_long() -> None:
    with pytest.raises(ValidationError, match="more than 253"):
        LabelPodParameters.model_validate({"set": {"a" * 254 + "/rule": "x"}})


def test_label_key_name_too_long() -> None:
    with pytest.raises(ValidationError, match="more than 63"):
        LabelPodParameters.model_validate({"remove": ["falco.org/" + "n" * 64]})


def test_label_key_template_deferred() -> None:
    params = LabelPodParameters.model_validate({"set": {"falco.org/{{ rule }}": "x"}})
    assert {"falco.org/{{ rule }}": "x"} == params.set


def test_label_parameters_empty() -> None:
    with pytest.raises(ValidationError, match="set or remove"):
        LabelPodParameters.model_validate({})


async def test_label_set(kube: Kube, kube_api: KubeApiServer) -> None:
    seed_pod(kube_api, labels={"app": "frontend"})
    params = LabelPodParameters(set={"falco.org/rule": "terminal-shell"})
    result = await label_pod.run(context(kube), params)
    (request,) = kube_api.requests_to("PATCH", POD_PATH)
    assert Outcome.SUCCESS == result.outcome
    assert {"app": "frontend", "falco.org/rule": "terminal-shell"} == pod_labels(kube_api)
    assert f"pod {NAMESPACE}/{POD} labelled falco.org/rule=terminal-shell" == result.reason
    assert "application/merge-patch+json" == request.content_type


async def test_label_remove(kube: Kube, kube_api: KubeApiServer) -> None:
    seed_pod(kube_api, labels={"app": "frontend", "falco.org/rule": "old"})
    params = LabelPodParameters(remove=["falco.org/rule", "absent"])
    result = await label_pod.run(context(kube), params)
    (request,) = kube_api.requests_to("PATCH", POD_PATH)
    assert Outcome.SUCCESS == result.outcome
    assert {"app": "frontend"} == pod_labels(kube_api)
    assert {"falco.org/rule": None, "absent": None} == request.body["metadata"]["labels"]
    # label_pod does not read the pod, so it cannot tell which labels were set.
    expected = "labelled removed falco.org/rule if set, removed absent if set"
    assert f"pod {NAMESPACE}/{POD} {expected}" == result.reason


async def test_label_sanitizes_rule(kube: Kube, kube_api: KubeApiServer) -> None:
    seed_pod(kube_api)
    alert = pod_alert().model_copy(update={"rule": LONG_RULE})
    raw = {"set": {"falco.org/rule": "{{ rule }}"}}
    rendered = render(raw, alert, template_values(alert, "a1b2c3"))
    result = await label_pod.run(context(kube, alert), LabelPodParameters.model_validate(rendered))
    value = pod_labels(kube_api)["falco.org/rule"]
    assert 100 == len(LONG_RULE)
    assert Outcome.SUCCESS == result.outcome
    assert "Terminal-shell-NA-in-container-" + "x" * 32 == value
    assert "rewrote the value of falco.org/rule" in result.reason


async def test_label_invalid_key_skipped(kube: Kube, kube_api: KubeApiServer) -> None:
    seed_pod(kube_api)
    # A key that a template rendered into an invalid one reaches the action unvalidated.
    params = LabelPodParameters.model_construct(
        set={"falco.org/proc bash": "x", "falco.org/rule": "shell"}, remove=[]
    )
    result = await label_pod.run(context(kube), params)
    assert Outcome.SUCCESS == result.outcome
    assert {"falco.org/rule": "shell"} == pod_labels(kube_api)
    assert "skipped invalid key 'falco.org/proc bash'" in result.reason


async def test_label_only_invalid_keys(kube: Kube, kube_api: KubeApiServer) -> None:
    seed_pod(kube_api)
    params = LabelPodParameters.model_construct(set={"a b": "x"}, remove=[])
    result = await label_pod.run(context(kube), params)
    assert Outcome.SKIPPED == result.outcome
    assert [] == kube_api.requests_to("PATCH", POD_PATH)


async def test_label_pod_gone(kube: Kube, kube_api: KubeApiServer) -> None:
    params = LabelPodParameters(set={"falco.org/rule": "shell"})
    result = await label_pod.run(context(kube), params)
    assert Outcome.ALREADY_GONE == result.outcome
    assert f"pod {NAMESPACE}/{POD} not found" == result.reason


async def test_label_dry_run(kube: Kube, kube_api: KubeApiServer) -> None:
    seed_pod(kube_api)
    params = LabelPodParameters(set={"falco.org/rule": "shell"})
    result = await label_pod.run(context(kube, dry_run=True), params)
    (request,) = kube_api.requests_to("PATCH", POD_PATH)
    assert Outcome.DRY_RUN == result.outcome
    assert {} == pod_labels(kube_api)
    assert {"dryRun": "All"} == request.query
    assert f"would label pod {NAMESPACE}/{POD} falco.org/rule=shell" == result.reason


async def test_label_forbidden(kube: Kube, kube_api: KubeApiServer) -> None:
    seed_pod(kube_api)
    kube_api.fail_next("PATCH", POD_PATH, 403)
    params = LabelPodParameters(set={"falco.org/rule": "shell"})
    result = await label_pod.run(context(kube), params)
    assert Outcome.FAILED == result.outcome
    assert result.reason.startswith("forbidden: grant patch on pods")


async def test_annotate_keeps_value(kube: Kube, kube_api: KubeApiServer) -> None:
    seed_pod(kube_api)
    value = "Terminal shell <NA> in container: bash -c 'id'"
    params = AnnotatePodParameters(set={"falco.org/output": value})
    result = await annotate_pod.run(context(kube), params)
    assert Outcome.SUCCESS == result.outcome
    assert {"falco.org/output": value} == pod_annotations(kube_api)
    assert f"pod {NAMESPACE}/{POD} annotated falco.org/output" == result.reason


async def test_annotate_remove(kube: Kube, kube_api: KubeApiServer) -> None:
    seed_pod(kube_api, annotations={"falco.org/output": "x", "keep": "y"})
    params = AnnotatePodParameters(remove=["falco.org/output", "absent"])
    result = await annotate_pod.run(context(kube), params)
    assert Outcome.SUCCESS == result.outcome
    assert {"keep": "y"} == pod_annotations(kube_api)
    expected = "annotated removed falco.org/output; absent was not set"
    assert f"pod {NAMESPACE}/{POD} {expected}" == result.reason


async def test_annotate_remove_absent_only(kube: Kube, kube_api: KubeApiServer) -> None:
    seed_pod(kube_api, annotations={"keep": "y"})
    result = await annotate_pod.run(context(kube), AnnotatePodParameters(remove=["absent"]))
    assert Outcome.SKIPPED == result.outcome
    assert f"nothing to change on pod {NAMESPACE}/{POD}: absent was not set" == result.reason
    assert [] == kube_api.requests_to("PATCH", POD_PATH)


async def test_annotate_cut_to_limit(kube: Kube, kube_api: KubeApiServer) -> None:
    seed_pod(kube_api, annotations={"big": "b" * 200_000})
    params = AnnotatePodParameters(set={"falco.org/output": "o" * 100_000})
    result = await annotate_pod.run(context(kube), params)
    total = sum(len(k) + len(v) for k, v in pod_annotations(kube_api).items())
    assert Outcome.SUCCESS == result.outcome
    assert 256 * 1024 == total
    assert "cut the value of falco.org/output" in result.reason
