"""The Telegram connector: python-telegram-bot's ``Bot``, driven by our own loops.

Receiving is push: :meth:`TelegramConnector.listen` runs either the ``getUpdates`` long
poll (the update offset is the cursor, and it moves only after ``await sink(...)`` returned,
so Telegram drops nothing we have not stored) or the bot's own webhook server (a request is
answered 200 only after the sink returned; anything else makes Telegram retry it).

Sending paces itself per chat (see :mod:`connectors.telegram.pacing`) and translates every
PTB error into :mod:`bot.errors`.
"""

from __future__ import annotations

import asyncio
import contextlib
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, ClassVar

from telegram import Bot, Message, ReplyParameters, Update
from telegram import error as tg
from telegram.warnings import PTBUserWarning

from bot.errors import AuthError, ConflictError, PermanentSendError, RateLimited, TransientError
from bot.models import (
    Capabilities,
    Health,
    HealthState,
    InboundMessage,
    MessageKind,
    OutboundMessage,
    RateLimit,
    SendReceipt,
    utcnow,
)
from connectors.base import ConnectorContext, ConnectorSettings, PushConnector, Sink
from connectors.telegram.errors import retry_after_seconds, translate
from connectors.telegram.http import AiohttpRequest
from connectors.telegram.normalize import (
    BotIdentity,
    message_id,
    normalize,
    parse_message_id,
    parse_thread_ref,
    permalink,
)
from connectors.telegram.pacing import Pacer
from connectors.telegram.render import MAX_TEXT, keyboard, render_parts
from connectors.telegram.settings import TelegramSettings
from connectors.telegram.webhook import WebhookServer

#: the update types the connector asks for (in getUpdates and setWebhook)
ALLOWED_UPDATES: tuple[str, ...] = ("message", "edited_message", "callback_query")
_RECEIPT_MEMORY = 10_000


