"""Reloading playbooks: changed files, invalid edits, ConfigMap symlink swaps and SIGHUP."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from responder.act.base import Registry
from responder.match.loader import LoadReport, load_playbooks
from responder.match.matcher import Matcher
from responder.match.reload import PlaybookReloader, ReloadResult, path_signature
from responder.record.metrics import Metrics


def playbooks_yaml(*names: str) -> str:
    blocks = [
        f"""
  - name: {name}
    match:
      rules: [Terminal shell in container]
    actions:
      - action: label_pod
        parameters:
          set: {{falco.org/playbook: {name}}}
"""
        for name in names
    ]
    return "playbooks:" + "".join(blocks)


INVALID = """
playbooks:
  - name: broken
    actions:
      - action: no_such_action
"""


class Holder:
    """Stands in for the pipeline: keeps the matcher that ``apply`` swaps in."""

    def __init__(self, report: LoadReport) -> None:
        self.matcher = Matcher(report.playbooks)
        self.applied = 0

    def apply(self, report: LoadReport) -> None:
        self.matcher = Matcher(report.playbooks)
        self.applied += 1

    def names(self) -> list[str]:
        return [loaded.name for loaded in self.matcher.playbooks]


def make_reloader(
    paths: list[Path], registry: Registry, metrics: Metrics
) -> tuple[PlaybookReloader, Holder]:
    report = load_playbooks(paths, registry=registry, notifiers=[])
    holder = Holder(report)
    reloader = PlaybookReloader(
        paths,
        registry=registry,
        notifiers=[],
        apply=holder.apply,
        metrics=metrics,
        loaded=len(report.playbooks),
    )
    return reloader, holder


def reloads(metrics: Metrics, result: str) -> float:
    value = metrics.registry.get_sample_value(
        "responder_playbook_reloads_total", {"result": result}
    )
    return value if value is not None else 0.0


def bump_mtime(path: Path) -> None:
    """Move the mtime forward, so a rewrite is a change on filesystems with coarse mtimes."""
    status = path.stat()
    os.utime(path, ns=(status.st_atime_ns, status.st_mtime_ns + 1_000_000_000))


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


async def test_unchanged_does_nothing(
    tmp_path: Path, registry: Registry, metrics: Metrics
) -> None:
    path = tmp_path / "playbooks.yaml"
    path.write_text(playbooks_yaml("first"), encoding="utf-8")
    reloader, holder = make_reloader([path], registry, metrics)
    assert ReloadResult.UNCHANGED == await reloader.check_now()
    assert 0 == holder.applied
    assert 0.0 == reloads(metrics, "success")


async def test_changed_file_swaps_set(
    tmp_path: Path, registry: Registry, metrics: Metrics
) -> None:
    path = tmp_path / "playbooks.yaml"
    path.write_text(playbooks_yaml("first"), encoding="utf-8")
    reloader, holder = make_reloader([path], registry, metrics)
    path.write_text(playbooks_yaml("first", "second"), encoding="utf-8")
    bump_mtime(path)
    assert ReloadResult.SUCCESS == await reloader.check_now()
    assert ["first", "second"] == holder.names()
    assert 1.0 == reloads(metrics, "success")
    assert 2.0 == metrics.registry.get_sample_value("responder_playbooks_loaded")
    assert ReloadResult.UNCHANGED == await reloader.check_now()


async def test_invalid_change_keeps_set(
    tmp_path: Path, registry: Registry, metrics: Metrics
) -> None:
    path = tmp_path / "playbooks.yaml"
    path.write_text(playbooks_yaml("first"), encoding="utf-8")
    reloader, holder = make_reloader([path], registry, metrics)
    path.write_text(INVALID, encoding="utf-8")
    bump_mtime(path)
    with capture_logs() as logs:
        assert ReloadResult.FAILED == await reloader.check_now()
    assert ["first"] == holder.names()
    assert 0 == holder.applied
    assert 1.0 == reloads(metrics, "failed")
    failed = [entry for entry in logs if entry["event"] == "playbooks_reload_failed"]
    assert 1 == len(failed)
    assert "unknown action 'no_such_action'" in " ".join(failed[0]["errors"])
    assert "error" == failed[0]["log_level"]
    # The same broken file is not reloaded again on every poll.
    assert ReloadResult.UNCHANGED == await reloader.check_now()


async def test_fixed_after_invalid_swaps(
    tmp_path: Path, registry: Registry, metrics: Metrics
) -> None:
    path = tmp_path / "playbooks.yaml"
    path.write_text(playbooks_yaml("first"), encoding="utf-8")
    reloader, holder = make_reloader([path], registry, metrics)
    path.write_text(INVALID, encoding="utf-8")
    bump_mtime(path)
    await reloader.check_now()
    path.write_text(playbooks_yaml("fixed"), encoding="utf-8")
    bump_mtime(path)
    bump_mtime(path)
    assert ReloadResult.SUCCESS == await reloader.check_now()
    assert ["fixed"] == holder.names()


async def test_deleted_file_keeps_set(
    tmp_path: Path, registry: Registry, metrics: Metrics
) -> None:
    path = tmp_path / "playbooks.yaml"
    path.write_text(playbooks_yaml("first"), encoding="utf-8")
    reloader, holder = make_reloader([path], registry, metrics)
    path.unlink()
    assert ReloadResult.FAILED == await reloader.check_now()
    assert ["first"] == holder.names()


async def test_directory_new_file_detected(
    tmp_path: Path, registry: Registry, metrics: Metrics
) -> None:
    directory = tmp_path / "playbooks"
    directory.mkdir()
    (directory / "a.yaml").write_text(playbooks_yaml("a"), encoding="utf-8")
    reloader, holder = make_reloader([directory], registry, metrics)
    (directory / "b.yaml").write_text(playbooks_yaml("b"), encoding="utf-8")
    assert ReloadResult.SUCCESS == await reloader.check_now()
    assert ["a", "b"] == holder.names()


def kubelet_write(volume: Path, stamp: str, files: dict[str, str]) -> None:
    """Update ``volume`` the way the kubelet updates a ConfigMap volume.

    The files go into a new ``..<timestamp>`` directory, a ``..data_tmp`` symlink to it is
    renamed over ``..data`` in one step, and each visible name links through ``..data``."""
    target = volume / stamp
    target.mkdir()
    for name, text in files.items():
        (target / name).write_text(text, encoding="utf-8")
    temporary = volume / "..data_tmp"
    temporary.symlink_to(stamp)
    old_target = os.readlink(volume / "..data") if (volume / "..data").is_symlink() else None
    os.replace(temporary, volume / "..data")
    for name in files:
        if not (volume / name).is_symlink():
            (volume / name).symlink_to(Path("..data") / name)
    if old_target is not None:
        for child in (volume / old_target).iterdir():
            child.unlink()
        (volume / old_target).rmdir()


@pytest.mark.parametrize("watch", ["directory", "file"])
async def test_configmap_swap_detected(
    tmp_path: Path, registry: Registry, metrics: Metrics, watch: str
) -> None:
    volume = tmp_path / "volume"
    volume.mkdir()
    kubelet_write(volume, "..2026_12_04_10_00_00.123", {"playbooks.yaml": playbooks_yaml("old")})
    watched = volume if watch == "directory" else volume / "playbooks.yaml"
    reloader, holder = make_reloader([watched], registry, metrics)
    assert ["old"] == holder.names()
    before = path_signature([watched])
    # The new file has the same size and, on a coarse clock, the same mtime as the old one.
    kubelet_write(volume, "..2026_12_04_10_01_00.456", {"playbooks.yaml": playbooks_yaml("new")})
    assert before != path_signature([watched])
    assert (volume / "..2026_12_04_10_01_00.456").resolve() == (volume / "..data").resolve()
    assert ReloadResult.SUCCESS == await reloader.check_now()
    assert ["new"] == holder.names()


async def test_signature_skips_data_dirs(tmp_path: Path) -> None:
    volume = tmp_path / "volume"
    volume.mkdir()
    kubelet_write(volume, "..2026_12_04_10_00_00.123", {"playbooks.yaml": playbooks_yaml("x")})
    listed = [state[0] for state in path_signature([volume])]
    assert [str(volume), str(volume / "playbooks.yaml")] == listed


@pytest.fixture
async def started(
    tmp_path: Path, registry: Registry, metrics: Metrics
) -> AsyncIterator[tuple[PlaybookReloader, Holder, Path]]:
    path = tmp_path / "playbooks.yaml"
    path.write_text(playbooks_yaml("first"), encoding="utf-8")
    holder = Holder(load_playbooks([path], registry=registry, notifiers=[]))
    # A long interval, so that only SIGHUP can trigger a reload within the test.
    reloader = PlaybookReloader(
        [path],
        registry=registry,
        notifiers=[],
        apply=holder.apply,
        metrics=metrics,
        interval_s=3600,
    )
    async with reloader:
        yield reloader, holder, path


async def wait_for_applied(holder: Holder, count: int) -> None:
    async with asyncio.timeout(5):
        while holder.applied < count:
            await asyncio.sleep(0.01)


async def test_sighup_forces_reload(
    started: tuple[PlaybookReloader, Holder, Path], metrics: Metrics
) -> None:
    _, holder, path = started
    # No change to the files: SIGHUP reloads anyway, for edits the signature cannot see.
    os.kill(os.getpid(), signal.SIGHUP)
    await wait_for_applied(holder, 1)
    assert ["first"] == holder.names()
    path.write_text(playbooks_yaml("after-signal"), encoding="utf-8")
    os.kill(os.getpid(), signal.SIGHUP)
    await wait_for_applied(holder, 2)
    assert ["after-signal"] == holder.names()
    assert 2.0 == reloads(metrics, "success")


async def test_close_removes_sighup_handler(
    tmp_path: Path, registry: Registry, metrics: Metrics
) -> None:
    path = tmp_path / "playbooks.yaml"
    path.write_text(playbooks_yaml("first"), encoding="utf-8")
    reloader, _ = make_reloader([path], registry, metrics)
    async with reloader:
        assert signal.SIG_DFL != signal.getsignal(signal.SIGHUP)
    assert signal.SIG_DFL == signal.getsignal(signal.SIGHUP)
    assert not asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)


async def test_poll_detects_change(tmp_path: Path, registry: Registry, metrics: Metrics) -> None:
    path = tmp_path / "playbooks.yaml"
    path.write_text(playbooks_yaml("first"), encoding="utf-8")
    holder = Holder(load_playbooks([path], registry=registry, notifiers=[]))
    reloader = PlaybookReloader(
        [path],
        registry=registry,
        notifiers=[],
        apply=holder.apply,
        metrics=metrics,
        interval_s=0.02,
    )
    async with reloader:
        path.write_text(playbooks_yaml("polled"), encoding="utf-8")
        bump_mtime(path)
        await wait_for_applied(holder, 1)
    assert ["polled"] == holder.names()


async def test_poll_survives_apply_error(
    tmp_path: Path, registry: Registry, metrics: Metrics
) -> None:
    path = tmp_path / "playbooks.yaml"
    path.write_text(playbooks_yaml("first"), encoding="utf-8")
    calls: list[LoadReport] = []

    def apply(report: LoadReport) -> None:
        calls.append(report)
        if len(calls) == 1:
            raise RuntimeError("apply failed")

    reloader = PlaybookReloader(
        [path], registry=registry, notifiers=[], apply=apply, metrics=metrics, interval_s=0.02
    )
    with capture_logs():
        async with reloader:
            path.write_text(playbooks_yaml("second"), encoding="utf-8")
            bump_mtime(path)
            async with asyncio.timeout(5):
                while reloads(metrics, "failed") < 1:
                    await asyncio.sleep(0.01)
            path.write_text(playbooks_yaml("third"), encoding="utf-8")
            bump_mtime(path)
            bump_mtime(path)
            async with asyncio.timeout(5):
                while len(calls) < 2:
                    await asyncio.sleep(0.01)
    assert ["third"] == [loaded.name for loaded in calls[1].playbooks]


def test_interval_must_be_positive(tmp_path: Path, registry: Registry, metrics: Metrics) -> None:
    with pytest.raises(ValueError, match="interval_s must be positive"):
        PlaybookReloader(
            [tmp_path],
            registry=registry,
            notifiers=None,
            apply=lambda _: None,
            metrics=metrics,
            interval_s=0,
        )


def test_counter_shared_per_registry(tmp_path: Path, registry: Registry, metrics: Metrics) -> None:
    first = PlaybookReloader(
        [tmp_path], registry=registry, notifiers=None, apply=lambda _: None, metrics=metrics
    )
    second = PlaybookReloader(
        [tmp_path], registry=registry, notifiers=None, apply=lambda _: None, metrics=metrics
    )
    assert first.reloads is second.reloads


async def test_emptied_directory_keeps_set(
    tmp_path: Path, registry: Registry, metrics: Metrics
) -> None:
    directory = tmp_path / "playbooks"
    directory.mkdir()
    (directory / "a.yaml").write_text(playbooks_yaml("first"), encoding="utf-8")
    reloader, holder = make_reloader([directory], registry, metrics)
    (directory / "a.yaml").unlink()
    result = await reloader.check_now()
    assert ReloadResult.FAILED == result
    assert ["first"] == holder.names()
    assert 1.0 == reloads(metrics, "failed")
