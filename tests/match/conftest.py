"""A registry of two small actions, so that loading and matching are tested on their own."""

from __future__ import annotations

from pathlib import Path

import pytest

from responder.act.base import ActionContext, ActionSpec, Parameters, Registry
from responder.act.results import ActionResult, Outcome


class LabelParameters(Parameters):
    set: dict[str, str] = {}
    remove: list[str] = []


class DeleteParameters(Parameters):
    grace_period_s: int | None = None


async def _label(context: ActionContext, parameters: LabelParameters) -> ActionResult:
    return ActionResult("label_pod", Outcome.SUCCESS, f"set {parameters.set}")


async def _delete(context: ActionContext, parameters: DeleteParameters) -> ActionResult:
    return ActionResult("delete_pod", Outcome.SUCCESS, "deleted")


@pytest.fixture
def registry() -> Registry:
    registry = Registry()
    registry.add(ActionSpec("label_pod", LabelParameters, _label, "Label the pod."))
    registry.add(
        ActionSpec("delete_pod", DeleteParameters, _delete, "Delete the pod.", destructive=True)
    )
    return registry


@pytest.fixture
def write(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Write a playbook file and return its path."""

    def write(text: str, name: str = "playbooks.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write
