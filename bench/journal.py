"""Measure the journal alone: appends per second with grouped commits and with one commit per
alert, with synchronous=FULL and NORMAL, at 1 and 32 concurrent writers.

    python -m bench.journal [--alerts N] [--dir PATH]

Each case appends N alerts to a new file and prints appends per second, commits, and the mean
number of alerts per commit. The file lies in --dir (default: a temporary directory), which
should be on the disk the journal will use, because the cost of a commit is the cost of its
flush.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from responder.store.queue import QueuedAlert
from responder.store.sqlite import MAX_BATCH, SqliteJournal
from tests.samples import sample_alert, sample_lines

CASES = [
    ("grouped, no wait", MAX_BATCH, 0.0),
    ("grouped, 1 ms window", MAX_BATCH, 0.001),
    ("one commit per alert", 1, 0.0),
]


async def measure(
    path: Path, *, alerts: int, writers: int, max_batch: int, window_s: float, synchronous: str
) -> tuple[float, int]:
    journal = await SqliteJournal(
        path, commit_window_s=window_s, synchronous=synchronous, max_batch=max_batch
    ).open()
    count = len(sample_lines("falco-direct"))
    items = [QueuedAlert(sample_alert("falco-direct", 1 + i % count)) for i in range(alerts)]
    per_writer = [items[start::writers] for start in range(writers)]

    async def write(batch: list[QueuedAlert]) -> None:
        for item in batch:
            await journal.append([item])

    started = time.perf_counter()
    try:
        await asyncio.gather(*(write(batch) for batch in per_writer))
        elapsed = time.perf_counter() - started
        commits = journal.commits
    finally:
        await journal.close()
    return alerts / elapsed, commits


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=2000, help="alerts per case (default 2000)")
    parser.add_argument("--dir", type=Path, help="directory for the journal files")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as scratch:
        print(f"{'commits':<22} {'sync':<7} {'writers':>7} {'appends/s':>10} {'per commit':>11}")
        number = 0
        for name, max_batch, window_s in CASES:
            for synchronous in ("FULL", "NORMAL"):
                for writers in (1, 32):
                    number += 1
                    rate, commits = await measure(
                        Path(scratch) / f"journal-{number}.db",
                        alerts=args.alerts,
                        writers=writers,
                        max_batch=max_batch,
                        window_s=window_s,
                        synchronous=synchronous,
                    )
                    grouped = args.alerts / max(commits, 1)
                    print(
                        f"{name:<22} {synchronous:<7} {writers:>7} {rate:>10,.0f} {grouped:>11.1f}"
                    )


if __name__ == "__main__":
    asyncio.run(main())
