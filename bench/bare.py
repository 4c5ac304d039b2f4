"""The bare aiohttp baseline: parse the JSON body and respond 200, nothing else.

Run as ``python -m bench.bare``. It prints ``{"port": N}`` on the first line of stdout and serves
on 127.0.0.1 until its stdin closes or it gets SIGTERM. Its figures are the limit of this stack
(aiohttp, the JSON parser, loopback TCP) on this machine, which the daemon's are compared with.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys

from aiohttp import web


async def receive(request: web.Request) -> web.Response:
    json.loads(await request.read())
    return web.Response(status=200)


async def serve() -> None:
    app = web.Application(client_max_size=1024 * 1024)
    app.router.add_post("/", receive)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    print(json.dumps({"port": runner.addresses[0][1]}), flush=True)
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stopped.set)
    loop.add_reader(sys.stdin.fileno(), lambda: stopped.set() if not sys.stdin.read(1) else None)
    try:
        await stopped.wait()
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    asyncio.run(serve())
