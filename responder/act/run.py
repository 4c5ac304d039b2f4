"""Run one playbook's steps for one alert: render parameters, check the target, keep the deadline.

A step raises nothing to its caller but cancellation. Every other way it can end becomes an
``ActionResult`` with an outcome, so that the rest of the pipeline records, counts and notifies
the same way each time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import structlog
from pydantic import ValidationError

from responder.act.base import ActionContext, ActionSpec
from responder.act.kube import Kube
from responder.act.results import ActionResult, Outcome
from responder.guard.policy import Guards
from responder.ingest.alert import Alert, HostTarget, PodTarget
from responder.match.loader import LoadedPlaybook, LoadedStep
from responder.match.template import render, template_values


@dataclass(frozen=True)
class RunOptions:
    """Options for running the steps of one playbook for one alert."""

    dry_run: bool
    deadline_s: float
    kube: Kube | None
    guards: Guards | None = None


def target_kind(alert: Alert) -> str | None:
    target = alert.target
    if isinstance(target, PodTarget):
        return "pod"
    if isinstance(target, HostTarget):
        return "node"
    return None


StepRecorder = Callable[[int, ActionResult], Awaitable[None]]


async def run_playbook(
    loaded: LoadedPlaybook,
    alert: Alert,
    alert_id: str,
    *,
    options: RunOptions,
    log: structlog.stdlib.BoundLogger,
    completed: Mapping[int, ActionResult] | None = None,
    record: StepRecorder | None = None,
) -> list[ActionResult]:
    """Run the steps in order; a failed step stops the rest unless it continues on failure.

    ``completed`` contains results recorded before a restart, by step index: those steps do not run
    again. ``record`` is awaited with each new result before the next step starts.
    """
    results: list[ActionResult] = []
    values = template_values(alert, alert_id)
    stopped_by: str | None = None
    for index, step in enumerate(loaded.steps):
        earlier = (completed or {}).get(index)
        if earlier is not None:
            results.append(earlier)
        elif stopped_by is not None:
            results.append(
                ActionResult(
                    step.spec.name,
                    Outcome.NOT_RUN,
                    f"not run because step {stopped_by!r} failed before it",
                )
            )
        else:
            context = ActionContext(
                alert=alert,
                alert_id=alert_id,
                playbook=loaded.name,
                dry_run=options.dry_run,
                kube=options.kube,
                log=log.bind(action=step.spec.name),
                previous=list(results),
            )
            result = await run_step(step, context, values=values, options=options)
            results.append(result)
            if record is not None:
                await record(index, result)
        if results[-1].failed and not step.step.continue_on_failure:
            stopped_by = step.spec.name
    return results


async def run_step(
    step: LoadedStep,
    context: ActionContext,
    *,
    values: dict[str, str],
    options: RunOptions,
) -> ActionResult:
    """Run one step and time it; every exception becomes a failed result."""
    spec = step.spec
    started = time.perf_counter()
    result = _precheck(spec, context.alert)
    if result is None:
        try:
            parameters = _parameters(step, context.alert, values)
        except ValidationError as error:
            reason = "; ".join(item["msg"] for item in error.errors(include_url=False))
            result = ActionResult(spec.name, Outcome.FAILED, f"invalid parameters: {reason}")
        else:
            result = await _guarded(spec, context, parameters, options)
    elapsed = time.perf_counter() - started
    return ActionResult(result.action, result.outcome, result.reason, elapsed, result.details)


def _precheck(spec: ActionSpec[Any], alert: Alert) -> ActionResult | None:
    kind = target_kind(alert)
    if spec.needs_kube and (kind is None or kind not in spec.targets):
        wanted = " or ".join(sorted(spec.targets))
        found = f"a {kind}" if kind else "no Kubernetes object"
        return ActionResult(
            spec.name, Outcome.NO_TARGET, f"needs a {wanted}; the alert names {found}"
        )
    return None


def _without_kube(spec: ActionSpec[Any], alert: Alert, options: RunOptions) -> ActionResult:
    if options.dry_run:
        return ActionResult(
            spec.name,
            Outcome.DRY_RUN,
            f"would run {spec.name} on {alert.target} (no Kubernetes API configured)",
        )
    return ActionResult(
        spec.name,
        Outcome.FAILED,
        "no Kubernetes API configured: set kubernetes.kubeconfig or run in a pod",
    )


def _parameters(step: LoadedStep, alert: Alert, values: dict[str, str]) -> Any:
    raw = step.step.parameters
    if step.has_templates:
        raw = render(raw, alert, values)
    return step.spec.parameters.model_validate(raw)


async def _guarded(
    spec: ActionSpec[Any], context: ActionContext, parameters: Any, options: RunOptions
) -> ActionResult:
    """Check the guards, then run the action, all within the action's deadline.

    The guards' budget is settled for every outcome, a timeout included, so that a token is
    kept only by an action that succeeded."""
    deadline_s = options.deadline_s
    try:
        async with asyncio.timeout(deadline_s):
            return await _check_and_run(spec, context, parameters, options)
    except TimeoutError:
        result = ActionResult(spec.name, Outcome.FAILED, f"timed out after {deadline_s:g} s")
    except Exception as error:
        context.log.exception("action_error", error=str(error))
        result = ActionResult(
            spec.name, Outcome.FAILED, f"unexpected error: {type(error).__name__}: {error}"
        )
    if options.guards is not None:
        options.guards.settle(spec, context, result)
    return result


async def _check_and_run(
    spec: ActionSpec[Any], context: ActionContext, parameters: Any, options: RunOptions
) -> ActionResult:
    guards = options.guards
    if guards is not None:
        refused = await guards.check(spec, context)
        if refused is not None:
            return refused
    if spec.needs_kube and options.kube is None:
        result = _without_kube(spec, context.alert, options)
    else:
        result = await spec.run(context, parameters)
    if guards is not None:
        guards.settle(spec, context, result)
    return result
