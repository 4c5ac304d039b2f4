"""``responder replay``: plan recorded alerts in process, or send them to a running daemon, then
report what happened to each."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from responder.act.base import load_builtin_actions
from responder.act.kube import Kube
from responder.drill.daemon import daemon_report, fetch_records
from responder.drill.html import render_html
from responder.drill.plan import options_from_settings, plan_records, warnings_to_stderr
from responder.drill.record import Record, read_recording, retime
from responder.drill.report import DrillReport, write_table
from responder.drill.send import Sender, SendOptions, SendResult
from responder.errors import ConfigError, KubeError
from responder.match.loader import load_playbooks
from responder.settings import Settings


@dataclass(frozen=True)
class ReplayOptions:
    """Options of ``responder replay``: plan or send, and the report formats."""

    output: str = "table"
    html: Path | None = None
    retime: bool = False
    send: SendOptions | None = None
    """Send target and pacing. None plans the alerts in process."""
    wait_s: float = 30.0
    """How long to wait for the daemon to finish the sent alerts before reporting."""
    check_notifiers: bool = False


async def run_replay(
    path: Path,
    settings: Settings,
    options: ReplayOptions,
    *,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Plan or send the alerts of ``path``, write the report; return the exit status."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    recording = read_recording(path)
    if recording.skipped_lines:
        lines = ", ".join(map(str, recording.skipped_lines))
        err.write(f"responder: {path}: skipped records cut short by a crash, lines {lines}\n")
    records = recording.records
    if options.retime:
        records = retime(records, time.time_ns())
    send: dict[str, Any] | None = None
    if options.send is None:
        report = await plan_with_settings(records, settings, options.check_notifiers)
    else:
        report, result = await send_and_collect(records, options.send, options.wait_s, err)
        send = {
            "sent": len(result.answers),
            "accepted": sum(1 for answer in result.answers if answer.accepted),
            "duration_s": round(result.duration_s, 3),
            "stopped_by": result.stopped_by,
            "summary": result.summary(),
        }
    # The file comes first: a reader of standard output that goes away, as "| head" does,
    # ends the command at the next write.
    if options.html is not None:
        try:
            options.html.write_text(render_html(report), encoding="utf-8")
        except OSError as error:
            raise ConfigError(f"cannot write {str(options.html)!r}: {error.strerror}") from None
    write_report(report, options, out, send)
    return 0


def write_report(
    report: DrillReport, options: ReplayOptions, out: TextIO, send: dict[str, Any] | None
) -> None:
    if options.output == "json":
        document = report.to_json()
        if send is not None:
            document["send"] = send
        json.dump(document, out, indent=2, ensure_ascii=False)
        out.write("\n")
        return
    if send is not None:
        out.write(send["summary"] + "\n")
    write_table(report, out)


async def plan_with_settings(
    records: list[Record], settings: Settings, check_notifiers: bool
) -> DrillReport:
    """Plan ``records`` against the configured playbooks, reading Kubernetes only when a
    kubeconfig is set, so that a plan never reaches a cluster that was not configured."""
    notifiers = list(settings.notifiers) if check_notifiers else None
    loaded = load_playbooks(
        settings.playbooks, registry=load_builtin_actions(), notifiers=notifiers
    )
    if not loaded.ok:
        raise ConfigError("invalid playbooks:\n" + "\n".join(f"  {e}" for e in loaded.errors))
    kube = await _connect(settings)
    try:
        with warnings_to_stderr():
            return await plan_records(
                records, loaded.playbooks, options_from_settings(settings, kube)
            )
    finally:
        if kube is not None:
            await kube.close()


async def _connect(settings: Settings) -> Kube | None:
    if settings.kubernetes.kubeconfig is None:
        return None
    try:
        return await Kube.connect(
            kubeconfig=settings.kubernetes.kubeconfig,
            context=settings.kubernetes.context,
            request_timeout_s=settings.kubernetes.request_timeout_s,
        )
    except KubeError as error:
        raise ConfigError(f"cannot load Kubernetes configuration: {error}") from None


async def send_and_collect(
    records: list[Record], options: SendOptions, wait_s: float, err: TextIO
) -> tuple[DrillReport, SendResult]:
    """Send the alerts, then read back the daemon's decisions about those it accepted."""
    progress = err if err.isatty() else None
    result = await Sender(options, progress=progress).send(records)
    ids = [answer.alert_id for answer in result.answers if answer.alert_id]
    fetched = await fetch_records(options.url, ids, token=options.token, wait_s=wait_s)
    return daemon_report(records, result.answers, fetched), result
