"""The result of an action: its outcome and the reason, as recorded, counted and notified."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class Outcome(enum.StrEnum):
    """The result of one action. Values are metric labels and log fields, so keep them stable."""

    SUCCESS = "success"
    DRY_RUN = "dry_run"
    SKIPPED = "skipped"
    FAILED = "failed"
    ALREADY_GONE = "already_gone"
    TARGET_MISMATCH = "target_mismatch"
    NO_TARGET = "no_target"
    CONFLICT = "conflict"
    PROTECTED = "protected"
    STALE = "stale"
    BUDGET_EXHAUSTED = "budget_exhausted"
    NOT_RUN = "not_run"


# A ``details`` key that a successful action sets to False when the target was already in the
# wanted state, so that the budget of destructive actions does not count it.
CHANGED = "changed"


@dataclass(frozen=True)
class ActionResult:
    """One action's outcome, with a sentence that explains why and what it changed."""

    action: str
    outcome: Outcome
    reason: str
    duration_s: float = 0.0
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.outcome is Outcome.FAILED
