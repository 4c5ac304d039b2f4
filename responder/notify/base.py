"""The report that notifiers send, and the interface every notifier implements."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from responder.act.results import ActionResult
from responder.ingest.alert import Alert


@dataclass(frozen=True)
class Report:
    """The results of one playbook for one alert: the input of every notification."""

    alert: Alert
    alert_id: str
    playbook: str
    description: str
    results: tuple[ActionResult, ...]
    dry_run: bool
    notes: tuple[str, ...] = field(default=())

    @property
    def drill(self) -> bool:
        return self.alert.drill


class Notifier(Protocol):
    """Sends reports to one destination. ``send`` raises ``NotifyError`` on failure."""

    name: str

    async def send(self, report: Report) -> None: ...

    async def close(self) -> None: ...
