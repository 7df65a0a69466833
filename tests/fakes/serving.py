"""Running an aiohttp app on 127.0.0.1 in a thread of its own, for the fake servers."""
from __future__ import annotations

import asyncio
import threading

from aiohttp import web


class ServedApp:
    def __init__(self, app: web.Application, name: str, port: int = 0):
        self.loop: asyncio.AbstractEventLoop | None = None
        self.port = 0
        self.error: OSError | None = None
        ready = threading.Event()

        def serve() -> None:
            self.loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self.loop)
            runner = web.AppRunner(app, access_log=None)
            self.loop.run_until_complete(runner.setup())
            site = web.TCPSite(runner, "127.0.0.1", port)
            try:
                self.loop.run_until_complete(site.start())
            except OSError as e:
                self.error = e
                ready.set()
                return
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            ready.set()
            self.loop.run_forever()
            self.loop.run_until_complete(runner.cleanup())
            self.loop.close()

        self.thread = threading.Thread(target=serve, name=name, daemon=True)
        self.thread.start()
        if not ready.wait(10):
            raise RuntimeError(f"{name} did not start")
        if self.error is not None:
            raise self.error

    def call(self, coro, timeout: float = 10):  # noqa: ANN001, ANN201
        """Run a coroutine on the server's loop from another thread."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
