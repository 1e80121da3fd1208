"""Serving the dashboard from the bot: uvicorn as one supervised task of the App."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import uvicorn

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from bot.app import App

log = logging.getLogger("unsource.web")


class _Server(uvicorn.Server):
    """uvicorn without its own signal handlers: the App owns SIGINT/SIGTERM/SIGHUP."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class WebServer:
    def __init__(self, asgi: Any, host: str, port: int) -> None:
        self.asgi = asgi
        self.host = host
        self.port = port  # the bound port once started (useful with port 0)
        self.started = asyncio.Event()
        self._server: _Server | None = None

    async def run(self) -> None:
        config = uvicorn.Config(
            self.asgi, host=self.host, port=self.port, log_level="warning", lifespan="off", access_log=False
        )
        server = self._server = _Server(config)
        task = asyncio.create_task(self._serve(server))
        try:
            while not server.started and not task.done():
                await asyncio.sleep(0.02)
            if server.started and server.servers:
                self.port = int(server.servers[0].sockets[0].getsockname()[1])
                log.info("dashboard on http://%s:%d/", self.host, self.port)
                self.started.set()
            await asyncio.shield(task)
        except asyncio.CancelledError:
            server.should_exit = True
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(task, 5)
            raise

    async def _serve(self, server: _Server) -> None:
        try:
            await server.serve()
        except SystemExit:  # uvicorn exits when it cannot bind: a normal error for the supervisor
            raise OSError(f"dashboard cannot listen on {self.host}:{self.port} (in use?)") from None


def start_web(app: App, sessions: async_sessionmaker[AsyncSession]) -> WebServer:
    """Build the dashboard for ``app`` and start it under the app's supervisor (task "web")."""
    from bot.web.app import create_app

    s = app.holder.current.settings.web
    asgi = create_app(app.holder, sessions, runtime=app, extra_routes=list(app.web_routes))
    server = WebServer(asgi, s.host, s.port)
    app.supervisor.start("web", server.run)
    return server