class TelegramConnector(PushConnector[TelegramSettings]):
    name: ClassVar[str] = "telegram"
    platform: ClassVar[str] = "telegram"
    settings_model: ClassVar[type[ConnectorSettings]] = TelegramSettings
    capabilities: ClassVar[Capabilities] = Capabilities(
        mode="push",
        max_text_length=MAX_TEXT,
        threads=True,
        dms=True,
        reactions=False,
        buttons=True,
        edits=True,
        deletes=False,  # the Bot API does not report deletions
        rate_limits=(
            RateLimit(scope="conversation", limit=1, per_seconds=1.0),
            RateLimit(scope="conversation", limit=20, per_seconds=60.0),
            RateLimit(scope="connector", limit=30, per_seconds=1.0),
        ),
    )
    #: Telegram has no idempotency key: a crash between sending and recording can duplicate
    idempotent_send: ClassVar[bool] = False

    def __init__(
        self, connector_id: str, settings: TelegramSettings, context: ConnectorContext | None = None
    ) -> None:
        super().__init__(connector_id, settings, context)
        self._bot: Bot | None = None
        self.identity: BotIdentity | None = None
        self._pacer = Pacer(
            per_chat_interval=settings.per_chat_interval,
            group_limit=settings.group_per_minute,
            overall_limit=settings.overall_per_second,
        )
        self._receipts: OrderedDict[str, SendReceipt] = OrderedDict()
        self._partial: dict[str, list[str]] = {}  # idempotency key -> parts already sent
        self._sink_lock = asyncio.Lock()
        self._cursor = 0
        self._webhook: WebhookServer | None = None
        self._counts: dict[str, float] = {
            "updates": 0,
            "accepted": 0,
            "skipped": 0,
            "unreadable": 0,
            "sent": 0,
            "rate_limited": 0,
            "poll_errors": 0,
            "conflicts": 0,
            "webhook_refused": 0,
        }

    # ------------------------------------------------------------------ lifecycle
    def _make_bot(self) -> Bot:
        s = self.settings
        timeout = s.request_timeout

        def request(pool: int) -> AiohttpRequest:
            return AiohttpRequest(pool_size=pool, timeout=timeout)

        return Bot(
            token=s.token.get_secret_value(),
            base_url=f"{s.api_base_url}/bot",
            base_file_url=f"{s.api_base_url}/file/bot",
            request=request(32),
            get_updates_request=request(2),
        )

    async def start(self) -> None:
        bot = self._make_bot()
        try:
            await bot.initialize()  # getMe: checks the token (PTB's message would include it)
        except tg.InvalidToken as exc:
            await self._close_bot(bot)
            self.set_health(HealthState.DOWN, "Telegram rejected the bot token (401)")
            raise AuthError("Telegram rejected the bot token (401)") from exc
        except tg.TelegramError as exc:
            await self._close_bot(bot)
            err = translate(exc)
            self.set_health(HealthState.DOWN, f"cannot reach the Bot API: {err}")
            raise err from exc
        self._bot = bot
        me = bot.bot
        self.identity = BotIdentity(id=me.id, username=me.username or "")
        self.set_health(HealthState.OK, f"signed in as @{me.username}", **self._counts)

    async def stop(self) -> None:
        if self._webhook is not None:
            await self._webhook.stop()
            self._webhook = None
        if self._bot is not None:
            await self._close_bot(self._bot)
            self._bot = None
        self.set_health(HealthState.STOPPED, "stopped", **self._counts)

    @staticmethod
    async def _close_bot(bot: Bot) -> None:
        with contextlib.suppress(Exception):
            await bot.shutdown()

    def _require_bot(self) -> tuple[Bot, BotIdentity]:
        if self._bot is None or self.identity is None:
            raise TransientError("the Telegram connector is not started")
        return self._bot, self.identity

    def _report(self, state: HealthState, detail: str) -> None:
        self.set_health(state, detail, **self._counts)

    async def health(self) -> Health:
        """The last reported state, with the counters as they are now."""
        return self._health.model_copy(update={"metrics": dict(self._counts)})

    def _count_refused(self) -> None:
        self._counts["webhook_refused"] += 1

    @property
    def webhook_port(self) -> int | None:
        """The port the webhook server is bound to (useful with ``listen_port: 0``)."""
        return None if self._webhook is None else self._webhook.port

    # ------------------------------------------------------------------ receiving
    def _wanted(self, msg: InboundMessage, bot_id: int) -> bool:
        s = self.settings
        if msg.author.id == str(bot_id):
            return False
        watched = not s.chats or msg.conversation_id in s.chats
        if msg.kind is MessageKind.BUTTON:
            return msg.is_private or watched
        if msg.is_private:
            return s.accept_dms
        if not watched:
            return False
        if s.group_messages == "mentions_only" and msg.kind is not MessageKind.EDIT:
            return msg.mentions_bot
        return True

    def _normalize(self, updates: Sequence[Update]) -> list[InboundMessage]:
        _, identity = self._require_bot()
        out: list[InboundMessage] = []
        for update in updates:
            self._counts["updates"] += 1
            try:
                msg = normalize(update, connector_id=self.id, bot=identity)
            except (ValueError, TypeError, AttributeError) as exc:  # pydantic ValidationError is a ValueError
                self.log.warning("skipping update %s that could not be read: %s", update.update_id, exc)
                msg = None
            if msg is not None and self._wanted(msg, identity.id):
                out.append(msg)
            else:
                self._counts["skipped"] += 1
        self._counts["accepted"] += len(out)
        return out

    async def _after_stored(self, updates: Sequence[Update]) -> None:
        """Answer button presses (stops the spinner) once they are safely stored."""
        bot, _ = self._require_bot()
        for update in updates:
            query = update.callback_query
            if query is None:
                continue
            try:
                await bot.answer_callback_query(query.id, text=self.settings.callback_answer_text)
            except tg.TelegramError as exc:  # too old after a restart, or a network blip: harmless
                self.log.debug("could not answer callback query %s: %s", query.id, exc)

    async def listen(self, cursor: str | None, sink: Sink) -> None:
        self._require_bot()
        try:
            self._cursor = int(cursor) if cursor else 0
        except ValueError:
            self.log.warning("ignoring a cursor that is not an update offset: %r", cursor)
            self._cursor = 0
        if self.settings.mode == "webhook":
            await self._listen_webhook(sink)
        else:
            await self._listen_polling(sink)

    async def _listen_polling(self, sink: Sink) -> None:
        bot, _ = self._require_bot()
        s = self.settings
        backoff = _Backoff(s.max_backoff)
        webhook_cleared = False
        while True:
            try:
                if not webhook_cleared:  # getUpdates answers 409 while a webhook is set
                    await bot.delete_webhook(drop_pending_updates=False)
                    webhook_cleared = True
                updates = await self._get_updates(bot)
            except tg.TelegramError as exc:
                await self._poll_failed(translate(exc), backoff)
                continue
            backoff.reset()
            if updates:
                batch = self._normalize(updates)
                new_cursor = max(u.update_id for u in updates) + 1
                await sink(batch, str(new_cursor))  # stored: only now may Telegram forget them
                self._cursor = new_cursor
                await self._after_stored(updates)
            self._report(HealthState.OK, f"polling; offset {self._cursor}")

    async def _get_updates(self, bot: Bot) -> list[Update]:
        """One long poll. Raw JSON first, then each update parsed alone: one update PTB cannot
        read is logged and skipped instead of failing the whole batch again and again."""
        s = self.settings
        params: dict[str, Any] = {
            "timeout": s.poll_timeout,
            "limit": s.poll_limit,
            "allowed_updates": list(ALLOWED_UPDATES),
        }
        if self._cursor:
            params["offset"] = self._cursor
        with warnings.catch_warnings():  # PTB nudges towards get_updates(), which parses all or nothing
            warnings.simplefilter("ignore", PTBUserWarning)
            try:
                raw = await bot.do_api_request(
                    "getUpdates", api_kwargs=params, read_timeout=s.request_timeout + s.poll_timeout
                )
            except tg.EndPointNotFound as exc:  # what do_api_request makes of a 401/404 once initialized
                raise tg.InvalidToken(str(exc)) from exc
        if not isinstance(raw, list):
            raise tg.TelegramError("Invalid server response: getUpdates did not return a list")
        updates: list[Update] = []
        for item in raw:
            update_id = item.get("update_id") if isinstance(item, dict) else None
            if not isinstance(update_id, int):
                raise tg.TelegramError("Invalid server response: an update without update_id")
            try:
                update = Update.de_json(item, bot)
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                self._counts["unreadable"] += 1
                self.log.warning(
                    "skipping update %s that PTB cannot read (%s): %.1000r", update_id, exc, item
                )
                update = Update(update_id=update_id)  # still moves the offset past it
            updates.append(update)
        return updates

    async def _poll_failed(self, err: Exception, backoff: _Backoff) -> None:
        self._counts["poll_errors"] += 1
        if isinstance(err, AuthError):
            self._report(HealthState.DOWN, "Telegram rejected the bot token (401); stopped polling")
            self.log.error("Telegram rejected the bot token; stopping the listener")
            raise err
        if isinstance(err, ConflictError):
            self._counts["conflicts"] += 1
            delay = backoff.next()
            if self._counts["conflicts"] == 1 or self._health.state is not HealthState.DOWN:
                self.log.error(
                    "409 Conflict: another process polls this bot token (or a webhook is set); "
                    "retrying in %.0fs",
                    delay,
                )
            self._report(HealthState.DOWN, f"409 conflict: another poller uses this token ({err})")
        elif isinstance(err, RateLimited):
            delay = err.retry_after
            self._report(HealthState.DEGRADED, f"getUpdates rate limited for {delay:.0f}s")
        else:
            delay = backoff.next()
            self.log.warning("getUpdates failed (%s); retrying in %.1fs", err, delay)
            self._report(HealthState.DEGRADED, f"getUpdates failing: {err}")
        await asyncio.sleep(delay)

    async def _listen_webhook(self, sink: Sink) -> None:
        bot, _ = self._require_bot()
        hook = self.settings.webhook
        assert hook is not None  # the settings validator guarantees it

        async def on_update(data: dict[str, Any]) -> None:
            await self._on_webhook_update(data, sink)

        server = WebhookServer(
            host=hook.listen_host,
            port=hook.listen_port,
            path=hook.path,
            secret_token=hook.secret_token.get_secret_value(),
            handler=on_update,
            max_body_bytes=hook.max_body_bytes,
            logger=self.log,
            on_refused=self._count_refused,
        )
        await server.start()
        self._webhook = server
        backoff = _Backoff(self.settings.max_backoff)
        try:
            while True:
                try:
                    await bot.set_webhook(
                        url=hook.public_url,
                        secret_token=hook.secret_token.get_secret_value(),
                        allowed_updates=list(ALLOWED_UPDATES),
                        max_connections=hook.max_connections,
                    )
                    break
                except tg.TelegramError as exc:
                    err = translate(exc)
                    if isinstance(err, AuthError | PermanentSendError):
                        self._report(HealthState.DOWN, f"setWebhook refused: {err}")
                        raise err from exc  # a bad token or a webhook URL Telegram refuses
                    delay = err.retry_after if isinstance(err, RateLimited) else backoff.next()
                    self._report(HealthState.DEGRADED, f"setWebhook failing: {err}")
                    await asyncio.sleep(delay)
            self._report(HealthState.OK, f"webhook at {hook.public_url}")
            await asyncio.Event().wait()  # serve until cancelled
        finally:
            self._webhook = None
            await server.stop()

    async def _on_webhook_update(self, data: dict[str, Any], sink: Sink) -> None:
        bot, _ = self._require_bot()
        try:
            update = Update.de_json(data, bot)
        except (ValueError, TypeError, KeyError) as exc:
            self.log.warning("webhook body is not a readable update (%s): %.500r", exc, data)
            return  # acknowledged: Telegram would resend the same unreadable body forever
        batch = self._normalize([update])
        async with self._sink_lock:  # webhook requests may overlap: keep the cursor monotonic
            new_cursor = max(self._cursor, update.update_id + 1)
            await sink(batch, str(new_cursor))
            self._cursor = new_cursor
        self._report(HealthState.OK, f"webhook; last update {update.update_id}")
        await self._after_stored([update])

    # ------------------------------------------------------------------ sending
    def _target(self, message: OutboundMessage) -> tuple[int, int | None, int | None]:
        raw_chat = message.private_to or message.conversation_id
        try:
            chat_id = int(raw_chat)
        except ValueError:
            raise PermanentSendError(f"not a Telegram chat id: {raw_chat!r}") from None
        if message.private_to:
            return chat_id, None, None
        thread = reply = None
        if message.thread_ref:
            ref = parse_thread_ref(message.thread_ref)
            if ref is not None and ref[0] == str(chat_id):
                thread = ref[1]
        if message.reply_to_id:
            target = parse_message_id(message.reply_to_id)
            if target is not None and target[0] == str(chat_id):
                reply = target[1]
        return chat_id, thread, reply

    async def send(self, message: OutboundMessage) -> SendReceipt:
        bot, _ = self._require_bot()
        key = message.idempotency_key
        done = self._receipts.get(key)
        if done is not None:
            return done
        chat_id, thread, reply = self._target(message)
        parts = render_parts(message.text, message.mentions, self.settings.parse_mode)
        markup = keyboard(message.buttons)
        sent_ids = self._partial.setdefault(key, [])
        link: str | None = None
        for i, part in enumerate(parts):
            if i < len(sent_ids):
                continue  # sent before a failure on a later part: never twice
            sent = await self._send_one(
                bot,
                chat_id,
                part,
                thread=thread,
                reply=reply if i == 0 else None,
                markup=markup if i == len(parts) - 1 else None,
            )
            chat_id = sent.chat.id  # a migrated group continues in its supergroup
            sent_ids.append(message_id(sent.chat.id, sent.message_id))
            link = link or permalink(sent)
        receipt = SendReceipt(external_ids=tuple(sent_ids), sent_at=utcnow(), permalink=link)
        del self._partial[key]
        self._receipts[key] = receipt
        while len(self._receipts) > _RECEIPT_MEMORY:
            self._receipts.popitem(last=False)
        return receipt

    async def _send_one(
        self, bot: Bot, chat_id: int, text: str, *, thread: int | None, reply: int | None, markup: Any
    ) -> Message:
        for _attempt in range(2):  # a second time only after a group migrated to a supergroup
            async with self._pacer.slot(str(chat_id), is_group=chat_id < 0):
                try:
                    sent = await bot.send_message(
                        chat_id=chat_id,
                        text=text,
                        parse_mode=self.settings.parse_mode,
                        message_thread_id=thread,
                        reply_parameters=(
                            ReplyParameters(message_id=reply, allow_sending_without_reply=True)
                            if reply is not None
                            else None
                        ),
                        reply_markup=markup,
                    )
                except tg.ChatMigrated as exc:
                    self.log.warning("group %s moved to supergroup %s", chat_id, exc.new_chat_id)
                    chat_id, reply = exc.new_chat_id, None
                    continue
                except tg.RetryAfter as exc:
                    wait = retry_after_seconds(exc)
                    self._pacer.block(str(chat_id), wait)  # this chat waits; the others go on
                    self._counts["rate_limited"] += 1
                    raise translate(exc, scope=f"chat {chat_id}") from exc
                except tg.TelegramError as exc:
                    err = translate(exc)
                    if isinstance(err, AuthError):
                        self._report(HealthState.DOWN, "Telegram rejected the bot token (401)")
                    raise err from exc
            self._counts["sent"] += 1
            return sent
        raise PermanentSendError(f"chat {chat_id} keeps moving; giving up")


class _Backoff:
    """Exponential backoff: 0.5 s doubling to ``ceiling``."""

    def __init__(self, ceiling: float, first: float = 0.5) -> None:
        self.ceiling = ceiling
        self.first = min(first, ceiling)
        self._next = self.first

    def next(self) -> float:
        delay, self._next = self._next, min(self.ceiling, self._next * 2)
        return delay

    def reset(self) -> None:
        self._next = self.first
