"""The discord.py client the connector drives, pointed at configurable REST and gateway URLs.

discord.py builds every REST URL from the class attribute ``Route.BASE`` and connects to
``DiscordWebSocket.DEFAULT_GATEWAY``. Changing those would change them for every client in
the process, so instead each client gets an :class:`RoutedHTTPClient` (same class, two methods
extended) that rewrites its own URLs: REST to ``api_base_url``, and gateway connections to
Discord's hosts (the default gateway and ``*.discord.gg`` resume URLs) to ``gateway_url``.
A resume URL the server names that is not Discord's (the sandbox's) is used as given.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

import aiohttp
import discord
import yarl
from discord.http import HTTPClient, Route

from connectors.discord.settings import DISCORD_API, DISCORD_GATEWAY


class GatewayEvents(Protocol):
    def on_gateway_event(self, event: str, args: tuple[Any, ...]) -> None:
        """Called synchronously, in gateway order, for every event discord.py dispatches."""


class RoutedHTTPClient(HTTPClient):
    """discord.py's HTTP client with per-instance base URLs."""

    unsource_api_base: str = DISCORD_API
    unsource_gateway: yarl.URL | None = None

    async def request(
        self,
        route: Route,
        *,
        files: Sequence[discord.File] | None = None,
        form: Iterable[dict[str, Any]] | None = None,
        **kwargs: Any,
    ) -> Any:
        base = self.unsource_api_base
        if base != Route.BASE and route.url.startswith(Route.BASE):
            route.url = base + route.url[len(Route.BASE) :]
        return await super().request(route, files=files, form=form, **kwargs)

    async def ws_connect(self, url: str, *, compress: int = 0) -> aiohttp.ClientWebSocketResponse:
        target = self.unsource_gateway
        parsed = yarl.URL(url)
        if target is not None and (parsed.host or "").endswith("discord.gg"):
            parsed = target.with_query(parsed.query)
        return await super().ws_connect(str(parsed), compress=compress)


class SupportClient(discord.Client):
    """A plain :class:`discord.Client` that forwards every event to the connector, in order."""

    def __init__(
        self,
        events: GatewayEvents,
        *,
        intents: discord.Intents,
        api_base_url: str,
        gateway_url: str,
        http_trace: aiohttp.TraceConfig,
        guild_ready_timeout: float,
        max_ratelimit_timeout: float,
        identify_delay: float,
    ) -> None:
        super().__init__(
            intents=intents,
            guild_ready_timeout=guild_ready_timeout,
            max_ratelimit_timeout=max_ratelimit_timeout,
            http_trace=http_trace,
            chunk_guilds_at_startup=False,
            max_messages=1000,
        )
        http = self.http
        http.__class__ = RoutedHTTPClient  # same object the connection state holds
        assert isinstance(http, RoutedHTTPClient)
        http.unsource_api_base = api_base_url.rstrip("/")
        http.unsource_gateway = None if gateway_url == DISCORD_GATEWAY else yarl.URL(gateway_url)
        self._events = events
        self._identify_delay = identify_delay

    def dispatch(self, event: str, /, *args: Any, **kwargs: Any) -> None:
        self._events.on_gateway_event(event, args)
        super().dispatch(event, *args, **kwargs)

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        # Discord allows one IDENTIFY per 5 s; discord.py waits 5 s before every re-IDENTIFY.
        if not initial and self._identify_delay > 0:
            await asyncio.sleep(self._identify_delay)

    def drop_message_content_intent(self) -> None:
        """Run on without the privileged intent (only DMs and mentions will carry text)."""
        self._connection._intents.message_content = False
