"""Load playbook files, validate them in full, and report every problem with file, playbook, field.

Loading checks more than the schema: each action must be registered, its parameters must validate
against the action's model (with templates checked and left in place), and each notifier must be
configured. ``responder check`` prints these errors; ``responder serve`` refuses to start on them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

import yaml
from pydantic import BaseModel, ValidationError

from responder.act.base import ActionSpec, Registry
from responder.match.playbook import Match, Playbook, PlaybookFile, Step
from responder.match.template import check_templates

PLAYBOOK_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class LoadedStep:
    """A step whose action exists and whose parameters validated."""

    step: Step
    spec: ActionSpec[Any]
    has_templates: bool


@dataclass(frozen=True)
class LoadedPlaybook:
    """A validated playbook with where it came from, for ordering and for error messages."""

    playbook: Playbook
    path: Path
    position: int
    steps: tuple[LoadedStep, ...]

    @property
    def name(self) -> str:
        return self.playbook.name

    @property
    def sort_key(self) -> tuple[int, str, int]:
        return (self.playbook.order, str(self.path), self.position)


@dataclass
class LoadReport:
    """The playbooks that loaded and the errors found, across every file given."""

    playbooks: list[LoadedPlaybook] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    """Valid but risky playbooks, such as one that deletes on every alert."""

    @property
    def ok(self) -> bool:
        return not self.errors


def playbook_files(paths: Iterable[Path]) -> tuple[list[Path], list[str]]:
    """Expand directories to their YAML files, sorted, skipping hidden names such as ``..data``."""
    found: list[Path] = []
    errors: list[str] = []
    for path in paths:
        if path.is_dir():
            found.extend(
                sorted(
                    child
                    for child in path.iterdir()
                    if child.suffix in PLAYBOOK_SUFFIXES
                    and not child.name.startswith(".")
                    and child.is_file()
                )
            )
        elif path.is_file():
            found.append(path)
        else:
            errors.append(f"{path}: not found; give a playbook file or a directory of them")
    return found, errors


def load_playbooks(
    paths: Sequence[Path], *, registry: Registry, notifiers: Iterable[str] | None = None
) -> LoadReport:
    """Load and validate every playbook under ``paths``; collect all errors rather than stop.

    With ``notifiers`` None, notifier names are not checked (no configuration was given)."""
    report = LoadReport()
    files, report.errors = playbook_files(paths)
    report.files = files
    known_notifiers = set(notifiers) if notifiers is not None else None
    seen: dict[str, Path] = {}
    for path in files:
        for loaded_or_error in _load_file(path, registry, known_notifiers):
            if isinstance(loaded_or_error, str):
                report.errors.append(loaded_or_error)
                continue
            name = loaded_or_error.name
            if name in seen:
                report.errors.append(
                    f"{path}: playbook {name!r}: the name is already used in {seen[name]}; "
                    "playbook names must be unique"
                )
                continue
            seen[name] = path
            report.playbooks.append(loaded_or_error)
    report.playbooks.sort(key=lambda loaded: loaded.sort_key)
    report.warnings = [warning for loaded in report.playbooks if (warning := _risk(loaded))]
    return report


def _risk(loaded: LoadedPlaybook) -> str:
    destructive = [step.spec.name for step in loaded.steps if step.spec.destructive]
    if destructive and loaded.playbook.match == Match() and loaded.playbook.enabled:
        return (
            f"{loaded.path}: playbook {loaded.name!r} matches every alert and runs "
            f"{', '.join(destructive)}; add a match condition such as rules or priority"
        )
    return ""


def _load_file(
    path: Path, registry: Registry, notifiers: set[str] | None
) -> list[LoadedPlaybook | str]:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        return [f"{path}: cannot read the file: {error}"]
    except yaml.YAMLError as error:
        return [f"{path}: invalid YAML: {error}"]
    if document is None:
        return [f"{path}: the file is empty; write 'playbooks:' with a list of playbooks"]
    if not isinstance(document, dict) or "playbooks" not in document:
        return [f"{path}: expected a mapping with a 'playbooks' list at the top level"]
    raw_playbooks = document["playbooks"]
    if not isinstance(raw_playbooks, list):
        return [f"{path}: 'playbooks' must be a list, not {type(raw_playbooks).__name__}"]
    extra = sorted(set(document) - set(PlaybookFile.model_fields))
    results: list[LoadedPlaybook | str] = [
        f"{path}: unknown top-level key {key!r}; allowed: playbooks" for key in extra
    ]
    for position, raw in enumerate(raw_playbooks):
        results.extend(_load_playbook(path, position, raw, registry, notifiers))
    return results


def _label(path: Path, position: int, raw: Any) -> str:
    name = raw.get("name") if isinstance(raw, dict) else None
    return f"{path}: playbook {name!r}" if name else f"{path}: playbook #{position + 1}"


def _load_playbook(
    path: Path, position: int, raw: Any, registry: Registry, notifiers: set[str] | None
) -> list[LoadedPlaybook | str]:
    where = _label(path, position, raw)
    try:
        playbook = Playbook.model_validate(raw)
    except ValidationError as error:
        found: list[LoadedPlaybook | str] = [
            f"{where}: {message}" for message in describe_errors(error, Playbook)
        ]
        # The steps that are well formed are checked too, so that one run of `check` lists
        # every problem of the playbook, not the action problems only after the others.
        raw_steps = raw.get("actions") if isinstance(raw, dict) else None
        if not isinstance(raw_steps, list):
            raw_steps = []
        for index, raw_step in enumerate(raw_steps):
            try:
                step = Step.model_validate(raw_step)
            except ValidationError:
                continue
            found.extend(_check_step(where, index, step, registry, []))
        return found
    errors: list[LoadedPlaybook | str] = []
    steps: list[LoadedStep] = []
    for index, step in enumerate(playbook.actions):
        errors.extend(_check_step(where, index, step, registry, steps))
    for name in playbook.notify:
        if notifiers is not None and name not in notifiers:
            known = ", ".join(sorted(notifiers)) or "none are configured"
            errors.append(
                f"{where}: notify: unknown notifier {name!r}; configured notifiers: {known}"
            )
    if errors:
        return errors
    return [LoadedPlaybook(playbook, path, position, tuple(steps))]


def _check_step(
    where: str, index: int, step: Step, registry: Registry, steps: list[LoadedStep]
) -> list[str]:
    """Return the problems of one step; append it to ``steps`` when it has none."""
    step_where = f"{where}: actions[{index}] ({step.action})"
    spec = registry.get(step.action)
    if spec is None:
        allowed = ", ".join(registry.names())
        return [f"{step_where}: unknown action {step.action!r}; allowed: {allowed}"]
    problems = _check_parameters(spec, step.parameters)
    if not problems:
        steps.append(LoadedStep(step, spec, _has_templates(step.parameters)))
    return [f"{step_where}: {problem}" for problem in problems]


def _check_parameters(spec: ActionSpec[Any], parameters: dict[str, Any]) -> list[str]:
    try:
        check_templates(parameters)
    except ValueError as error:
        return [f"parameters: {error}"]
    try:
        spec.parameters.model_validate(parameters)
    except ValidationError as error:
        return [f"parameters.{message}" for message in describe_errors(error, spec.parameters)]
    return []


def _has_templates(value: Any) -> bool:
    if isinstance(value, str):
        return "{{" in value
    if isinstance(value, dict):
        return any(_has_templates(k) or _has_templates(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_templates(item) for item in value)
    return False


def describe_errors(error: ValidationError, model: type[BaseModel]) -> list[str]:
    """Turn pydantic errors into 'field.path: message' lines that list what is allowed."""
    lines = []
    for item in error.errors(include_url=False):
        location = ".".join(str(part) for part in item["loc"]) or "(top level)"
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown key"
            allowed = _allowed_keys(model, item["loc"])
            if allowed:
                message += f"; allowed: {allowed}"
        elif message.startswith("Value error, "):
            message = message.removeprefix("Value error, ")
        lines.append(f"{location}: {message}")
    return lines


def _allowed_keys(root: type[BaseModel], location: tuple[Any, ...]) -> str:
    # Walk the path of the unknown key down to the model that rejected it.
    model: Any = root
    for part in location[:-1]:
        if model is None:
            break
        if isinstance(part, int):
            continue
        info = model.model_fields.get(part)
        model = _model_of(info.annotation) if info is not None else None
    if model is None or not hasattr(model, "model_fields"):
        return ""
    names = [info.alias or name for name, info in model.model_fields.items()]
    return ", ".join(names)


def _model_of(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in get_args(annotation):
        found = _model_of(argument)
        if found is not None:
            return found
    return None
