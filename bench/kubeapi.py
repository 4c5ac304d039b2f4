"""The Kubernetes API test server in a process of its own, with request arrival times.

Run as ``python -m bench.kubeapi --latency 0.002``. It prints ``{"port": N}`` on the first line
of stdout and serves on 127.0.0.1 until its stdin closes or it gets SIGTERM. Paths under
``/_bench/`` are for the benchmark and skip the added latency:

- ``POST /_bench/seed`` with ``{"pods": [[namespace, pod, container], ...]}`` seeds pods;
- ``GET /_bench/arrivals`` returns and clears ``[[monotonic_ns, method, path], ...]``, one per
  API request, stamped when the handler starts, before the body is read and the latency added;
- ``GET /_bench/clock`` returns the handler's ``time.monotonic_ns()``, to measure one hop.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import signal
import sys
import time
import uuid
from typing import Any

from aiohttp import web

from tests.kubeapi.resources import PODS
from tests.kubeapi.seed import container_id
from tests.kubeapi.server import KubeApiServer

CONTROL_PREFIX = "/_bench/"


class TimedKubeApiServer(KubeApiServer):
    """The test server with arrival stamps and fast seeding of many similar pods."""

    def __init__(self, *, latency: float) -> None:
        super().__init__(latency=latency)
        self.arrivals: list[tuple[int, str, str]] = []
        # One validated pod per (namespace, container), copied for every further pod, because
        # schema validation costs about 9 ms a pod and a phase seeds thousands.
        self._templates: dict[tuple[str, str], dict[str, Any]] = {}

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        arrived = time.monotonic_ns()
        if request.path.startswith(CONTROL_PREFIX):
            return await self._control(request, arrived)
        self.arrivals.append((arrived, request.method, request.path))
        # The base class keeps every request for assertions; a load run would grow it forever.
        self.requests.clear()
        return await super()._dispatch(request)

    async def _control(self, request: web.Request, arrived: int) -> web.StreamResponse:
        command = request.path.removeprefix(CONTROL_PREFIX)
        if command == "clock":
            return web.json_response({"monotonic_ns": arrived})
        if command == "arrivals":
            arrivals, self.arrivals = self.arrivals, []
            return web.json_response(arrivals)
        if command == "seed" and request.method == "POST":
            document = await request.json()
            for namespace, pod, container in document["pods"]:
                self.seed_pod(namespace, pod, container)
            return web.json_response({"seeded": len(document["pods"])})
        return web.json_response({"error": "not_found", "message": request.path}, status=404)

    def seed_pod(self, namespace: str, pod: str, container: str) -> None:
        """Store a running pod with the container id that ``container_id`` derives."""
        key = (namespace, container)
        template = self._templates.get(key)
        if template is None:
            if self.get_object("namespaces", namespace) is None:
                self.add_namespace(namespace)
            template = self.add_pod(namespace, pod, containers=[container], node_name="node-1")
            self._templates[key] = template
            return
        obj = copy.deepcopy(template)
        metadata = obj["metadata"]
        metadata["name"] = pod
        metadata["uid"] = str(uuid.uuid4())
        metadata["resourceVersion"] = self.store.next_resource_version()
        obj["status"]["containerStatuses"][0]["containerID"] = container_id(
            namespace, pod, container
        )
        self.store.objects[(PODS, namespace, pod)] = obj


async def serve(latency: float) -> None:
    server = TimedKubeApiServer(latency=latency)
    await server.start()
    server.add_node("node-1")
    assert server._port is not None
    print(json.dumps({"port": server._port}), flush=True)
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stopped.set)
    loop.add_reader(sys.stdin.fileno(), lambda: stopped.set() if not sys.stdin.read(1) else None)
    try:
        await stopped.wait()
    finally:
        await server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--latency", type=float, default=0.002, help="seconds added to every API request"
    )
    asyncio.run(serve(parser.parse_args().latency))


if __name__ == "__main__":
    main()
