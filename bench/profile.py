"""Sample the daemon with py-spy during a load phase and rank its functions.

py-spy's ``raw`` format is one collapsed stack per line, ``frame;frame;... count``, outermost
frame first. A function's self share counts the samples where it is the innermost frame, its
total share those where it is anywhere on the stack.
"""

from __future__ import annotations

import asyncio
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Ranked:
    """One function's share of the event loop's busy samples, in percent."""

    frame: str
    self_percent: float
    total_percent: float


@dataclass
class Summary:
    """The samples of the event loop thread by function. Other threads are left out."""

    samples: int
    busy_percent: float
    """Samples outside the selector wait: how much of a core the event loop used."""
    top_self: list[Ranked]
    top_total: list[Ranked]


def py_spy() -> str | None:
    return shutil.which("py-spy")


async def record(pid: int, seconds: float, output: Path) -> asyncio.subprocess.Process:
    """Start sampling ``pid`` for ``seconds``; the caller awaits ``wait()`` on the result."""
    executable = py_spy()
    if executable is None:
        raise RuntimeError("py-spy is not installed: pip install py-spy")
    return await asyncio.create_subprocess_exec(
        executable,
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(max(1, round(seconds))),
        "--rate",
        "100",
        "--format",
        "raw",
        "--nonblocking",
        "--output",
        str(output),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )


def summarize_profile(collapsed: Path, limit: int = 15) -> Summary:
    """Rank the functions of the event loop thread by self and by total share of busy samples.

    py-spy could not tell idle threads from busy ones on the machine the benchmark was written
    on, so the event loop's idle time is recognized by its leaf frame, the selector's
    ``select``. Frames on nearly every busy stack (runpy, the loop's own frames) are left out of
    the total ranking because they tell nothing apart.
    """
    own: Counter[str] = Counter()
    anywhere: Counter[str] = Counter()
    samples = busy = 0
    for line in collapsed.read_text(encoding="utf-8").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        frames = stack.split(";")
        if "_run_module_as_main" not in frames[0]:
            continue
        count = int(count_text)
        samples += count
        if frames[-1].startswith("EpollSelector.select"):
            continue
        busy += count
        own[frames[-1]] += count
        for frame in set(frames):
            anywhere[frame] += count
    if not busy:
        return Summary(samples, 0.0, [], [])

    def ranked(frame: str) -> Ranked:
        return Ranked(frame, 100 * own[frame] / busy, 100 * anywhere[frame] / busy)

    informative = [frame for frame, count in anywhere.most_common() if count < 0.9 * busy]
    return Summary(
        samples=samples,
        busy_percent=100 * busy / samples,
        top_self=[ranked(frame) for frame, _ in own.most_common(limit)],
        top_total=[ranked(frame) for frame in informative[:limit]],
    )
