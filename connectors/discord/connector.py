"""The Discord connector: a push connector on discord.py 2.7.

Life cycle: ``start()`` logs in over REST and opens the gateway session (waiting for READY);
``listen(cursor, sink)`` first backfills every watched channel from ``cursor`` and then hands
live events to ``sink`` in gateway order; ``send()`` works whenever the connector is started;
``stop()`` closes everything.

Never losing a message: discord.py RESUMEs a dropped session, and the gateway replays what was
missed. When it cannot (the gap outlived the resume window, or the process restarted), the
session starts afresh: the connector then backfills each watched channel's history after the
last stored message id (``GET /channels/{id}/messages?after=``) *before* delivering anything
that arrived on the new session, skipping what it already delivered. The cursor only ever moves
with the messages it covers, through the sink. See :mod:`connectors.discord.cursor` and
:mod:`connectors.discord.backfill`.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, ClassVar

import discord
from discord.http import Route

from bot.errors import AuthError, ConnectorError, MalformedPayload, RateLimited
from bot.models import (
    Capabilities,
    Health,
    HealthState,
    InboundMessage,
    OutboundMessage,
    RateLimit,
    SendReceipt,
    utcnow,
)
from connectors.base import ConnectorContext, ConnectorSettings, PushConnector, Sink
from connectors.discord import backfill, normalize
from connectors.discord.client import SupportClient
from connectors.discord.cursor import Cursor, snowflake_at
from connectors.discord.delivery import Delivered, Fatal, Item, Live, SessionStart, Stopped
from connectors.discord.edge import HttpEdge
from connectors.discord.errors import translate
from connectors.discord.sending import Sender
from connectors.discord.settings import DiscordSettings
from connectors.discord.watch import Watch

BATCH = 100
INTERACTION_ACK_TYPE = 6  # DEFERRED_UPDATE_MESSAGE: "got it", no visible change


class DiscordConnector(PushConnector[DiscordSettings]):
    name: ClassVar[str] = "discord"
    platform: ClassVar[str] = "discord"
    settings_model: ClassVar[type[ConnectorSettings]] = DiscordSettings
    capabilities: ClassVar[Capabilities] = Capabilities(
        mode="push",
        max_text_length=2000,
        threads=True,
        dms=True,
        reactions=True,
        buttons=True,
        edits=True,
        deletes=True,
        rate_limits=(
            RateLimit(scope="conversation", limit=5, per_seconds=5.0),
            RateLimit(scope="connector", limit=45, per_seconds=1.0),
        ),
    )
    #: every part is sent with a nonce derived from the idempotency key and enforce_nonce, so a
    #: resend within Discord's nonce window (a few minutes) returns the message already created;
    #: completed sends are also remembered in memory for the life of the process.
    idempotent_send: ClassVar[bool] = True

    def __init__(
        self, connector_id: str, settings: DiscordSettings, context: ConnectorContext | None = None
    ) -> None:
        super().__init__(connector_id, settings, context)
        s = settings
        self._client: SupportClient | None = None
        self._gateway_task: asyncio.Task[None] | None = None
        self._queue: asyncio.Queue[Item] = asyncio.Queue()
        self._held: Item | None = None
        self._ready = asyncio.Event()
        self._fatal: ConnectorError | None = None
        self._cursor = Cursor()
        self._delivered = Delivered()
        self._session_no = 0
        self._covered_session = -1
        self._first_connect_at = utcnow()
        self._message_content = True
        self._connected = False
        self._stopped = False
        self._start_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        self._watch = Watch(s)
        self._emojis = frozenset(normalize.base_emoji(e) for e in s.watched_emojis)
        self._edge = HttpEdge(s, self.log, on_invalid=self._refresh_health)
        self._sender = Sender(s, self._delivered.text_of)
        self._backfill = backfill.Backfill(
            connector_id,
            self.log,
            retry_seconds=s.backfill_retry_seconds,
            on_problem=self._set_backfill_problem,
        )
        self._backfill_problem: str | None = None
        self.metrics: dict[str, float] = {
            "delivered": 0,
            "backfilled": 0,
            "duplicates_skipped": 0,
            "sessions": 0,
            "resumes": 0,
            "disconnects": 0,
            "rejected": 0,
            "sent": 0,
            "interactions_acked": 0,
        }

    # ================================================================== life cycle
    def _new_client(self) -> SupportClient:
        s = self.settings
        intents = discord.Intents.default()
        intents.message_content = True
        return SupportClient(
            self,
            intents=intents,
            api_base_url=s.api_base_url,
            gateway_url=s.gateway_url,
            http_trace=self._edge.trace_config(),
            guild_ready_timeout=s.guild_ready_timeout,
            max_ratelimit_timeout=s.max_ratelimit_wait,
            identify_delay=s.identify_delay,
        )

    async def start(self) -> None:
        async with self._start_lock:  # send() and listen() start on demand, possibly at once
            if self._client is None:
                await self._start()

    async def _start(self) -> None:
        self.set_health(HealthState.STARTING, "logging in")
        self._fatal = None
        self._stopped = False
        kept = [it for it in _drain(self._queue) if isinstance(it, Live)]  # a restart in place
        for it in kept:
            self._queue.put_nowait(it)
        client = self._new_client()
        try:
            await client.login(self.settings.token.get_secret_value())
        except Exception as exc:
            await client.close()
            err = translate(exc, what="login")
            self.set_health(HealthState.DOWN, str(err))
            raise err from exc
        self._client = client
        self._first_connect_at = utcnow()
        self._gateway_task = asyncio.create_task(self._run_gateway(client), name=f"{self.id}-gateway")
        waiter = asyncio.create_task(self._ready.wait())
        try:
            await asyncio.wait(
                {waiter, self._gateway_task},
                timeout=self.settings.start_timeout,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            waiter.cancel()
        if self._fatal is not None:
            raise self._fatal
        if not self._ready.is_set():
            self.log.warning(
                "discord gateway not ready after %.0fs; still trying", self.settings.start_timeout
            )
            self._refresh_health()

    async def stop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                await client.close()
        if self._gateway_task is not None:
            self._gateway_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._gateway_task
            self._gateway_task = None
        for task in list(self._tasks):
            task.cancel()
        self._ready.clear()
        self._connected = False
        self._stopped = True
        self._queue.put_nowait(Stopped())  # a listen() still running goes idle
        self.set_health(HealthState.STOPPED, "stopped")

    async def _run_gateway(self, client: SupportClient) -> None:
        backoff = 1.0
        while not client.is_closed():
            try:
                await client.connect(reconnect=True)
                return
            except asyncio.CancelledError:
                raise
            except discord.PrivilegedIntentsRequired as exc:
                if self.settings.require_message_content:
                    self._fail(translate(exc, what="gateway"))
                    return
                self.log.error(
                    "the message content intent is not enabled for this bot: running without it; "
                    "channel messages will arrive with EMPTY text (only DMs and mentions keep it). "
                    "Enable it in the Developer Portal > Bot > Privileged Gateway Intents."
                )
                self._message_content = False
                client.drop_message_content_intent()
                self._refresh_health()
            except Exception as exc:
                err = translate(exc, what="gateway")
                if isinstance(err, AuthError) or client.is_closed():
                    self._fail(err)
                    return
                self.log.warning("discord gateway failed (%s); reconnecting in %.0fs", err, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 60.0)

    def _fail(self, err: ConnectorError) -> None:
        self._fatal = err
        self.log.error("discord connector stopped: %s", err)
        self.set_health(HealthState.DOWN, str(err))
        self._queue.put_nowait(Fatal(err))

    # ================================================================== gateway events
    def on_gateway_event(self, event: str, args: tuple[Any, ...]) -> None:
        """Runs synchronously inside discord.py's event parsing, so the queue keeps gateway order."""
        try:
            self._on_event(event, args)
        except MalformedPayload as exc:
            self.metrics["rejected"] += 1
            self.log.warning("skipped a discord %s event that could not be normalized: %s", event, exc)
        except Exception:
            self.metrics["rejected"] += 1
            self.log.exception("skipped a discord %s event after an unexpected error", event)

    def _on_event(self, event: str, args: tuple[Any, ...]) -> None:
        client = self._client
        if event == "connect":  # a fresh session (READY): what RESUME cannot replay needs a backfill
            self._session_no += 1
            self.metrics["sessions"] += 1
            self._ready.clear()
            self._connected = True
            self._queue.put_nowait(SessionStart(self._session_no))
        elif event == "ready":
            self._ready.set()
            self._connected = True
            self._refresh_health()
        elif event == "resumed":
            self.metrics["resumes"] += 1
            self._connected = True
            self._refresh_health()
        elif event == "disconnect":
            self.metrics["disconnects"] += 1
            self._connected = False
            self._refresh_health()
        elif client is None or client.user is None:
            return
        elif event == "message":
            self._on_message(args[0], client.user.id)
        elif event == "raw_message_edit":
            ev: discord.RawMessageUpdateEvent = args[0]
            if ev.message.author.id != client.user.id and self._watch.includes(
                ev.message.channel, ev.channel_id
            ):
                msg = normalize.from_edit(ev, connector_id=self.id)
                if msg is not None:
                    self._queue.put_nowait(Live(msg))
        elif event == "raw_message_delete":
            de: discord.RawMessageDeleteEvent = args[0]
            channel = client.get_channel(de.channel_id)
            if self._watch.includes(channel, de.channel_id, guild_id=de.guild_id):
                self._queue.put_nowait(Live(normalize.from_delete(de, channel, connector_id=self.id)))
        elif event == "raw_reaction_add":
            self._on_reaction(args[0], client)
        elif event == "interaction":
            self._on_interaction(args[0])

    def _on_message(self, message: discord.Message, bot_id: int) -> None:
        if message.author.id == bot_id or not self._watch.includes(message.channel, message.channel.id):
            return
        inbound = normalize.from_message(message, connector_id=self.id, bot_id=bot_id)
        if inbound is not None:
            self._queue.put_nowait(Live(inbound, str(message.channel.id), message.id))

    def _on_reaction(self, ev: discord.RawReactionActionEvent, client: SupportClient) -> None:
        assert client.user is not None
        if ev.user_id == client.user.id:
            return
        if not self.settings.all_reactions and normalize.base_emoji(str(ev.emoji)) not in self._emojis:
            return
        channel = client.get_channel(ev.channel_id)
        if not self._watch.includes(channel, ev.channel_id, guild_id=ev.guild_id):
            return
        user = client.get_user(ev.user_id)
        self._queue.put_nowait(Live(normalize.from_reaction(ev, channel, user, connector_id=self.id)))

    def _on_interaction(self, interaction: discord.Interaction) -> None:
        inbound = normalize.from_interaction(interaction, connector_id=self.id)
        if inbound is None:
            return
        # Discord wants an answer within 3 s, whatever the sink is doing: acknowledge now.
        self._spawn(self._ack_interaction(interaction))
        self._queue.put_nowait(Live(inbound))

    async def _ack_interaction(self, interaction: discord.Interaction) -> None:
        client = self._client
        if client is None:
            return
        route = Route(
            "POST",
            "/interactions/{interaction_id}/{interaction_token}/callback",
            interaction_id=interaction.id,
            interaction_token=interaction.token,
        )
        try:
            await client.http.request(route, json={"type": INTERACTION_ACK_TYPE})
            self.metrics["interactions_acked"] += 1
        except Exception as exc:
            self.log.warning(
                "could not acknowledge discord interaction %s: %s", interaction.id, translate(exc)
            )

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ================================================================== listen
    async def listen(self, cursor: str | None, sink: Sink) -> None:
        if self._stopped:
            await _idle()  # stopped on purpose: listen to nothing until cancelled
        if self._client is None:
            await self.start()
        self._cursor = Cursor.parse(cursor)
        if self._ready.is_set():
            self._covered_session = self._session_no
            await self._catch_up(sink)
        while True:
            item = await self._next_item()
            if isinstance(item, Fatal):
                raise item.error
            if isinstance(item, Stopped):
                await _idle()
                continue
            if isinstance(item, SessionStart):
                if item.number > self._covered_session:
                    await self._wait_ready()
                    self._covered_session = self._session_no
                    await self._catch_up(sink)
                continue
            batch = [item]
            while len(batch) < BATCH and not self._queue.empty():
                nxt = self._queue.get_nowait()
                if not isinstance(nxt, Live):
                    self._held = nxt  # handled on the next turn, after this batch
                    break
                batch.append(nxt)
            await self._deliver(batch, sink)

    async def _next_item(self) -> Item:
        if self._held is not None:
            item, self._held = self._held, None
            return item
        return await self._queue.get()

    async def _wait_ready(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), self.settings.guild_ready_timeout + 30.0)

    async def _deliver(self, items: Sequence[Live], sink: Sink, *, backfill: bool = False) -> None:
        fresh: list[InboundMessage] = []
        seen: dict[str, int] = {}
        for it in items:
            if it.channel_id is not None and it.message_id is not None:
                seen[it.channel_id] = max(seen.get(it.channel_id, 0), it.message_id)
            if it.message.external_id in self._delivered:
                self.metrics["duplicates_skipped"] += 1
                continue
            fresh.append(it.message)
        if not fresh and not seen:
            return
        new_cursor = self._cursor.advanced(seen) if seen else None
        if fresh or (new_cursor is not None and new_cursor != self._cursor):
            await self._sink_call(sink, fresh, new_cursor)
        if new_cursor is not None:
            self._cursor = new_cursor
        for m in fresh:
            self._delivered.add(m)
        self.metrics["backfilled" if backfill else "delivered"] += len(fresh)

    async def _sink_call(self, sink: Sink, messages: list[InboundMessage], cursor: Cursor | None) -> None:
        await sink(messages, cursor.dump() if cursor is not None else None)

    # ================================================================== backfill
    async def _catch_up(self, sink: Sink) -> None:
        """Backfill from the stored cursor; on a first run, store a starting watermark instead."""
        client = self._client
        assert client is not None
        if self._cursor.empty:
            start = snowflake_at(self._first_connect_at - timedelta(seconds=5))
            self._cursor = Cursor(watermark=start)
            await self._sink_call(sink, [], self._cursor)
            return

        async def deliver(items: Sequence[Live]) -> None:
            await self._deliver(items, sink, backfill=True)

        for channel in await backfill.targets(client, self._watch, list(self._cursor.channels)):
            await self._backfill.channel(client, channel, self._cursor_after, deliver)

    def _cursor_after(self, channel_id: str) -> int | None:
        return self._cursor.after_for(channel_id)  # the cursor object changes as batches are stored

    def _set_backfill_problem(self, problem: str | None) -> None:
        self._backfill_problem = problem
        self._refresh_health()

    # ================================================================== send
    async def send(self, message: OutboundMessage) -> SendReceipt:
        if self._client is None:
            await self.start()
        client = self._client
        assert client is not None
        brake = self._edge.invalid.brake_seconds()
        if brake > 0:
            raise RateLimited(
                brake, "too many invalid discord requests; holding sends", scope="invalid-requests"
            )
        receipt = await self._sender.send(client, message)
        self.metrics["sent"] += len(receipt.external_ids)
        return receipt

    # ================================================================== health
    def _refresh_health(self) -> None:
        if self._fatal is not None:
            self.set_health(HealthState.DOWN, str(self._fatal), **self._metrics())
            return
        problems: list[str] = []
        invalid = self._edge.invalid_problem()
        if invalid is not None:
            problems.append(invalid)
        if self._backfill_problem is not None:
            problems.append(self._backfill_problem)
        if not self._message_content:
            problems.append(
                "message content intent not enabled: channel messages arrive without text "
                "(enable it in the Developer Portal)"
            )
        if self._client is None:
            state, detail = HealthState.STOPPED, "not started"
        elif not self._connected:
            state, detail = HealthState.DEGRADED, "gateway disconnected; reconnecting"
        elif not self._ready.is_set():
            state, detail = HealthState.STARTING, "gateway connected; waiting for guilds"
        else:
            state, detail = HealthState.OK, "gateway connected"
        if problems:
            state = HealthState.DEGRADED if state in (HealthState.OK, HealthState.STARTING) else state
            detail = "; ".join([*problems, detail])
        self.set_health(state, detail, **self._metrics())

    def _metrics(self) -> dict[str, float]:
        client = self._client
        latency = client.latency if client is not None else float("nan")
        return {
            **self.metrics,
            "invalid_requests_10m": float(self._edge.invalid.count()),
            "pace_wait_seconds": self._edge.pace_wait_seconds,
            "queue": float(self._queue.qsize()),
            "latency_ms": latency * 1000 if math.isfinite(latency) else -1.0,
        }

    async def health(self) -> Health:
        self._refresh_health()
        return await super().health()


async def _idle() -> None:
    """Wait until cancelled (``listen`` runs until cancelled, even on a stopped connector)."""
    await asyncio.Event().wait()


def _drain(queue: asyncio.Queue[Item]) -> list[Item]:
    items: list[Item] = []
    while not queue.empty():
        items.append(queue.get_nowait())
    return items
