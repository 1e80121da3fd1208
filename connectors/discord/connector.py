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
with the messages it covers, through the sink. See :mod:`connectors.discord.cursor`.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, ClassVar

import aiohttp
import discord
from discord.http import Route

from bot.errors import AuthError, ConnectorError, MalformedPayload, PermanentSendError, RateLimited
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
from connectors.discord import normalize
from connectors.discord.client import SupportClient
from connectors.discord.cursor import Cursor, snowflake_at
from connectors.discord.errors import translate
from connectors.discord.pacing import InvalidRequestMonitor, KeyedLimiters, SlidingWindowLimiter
from connectors.discord.render import Part, allowed_mentions, button_view, mention_ids, render
from connectors.discord.settings import DiscordSettings

BATCH = 100
RECENT_IDS = 20_000
SENT_KEYS = 10_000
INTERACTION_ACK_TYPE = 6  # DEFERRED_UPDATE_MESSAGE: "got it", no visible change
THREAD_EXISTS = 160004


@dataclass(frozen=True)
class Live:
    message: InboundMessage
    channel_id: str | None = None  # set for new messages: they move the cursor
    message_id: int | None = None


@dataclass(frozen=True)
class SessionStart:
    number: int


@dataclass(frozen=True)
class Fatal:
    error: ConnectorError


@dataclass(frozen=True)
class Stopped:
    pass


