"""The ``isolate_pod`` action: cut the alert's pod, or its whole workload, off the network.

A NetworkPolicy with policyTypes Ingress and Egress and no ingress rules denies all ingress,
and allows only the egress the playbook names. With ``scope: pod`` the policy selects the pod
through a quarantine label that the action adds to the pod. With ``scope: workload`` it uses the
selector of the pod's ReplicaSet, StatefulSet or DaemonSet. A policy of the same name that lacks
the responder's managed-by label belongs to someone else and is never changed.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import Field, field_validator

from responder.act.base import ActionContext, Parameters, PolicyRule, action
from responder.act.kube import Kube, nested
from responder.act.kubernetes.common import (
    JSON_PATCH,
    MANAGED_BY_LABEL,
    MANAGER,
    MERGE_PATCH,
    api_failure,
    pod_subject,
    verified_pod,
)
from responder.act.kubernetes.names import check_dns_label, check_qualified_name
from responder.act.kubernetes.quarantine import (
    QUARANTINE_LABEL,
    EgressAllowance,
    is_managed,
    normalize,
    pod_policy_name,
    policy_body,
    policy_spec,
    quarantine_label_value,
    replace_spec_patch,
    workload_policy_name,
)
from responder.act.results import CHANGED, ActionResult, Outcome
from responder.errors import KubeError
from responder.guard.target import VerifiedPod
from responder.guard.workload import OwnerKind, owner_kind

NAME = "isolate_pod"


class IsolatePodParameters(Parameters):
    """Parameters of ``isolate_pod``."""

    scope: Literal["pod", "workload"] = "pod"
    allow_dns: bool = True
    dns_namespace: str = "kube-system"
    dns_pod_labels: dict[str, str] = Field(default_factory=lambda: {"k8s-app": "kube-dns"})
    allow_cidrs: list[str] = Field(default_factory=list)
    allow_namespaces: list[str] = Field(default_factory=list)

    @field_validator("allow_cidrs")
    @classmethod
    def _check_cidrs(cls, values: list[str]) -> list[str]:
        cidrs = []
        for value in values:
            try:
                network = ipaddress.ip_network(value.strip(), strict=True)
            except ValueError as error:
                raise ValueError(
                    f"invalid CIDR {value!r}: {error}; expected a network such as 10.0.0.0/8"
                ) from None
            cidrs.append(str(network))
        _reject_everything(cidrs)
        return cidrs

    @field_validator("allow_namespaces")
    @classmethod
    def _check_namespaces(cls, values: list[str]) -> list[str]:
        for value in values:
            _raise_if(check_dns_label(value), "namespace")
        return values

    @field_validator("dns_namespace")
    @classmethod
    def _check_dns_namespace(cls, value: str) -> str:
        _raise_if(check_dns_label(value), "namespace")
        return value

    @field_validator("dns_pod_labels")
    @classmethod
    def _check_dns_pod_labels(cls, values: dict[str, str]) -> dict[str, str]:
        for key in values:
            _raise_if(check_qualified_name(key), "label")
        return values

    def allowance(self) -> EgressAllowance:
        return EgressAllowance(
            allow_dns=self.allow_dns,
            dns_namespace=self.dns_namespace,
            dns_pod_labels=tuple(self.dns_pod_labels.items()),
            cidrs=tuple(self.allow_cidrs),
            namespaces=tuple(self.allow_namespaces),
        )


def _reject_everything(cidrs: list[str]) -> None:
    """Raise ValueError when the networks together cover every IPv4 or every IPv6 address."""
    networks = [ipaddress.ip_network(cidr) for cidr in cidrs]
    families: list[tuple[int, list[Any]]] = [
        (4, [network for network in networks if isinstance(network, ipaddress.IPv4Network)]),
        (6, [network for network in networks if isinstance(network, ipaddress.IPv6Network)]),
    ]
    for version, family in families:
        merged = list(ipaddress.collapse_addresses(family))
        if len(merged) == 1 and merged[0].prefixlen == 0:
            listed = ", ".join(str(network) for network in family)
            raise ValueError(
                f"allow_cidrs {listed} together allow every IPv{version} address, so the pod "
                "would not be isolated; list only the networks it may reach, such as 10.0.0.0/8"
            )


def _raise_if(problem: str | None, kind: str) -> None:
    if problem is not None:
        raise ValueError(f"invalid {kind}: {problem}")


@dataclass
class Plan:
    """The policy to ensure and whether the pod needs the quarantine label."""

    policy_name: str
    selector: dict[str, Any]
    # The pods isolated, in words: "pod shop/x" or "the pods of ReplicaSet shop/y".
    isolated: str
    label_value: str | None
    notes: list[str] = field(default_factory=list)


@action(
    NAME,
    parameters=IsolatePodParameters,
    summary="Deny all ingress and all but the allowed egress to the alert's pod or workload.",
    destructive=True,
    rbac=(
        PolicyRule("", "pods", ("get", "patch")),
        PolicyRule("networking.k8s.io", "networkpolicies", ("get", "create", "patch")),
        PolicyRule("apps", "replicasets", ("get",)),
        PolicyRule("apps", "statefulsets", ("get",)),
        PolicyRule("apps", "daemonsets", ("get",)),
    ),
)
async def isolate_pod(ctx: ActionContext, params: IsolatePodParameters) -> ActionResult:
    found = await verified_pod(NAME, ctx)
    if isinstance(found, ActionResult):
        return found
    kube, target, verified = found
    subject = pod_subject(target)

    plan = await _plan(kube, verified, params.scope)
    if isinstance(plan, KubeError):
        kind = owner_kind(verified.controller)
        workload = f"{kind.value.lower()} {verified.namespace}/{_owner_name(verified)}"
        resource = _WORKLOAD_RESOURCES.get(kind, "")
        return api_failure(ctx, NAME, plan, verb="get", resource=resource, subject=workload)
    spec = policy_spec(plan.selector, params.allowance())
    annotations = {
        "falco-responder.io/alert-id": ctx.alert_id,
        "falco-responder.io/rule": ctx.alert.rule,
        "falco-responder.io/pod": verified.name,
    }
    body = policy_body(plan.policy_name, verified.namespace, spec, annotations)
    policy_subject = f"networkpolicy {verified.namespace}/{plan.policy_name}"
    details: dict[str, Any] = {"networkpolicy": plan.policy_name, "podSelector": plan.selector}

    verb = "get"
    try:
        existing = await _read_policy(kube, plan.policy_name, verified.namespace)
        changed = True
        if existing is None:
            verb = "create"
            try:
                await kube.read(
                    kube.networking.create_namespaced_network_policy,
                    verified.namespace,
                    body,
                    dry_run=ctx.dry_run,
                )
            except KubeError as error:
                if error.status != 409:
                    raise
                # Another alert for the same pod created it between the read and the create.
                verb = "get"
                existing = await _read_policy(kube, plan.policy_name, verified.namespace)
                if existing is None:
                    raise
                changed = False
        if existing is not None and not is_managed(existing[0]):
            reason = (
                f"{policy_subject} exists without the label {MANAGED_BY_LABEL}={MANAGER}, "
                "so it is not the responder's and was left unchanged"
            )
            return ActionResult(NAME, Outcome.CONFLICT, reason, details=details)
        elif existing is not None and changed and normalize(existing[1]) != normalize(spec):
            verb = "patch"
            await kube.read(
                kube.networking.patch_namespaced_network_policy,
                plan.policy_name,
                verified.namespace,
                replace_spec_patch(spec),
                dry_run=ctx.dry_run,
                _content_type=JSON_PATCH,
            )
            plan.notes.append("updated the existing policy to the playbook's spec")
        elif existing is not None:
            changed = False
    except KubeError as error:
        return api_failure(
            ctx, NAME, error, verb=verb, resource="networkpolicies", subject=policy_subject
        )

    if plan.label_value is not None and verified.labels.get(QUARANTINE_LABEL) != plan.label_value:
        try:
            await _label_pod(kube, verified, plan.label_value, ctx.dry_run)
        except KubeError as error:
            if error.status == 404:
                return ActionResult(NAME, Outcome.ALREADY_GONE, f"{subject} not found")
            return api_failure(ctx, NAME, error, verb="patch", resource="pods", subject=subject)
        changed = True

    notes = "".join(f"; {note}" for note in plan.notes)
    if not changed:
        reason = f"{plan.isolated} already isolated by {policy_subject}{notes}"
        return ActionResult(NAME, Outcome.SUCCESS, reason, details={**details, CHANGED: False})
    if ctx.dry_run:
        reason = f"would isolate {plan.isolated} with {policy_subject}{notes}"
        return ActionResult(NAME, Outcome.DRY_RUN, reason, details=details)
    ctx.log.info(
        "pod_isolated", networkpolicy=policy_subject, target=str(verified), alert_id=ctx.alert_id
    )
    reason = f"isolated {plan.isolated} with {policy_subject}{notes}"
    return ActionResult(NAME, Outcome.SUCCESS, reason, details=details)


_WORKLOAD_RESOURCES = {
    OwnerKind.REPLICA_SET: "replicasets",
    OwnerKind.STATEFUL_SET: "statefulsets",
    OwnerKind.DAEMON_SET: "daemonsets",
}


def _owner_name(pod: VerifiedPod) -> str:
    controller = pod.controller
    return controller.name if controller is not None else ""


async def _plan(kube: Kube, pod: VerifiedPod, scope: str) -> Plan | KubeError:
    """Choose the policy name and selector; a workload scope falls back to the pod alone."""
    label_value = quarantine_label_value(pod.name)
    alone = Plan(
        policy_name=pod_policy_name(pod.name),
        selector={"matchLabels": {QUARANTINE_LABEL: label_value}},
        isolated=f"pod {pod}",
        label_value=label_value,
    )
    if scope != "workload":
        return alone
    controller = pod.controller
    kind = owner_kind(controller)
    if controller is None or kind not in _WORKLOAD_RESOURCES:
        owner = f"{controller.kind} {controller.name}" if controller else "no controller"
        alone.notes.append(f"isolated the pod alone because its owner is {owner}, not a workload")
        return alone
    workload = f"{kind.value} {pod.namespace}/{controller.name}"
    try:
        selector = await _read_selector(kube, kind, controller.name, pod.namespace)
    except KubeError as error:
        return error
    if selector is None:
        alone.notes.append(f"isolated the pod alone because {workload} is gone")
        return alone
    return Plan(
        policy_name=workload_policy_name(controller),
        selector=selector,
        isolated=f"the pods of {workload}",
        label_value=None,
    )


async def _read_selector(
    kube: Kube, kind: OwnerKind, name: str, namespace: str
) -> dict[str, Any] | None:
    """Return the workload's spec.selector as JSON, or None when the workload is gone."""
    try:
        if kind is OwnerKind.REPLICA_SET:
            workload = await kube.read(kube.apps.read_namespaced_replica_set, name, namespace)
        elif kind is OwnerKind.STATEFUL_SET:
            workload = await kube.read(kube.apps.read_namespaced_stateful_set, name, namespace)
        else:
            workload = await kube.read(kube.apps.read_namespaced_daemon_set, name, namespace)
    except KubeError as error:
        if error.status == 404:
            return None
        raise
    selector = nested(workload, "spec", "selector")
    return selector if isinstance(selector, dict) and selector else None


async def _read_policy(
    kube: Kube, name: str, namespace: str
) -> tuple[dict[str, str], dict[str, Any]] | None:
    """Return the labels and spec of the policy, or None when there is none."""
    try:
        policy = await kube.read(kube.networking.read_namespaced_network_policy, name, namespace)
    except KubeError as error:
        if error.status == 404:
            return None
        raise
    labels = dict(nested(policy, "metadata", "labels") or {})
    spec = policy.get("spec") or {}
    return labels, spec if isinstance(spec, dict) else {}


async def _label_pod(kube: Kube, pod: VerifiedPod, value: str, dry_run: bool) -> None:
    body = {"metadata": {"labels": {QUARANTINE_LABEL: value}}}
    await kube.read(
        kube.core.patch_namespaced_pod,
        pod.name,
        pod.namespace,
        body,
        dry_run=dry_run,
        _content_type=MERGE_PATCH,
    )
