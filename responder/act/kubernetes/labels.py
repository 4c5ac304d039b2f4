"""The ``label_pod`` and ``annotate_pod`` actions: mark the alert's pod for people and selectors.

Values often come from the alert through templates. A value that is not a valid label value is
rewritten into one. A key that renders into an invalid key is skipped and reported, so that one
bad entry does not cost the others. The change is a JSON merge patch on ``metadata``, where
a null value deletes the key and every key not named is left alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import Field, model_validator

from responder.act.base import ActionContext, Parameters, PolicyRule, action
from responder.act.kube import Kube, nested
from responder.act.kubernetes.common import (
    MERGE_PATCH,
    api_failure,
    no_target,
    pod_subject,
    require_kube,
)
from responder.act.kubernetes.names import (
    ANNOTATIONS_TOTAL_MAX,
    check_qualified_name,
    sanitize_label_value,
    validate_keys,
)
from responder.act.results import ActionResult, Outcome
from responder.errors import KubeError
from responder.ingest.alert import PodTarget


class MetadataParameters(Parameters):
    """Keys to set and keys to remove; keys are checked when the playbook is loaded."""

    set: dict[str, str] = Field(default_factory=dict)
    remove: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check_keys(self) -> MetadataParameters:
        validate_keys(list(self.set), "set")
        validate_keys(self.remove, "remove")
        if not self.set and not self.remove:
            raise ValueError("set or remove must name at least one key")
        return self


class LabelPodParameters(MetadataParameters):
    """Parameters of ``label_pod``: values are made into valid label values when they are not."""


class AnnotatePodParameters(MetadataParameters):
    """Parameters of ``annotate_pod``: values are kept as they are."""


@dataclass
class MetadataChange:
    """The merge patch to send and the sentences that describe it."""

    patch: dict[str, str | None] = field(default_factory=dict)
    applied: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def plan_labels(params: MetadataParameters) -> MetadataChange:
    """Build the label patch: rewrite invalid values, skip invalid keys and note both."""
    change = MetadataChange()
    for key, value in params.set.items():
        problem = check_qualified_name(key)
        if problem is not None:
            change.notes.append(f"skipped {problem}")
            continue
        clean = sanitize_label_value(value)
        if clean != value:
            change.notes.append(f"rewrote the value of {key} into a valid label value")
        change.patch[key] = clean
        change.applied.append(f"{key}={clean}")
    _plan_removals(params.remove, change, None)
    return change


def plan_annotations(params: MetadataParameters, current: dict[str, str]) -> MetadataChange:
    """Build the annotation patch, cutting values that would pass the API server's size limit."""
    change = MetadataChange()
    unchanged = {
        k: v for k, v in current.items() if k not in params.set and k not in params.remove
    }
    budget = ANNOTATIONS_TOTAL_MAX - sum(len(k) + len(v) for k, v in unchanged.items())
    for key, value in params.set.items():
        problem = check_qualified_name(key)
        if problem is not None:
            change.notes.append(f"skipped {problem}")
            continue
        room = budget - len(key)
        if room < 0:
            change.notes.append(f"skipped {key}: the annotations would exceed 256 KiB")
            continue
        if len(value) > room:
            value = value[:room]
            change.notes.append(f"cut the value of {key} to {room} characters to stay in 256 KiB")
        budget -= len(key) + len(value)
        change.patch[key] = value
        change.applied.append(key)
    _plan_removals(params.remove, change, current)
    return change


def _plan_removals(
    keys: list[str], change: MetadataChange, current: dict[str, str] | None
) -> None:
    """Add the removals to the patch.

    ``current`` is None when the pod was not read, as for labels. The sentence of a removal
    then adds "if set", because the key may not have been there."""
    for key in keys:
        if key in change.patch:
            continue
        problem = check_qualified_name(key)
        if problem is not None:
            change.notes.append(f"skipped {problem}")
            continue
        if current is not None and key not in current:
            change.notes.append(f"{key} was not set")
            continue
        change.patch[key] = None
        change.applied.append(f"removed {key}" if current is not None else f"removed {key} if set")


async def patch_pod_metadata(
    kube: Kube, target: PodTarget, field_name: str, patch: dict[str, str | None], dry_run: bool
) -> None:
    body: dict[str, Any] = {"metadata": {field_name: patch}}
    await kube.read(
        kube.core.patch_namespaced_pod,
        target.pod,
        target.namespace,
        body,
        dry_run=dry_run,
        _content_type=MERGE_PATCH,
    )


@action(
    "label_pod",
    parameters=LabelPodParameters,
    summary="Set or remove labels on the alert's pod.",
    rbac=(PolicyRule("", "pods", ("patch",)),),
)
async def label_pod(ctx: ActionContext, params: LabelPodParameters) -> ActionResult:
    return await _apply(ctx, "label_pod", params, "labels")


@action(
    "annotate_pod",
    parameters=AnnotatePodParameters,
    summary="Set or remove annotations on the alert's pod.",
    rbac=(PolicyRule("", "pods", ("get", "patch")),),
)
async def annotate_pod(ctx: ActionContext, params: AnnotatePodParameters) -> ActionResult:
    return await _apply(ctx, "annotate_pod", params, "annotations")


async def _apply(
    ctx: ActionContext, name: str, params: MetadataParameters, field_name: str
) -> ActionResult:
    target = ctx.pod
    if target is None:
        return no_target(name, ctx)
    kube = require_kube(name, ctx)
    if isinstance(kube, ActionResult):
        return kube
    subject = pod_subject(target)
    verb = "get"
    try:
        if field_name == "labels":
            change = plan_labels(params)
        else:
            pod = await kube.read(kube.core.read_namespaced_pod, target.pod, target.namespace)
            current = dict(nested(pod, "metadata", "annotations") or {})
            change = plan_annotations(params, current)
        if not change.patch:
            reason = f"nothing to change on {subject}: " + "; ".join(change.notes)
            return ActionResult(name, Outcome.SKIPPED, reason)
        verb = "patch"
        await patch_pod_metadata(kube, target, field_name, change.patch, ctx.dry_run)
    except KubeError as error:
        if error.status == 404:
            return ActionResult(name, Outcome.ALREADY_GONE, f"{subject} not found")
        return api_failure(ctx, name, error, verb=verb, resource="pods", subject=subject)

    if field_name == "labels":
        done, would = "labelled", "would label"
    else:
        done, would = "annotated", "would annotate"
    changes = ", ".join(change.applied)
    notes = "".join(f"; {note}" for note in change.notes)
    details = {field_name: change.patch}
    if ctx.dry_run:
        reason = f"{would} {subject} {changes}{notes}"
        return ActionResult(name, Outcome.DRY_RUN, reason, details=details)
    reason = f"{subject} {done} {changes}{notes}"
    return ActionResult(name, Outcome.SUCCESS, reason, details=details)