Item = Live | SessionStart | Fatal | Stopped


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
        self._recent: OrderedDict[str, None] = OrderedDict()
        self._texts: OrderedDict[str, str] = OrderedDict()
        self._sent: OrderedDict[str, SendReceipt] = OrderedDict()
        self._send_locks: dict[str, asyncio.Lock] = {}
        self._session_no = 0
        self._covered_session = -1
        self._first_connect_at = utcnow()
        self._message_content = True
        self._connected = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._channel_pace = KeyedLimiters(
            s.channel_messages, s.channel_window_seconds, margin=s.pace_margin_seconds
        )
        self._token_pace = SlidingWindowLimiter(s.requests_per_second, 1.0, margin=s.pace_margin_seconds)
        self._invalid = InvalidRequestMonitor(s.invalid_requests_alert, s.invalid_requests_brake)
        self._alerted = False
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
            "pace_wait_seconds": 0.0,
        }

    # ================================================================== life cycle
    def _new_client(self) -> SupportClient:
        s = self.settings
        intents = discord.Intents.default()
        intents.message_content = True
        trace = aiohttp.TraceConfig()
        trace.on_request_start.append(self._on_request_start)
        trace.on_request_end.append(self._on_request_end)
        return SupportClient(
            self,
            intents=intents,
            api_base_url=s.api_base_url,
            gateway_url=s.gateway_url,
            http_trace=trace,
            guild_ready_timeout=s.guild_ready_timeout,
            max_ratelimit_timeout=s.max_ratelimit_wait,
            identify_delay=s.identify_delay,
        )

    async def start(self) -> None:
        if self._client is not None:
            return
        self.set_health(HealthState.STARTING, "logging in")
        self._fatal = None
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
        self._queue.put_nowait(Stopped())  # a listen() still running returns
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
            if ev.message.author.id != client.user.id and self._watched(ev.message.channel, ev.channel_id):
                msg = normalize.from_edit(ev, connector_id=self.id)
                if msg is not None:
                    self._queue.put_nowait(Live(msg))
        elif event == "raw_message_delete":
            de: discord.RawMessageDeleteEvent = args[0]
            channel = client.get_channel(de.channel_id)
            if self._watched(channel, de.channel_id, guild_id=de.guild_id):
                self._queue.put_nowait(Live(normalize.from_delete(de, channel, connector_id=self.id)))
        elif event == "raw_reaction_add":
            self._on_reaction(args[0], client)
        elif event == "interaction":
            self._on_interaction(args[0])

    def _on_message(self, message: discord.Message, bot_id: int) -> None:
        if message.author.id == bot_id or not self._watched(message.channel, message.channel.id):
            return
        inbound = normalize.from_message(message, connector_id=self.id, bot_id=bot_id)
        if inbound is not None:
            self._queue.put_nowait(Live(inbound, str(message.channel.id), message.id))

    def _on_reaction(self, ev: discord.RawReactionActionEvent, client: SupportClient) -> None:
        assert client.user is not None
        if ev.user_id == client.user.id:
            return
        if not self.settings.all_reactions and str(ev.emoji) not in self.settings.watched_emojis:
            return
        channel = client.get_channel(ev.channel_id)
        if not self._watched(channel, ev.channel_id, guild_id=ev.guild_id):
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

    def _watched(self, channel: object, channel_id: int, *, guild_id: int | None = None) -> bool:
        s = self.settings
        if isinstance(channel, discord.DMChannel | discord.GroupChannel) or (
            channel is None and guild_id is None
        ):
            return s.dms
        guild = getattr(channel, "guild", None)
        gid = str(guild.id) if guild is not None else (str(guild_id) if guild_id is not None else None)
        if s.guild_ids and gid not in s.guild_ids:
            return False
        if not s.channel_ids:
            return True
        ids = {str(channel_id)}
        if isinstance(channel, discord.Thread):
            ids.add(str(channel.parent_id))
        return bool(ids & set(s.channel_ids))

    # ================================================================== listen
    async def listen(self, cursor: str | None, sink: Sink) -> None:
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
                return
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
            if it.message.external_id in self._recent:
                self.metrics["duplicates_skipped"] += 1
                continue
            fresh.append(it.message)
        if not fresh and not seen:
            return
        new_cursor = self._cursor.advanced(seen) if seen else None
        if fresh or (new_cursor is not None and new_cursor != self._cursor):
            await self.sink_call(sink, fresh, new_cursor)
        if new_cursor is not None:
            self._cursor = new_cursor
        for m in fresh:
            self._remember(m)
        self.metrics["backfilled" if backfill else "delivered"] += len(fresh)

    async def sink_call(self, sink: Sink, messages: list[InboundMessage], cursor: Cursor | None) -> None:
        await sink(messages, cursor.dump() if cursor is not None else None)

    def _remember(self, m: InboundMessage) -> None:
        self._recent[m.external_id] = None
        if len(self._recent) > RECENT_IDS:
            self._recent.popitem(last=False)
        if m.text and m.target_id is None:
            self._texts[m.external_id] = m.text[:200]
            if len(self._texts) > 2000:
                self._texts.popitem(last=False)

    # ================================================================== backfill
    async def _catch_up(self, sink: Sink) -> None:
        """Backfill from the stored cursor; on a first run, store a starting watermark instead."""
        if self._cursor.empty:
            start = snowflake_at(self._first_connect_at - timedelta(seconds=5))
            self._cursor = Cursor(watermark=start)
            await self.sink_call(sink, [], self._cursor)
            return
        for channel in await self._backfill_targets():
            await self._backfill_channel(channel, sink)

    async def _backfill_targets(self) -> list[discord.abc.Messageable]:
        client = self._client
        assert client is not None
        s = self.settings
        out: dict[int, discord.abc.Messageable] = {}
        for guild in client.guilds:
            if s.guild_ids and str(guild.id) not in s.guild_ids:
                continue
            chans: list[discord.TextChannel | discord.Thread] = [*guild.text_channels, *guild.threads]
            for ch in chans:
                if self._watched(ch, ch.id) and _can_read_history(ch):
                    out[ch.id] = ch
        for cid in list(self._cursor.channels):
            if int(cid) in out or not s.dms:
                continue
            known = client.get_channel(int(cid))
            if known is not None:
                continue  # a guild channel we no longer watch, or a forum
            try:
                fetched = await client.fetch_channel(int(cid))
            except discord.HTTPException as exc:
                self.log.info("not backfilling channel %s: %s", cid, translate(exc))
                continue
            if isinstance(fetched, discord.DMChannel):
                out[fetched.id] = fetched
        return list(out.values())

    async def _backfill_channel(self, channel: discord.abc.Messageable, sink: Sink) -> None:
        client = self._client
        assert client is not None and client.user is not None
        cid = str(getattr(channel, "id", ""))
        delay = self.settings.backfill_retry_seconds
        while True:
            if self._client is not client or client.is_closed():
                return  # stopped meanwhile
            after = self._cursor.after_for(cid)
            if after is None:
                return
            try:
                pending: list[Live] = []
                async for message in channel.history(
                    limit=None, after=discord.Object(id=after), oldest_first=True
                ):
                    if message.author.id == client.user.id:
                        continue
                    inbound = normalize.from_message(message, connector_id=self.id, bot_id=client.user.id)
                    if inbound is None:
                        continue
                    pending.append(Live(inbound, cid, message.id))
                    if len(pending) >= BATCH:
                        await self._deliver(pending, sink, backfill=True)
                        pending = []
                if pending:
                    await self._deliver(pending, sink, backfill=True)
                self._backfill_problem = None
                return
            except (discord.Forbidden, discord.NotFound) as exc:
                self.log.warning("cannot backfill channel %s: %s", cid, translate(exc))
                return
            except discord.HTTPException as exc:
                err = translate(exc, what="backfill")
                if isinstance(err, AuthError):
                    raise err from exc
                wait = err.retry_after if isinstance(err, RateLimited) else delay
                self.log.warning("backfill of channel %s failed (%s); retrying in %.1fs", cid, err, wait)
                self._backfill_problem = f"backfill of channel {cid} retrying: {err}"
                await asyncio.sleep(wait)
                delay = min(delay * 2, 30.0)
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                self.log.warning("backfill of channel %s failed (%s); retrying in %.1fs", cid, exc, delay)
                self._backfill_problem = f"backfill of channel {cid} retrying: {exc}"
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    # ================================================================== send
    async def send(self, message: OutboundMessage) -> SendReceipt:
        if self._client is None:
            await self.start()
        client = self._client
        assert client is not None
        key = message.idempotency_key
        done = self._sent.get(key)
        if done is not None:
            return done
        brake = self._invalid.brake_seconds()
        if brake > 0:
            raise RateLimited(
                brake, "too many invalid discord requests; holding sends", scope="invalid-requests"
            )
        lock = self._send_locks.setdefault(key, asyncio.Lock())
        async with lock:
            done = self._sent.get(key)
            if done is not None:
                return done
            try:
                channel_id, reference = await self._target(message, client)
                parts = render(message, reference_id=reference, helper_role_id=self.settings.helper_role_id)
                users, roles = mention_ids(message, self.settings.helper_role_id)
                mentions = allowed_mentions(users, roles)
                ids: list[str] = []
                permalink = None
                for part in parts:
                    sent = await self._post(client, channel_id, part, mentions)
                    ids.append(str(sent.id))
                    permalink = permalink or sent.jump_url
            finally:
                self._send_locks.pop(key, None)
        receipt = SendReceipt(external_ids=tuple(ids), sent_at=utcnow(), permalink=permalink)
        self._sent[key] = receipt
        if len(self._sent) > SENT_KEYS:
            self._sent.popitem(last=False)
        self.metrics["sent"] += len(ids)
        return receipt

    async def _target(self, message: OutboundMessage, client: SupportClient) -> tuple[int, int | None]:
        """The channel to post in, and the message to reply to (same channel only)."""
        reply_to = _as_id(message.reply_to_id, "reply_to_id")
        if message.private_to is not None:
            user_id = _as_id(message.private_to, "private_to")
            assert user_id is not None
            try:
                dm = await client.create_dm(discord.Object(id=user_id))
            except Exception as exc:
                raise translate(exc, what="create DM") from exc
            return dm.id, None
        if message.thread_ref is not None:
            thread_id = _as_id(message.thread_ref, "thread_ref")
            assert thread_id is not None
            if reply_to == thread_id and not self._is_forum_thread(client, thread_id):
                reply_to = None  # the thread's starter lives in the parent channel
            return thread_id, reply_to
        conversation = _as_id(message.conversation_id, "conversation_id")
        assert conversation is not None
        if self.settings.thread_per_question and reply_to is not None:
            parent = client.get_channel(conversation)
            if isinstance(parent, discord.TextChannel):
                return await self._thread_for(client, parent, reply_to, message), None
        return conversation, reply_to

    @staticmethod
    def _is_forum_thread(client: SupportClient, thread_id: int) -> bool:
        ch = client.get_channel(thread_id)
        return isinstance(ch, discord.Thread) and isinstance(ch.parent, discord.ForumChannel)

    async def _thread_for(
        self, client: SupportClient, parent: discord.TextChannel, question_id: int, message: OutboundMessage
    ) -> int:
        """The thread grown from the question (created on first use; its id is the question's)."""
        if isinstance(client.get_channel(question_id), discord.Thread):
            return question_id
        source = self._texts.get(str(question_id)) or (message.card.question if message.card else "")
        name = " ".join(source.split())[:90] or "Question"
        try:
            await client.http.start_thread_with_message(
                parent.id,
                question_id,
                name=name,
                auto_archive_duration=self.settings.thread_auto_archive_minutes,
            )
        except discord.HTTPException as exc:
            if exc.code != THREAD_EXISTS:
                raise translate(exc, what="start thread") from exc
        except Exception as exc:
            raise translate(exc, what="start thread") from exc
        return question_id

    async def _post(
        self, client: SupportClient, channel_id: int, part: Part, mentions: discord.AllowedMentions
    ) -> discord.Message:
        known = client.get_channel(channel_id)
        channel: discord.abc.Messageable = (
            known
            if isinstance(known, discord.TextChannel | discord.Thread | discord.DMChannel)
            else client.get_partial_messageable(channel_id)
        )
        view = button_view(part.buttons) if part.buttons else None
        reference = (
            discord.MessageReference(
                message_id=part.reference_id, channel_id=channel_id, fail_if_not_exists=False
            )
            if part.reference_id is not None
            else None
        )
        kwargs: dict[str, Any] = {
            "content": part.content or None,
            "allowed_mentions": mentions,
            "nonce": part.nonce,
        }
        if part.embed is not None:
            kwargs["embed"] = part.embed
        if view is not None:
            kwargs["view"] = view
        if reference is not None:
            kwargs["reference"] = reference
        try:
            return await channel.send(**kwargs)
        except Exception as exc:
            raise translate(exc, what="send") from exc
        finally:
            if view is not None:
                view.stop()  # presses arrive as interactions; nothing to keep

    # ================================================================== HTTP edge
    async def _on_request_start(
        self, session: aiohttp.ClientSession, ctx: Any, params: aiohttp.TraceRequestStartParams
    ) -> None:
        """Pace every HTTP attempt, discord.py's own retries included: aiohttp awaits this hook
        right before the request goes out."""
        if params.method == "POST":
            channel = _posting_channel(params.url.path)
            if channel is not None:
                waited = await self._channel_pace.acquire(channel)
                if waited:
                    self.metrics["pace_wait_seconds"] += waited
        await self._token_pace.acquire()

    async def _on_request_end(
        self, session: aiohttp.ClientSession, ctx: Any, params: aiohttp.TraceRequestEndParams
    ) -> None:
        resp = params.response
        shared = resp.headers.get("X-RateLimit-Scope") == "shared"
        if self._invalid.record(resp.status, shared_scope=shared):
            n = self._invalid.count()
            if n >= self._invalid.alert_at and not self._alerted:
                self._alerted = True
                self.log.error(
                    "discord: %d invalid requests (401/403/429) in the last 10 minutes; Discord bans "
                    "at 10,000. Check the token, permissions and pacing.",
                    n,
                )
            self._refresh_health()

    def _refresh_health(self) -> None:
        if self._fatal is not None:
            self.set_health(HealthState.DOWN, str(self._fatal), **self._metrics())
            return
        problems: list[str] = []
        invalid = self._invalid.count()
        if invalid >= self._invalid.alert_at:
            problems.append(
                f"{invalid} invalid requests (401/403/429) in 10 min: alert at {self._invalid.alert_at}, "
                "Discord bans at 10,000"
            )
        elif self._alerted:
            self._alerted = False
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
            "invalid_requests_10m": float(self._invalid.count()),
            "queue": float(self._queue.qsize()),
            "latency_ms": latency * 1000 if math.isfinite(latency) else -1.0,
        }

    async def health(self) -> Health:
        self._refresh_health()
        return await super().health()


def _drain(queue: asyncio.Queue[Item]) -> list[Item]:
    items: list[Item] = []
    while not queue.empty():
        items.append(queue.get_nowait())
    return items


def _can_read_history(channel: discord.TextChannel | discord.Thread) -> bool:
    """Skip channels the bot may not read: asking anyway would only collect 403s (invalid requests)."""
    me = channel.guild.me
    if me is None:
        return True
    perms = channel.permissions_for(me)
    return perms.read_messages and perms.read_message_history


def _posting_channel(path: str) -> str | None:
    """The channel a request creates a message in (``.../channels/<id>/messages`` or a forum post)."""
    parts = path.rstrip("/").split("/")
    if len(parts) >= 3 and parts[-3] == "channels" and parts[-1] in ("messages", "threads"):
        return parts[-2]
    return None


def _as_id(value: str | None, what: str) -> int | None:
    if value is None:
        return None
    if not value.isdigit():
        raise PermanentSendError(f"{what} {value!r} is not a Discord id")
    return int(value)
