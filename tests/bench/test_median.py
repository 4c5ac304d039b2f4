"""bench.run --repeat: the median of each measured number over the runs."""

from __future__ import annotations

from bench.run import cpu_shares, median_results


def test_median_of_each_number() -> None:
    runs = [
        {"throughput": 900.0, "ok": 10, "outcomes": {"label_pod:success": 3}, "tag": "r1"},
        {"throughput": 1100.0, "ok": 30, "outcomes": {"label_pod:success": 5}, "tag": "r2"},
        {"throughput": 1000.0, "ok": 20, "outcomes": {"label_pod:success": 4}, "tag": "r3"},
    ]
    merged = median_results(runs)
    assert 1000.0 == merged["throughput"]
    assert 20 == merged["ok"]
    assert {"label_pod:success": 4} == merged["outcomes"]
    assert "r1" == merged["tag"]


def test_median_of_two_counts_is_whole() -> None:
    merged = median_results([{"ok": 3, "cpu": 12.0}, {"ok": 4, "cpu": 13.0}])
    assert 3 == merged["ok"]
    assert isinstance(merged["ok"], int)
    assert 12.5 == merged["cpu"]


def test_cpu_share_inside_window() -> None:
    readings = [
        (0.0, {"daemon": 1.0}),
        (1.0, {"daemon": 1.5}),
        (3.0, {"daemon": 2.5}),
        (4.0, {"daemon": 9.0}),
    ]
    # Only the readings at 1.0 and 3.0 fall inside the window: 1 s of CPU in 2 s.
    assert {"daemon": 50} == cpu_shares(readings, 0.5, 3.5)
    assert {} == cpu_shares(readings, 0.5, 1.5)
