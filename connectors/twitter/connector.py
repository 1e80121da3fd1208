"""The X (Twitter) connector: a pull connector on tweepy's AsyncClient.

``fetch(cursor)`` reads new mentions (``GET /2/users/:id/mentions`` with ``since_id``, every
page) and, when enabled and due, new DMs (``GET /2/dm_events``), and returns them oldest first
with the cursor after them; the cursor only moves when the core stores it with the messages.
``send`` replies to a post that mentions the bot (X's rule), or sends a DM for ``private_to``.
See docs/twitter.md.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from bot.errors import AuthError, ConnectorError, MalformedPayload, PermanentSendError, RateLimited
from bot.models import (
    Capabilities,
    FetchResult,
    Health,
    HealthState,
    InboundMessage,
    OutboundMessage,
    RateLimit,
    SendReceipt,
    utcnow,
)
from connectors.base import ConnectorContext, ConnectorSettings, PullConnector
from connectors.twitter.budget import Budget
from connectors.twitter.client import Json, RejectedRead, XClient
from connectors.twitter.compose import plan_dm, plan_public
from connectors.twitter.cursor import XCursor, newer
from connectors.twitter.normalize import dm_to_message, permalink, post_to_message
from connectors.twitter.ratelimit import RateLimiter
from connectors.twitter.settings import TwitterSettings
from connectors.twitter.state import LocalState, SendRecord

MENTION_EXPANSIONS = ["author_id", "referenced_tweets.id", "in_reply_to_user_id"]
TWEET_FIELDS = [
    "conversation_id",
    "created_at",
    "author_id",
    "in_reply_to_user_id",
    "referenced_tweets",
    "entities",
]
USER_FIELDS = ["username", "name"]
DM_FIELDS = ["id", "text", "event_type", "created_at", "sender_id", "dm_conversation_id"]
GAP_REPORT_SECONDS = 24 * 3600.0
REPLYABLE_CACHE = 10_000


@dataclass
class _CatchUp:
    """A mentions poll in progress (kept when a page is rate limited, resumed on the next fetch)."""

    since_id: str | None
    limit: int | None  # first run: stop after this many
    newest: str | None = None
    token: str | None = None
    posts: list[Json] = field(default_factory=list)
    users: dict[str, Json] = field(default_factory=dict)
    pages: int = 0


class TwitterConnector(PullConnector[TwitterSettings]):
    name: ClassVar[str] = "twitter"
    platform: ClassVar[str] = "x"
    settings_model: ClassVar[type[ConnectorSettings]] = TwitterSettings
    capabilities: ClassVar[Capabilities] = Capabilities(
        mode="pull",
        max_text_length=280,
        threads=True,
        dms=True,
        reactions=False,
        buttons=False,
        edits=False,
        deletes=False,
        rate_limits=(RateLimit(scope="connector", limit=100, per_seconds=900),),  # posts per 15 min
    )
    default_poll_interval: ClassVar[float] = 30.0
    #: X has no idempotency key: a crash between a post and its journal entry can repeat it
    idempotent_send: ClassVar[bool] = False

    def __init__(
        self,
        connector_id: str,
        settings: TwitterSettings,
        context: ConnectorContext | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(connector_id, settings, context)
        self.clock = clock
        self.limiter = RateLimiter(
            margin=settings.rate_limit_margin,
            backoff_base=settings.backoff_base,
            backoff_max=settings.backoff_max,
            clock=clock,
        )
        self.budget = Budget(settings, clock)
        self.client = XClient(settings, self.limiter, self.budget, self.log)
        self.state = LocalState(self.context.data_dir / f"twitter-{connector_id}.json")
        self.bot_id = settings.bot_user_id or ""
        self.bot_username = settings.bot_username or ""
        self._handles: dict[str, str] = {}  # user id -> @handle, from everything read
        self._authors: dict[str, str] = {}  # post id -> its author's @handle (replies address them)
        self._replyable: OrderedDict[str, bool] = OrderedDict()  # post id -> may the bot reply?
        self._catch_up: _CatchUp | None = None
        self._send_lock = asyncio.Lock()
        self._fetch_lock = asyncio.Lock()
        self._last_activity = 0.0
        self._last_dm_activity = 0.0
        self._empty_polls = 0
        self._dm_due = 0.0
        self._interval = settings.poll_interval_active
        self._gap_at: float | None = None
        self._gap_detail = ""
        self._down: str | None = None
        self._poll_problem = ""
        self.mentions_read = 0
        self.dms_read = 0
        self.malformed = 0

    # ================================================================== lifecycle
    async def start(self) -> None:
        self.state = LocalState.load(self.state.path)
        self.budget.restore(self.state.usage)
        await self.client.open()
        try:
            await self._resolve_me()
        except AuthError as exc:
            self._down = str(exc)
            self._refresh_health()
            await self.client.close()
            raise
        self._down = None
        self._refresh_health()

    async def stop(self) -> None:
        await self.client.close()
        self._save()
        self.set_health(HealthState.STOPPED, "stopped", **self._metrics())

    async def health(self) -> Health:
        if self._health.state is not HealthState.STOPPED:
            self._refresh_health()
        return self._health

    async def _resolve_me(self) -> None:
        if self.bot_id and self.bot_username:
            return
        me = self.state.me
        if me is None or (self.settings.bot_user_id and me["id"] != self.settings.bot_user_id):
            body = await self.client.call("me", lambda api: api.get_me(user_fields=USER_FIELDS))
            data = body.get("data") or {}
            me = {"id": str(data["id"]), "username": str(data["username"])}
            self.state.me = me
            self._save()
        self.bot_id = self.bot_id or me["id"]
        self.bot_username = self.bot_username or me["username"]

    # ================================================================== fetch
    async def fetch(self, cursor: str | None) -> FetchResult:
        async with self._fetch_lock:  # one poll at a time: the catch-up state is shared
            return await self._fetch(cursor)

    async def _fetch(self, cursor: str | None) -> FetchResult:
        cur = XCursor.loads(cursor)
        now = self.clock()
        if not self.budget.reads_allowed():
            self._refresh_health()
            return FetchResult(
                next_poll_after=min(self.settings.max_poll_interval, self.budget.seconds_to_next_period())
            )
        messages: list[InboundMessage] = []
        new = cur
        errors: list[ConnectorError] = []
        polled = False
        try:
            got, since = await self._poll_mentions(cur.mentions)
            polled = True
            messages += got
            new = XCursor(mentions=since, dms=new.dms)
        except ConnectorError as exc:
            if isinstance(exc, AuthError):
                self._down = str(exc)
                self._refresh_health()
                raise
            errors.append(exc)
        if self.settings.dms_enabled and now >= self._dm_due:
            try:
                got, dm_since = await self._poll_dms(cur.dms)
                polled = True
                messages += got
                new = XCursor(mentions=new.mentions, dms=dm_since)
                self._dm_due = now + self._dm_interval(now)
            except ConnectorError as exc:
                if isinstance(exc, AuthError):
                    self._down = str(exc)
                    self._refresh_health()
                    raise
                errors.append(exc)
        self._save()
        if not polled:
            self._poll_problem = "; ".join(str(e) for e in errors if not isinstance(e, RateLimited))
            self._refresh_health()
            limited = [e for e in errors if isinstance(e, RateLimited)]
            if limited and len(limited) == len(errors):
                raise RateLimited(min(e.retry_after for e in limited), "X reads are paused", scope="fetch")
            raise errors[0]
        for error in errors:
            self.log.warning("X poll partly failed: %s", error)
        self._poll_problem = "; ".join(str(e) for e in errors if not isinstance(e, RateLimited))
        self._down = None
        messages.sort(key=lambda m: _sort_key(m.external_id))
        if messages:
            self._last_activity = now
            self._empty_polls = 0
            if any(m.is_private for m in messages):
                self._last_dm_activity = now
        elif now - self._last_activity >= self.settings.active_window:
            self._empty_polls += 1  # idle polls in a row: each waits longer
        self._interval = self._next_interval(now)
        self._refresh_health()
        return FetchResult(
            messages=tuple(messages),
            cursor=new.dumps() if new != cur else None,
            next_poll_after=self._interval,
        )

    async def _poll_mentions(self, since_id: str | None) -> tuple[list[InboundMessage], str | None]:
        job = self._catch_up
        if job is None or job.since_id != since_id:
            job = _CatchUp(since_id=since_id, limit=None if since_id else self.settings.initial_backfill)
            self._catch_up = job
        while True:
            remaining = None if job.limit is None else job.limit - len(job.posts)
            size = (
                self.settings.page_size
                if remaining is None
                else max(5, min(self.settings.page_size, remaining))
            )
            token = job.token

            def request(api: Any, token: str | None = token, size: int = size) -> Any:
                return api.get_users_mentions(
                    self.bot_id,
                    since_id=since_id,
                    pagination_token=token,
                    max_results=size,
                    expansions=MENTION_EXPANSIONS,
                    tweet_fields=TWEET_FIELDS,
                    user_fields=USER_FIELDS,
                )

            try:
                body = await self.client.call("mentions", request)  # a pause or 5xx keeps `job`
            except RejectedRead:
                self._catch_up = None  # e.g. an expired pagination token: start the catch-up again
                raise
            data: list[Json] = body.get("data") or []
            includes: Json = body.get("includes") or {}
            meta: Json = body.get("meta") or {}
            job.pages += 1
            self.budget.count_reads(len(data) + len(includes.get("tweets") or []))
            if job.newest is None and meta.get("newest_id"):
                job.newest = str(meta["newest_id"])
            for user in includes.get("users") or []:
                job.users[str(user["id"])] = user
            job.posts.extend(data)
            job.token = meta.get("next_token")
            if not job.token or (job.limit is not None and len(job.posts) >= job.limit):
                break
        self._catch_up = None
        if since_id is not None and len(job.posts) >= self.settings.mention_window:
            self._gap_at = self.clock()
            self._gap_detail = (
                f"{len(job.posts)} mentions arrived since the last poll, as many as X keeps "
                f"({self.settings.mention_window}): older mentions may have been missed"
            )
            self.log.warning("X mention gap: %s", self._gap_detail)
        posts = job.posts if job.limit is None else job.posts[: max(job.limit, 0)]
        for uid, user in job.users.items():
            self._handles[uid] = str(user.get("username", ""))
        messages = []
        for post in posts:
            if str(post.get("author_id")) == self.bot_id:
                continue
            try:
                message = post_to_message(
                    post, job.users, connector_id=self.id, bot_id=self.bot_id, bot_username=self.bot_username
                )
            except MalformedPayload as exc:  # skipped, not retried forever; the payload goes to the log
                self.malformed += 1
                self.log.error("skipping an X post that cannot be read: %s; payload: %r", exc, post)
                continue
            self._remember_replyable(message.external_id, message.mentions_bot)
            if message.author.handle:
                self._authors[message.external_id] = message.author.handle
                while len(self._authors) > REPLYABLE_CACHE:
                    del self._authors[next(iter(self._authors))]
            messages.append(message)
        self.mentions_read += len(messages)
        return messages, newer(job.newest, since_id)

    async def _poll_dms(self, since: str | None) -> tuple[list[InboundMessage], str | None]:
        token: str | None = None
        events: list[Json] = []
        users: dict[str, Json] = {}
        newest: str | None = None
        while True:

            def request(api: Any, token: str | None = token) -> Any:
                return api.get_direct_message_events(
                    dm_event_fields=DM_FIELDS,
                    event_types="MessageCreate",
                    expansions=["sender_id"],
                    user_fields=USER_FIELDS,
                    max_results=self.settings.dm_page_size,
                    pagination_token=token,
                )

            body = await self.client.call("dm_events", request)
            data: list[Json] = body.get("data") or []
            self.budget.count_reads(len(data))
            for user in (body.get("includes") or {}).get("users") or []:
                users[str(user["id"])] = user
            reached = False
            for event in data:  # newest first
                eid = str(event["id"])
                newest = newer(newest, eid)
                if since is not None and int(eid) <= int(since):
                    reached = True
                    break
                events.append(event)
            token = (body.get("meta") or {}).get("next_token")
            if reached or not token or since is None:
                break
        if since is None:  # the very first poll: at most the backfill, newest first
            events = events[: self.settings.initial_backfill]
        for uid, user in users.items():
            self._handles[uid] = str(user.get("username", ""))
        for event in events:  # senders X did not expand: use the handles seen before
            sender = str(event.get("sender_id"))
            if sender not in users and sender in self._handles:
                users[sender] = {"id": sender, "username": self._handles[sender]}
        messages = []
        for event in events:
            if str(event.get("sender_id")) == self.bot_id:
                continue
            try:
                messages.append(dm_to_message(event, users, connector_id=self.id, bot_id=self.bot_id))
            except MalformedPayload as exc:
                self.malformed += 1
                self.log.error("skipping an X DM event that cannot be read: %s; payload: %r", exc, event)
        self.dms_read += len(messages)
        return messages, newer(newest, since)

    # ================================================================== pacing
    def _next_interval(self, now: float) -> float:
        s = self.settings
        if now - self._last_activity < s.active_window:
            base = s.poll_interval_active
        else:
            base = min(
                s.poll_interval_idle, s.poll_interval_active * s.poll_backoff_factor**self._empty_polls
            )
        base *= self.budget.pressure()
        base = max(base, self.limiter.pace("mentions"), self.limiter.wait_time("mentions"))
        return min(base, s.max_poll_interval)

    def _dm_interval(self, now: float) -> float:
        s = self.settings
        active = now - self._last_dm_activity < s.active_window
        base = s.dm_poll_interval_active if active else s.dm_poll_interval_idle
        base = max(base * self.budget.pressure(), self.limiter.pace("dm_events"))
        return min(base, s.max_poll_interval)

    # ================================================================== send
    async def send(self, message: OutboundMessage) -> SendReceipt:
        async with self._send_lock:
            record = self.state.journal.get(message.idempotency_key)
            if record is not None and record.done:
                return self._receipt(record)
            if not self.budget.writes_allowed():
                raise RateLimited(
                    self.budget.seconds_to_next_period(), "X monthly budget is spent", scope="budget"
                )
            try:
                if message.private_to is not None or (message.thread_ref or "").startswith("dm:"):
                    receipt = await self._send_dm(message, record)
                else:
                    receipt = await self._send_public(message, record)
            except AuthError as exc:
                self._down = str(exc)
                raise
            finally:
                self._save()
                self._refresh_health()
            self._last_activity = self.clock()  # an answer invites a reply: poll faster
            self._empty_polls = 0
            return receipt

    async def _send_public(self, message: OutboundMessage, record: SendRecord | None) -> SendReceipt:
        target = message.reply_to_id
        if not target or not target.isdigit():
            raise PermanentSendError(
                "X: the bot only posts replies to posts that mention it; reply_to_id must be such a post"
            )
        await self._ensure_replyable(target)
        handles = await self._handles_for(message)
        # address the person answered, as X replies do: it also keeps the same answer to two
        # people from being refused by X as duplicate content
        author = self._authors.get(target)
        if author and author.lower() != (self.bot_username or "").lower() and author not in handles:
            handles.insert(0, author)
        link = message.card.link if message.card is not None else None
        parts = plan_public(
            message.text,
            handles,
            link=link,
            mode=self.settings.long_answer,
            max_parts=self.settings.max_thread_parts,
            lead=self.settings.link_lead,
        )
        ids = list(record.ids) if record is not None else []
        parent = ids[-1] if ids else target
        for text in parts[len(ids) :]:

            def request(api: Any, text: str = text, parent: str = parent) -> Any:
                return api.create_tweet(
                    text=text, in_reply_to_tweet_id=parent, reply_settings=self.settings.reply_settings
                )

            body = await self.client.call("create_tweet", request, write=True)
            post_id = str((body.get("data") or {}).get("id", ""))
            if not post_id:
                raise PermanentSendError("X accepted the post but returned no id")
            self.budget.count_writes(1)
            ids.append(post_id)
            parent = post_id
            self._remember_replyable(post_id, True)
            self._journal(message.idempotency_key, ids, done=len(ids) == len(parts))
        return self._receipt(self.state.journal[message.idempotency_key])

    async def _send_dm(self, message: OutboundMessage, record: SendRecord | None) -> SendReceipt:
        handles = await self._handles_for(message)
        parts = plan_dm(message.text, handles)
        ids = list(record.ids) if record is not None else []
        participant = message.private_to
        conversation = (message.thread_ref or "").removeprefix("dm:") if participant is None else None
        for text in parts[len(ids) :]:

            def request(api: Any, text: str = text) -> Any:
                if participant is not None:
                    return api.create_direct_message(participant_id=participant, text=text)
                return api.create_direct_message(dm_conversation_id=conversation, text=text)

            body = await self.client.call("create_dm", request, write=True)
            event_id = str((body.get("data") or {}).get("dm_event_id", ""))
            if not event_id:
                raise PermanentSendError("X accepted the DM but returned no event id")
            self.budget.count_writes(1)
            ids.append(f"dm:{event_id}")
            self._journal(message.idempotency_key, ids, done=len(ids) == len(parts))
        now = self.clock()
        self._last_dm_activity = now
        self._dm_due = min(self._dm_due, now + self.settings.dm_poll_interval_active)  # expect an answer
        return self._receipt(self.state.journal[message.idempotency_key])

    async def _ensure_replyable(self, post_id: str) -> None:
        """X lets the bot reply only to posts that mention it (or to its own posts)."""
        known = self._replyable.get(post_id)
        if known is None:
            body = await self.client.call(
                "tweet_lookup", lambda api: api.get_tweet(post_id, tweet_fields=["author_id", "entities"])
            )
            data = body.get("data")
            if not data:
                raise PermanentSendError(f"X post {post_id} does not exist or is not visible")
            self.budget.count_reads(1)
            mentions = (data.get("entities") or {}).get("mentions") or []
            known = str(data.get("author_id")) == self.bot_id or any(
                str(m.get("id")) == self.bot_id
                or str(m.get("username", "")).lower() == self.bot_username.lower()
                for m in mentions
            )
            self._remember_replyable(post_id, known)
        if not known:
            raise PermanentSendError(
                f"X post {post_id} does not mention the bot: X allows replies only to posts that mention it"
            )

    async def _handles_for(self, message: OutboundMessage) -> list[str]:
        handles: list[str] = []
        for mention in message.mentions:
            if mention.role:
                self.log.info("X has no group mentions; skipping role %s", mention.user_id)
                continue
            handle = mention.handle or self._handles.get(mention.user_id)
            if not handle:
                uid = mention.user_id

                def lookup(api: Any, uid: str = uid) -> Any:
                    return api.get_user(id=uid)

                body = await self.client.call("user_lookup", lookup)
                data = body.get("data")
                if not data:
                    raise PermanentSendError(f"X user {mention.user_id} to mention does not exist")
                self.budget.count_reads(1)
                handle = str(data["username"])
                self._handles[mention.user_id] = handle
            handle = handle.removeprefix("@")
            if handle.lower() not in {h.lower() for h in handles}:
                handles.append(handle)
        return handles

    # ================================================================== bookkeeping
    def _remember_replyable(self, post_id: str, allowed: bool) -> None:
        self._replyable[post_id] = allowed
        self._replyable.move_to_end(post_id)
        while len(self._replyable) > REPLYABLE_CACHE:
            self._replyable.popitem(last=False)

    def _journal(self, key: str, ids: Sequence[str], *, done: bool) -> None:
        self.state.record(key, SendRecord(ids=list(ids), done=done, sent_at=utcnow().isoformat()))
        self._save()

    def _receipt(self, record: SendRecord) -> SendReceipt:
        first = record.ids[0] if record.ids else ""
        link = permalink(self.bot_username, first) if first and not first.startswith("dm:") else None
        return SendReceipt(external_ids=tuple(record.ids), sent_at=record.sent_at or utcnow(), permalink=link)

    def _save(self) -> None:
        self.state.usage = self.budget.usage.to_json()
        try:
            self.state.save()
        except OSError as exc:
            self.log.warning("cannot save X connector state to %s: %s", self.state.path, exc)

    def _metrics(self) -> dict[str, float]:
        usage = self.budget.usage
        metrics: dict[str, float] = {
            "reads": float(usage.reads),
            "writes": float(usage.writes),
            "requests": float(self.budget.requests),
            "est_cost_usd": round(self.budget.cost, 4),
            "budget_usd": self.settings.monthly_budget_usd,
            "budget_used": round(self.budget.used_fraction(), 4),
            "poll_interval_s": round(self._interval, 2),
            "mentions_read": float(self.mentions_read),
            "dms_read": float(self.dms_read),
            "throttled": float(sum(st.throttled for st in self.limiter.endpoints.values())),
            "paused_endpoints": float(len(self.limiter.paused())),
            "gap_suspected": 1.0 if self._gap_recent() else 0.0,
            "malformed": float(self.malformed),
        }
        for endpoint, count in usage.requests.items():
            metrics[f"requests_{endpoint}"] = float(count)
        mentions = self.limiter.endpoints.get("mentions")
        if mentions is not None and mentions.remaining is not None:
            metrics["mentions_rate_remaining"] = float(mentions.remaining)
        return metrics

    def _gap_recent(self) -> bool:
        return self._gap_at is not None and self.clock() - self._gap_at < GAP_REPORT_SECONDS

    def _refresh_health(self) -> None:
        problems: list[str] = []
        state = HealthState.OK
        if self._down is not None:
            state = HealthState.DOWN
            problems.append(self._down)
        if self._poll_problem:
            problems.append(f"last poll failed in part: {self._poll_problem}")
        if self._gap_recent():
            problems.append(self._gap_detail)
        if not self.budget.reads_allowed():
            problems.append(
                f"monthly read budget spent (${self.budget.cost:.2f} of "
                f"${self.settings.monthly_budget_usd:.2f}); polling resumes next month"
            )
        paused = self.limiter.paused()
        if paused:
            problems.append(
                "rate limited: "
                + ", ".join(f"{name} for {self.limiter.wait_time(name):.0f}s" for name in paused)
            )
        if problems and state is HealthState.OK:
            state = HealthState.DEGRADED
        detail = "; ".join(problems) or f"@{self.bot_username}: polling every {self._interval:.0f}s"
        self.set_health(state, detail, **self._metrics())


def _sort_key(external_id: str) -> tuple[int, int]:
    """Chronological order: snowflake ids of posts and DM events share one clock."""
    raw = external_id.removeprefix("dm:")
    return (int(raw), 0) if raw.isdigit() else (0, 0)
