"""Percentiles by the nearest-rank method, which never interpolates between two samples."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(ordered: Sequence[float], fraction: float) -> float:
    """Return the nearest-rank percentile of an ascending, non-empty sequence."""
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def summarize(values: Sequence[float]) -> dict[str, float | int | None]:
    """Return the count, p50, p99, p99.9 and max. The percentiles are None without samples.

    A p99.9 from fewer than 1,000 samples is the maximum, so it means little.
    """
    if not values:
        return {"count": 0, "p50": None, "p99": None, "p999": None, "max": None}
    ordered = sorted(values)
    return {
        "count": len(ordered),
        "p50": round(percentile(ordered, 0.50), 3),
        "p99": round(percentile(ordered, 0.99), 3),
        "p999": round(percentile(ordered, 0.999), 3),
        "max": round(ordered[-1], 3),
    }
