"""create_event: a schema-valid core/v1 Event on the alert's pod."""

from __future__ import annotations

import re
from typing import Any

from responder.act.kube import Kube
from responder.act.kubernetes.event import CreateEventParameters, create_event
from responder.act.results import ActionResult, Outcome
from tests.act.helpers import NAMESPACE, POD, context, seed_pod
from tests.kubeapi import KubeApiServer
from tests.kubeapi.resources import EVENTS

EVENTS_PATH = f"/api/v1/namespaces/{NAMESPACE}/events"
PREVIOUS = [
    ActionResult("isolate_pod", Outcome.SUCCESS, "isolated"),
    ActionResult("delete_pod", Outcome.SKIPPED, "skipped"),
]


def stored_event(server: KubeApiServer) -> dict[str, Any]:
    (event,) = server.list_objects("Event", NAMESPACE)
    return event


async def test_event_involved_object(kube: Kube, kube_api: KubeApiServer) -> None:
    uid = seed_pod(kube_api)["metadata"]["uid"]
    result = await create_event.run(context(kube), CreateEventParameters())
    event = stored_event(kube_api)
    assert Outcome.SUCCESS == result.outcome
    assert {
        "apiVersion": "v1",
        "kind": "Pod",
        "name": POD,
        "namespace": NAMESPACE,
        "uid": uid,
        "fieldPath": "spec.containers{frontend}",
    } == event["involvedObject"]


async def test_event_fields(kube: Kube, kube_api: KubeApiServer) -> None:
    seed_pod(kube_api)
    await create_event.run(context(kube), CreateEventParameters())
    event = stored_event(kube_api)
    assert "Warning" == event["type"]
    assert "FalcoResponse" == event["reason"]
    assert {"component": "falco-responder"} == event["source"]
    assert "falco-responder" == event["reportingComponent"]
    assert event["reportingInstance"].startswith("falco-responder-")
    assert event["firstTimestamp"] == event["lastTimestamp"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", event["firstTimestamp"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", event["eventTime"])
    assert re.fullmatch(re.escape(POD) + r"\.[0-9a-f]{16}", event["metadata"]["name"])


async def test_event_default_message(kube: Kube, kube_api: KubeApiServer) -> None:
    seed_pod(kube_api)
    await create_event.run(context(kube, previous=PREVIOUS), CreateEventParameters())
    assert (
        "Falco rule 'Terminal shell in container' matched playbook 'shell-in-container'; "
        "steps: isolate_pod success, delete_pod skipped"
    ) == stored_event(kube_api)["message"]


async def test_event_custom_message(kube: Kube, kube_api: KubeApiServer) -> None:
    seed_pod(kube_api)
    params = CreateEventParameters(reason="ShellSpawned", message="m" * 2000)
    await create_event.run(context(kube), params)
    event = stored_event(kube_api)
    assert "ShellSpawned" == event["reason"]
    assert 1024 == len(event["message"])


async def test_event_schema_valid(kube: Kube, kube_api: KubeApiServer) -> None:
    seed_pod(kube_api)
    await create_event.run(context(kube), CreateEventParameters())
    kube_api.validator.validate(EVENTS, stored_event(kube_api))


async def test_event_dry_run(kube: Kube, kube_api: KubeApiServer) -> None:
    seed_pod(kube_api)
    result = await create_event.run(context(kube, dry_run=True), CreateEventParameters())
    (request,) = kube_api.requests_to("POST", EVENTS_PATH)
    assert Outcome.DRY_RUN == result.outcome
    assert [] == kube_api.list_objects("Event", NAMESPACE)
    assert {"dryRun": "All"} == request.query


async def test_event_forbidden(kube: Kube, kube_api: KubeApiServer) -> None:
    seed_pod(kube_api)
    kube_api.fail_next("POST", EVENTS_PATH, 403)
    result = await create_event.run(context(kube), CreateEventParameters())
    assert Outcome.FAILED == result.outcome
    assert result.reason.startswith("forbidden: grant create on events")


async def test_event_pod_not_found(kube: Kube, kube_api: KubeApiServer) -> None:
    result = await create_event.run(context(kube), CreateEventParameters())
    assert Outcome.ALREADY_GONE == result.outcome
    assert [] == kube_api.requests_to("POST", EVENTS_PATH)


async def test_event_resumed_not_duplicated(kube: Kube, kube_api: KubeApiServer) -> None:
    seed_pod(kube_api)
    first = await create_event.run(context(kube), CreateEventParameters())
    again = await create_event.run(context(kube), CreateEventParameters())
    assert Outcome.SUCCESS == first.outcome
    assert Outcome.SUCCESS == again.outcome
    assert "already created" in again.reason
    assert 1 == len(kube_api.list_objects("Event", NAMESPACE))


async def test_event_per_step(kube: Kube, kube_api: KubeApiServer) -> None:
    seed_pod(kube_api)
    first = await create_event.run(context(kube), CreateEventParameters())
    second = await create_event.run(context(kube, previous=PREVIOUS), CreateEventParameters())
    assert Outcome.SUCCESS == first.outcome
    assert Outcome.SUCCESS == second.outcome
    assert 2 == len(kube_api.list_objects("Event", NAMESPACE))
