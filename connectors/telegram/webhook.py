"""The bot's own webhook server (aiohttp): verifies Telegram's secret header, then hands
each update to a handler and answers 200 only once the handler (the store) has finished."""

from __future__ import annotations

import hmac
import json
import logging
import socket
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"

#: handler(update_json) -> None; raising makes the server answer 500 so Telegram retries
UpdateHandler = Callable[[dict[str, Any]], Awaitable[None]]


class WebhookServer:
    def __init__(
        self,
        *,
        host: str,
        port: int,
        path: str,
        secret_token: str,
        handler: UpdateHandler,
        max_body_bytes: int = 1_000_000,
        logger: logging.Logger | None = None,
        on_refused: Callable[[], None] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.path = path
        self._secret = secret_token.encode("utf-8")
        self._handler = handler
        self._max_body = max_body_bytes
        self._runner: web.AppRunner | None = None
        self.log = logger or logging.getLogger("unsource.connector.telegram.webhook")
        self.refused = 0  # requests without the right secret
        self._on_refused = on_refused

    async def start(self) -> None:
        app = web.Application(client_max_size=self._max_body)
        app.router.add_post(self.path, self._receive)
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _receive(self, request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "").encode("utf-8")
        if not hmac.compare_digest(given, self._secret):
            self.refused += 1
            if self._on_refused is not None:
                self._on_refused()
            self.log.warning(
                "refused a webhook request from %s: wrong or missing secret token", request.remote
            )
            return web.Response(status=403, text="forbidden")
        try:
            data = json.loads(await request.read())
        except (ValueError, UnicodeDecodeError):
            return web.Response(status=400, text="invalid JSON")
        if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
            return web.Response(status=400, text="not a Telegram update")
        try:
            await self._handler(data)
        except Exception:
            self.log.exception("could not store update %s; Telegram will retry it", data.get("update_id"))
            return web.Response(status=500, text="not stored")
        return web.Response(status=200, text="ok")
