"""Read a journal file from another process, such as ``responder history`` or ``export``."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from responder.errors import ConfigError
from responder.store.journal import AlertRecord, HistoryFilter
from responder.store.sqlite import select_history


def read_history(path: Path, query: HistoryFilter) -> list[AlertRecord]:
    """Read the journal file read-only, so a running daemon is not disturbed."""
    if not path.is_file():
        raise ConfigError(
            f"journal {str(path)!r} not found: pass --journal with the journal.path of the daemon"
        )
    try:
        # An absolute file URI, so that a "#", "?" or "%" in the path is part of the name.
        connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as error:
        raise ConfigError(f"cannot open journal {str(path)!r}: {error}") from None
    try:
        return select_history(connection, query)
    except sqlite3.Error as error:
        raise ConfigError(f"cannot read journal {str(path)!r}: {error}") from None
    finally:
        connection.close()
