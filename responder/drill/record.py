"""Drill recordings: alerts as they arrived, one JSON record per line.

A record is ``{"received": "<RFC 3339, nine fractional digits>", "alert": {...}}``, where
``alert`` is the alert body as the sender sent it. Readers also accept a line that is a bare
alert; its ``time`` is then used as the time it was received.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TextIO

from pydantic import ValidationError

from responder.errors import ConfigError
from responder.ingest.alert import DRILL_KEY, Alert, Timestamp
from responder.store.journal import HistoryFilter
from responder.store.reading import read_history

# Every line that ``append_records`` writes starts with this, so that a reader can tell a record
# cut short by a crash from a line that was never a record.
RECORD_PREFIX = '{"received":'


@dataclass(frozen=True)
class Record:
    """One recorded alert: when the responder received it, and the body as it arrived."""

    received_ns: int
    alert: dict[str, Any]
    line: int = 0
    """Line number in the file it was read from, for messages; 0 when not read from a file."""

    def parsed(self) -> Alert:
        return Alert.model_validate(self.alert)


@dataclass
class Recording:
    """The records of one file, and the truncated records that were skipped."""

    records: list[Record]
    skipped_lines: list[int]


def format_record(received_ns: int, alert: dict[str, Any]) -> str:
    """Format one record as a line of JSON, without the newline."""
    document = {"received": Timestamp(received_ns).isoformat(), "alert": alert}
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)


def check_writable(path: Path) -> None:
    """Create the recording at ``path`` if it does not exist, as ``append_records`` would.

    Raises ConfigError that names the path when it cannot be written, so that ``serve
    --record`` fails at start rather than on every request."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600))
    except OSError as error:
        raise ConfigError(
            f"cannot write the recording {str(path)!r}: {error.strerror}; choose a writable "
            "file for --record"
        ) from None


def append_records(path: Path, received_ns: int, alerts_raw: list[dict[str, Any]]) -> None:
    """Append the alerts of one request to the recording at ``path``, all received together.

    The lines go out in one ``write`` on a file opened with O_APPEND, so records of concurrent
    requests do not interleave. When an earlier write was cut short and the file does not end
    with a newline, a newline goes first, so that the new records start on their own line.
    Readers skip the truncated record. The data is handed to the kernel before this returns,
    without an fsync. The file is created with mode 0600, because alerts contain command lines.
    NOTE: this is blocking file I/O; call it through ``asyncio.to_thread`` from a handler.
    """
    if not alerts_raw:
        return
    lines = "".join(format_record(received_ns, alert) + "\n" for alert in alerts_raw)
    payload = lines.encode("utf-8")
    descriptor = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        size = os.fstat(descriptor).st_size
        if size > 0 and os.pread(descriptor, 1, size - 1) != b"\n":
            payload = b"\n" + payload
        view = memoryview(payload)
        while view:
            written = os.write(descriptor, view)
            view = view[written:]
    finally:
        os.close(descriptor)


def parse_line(text: str, *, where: str, line: int = 0) -> Record:
    """Parse one line: a record, or a bare alert. Raises ConfigError naming ``where``."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(f"{where}: invalid JSON: {error}") from None
    received: object = None
    alert: object = document
    if isinstance(document, dict) and isinstance(document.get("alert"), dict):
        received = document.get("received")
        alert = document["alert"]
    if not isinstance(alert, dict):
        raise ConfigError(f"{where}: not a Falco alert: expected a JSON object")
    try:
        parsed = Alert.model_validate(alert)
    except ValidationError as error:
        first = str(error).splitlines()[0]
        raise ConfigError(f"{where}: not a Falco alert: {first}") from None
    if received is None:
        return Record(parsed.time.epoch_ns, alert, line)
    if not isinstance(received, str):
        raise ConfigError(f"{where}: invalid received {received!r}: expected an RFC 3339 string")
    try:
        received_ns = Timestamp.parse(received).epoch_ns
    except ValueError as error:
        raise ConfigError(f"{where}: {error}") from None
    return Record(received_ns, alert, line)


def read_recording(path: Path) -> Recording:
    """Read a recording. Raises ConfigError naming the file and line of the first invalid line.

    A line that starts like a record but is not valid JSON is a record cut short by a crash of
    the writer: it is skipped and its line number returned, and every other invalid line fails.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"cannot read {str(path)!r}: {error.strerror}") from None
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path}: not UTF-8 text: {error.reason}") from None
    records: list[Record] = []
    skipped: list[int] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        if line.startswith(RECORD_PREFIX) and not _is_json(line):
            skipped.append(number)
            continue
        records.append(parse_line(line, where=f"{path}:{number}", line=number))
    return Recording(records, skipped)


def read_records(path: Path) -> list[Record]:
    return read_recording(path).records


def _is_json(line: str) -> bool:
    try:
        json.loads(line)
    except json.JSONDecodeError:
        return False
    return True


def write_records(stream: TextIO, records: Iterable[Record]) -> int:
    """Write records to ``stream``, one a line; return how many were written."""
    count = 0
    for record in records:
        stream.write(format_record(record.received_ns, record.alert) + "\n")
        count += 1
    return count


def retime(records: list[Record], now_ns: int) -> list[Record]:
    """Move every record so that the last one is received at ``now_ns``, keeping the gaps, and
    set each alert's ``time`` to its new receive time.

    The alert time follows the receive time rather than keeping the alerts' own gaps, because
    those can span more than the staleness limit, and a retimed drill must not be refused as
    stale."""
    if not records:
        return []
    offset = now_ns - max(record.received_ns for record in records)
    shifted = []
    for record in records:
        received_ns = record.received_ns + offset
        alert = {**record.alert, "time": Timestamp(received_ns).isoformat()}
        shifted.append(replace(record, received_ns=received_ns, alert=alert))
    return shifted


def export_journal(path: Path, query: HistoryFilter) -> list[Record]:
    """Read the alerts of a journal file that match ``query``, oldest first, as records.

    The journal keeps an alert as the responder parsed it (``Alert.to_json``): the time with nine
    fractional digits and the priority capitalized. The drill mark is left out, so that a replay
    decides it with its own header.
    """
    history = read_history(path, query)
    history.reverse()
    return [
        Record(item.received_ns, {k: v for k, v in item.alert.items() if k != DRILL_KEY})
        for item in history
    ]
