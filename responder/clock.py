"""Time as the responder reads it: a real clock, or a fake one that tests move by hand.

Windows, cooldowns, budgets and staleness read time only through a ``Clock``, so that tests move
time forward without sleeping.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """Wall-clock nanoseconds for timestamps, and monotonic seconds for intervals."""

    def time_ns(self) -> int: ...

    def monotonic(self) -> float: ...


class SystemClock:
    """The process's real clocks."""

    def time_ns(self) -> int:
        return time.time_ns()

    def monotonic(self) -> float:
        return time.monotonic()


class FakeClock:
    """A clock that moves only when ``advance`` is called."""

    def __init__(self, *, start_ns: int = 1_773_491_466_000_000_000) -> None:
        self._wall_ns = start_ns
        self._monotonic = 1000.0

    def time_ns(self) -> int:
        return self._wall_ns

    def monotonic(self) -> float:
        return self._monotonic

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"a clock cannot move back ({seconds} s)")
        self._wall_ns += int(seconds * 1_000_000_000)
        self._monotonic += seconds
