"""``responder serve`` as a subprocess, and the small cluster the end-to-end tests act on."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from responder.ingest.alert import Timestamp
from tests.kubeapi.seed import container_id
from tests.kubeapi.server import KubeApiServer
from tests.samples import sample_document

REPO = Path(__file__).resolve().parents[1]
POD = "frontend-6d5f7b9c8d-x2kqp"


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def seed_shop(server: KubeApiServer) -> None:
    """Seed namespace shop with the sample alerts' pod, owned by a ReplicaSet of 3, on node-1."""
    server.add_namespace("shop")
    server.add_node("node-1")
    replicaset = server.add_replicaset(
        "shop", "frontend-6d5f7b9c8d", replicas=3, selector={"app": "frontend"}
    )
    server.add_pod(
        "shop",
        POD,
        labels={"app": "frontend", "pod-template-hash": "6d5f7b9c8d"},
        owner=replicaset,
        containers=["frontend"],
        node_name="node-1",
    )


def offline_config(tmp_path: Path, token: str, notifier: dict[str, Any]) -> dict[str, Any]:
    """Settings for a dry-run daemon with the shipped playbooks, bearer auth and one notifier,
    ``security``. A kubeconfig that does not exist keeps it off any cluster."""
    return {
        "playbooks": [str(REPO / "playbooks")],
        "kubernetes": {"kubeconfig": str(tmp_path / "absent-kubeconfig")},
        "dry_run": True,
        "log_format": "json",
        "auth": {"mode": "bearer", "token": token},
        "notifiers": {"security": notifier},
    }


async def eventually(check: Any, *, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"condition not met within {timeout_s} s: {check.__doc__ or check}")


def shell_alert() -> dict[str, Any]:
    """A fresh "Terminal shell in container" alert about the pod that ``seed_shop`` seeds."""
    document = sample_document("falco-direct", 1)
    full_id = container_id("shop", POD, "frontend").split("://", 1)[1]
    document["output_fields"]["container.id"] = full_id[:12]
    # A fresh alert: the staleness guard refuses destructive actions for old ones.
    document["time"] = Timestamp.now().isoformat()
    return document


def child_pid(pid: int) -> int | None:
    """Return the pid of a child process of ``pid`` (the worker process of serve), if any."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # The parent pid is the second field after the command, which is in brackets.
            fields = stat.read_text(encoding="utf-8").rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            return int(stat.parent.name)
    return None


def process_gone(pid: int) -> bool:
    """True when ``pid`` has exited: no such process, or a zombie waiting for its parent."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state == "Z"


def hanging_kubeconfig(tmp_path: Path) -> tuple[Path, Path]:
    """Write a kubeconfig whose exec credential plugin never returns, which keeps the worker
    process from starting. Return the kubeconfig and the file where the plugin writes its pid.
    The plugin exits on its own after 30 s."""
    pid_file = tmp_path / "plugin.pid"
    plugin = tmp_path / "plugin.py"
    plugin.write_text(
        "import os, pathlib, sys, time\n"
        "pathlib.Path(sys.argv[1]).write_text(str(os.getpid()))\n"
        "time.sleep(30)\n"
    )
    command = {"apiVersion": "client.authentication.k8s.io/v1", "command": sys.executable}
    command["args"] = [str(plugin), str(pid_file)]
    kubeconfig = tmp_path / "hanging-kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": "http://127.0.0.1:9"}}],
                "users": [{"name": "u", "user": {"exec": command}}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    return kubeconfig, pid_file


class Daemon:
    """A running ``responder serve`` and its base URL."""

    def __init__(self, process: asyncio.subprocess.Process, url: str) -> None:
        self.process = process
        self.url = url


async def start_daemon(
    tmp_path: Path,
    config: dict[str, Any],
    *,
    ready_url: str | None = None,
    new_session: bool = False,
) -> Daemon:
    """Write ``config`` (its server address is set here) and start serve until it is ready.

    Readiness is read from ``ready_url``, by default the sink's ``/readyz``. With
    ``new_session``, serve leads a process group of its own, as in a terminal, which a test can
    signal as a whole."""
    port = free_port()
    config = {**config, "server": {**config.get("server", {}), "host": "127.0.0.1", "port": port}}
    process = await spawn_serve(tmp_path, config, start_new_session=new_session)
    daemon = Daemon(process, f"http://127.0.0.1:{port}")
    await wait_ready(daemon, ready_url or f"{daemon.url}/readyz")
    return daemon


async def spawn_serve(
    tmp_path: Path, config: dict[str, Any], **options: Any
) -> asyncio.subprocess.Process:
    """Write ``config`` to ``tmp_path`` and start ``responder serve`` on it there, as
    ``run_responder`` does."""
    config_path = tmp_path / "responder.yaml"
    config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return await run_responder("serve", "--config", str(config_path), cwd=tmp_path, **options)


async def run_responder(*arguments: str, **options: Any) -> asyncio.subprocess.Process:
    """Start ``python -m responder ARGUMENTS`` with standard output and error piped, unless
    ``options`` for ``asyncio.create_subprocess_exec`` set them otherwise. KUBECONFIG is removed
    from the environment, so that only the kubeconfig in the arguments or the config is used."""
    environment = {key: value for key, value in os.environ.items() if key != "KUBECONFIG"}
    settings: dict[str, Any] = {
        "stdout": asyncio.subprocess.PIPE,
        "stderr": asyncio.subprocess.PIPE,
        "env": environment,
        **options,
    }
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "responder", *arguments, **settings
    )


async def wait_ready(daemon: Daemon, url: str) -> None:
    """Wait up to 20 s for ``url`` to return 200; stop the daemon and fail otherwise."""
    deadline = time.monotonic() + 20
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if daemon.process.returncode is not None:
                break
            try:
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.1)
    stderr = await stop(daemon)
    raise AssertionError(f"responder did not become ready:\n{stderr}")


async def stop(daemon: Daemon) -> str:
    """Send SIGTERM, wait for the exit, and return what the daemon wrote to standard error."""
    if daemon.process.returncode is None:
        daemon.process.send_signal(signal.SIGTERM)
    _, stderr = await asyncio.wait_for(daemon.process.communicate(), timeout=20)
    return stderr.decode(errors="replace")
