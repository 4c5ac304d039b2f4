"""The benchmark script runs end to end in its quick mode and prints the figures table.

Timings on a shared CI machine mean nothing, so the test checks only that every figure is there.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


# The quick run takes about a minute, more than the suite's default timeout.
@pytest.mark.timeout(300)
def test_quick_run_prints_table() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.run", "--quick"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    output = done.stdout
    assert "machine:" in output
    assert "throughput c=1 (2xx/s)" in output
    assert "ack p99 at 1000/s (ms)" in output
    assert "received -> first API call p99 at 500/s (ms)" in output
    assert "RSS after 1000 alerts (MiB)" in output
    assert "throughput, 1000 playbooks, c=32 (2xx/s)" in output
    verdicts = [line for line in output.splitlines() if line.endswith(("PASS", "MISS"))]
    # Throughput at c=1 and c=32, ack p99, first API call p99 at two rates, memory, playbooks.
    assert len(verdicts) == 7
