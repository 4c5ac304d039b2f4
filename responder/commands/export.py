"""``responder export``: write alerts from the journal as a drill recording."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from responder.drill.record import export_journal, write_records
from responder.errors import ConfigError
from responder.store.journal import HistoryFilter


def export(journal: Path, query: HistoryFilter, output: str) -> int:
    records = export_journal(journal, query)
    if output == "-":
        count = write_records(sys.stdout, records)
    else:
        try:
            # Alerts carry command lines and user names, so the file is private, as recordings are.
            descriptor = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
                count = write_records(stream, records)
        except OSError as error:
            raise ConfigError(f"cannot write {output!r}: {error.strerror}") from None
    print(f"exported {count} alerts", file=sys.stderr)
    return 0
