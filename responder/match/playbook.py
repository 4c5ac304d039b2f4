"""The playbook schema: what an alert must look like, and what to do about it.

A playbook file is YAML with a top-level ``playbooks`` list. Every key is checked when the file is
loaded; unknown keys are errors, so a typo never silently disables a response.
"""

from __future__ import annotations

import fnmatch
import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StringConstraints,
    Tag,
    field_validator,
    model_validator,
)

from responder.ingest.alert import Priority

Name = Annotated[str, StringConstraints(min_length=1, max_length=128, strip_whitespace=True)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RulePattern(Strict):
    """A rule name given as a glob (``Shell *``) or a regular expression (full match)."""

    glob: str | None = None
    regex: str | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> RulePattern:
        if (self.glob is None) == (self.regex is None):
            raise ValueError("give exactly one of 'glob' or 'regex'")
        if self.regex is not None:
            try:
                re.compile(self.regex)
            except re.error as error:
                raise ValueError(f"invalid regex {self.regex!r}: {error}") from None
        return self

    def matches(self, rule: str) -> bool:
        if self.glob is not None:
            return fnmatch.fnmatchcase(rule, self.glob)
        return re.fullmatch(self.regex or "", rule) is not None


_THRESHOLD = re.compile(r"^\s*(>=|<=|>|<|==)?\s*([A-Za-z]+)\s*$")


class PriorityThreshold(Strict):
    """A comparison with a priority, written ``">=warning"``; a bare name means ``>=``."""

    operator: Literal[">=", "<=", ">", "<", "=="]
    priority: Priority

    @model_validator(mode="before")
    @classmethod
    def _parse(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        found = _THRESHOLD.match(value)
        if found is None:
            raise ValueError(f"invalid priority threshold {value!r}: write it like '>=warning'")
        return {"operator": found.group(1) or ">=", "priority": Priority.parse(found.group(2))}

    def admits(self, priority: Priority) -> bool:
        match self.operator:
            case ">=":
                return priority >= self.priority
            case "<=":
                return priority <= self.priority
            case ">":
                return priority > self.priority
            case "<":
                return priority < self.priority
        return priority == self.priority


def _rule_kind(value: Any) -> str:
    return "exact" if isinstance(value, str) else "pattern"


# A rule entry is an exact name or a pattern. The discriminator reports errors of one kind only.
RuleEntry = Annotated[
    Annotated[Name, Tag("exact")] | Annotated[RulePattern, Tag("pattern")],
    Discriminator(_rule_kind),
]


class TagMatch(Strict):
    """Tags the alert must carry: every one of ``all_of`` and at least one of ``any_of``."""

    all_of: list[Name] = []
    any_of: list[Name] = []
    none_of: list[Name] = []


class NamespaceMatch(Strict):
    """Namespaces as globs. An alert with no namespace matches only when ``include`` is empty."""

    include: list[Name] = []
    exclude: list[Name] = []


Scalar = str | int | float | bool | None
OPERATORS = (
    "equals",
    "not_equals",
    "in",
    "not_in",
    "glob",
    "regex",
    "exists",
    "absent",
    "gt",
    "gte",
    "lt",
    "lte",
)


class FieldCondition(Strict):
    """A condition on one ``output_fields`` value; exactly one operator per condition."""

    field: Name
    equals: Scalar | list[Scalar] = None
    not_equals: Scalar | list[Scalar] = None
    in_: list[Scalar] | None = Field(default=None, alias="in")
    not_in: list[Scalar] | None = None
    glob: str | None = None
    regex: str | None = None
    exists: Literal[True] | None = None
    absent: Literal[True] | None = None
    # Integers stay integers, so that 19-digit nanosecond times compare exactly.
    gt: int | float | None = None
    gte: int | float | None = None
    lt: int | float | None = None
    lte: int | float | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _one_operator(self) -> FieldCondition:
        given = [name for name in OPERATORS if name in self._given_operators()]
        if len(given) != 1:
            listed = ", ".join(OPERATORS)
            found = ", ".join(given) or "none"
            raise ValueError(
                f"condition on {self.field!r} needs exactly one operator (found {found}); "
                f"operators: {listed}"
            )
        if self.regex is not None:
            try:
                re.compile(self.regex)
            except re.error as error:
                raise ValueError(f"invalid regex {self.regex!r}: {error}") from None
        return self

    def _given_operators(self) -> set[str]:
        names = {("in" if key == "in_" else key) for key in self.model_fields_set} - {"field"}
        return names

    @property
    def operator(self) -> str:
        (name,) = self._given_operators()
        return name


class Match(Strict):
    """Every condition that is given must hold; an empty ``match`` matches every alert."""

    rules: list[RuleEntry] = []
    priority: PriorityThreshold | None = None
    tags: TagMatch | None = None
    sources: list[Name] = []
    namespaces: NamespaceMatch | None = None
    fields: list[FieldCondition] = []

    @field_validator("rules", mode="before")
    @classmethod
    def _one_rule(cls, value: Any) -> Any:
        return [value] if isinstance(value, str | dict) else value


class Step(Strict):
    """One action of a playbook with its parameters."""

    action: Name
    parameters: dict[str, Any] = {}
    continue_on_failure: bool = False
    """When false (the default), a failed step stops the steps after it in this playbook."""


class Playbook(Strict):
    """A named response: when ``match`` holds, run ``actions`` in order, then ``notify``."""

    name: Name
    description: str = ""
    enabled: bool = True
    order: int = 100
    """Playbooks run in ascending ``order``, then by file name and position in the file."""
    match: Match = Match()
    actions: list[Step] = []
    notify: list[Name] = []
    dry_run: bool = False
    stop: bool = False
    """When true and this playbook matched, the playbooks after it do not run for this alert."""
    cooldown_s: float | None = Field(default=None, ge=0)
    """Seconds after a run during which this playbook does not run again for the same target.
    None takes suppress.cooldown_s from the settings; 0 turns the cooldown off."""

    @field_validator("notify", mode="before")
    @classmethod
    def _one_notifier(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class PlaybookFile(Strict):
    """The top level of a playbook file."""

    playbooks: list[Playbook]
