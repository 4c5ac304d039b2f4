"""A notifier that writes each report to the responder's own log, for laptops and drills."""

from __future__ import annotations

import structlog

from responder.notify.base import Report
from responder.notify.render import title

log = structlog.get_logger("responder.notify.log")


class LogNotifier:
    """Logs one ``notification`` event per report, with every action and its outcome."""

    def __init__(self, name: str) -> None:
        self.name = name

    async def send(self, report: Report) -> None:
        log.info(
            "notification",
            notifier=self.name,
            title=title(report),
            alert_id=report.alert_id,
            playbook=report.playbook,
            actions=[
                f"{result.action}: {result.outcome.value}: {result.reason}"
                for result in report.results
            ],
            notes=list(report.notes),
        )

    async def close(self) -> None:
        return None
