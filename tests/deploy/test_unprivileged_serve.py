"""Run `responder serve` the way the image runs it: uid and gid 65532, nothing writable but
TMPDIR and the journal directory, the shipped playbooks, and a webhook notifier on loopback."""

from __future__ import annotations

import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
import yaml

from tests.deploy.manifests import ROOT

UID = 65532
SETPRIV = shutil.which("setpriv")
PROBE = "import os, sys, responder; print(json.dumps([sys.version, os.__file__]))"


def _as_runtime_user(*command: str) -> list[str]:
    assert SETPRIV is not None
    return [SETPRIV, f"--reuid={UID}", f"--regid={UID}", "--clear-groups", *command]


def _interpreter_problem() -> str | None:
    """Return why uid 65532 cannot run this interpreter as it is, or None when it can."""
    if os.geteuid() != 0:
        return "switching to uid 65532 needs root"
    if SETPRIV is None:
        return "setpriv (util-linux) not found"
    result = subprocess.run(
        _as_runtime_user(sys.executable, "-c", f"import json; {PROBE}"),
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
        timeout=30,
        check=False,
    )
    if result.returncode != 0:
        return f"uid {UID} cannot run {sys.executable}: {result.stderr.strip()[-300:]}"
    import json as json_module

    seen = json_module.loads(result.stdout)
    mine = [sys.version, os.__file__]
    if seen != mine:
        # The venv's base interpreter or its standard library is not readable by everyone, so
        # another Python on the machine fills in; that would not test this interpreter.
        return (
            f"uid {UID} runs {sys.executable} as Python {seen[0].split()[0]} with the standard "
            f"library {seen[1]}, not {mine[0].split()[0]} with {mine[1]}: create the venv "
            "from a Python installed where every user can read it"
        )
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Receiver(http.server.BaseHTTPRequestHandler):
    bodies: ClassVar[list[bytes]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        type(self).bodies.append(self.rfile.read(length))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def runtime_root() -> Iterator[Path]:
    """Return a fresh directory that uid 65532 can traverse.

    pytest's tmp_path lies below a root-only 0700 directory, which the daemon could not reach.
    """
    path = Path(tempfile.mkdtemp(prefix="responder-runtime-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[bytes]]]:
    bodies: ClassVar[list[bytes]] = []
    handler = type("Receiver", (_Receiver,), {"bodies": bodies})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/report", bodies
    finally:
        server.shutdown()
        server.server_close()


def _root_owned_tree(tmp_path: Path) -> dict[str, Path]:
    """Lay out the files the daemon reads, owned by root and readable but not writable by it."""
    readonly = tmp_path / "readonly"
    shutil.copytree(ROOT / "playbooks", readonly / "playbooks")
    home = readonly / "home"
    home.mkdir()
    writable = {"tmp": tmp_path / "tmp", "journal": tmp_path / "journal"}
    for path in writable.values():
        path.mkdir()
        os.chown(path, UID, UID)
        path.chmod(0o700)
    for directory in (tmp_path, readonly, *readonly.rglob("*")):
        if directory.is_dir():
            directory.chmod(0o755)
        else:
            directory.chmod(0o644)
    return {"readonly": readonly, "home": home, "playbooks": readonly / "playbooks", **writable}


def _wait_ready(url: str, process: subprocess.Popen[bytes], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = process.stdout.read().decode(errors="replace") if process.stdout else ""
            raise AssertionError(
                f"responder exited early with status {process.returncode}:\n{output[-2000:]}"
            )
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.1)
    raise AssertionError(f"{url} did not answer 200 within {timeout_s} s")


def test_serve_as_uid_65532(runtime_root: Path, receiver: tuple[str, list[bytes]]) -> None:
    problem = _interpreter_problem()
    if problem is not None and os.environ.get("CI"):
        # .ci/run builds the environment in a place every user can read, so this must run there.
        pytest.fail(problem)
    if problem is not None:
        pytest.skip(problem)
    report_url, reports = receiver
    tree = _root_owned_tree(runtime_root)
    config = tree["readonly"] / "responder.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "playbooks": [str(tree["playbooks"])],
                "log_format": "json",
                "journal": {"path": str(tree["journal"] / "journal.db")},
                "notifiers": {"security": {"type": "webhook", "url": report_url}},
                "auth": {"mode": "bearer", "token": "unprivileged-test-token"},
            }
        )
    )
    config.chmod(0o644)
    port = _free_port()
    env = {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "HOME": str(tree["home"]),
        "TMPDIR": str(tree["tmp"]),
        "PYTHONDONTWRITEBYTECODE": "1",
        # No in-cluster or kubeconfig settings: the daemon runs without Kubernetes.
        "KUBECONFIG": str(tree["home"] / "no-kubeconfig"),
    }
    command = _as_runtime_user(
        sys.executable,
        "-m",
        "responder",
        "serve",
        "--config",
        str(config),
        "--listen",
        f"127.0.0.1:{port}",
        "--dry-run",
    )
    process = subprocess.Popen(
        command,
        cwd=tree["readonly"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_ready(f"http://127.0.0.1:{port}/healthz", process, timeout_s=20)
        alert = (ROOT / "tests/samples/falco-direct.jsonl").read_text().splitlines()[0]
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/",
            data=alert.encode(),
            headers={
                "Content-Type": "application/json",
                "Authorization": "Bearer unprivileged-test-token",
            },
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert 202 == response.status

        deadline = time.monotonic() + 15
        while not reports and time.monotonic() < deadline:
            time.sleep(0.1)
        assert 1 == len(reports), "the security notifier sent no report"
        assert "Terminal shell in container" in json.dumps(json.loads(reports[0]))

        process.send_signal(signal.SIGTERM)
        status = process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        output = process.stdout.read().decode(errors="replace") if process.stdout else ""
    assert 0 == status, output[-2000:]
    assert "Traceback" not in output, output[-2000:]
    assert [] == sorted(str(p) for p in tree["readonly"].rglob("*") if p.stat().st_uid == UID)
    assert (tree["journal"] / "journal.db").is_file()
