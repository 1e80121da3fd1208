"""The community stage of the worker: roles, routing, commands, the solved/learning loop,
points and ranks, for one batch.

The worker calls, per message: :meth:`CommunityBatch.command` (is it a command?),
:meth:`role_of`, :meth:`prepare` (who to tag and what the responders show), then
:meth:`after` (what it changed: tags, answers, solves, points, knowledge); and
:meth:`write` once per batch. Everything routing needs is loaded once per batch
(:func:`~bot.community.profiles.load_roster`: four reads); per-thread facts are read only for
the events that need them (a solve, a "Not yet", a decline); writes are a few multi-row
statements in the batch's transaction.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.community import commands as cmds
from bot.community.points import format_board, leaderboard, next_rank, period_start, rank_index, rank_of
from bot.community.profiles import HelperRecord, Roster, base_profiles, load_roster
from bot.models import (
    Decision,
    DecisionKind,
    InboundMessage,
    KnowledgeMatch,
    Mention,
    MessageKind,
    OutboundMessage,
    ThreadState,
    ThreadView,
)
from bot.pipeline.convert import thread_view
from bot.settings import CommunitySettings, HelperEntry
from bot.storage import outbox
from bot.storage.community_tables import (
    HelperIdentityRow,
    HelperRow,
    HelperTagRow,
    PointsRow,
    ThreadFactsRow,
    TopicStatRow,
    table,
)
from bot.storage.dialect import dialect_of, insert
from bot.storage.knowledge_tables import KnowledgeRow
from bot.storage.tables import MessageRow, ThreadRow
from responders import AuthorRole, Plan
from triage import KnowledgeEntry, KnowledgeIndex
from triage.config import MatcherSettings, PiiPattern
from triage.pii import redact
from triage.route import HelperProfile, Pool, Question, RouteSettings, route

log = logging.getLogger("unsource.community")

_HELPER = table(HelperRow)
_IDENTITY = table(HelperIdentityRow)
_TAG = table(HelperTagRow)
_FACTS = table(ThreadFactsRow)
_TOPIC = table(TopicStatRow)
_POINTS = table(PointsRow)
_KB = table(KnowledgeRow)
_MESSAGE = table(MessageRow)
_THREAD = table(ThreadRow)

_TEXT_KINDS = (MessageKind.REPLY, MessageKind.CHANNEL_POST, MessageKind.DM, MessageKind.MENTION)
_DOWN = frozenset({"👎", "👎🏻", "👎🏼", "👎🏽", "👎🏾", "👎🏿"})
_FACT_COLS = (
    "auto_entry_id",
    "answer_helper",
    "answer_message_id",
    "accepted_helper",
    "accepted_message_id",
    "accepted_entry_id",
    "solved_by",
    "knowledge_entry_id",
    "rating",
)


@dataclass(frozen=True)
class CommunityEnv:
    """What the community stage reads; rebuilt on config reload."""

    settings: CommunitySettings
    helpers: tuple[HelperEntry, ...]
    pii_patterns: tuple[PiiPattern, ...] = ()
    matcher: MatcherSettings = field(default_factory=MatcherSettings)
    index: Callable[[], KnowledgeIndex | None] = lambda: None
    link: str | None = None  # "https://ops/t/{thread}" for threads without a permalink
    _base: dict[str, HelperProfile] = field(default_factory=dict, compare=False, repr=False)

    def base(self) -> dict[str, HelperProfile]:
        """Config helpers as routing profiles, built once per configuration."""
        if not self._base and self.helpers:
            self._base.update(base_profiles(self.helpers))
        return self._base

    @property
    def route_settings(self) -> RouteSettings:
        s = self.settings
        return RouteSettings(
            default_n=s.helpers_per_question,
            per_topic=s.per_topic,
            urgent_extra=s.urgent_extra,
            flag_after_rejections=s.flag_after_rejections,
            flag_below_acceptance=s.flag_below_acceptance,
        )

    async def for_batch(self, session: AsyncSession, holder: Any, now: datetime) -> CommunityBatch:
        """The batch's community state (``holder.community``), loaded on first use."""
        if holder.community is None:
            holder.community = CommunityBatch(self, await load_roster(session, self.base()), now)
        batch: CommunityBatch = holder.community
        return batch


@dataclass
class Prepared:
    helpers: tuple[Mention, ...] = ()
    why: dict[str, str] = field(default_factory=dict)
    rejected: KnowledgeMatch | None = None
    phrases: tuple[str, ...] = ()

    def context(self) -> dict[str, Any]:
        """The responders' context fields this stage fills (see responders/plan.py)."""
        return {"why": self.why, "rejected": self.rejected, "solved_phrases": self.phrases}


@dataclass
class _Facts:
    values: dict[str, Any]
    language: str | None = None
    topic: str | None = None


class CommunityBatch:
    def __init__(self, env: CommunityEnv, roster: Roster, now: datetime) -> None:
        self.env = env
        self.s = env.settings
        self.roster = roster
        self.now = now
        self._pool: Pool | None = None
        self.route_settings = env.route_settings
        # pending writes
        self.tags: dict[tuple[int, str], dict[str, Any]] = {}
        self.facts: dict[int, dict[str, Any]] = {}
        self.helper_rows: dict[str, dict[str, Any]] = {}  # profile overrides (full column values)
        self.identities: list[dict[str, Any]] = []
        self.counters: dict[str, dict[str, int]] = {}
        self.last_tagged: dict[str, datetime] = {}
        self.topic_deltas: dict[tuple[str, str], list[int]] = {}
        self.awards: list[dict[str, Any]] = []
        self.kb_feedback: dict[str, list[int]] = {}  # entry -> [served, accepted, rejected]
        self.kb_entries: list[dict[str, Any]] = []
        self.thread_states: dict[int, dict[str, Any]] = {}
        self.outbound: list[tuple[OutboundMessage, int | None, int | None]] = []
        self.retire: list[str] = []
        self.where: dict[str, tuple[str, str, str | None]] = {}  # helper -> where they were active
        # read caches
        self._facts_cache: dict[int, _Facts] = {}
        self._declined: dict[int, set[str]] = {}
        self._tagged: dict[int, set[str]] = {}
        self._here: ThreadState | None = None  # a state a command set on its own thread

    # ------------------------------------------------------------------ who

    @property
    def pool(self) -> Pool:
        if self._pool is None:
            self._pool = Pool(
                (r.profile for r in self.roster.helpers.values()),
                {k: r.stats for k, r in self.roster.helpers.items()},
                self.route_settings,
            )
        return self._pool

    def record(self, message: InboundMessage) -> HelperRecord | None:
        return self.roster.who(message.connector_id, message.author.id)

    def caller(self, message: InboundMessage) -> cmds.Caller:
        rec = self.record(message)
        if rec is None:
            return "user"
        if rec.profile.role == "staff":
            return "staff"
        return "helper" if rec.profile.active else "user"

    def role_of(self, message: InboundMessage, thread: ThreadView | None) -> AuthorRole:
        if message.author.is_bot:
            return "bot"
        caller = self.caller(message)
        if caller == "staff":
            return caller
        if thread is not None and thread.asker_id == message.author.id:
            return "asker"  # a helper asking a question is the asker in their own thread
        if caller == "helper":
            return caller
        return "asker" if thread is None else "other"

    def command(self, message: InboundMessage) -> cmds.Command | None:
        if message.author.is_bot or message.kind not in _TEXT_KINDS:
            return None
        return cmds.parse(message.text, self.s.command_prefixes)

    # ------------------------------------------------------------------ reads (lazy, cached)

    async def _thread_facts(self, s: AsyncSession, tid: int) -> _Facts:
        f = self._facts_cache.get(tid)
        if f is None:
            row = (
                await s.execute(
                    select(_FACTS, _THREAD.c.language, _THREAD.c.topic)
                    .select_from(_THREAD.outerjoin(_FACTS, _FACTS.c.thread_id == _THREAD.c.id))
                    .where(_THREAD.c.id == tid)
                )
            ).first()
            values = {c: (getattr(row, c) if row is not None else None) for c in _FACT_COLS}
            f = _Facts(
                values, row.language if row is not None else None, row.topic if row is not None else None
            )
            self._facts_cache[tid] = f
        for k, v in self.facts.get(tid, {}).items():  # this batch's changes win
            if v is not None:
                f.values[k] = v
        return f

    async def _declined_on(self, s: AsyncSession, tid: int) -> set[str]:
        got = self._declined.get(tid)
        if got is None:
            rows = (await s.execute(select(_TAG.c.helper, _TAG.c.state).where(_TAG.c.thread_id == tid))).all()
            got = {h for h, st in rows if st == "declined"}
            self._declined[tid] = got
            self._tagged[tid] = {h for h, _ in rows}
        return got

    async def _entry(self, s: AsyncSession, entry_id: str) -> Any | None:
        return (await s.execute(select(_KB).where(_KB.c.id == entry_id))).first()

    async def _message(self, s: AsyncSession, connector_id: str, external_id: str) -> Any | None:
        return (
            await s.execute(
                select(_MESSAGE).where(
                    _MESSAGE.c.connector_id == connector_id, _MESSAGE.c.external_id == external_id
                )
            )
        ).first()

    # ------------------------------------------------------------------ pending writes

    def _fact(self, tid: int, **values: Any) -> None:
        self.facts.setdefault(tid, {}).update(values)
        cached = self._facts_cache.get(tid)
        if cached is not None:
            cached.values.update({k: v for k, v in values.items() if v is not None})

    def _count(self, helper: str, **deltas: int) -> None:
        c = self.counters.setdefault(helper, {})
        for k, v in deltas.items():
            c[k] = c.get(k, 0) + v

    def _award(
        self,
        helper: str,
        points: int,
        reason: str,
        key: str,
        *,
        thread: ThreadView | None,
        by: str | None = None,
    ) -> None:
        rec = self.roster.helpers.get(helper)
        if points <= 0 or rec is None or rec.profile.role == "staff":
            return  # staff answer as their job: points are for the community
        self.awards.append(
            {
                "key": key[:255],
                "helper": helper,
                "points": points,
                "reason": reason,
                "thread_id": thread.id if thread is not None else None,
                "topic": thread.topic if thread is not None else None,
                "by": by,
                "created_at": self.now,
            }
        )
        if thread is not None:
            self.where[helper] = (thread.connector_id, thread.conversation_id, thread.thread_ref)

    def _say(
        self, message: InboundMessage, text: str, *, thread_id: int | None, cause: int, key: str = ""
    ) -> None:
        out = OutboundMessage(
            idempotency_key=key or f"cmd:{message.connector_id}:{message.external_id}",
            connector_id=message.connector_id,
            conversation_id=message.conversation_id,
            thread_ref=message.thread_ref,
            reply_to_id=message.external_id,
            text=text,
            purpose="community",
        )
        self.outbound.append((out, thread_id, cause))

    # ------------------------------------------------------------------ routing

    def _tag(
        self, s_thread: ThreadView, question: Question, n: int | None = None
    ) -> tuple[tuple[Mention, ...], dict[str, str], list[str]]:
        r = route(self.pool, question, self.now, self.route_settings, n)
        mentions: list[Mention] = []
        why: dict[str, str] = {}
        for p in r.picks:
            mentions.append(Mention(user_id=p.user_id, handle=p.handle, display_name=p.display))
            why[p.user_id] = p.why
            self.pool.note_tagged(p.key, self.now)
            self.last_tagged[p.key] = self.now
            self.tags[(s_thread.id, p.key)] = {"state": "tagged", "why": p.why[:255]}
        return tuple(mentions), why, list(r.reasons)

    async def prepare(
        self,
        s: AsyncSession,
        message: InboundMessage,
        thread: ThreadView | None,
        decision: Decision,
        role: AuthorRole,
    ) -> Prepared:
        lang = decision.language
        phrases = tuple(self.s.solved_keywords.get(lang or "", ())) + tuple(
            self.s.solved_keywords.get("en", ())
        )
        prep = Prepared(phrases=phrases)
        if thread is None:
            return prep
        action, _, tid = (message.button_data or "").partition(":")
        opening = decision.kind is DecisionKind.TAG_HELPERS or (
            decision.kind is DecisionKind.AUTO_ANSWER and decision.match is None
        )
        not_yet = (
            message.kind is MessageKind.BUTTON
            and action == "notyet"
            and tid == str(thread.id)
            and role in ("asker", "staff")
        )
        if not (opening or not_yet):
            return prep
        topic, language = decision.topic or thread.topic, decision.language
        declined: set[str] = set()
        if not_yet:
            facts = await self._thread_facts(s, thread.id)
            language = language or facts.language
            declined = await self._declined_on(s, thread.id)
            entry_id = facts.values.get("auto_entry_id")
            if entry_id:
                row = await self._entry(s, entry_id)
                if row is not None:
                    prep.rejected = KnowledgeMatch(
                        entry_id=row.id,
                        confidence=0.0,
                        question=row.title,
                        answer=row.answer,
                        credit=row.credit,
                    )
        q = Question(
            connector_id=thread.connector_id,
            asker_id=thread.asker_id,
            topic=topic,
            language=language,
            priority=decision.priority.value,
            declined=frozenset(declined),
        )
        prep.helpers, prep.why, _ = self._tag(thread, q)
        return prep

    # ------------------------------------------------------------------ after planning

    async def after(
        self,
        s: AsyncSession,
        message: InboundMessage,
        thread: ThreadView | None,
        *,
        role: AuthorRole,
        decision: Decision,
        plan: Plan,
        command: cmds.Command | None,
        message_id: int,
        prepared: Prepared | None,
    ) -> Plan:
        """Record what ``message`` changed; return the plan (a command on the thread it was sent
        in, like /solved or /reopen, changes the plan's state so the SLA clocks follow)."""
        if command is not None:
            self._here = None
            await self._run_command(s, message, thread, command, message_id)
            if self._here is not None:
                return replace(plan, state=self._here, notes=(*plan.notes, f"/{command.name}"))
            return plan
        if thread is None:
            return plan
        action, _, tid = (message.button_data or "").partition(":")
        if message.kind is MessageKind.BUTTON and tid == str(thread.id):
            if action in ("claim", "decline"):
                await self._claim_or_decline(s, message, thread, action, message_id)
            elif action == "notyet" and role in ("asker", "staff") and prepared is not None:
                await self._not_yet(s, thread, prepared)
        if (
            decision.kind is DecisionKind.AUTO_ANSWER
            and decision.match is not None
            and plan.state is ThreadState.AUTO_ANSWERED
        ):
            self._fact(thread.id, auto_entry_id=decision.match.entry_id)
            self.kb_feedback.setdefault(decision.match.entry_id, [0, 0, 0])[0] += 1
        if (
            role in ("helper", "staff")
            and decision.kind is DecisionKind.FOLLOW_UP
            and message.kind in _TEXT_KINDS
            and message.author.id != thread.asker_id
        ):
            self._answered(thread, message, message_id)
        if message.kind is MessageKind.REACTION and message.target_id:
            emoji = message.reaction or ""
            if role == "helper" and emoji in self.s.claim_reactions:
                await self._claim_or_decline(s, message, thread, "claim", message_id)
            elif role == "helper" and emoji in self.s.decline_reactions:
                await self._claim_or_decline(s, message, thread, "decline", message_id)
            else:
                await self._reaction(s, message, thread, role)
        if plan.state is ThreadState.SOLVED and thread.state is not ThreadState.SOLVED:
            await self._solve(s, thread, role, message)
        return plan

    def _answered(self, thread: ThreadView, message: InboundMessage, message_id: int) -> None:
        rec = self.record(message)
        if rec is None:
            return
        key = rec.profile.key
        self._fact(thread.id, answer_helper=key, answer_message_id=message_id)
        self.tags[(thread.id, key)] = {"state": "answered", "why": None}
        if self.now - thread.opened_at <= self.s.first_response_within:
            self._award(
                key, self.s.points.first_response, "first_response", f"t{thread.id}:first", thread=thread
            )

    async def _not_yet(self, s: AsyncSession, thread: ThreadView, prepared: Prepared) -> None:
        rejected = prepared.rejected
        if rejected is None:
            return
        self.kb_feedback.setdefault(rejected.entry_id, [0, 0, 0])[2] += 1
        row = await self._entry(s, rejected.entry_id)
        if row is not None and row.credit_helper and row.credit_helper in self.roster.helpers:
            self._count(row.credit_helper, rejected=1)
            if row.topic:
                self.topic_deltas.setdefault((row.credit_helper, row.topic), [0, 0])[1] += 1

    async def _reaction(
        self, s: AsyncSession, message: InboundMessage, thread: ThreadView, role: AuthorRole
    ) -> None:
        emoji = message.reaction or ""
        helpful = emoji in self.s.helpful_reactions
        down = emoji in _DOWN
        if not (helpful or down):
            return
        target = await self._message(s, message.connector_id, message.target_id or "")
        if target is None:
            return
        author = self.roster.who(message.connector_id, target.author_id)
        if author is None or target.author_id == message.author.id:
            return  # not a helper's message, or your own: no points
        if helpful:
            self._award(
                author.profile.key,
                self.s.points.helpful_vote,
                "helpful",
                f"vote:{message.connector_id}:{target.external_id}:{message.author.id}",
                thread=thread,
                by=message.author.id,
            )
        elif role == "asker":
            self._count(author.profile.key, rejected=1)
            if thread.topic:
                self.topic_deltas.setdefault((author.profile.key, thread.topic), [0, 0])[1] += 1

    async def _claim_or_decline(
        self, s: AsyncSession, message: InboundMessage, thread: ThreadView, action: str, cause: int
    ) -> None:
        rec = self.record(message)
        if rec is None or rec.profile.role != "helper":
            self._say(
                message,
                "Only community helpers can claim or pass on a question.",
                thread_id=thread.id,
                cause=cause,
            )
            return
        key = rec.profile.key
        if action == "claim":
            self.tags[(thread.id, key)] = {"state": "claimed", "why": None}
            self._say(message, f"{rec.profile.display} is on it.", thread_id=thread.id, cause=cause)
            return
        declined = await self._declined_on(s, thread.id)
        declined.add(key)
        self.tags[(thread.id, key)] = {"state": "declined", "why": None}
        if rec.stats.open > 0:
            rec.stats.open -= 1
        q = Question(
            connector_id=thread.connector_id,
            asker_id=thread.asker_id,
            topic=thread.topic,
            priority=thread.priority,
            declined=frozenset(declined),
            exclude=frozenset(
                self._tagged.get(thread.id, set()) | {k for (t, k) in self.tags if t == thread.id}
            ),
        )
        mentions, why, _ = self._tag(thread, q, n=1)
        if mentions:
            m = mentions[0]
            who = f"@{m.handle}" if m.handle else (m.display_name or m.user_id)
            text = f"{rec.profile.display} passed. {who}, could you take a look? ({why[m.user_id]})"
            out = OutboundMessage(
                idempotency_key=f"t{thread.id}:decline:{message.external_id}",
                connector_id=thread.connector_id,
                conversation_id=message.conversation_id,
                thread_ref=message.thread_ref,
                reply_to_id=thread.root_external_id,
                text=text,
                mentions=mentions,
                purpose="tag_helpers",
            )
            self.outbound.append((out, thread.id, cause))
        else:
            self._say(
                message,
                f"{rec.profile.display} passed; no other helper is free, so staff will look.",
                thread_id=thread.id,
                cause=cause,
            )

    # ------------------------------------------------------------------ solving and learning

    async def _solve(
        self, s: AsyncSession, thread: ThreadView, by: AuthorRole | str, message: InboundMessage | None
    ) -> None:
        facts = await self._thread_facts(s, thread.id)
        if facts.values.get("solved_by"):
            return
        accepted_helper: str | None = None
        accepted_mid: int | None = None
        if message is not None and message.kind is MessageKind.REACTION and message.target_id:
            target = await self._message(s, message.connector_id, message.target_id)
            if target is not None:
                rec = self.roster.who(message.connector_id, target.author_id)
                if rec is not None and target.author_id != thread.asker_id:
                    accepted_helper, accepted_mid = rec.profile.key, int(target.id)
        if accepted_helper is None and facts.values.get("answer_helper"):
            accepted_helper, accepted_mid = facts.values["answer_helper"], facts.values["answer_message_id"]
        solved_by = by if by in ("asker", "helper", "staff") else "staff"
        self._fact(thread.id, solved_by=solved_by)
        topic = thread.topic or facts.topic
        if accepted_helper is not None and accepted_mid is not None:
            self._fact(thread.id, accepted_helper=accepted_helper, accepted_message_id=accepted_mid)
            rec = self.roster.helpers.get(accepted_helper)
            own = rec is not None and rec.profile.identities.get(thread.connector_id) == thread.asker_id
            if not own:
                self._award(
                    accepted_helper,
                    self.s.points.accepted_answer,
                    "accepted",
                    f"t{thread.id}:accepted",
                    thread=thread,
                )
                self._count(accepted_helper, accepted=1)
                if topic:
                    self.topic_deltas.setdefault((accepted_helper, topic), [0, 0])[0] += 1
            await self._learn(s, thread, accepted_helper, accepted_mid, topic=topic, language=facts.language)
            return
        entry_id = facts.values.get("auto_entry_id")
        if entry_id:
            self._fact(thread.id, accepted_entry_id=entry_id)
            self.kb_feedback.setdefault(entry_id, [0, 0, 0])[1] += 1
            row = await self._entry(s, entry_id)
            if row is not None and row.credit_helper:
                self._award(
                    row.credit_helper,
                    self.s.points.auto_answer_accepted,
                    "auto_accepted",
                    f"t{thread.id}:auto",
                    thread=thread,
                )
                self._count(row.credit_helper, accepted=1)
            if row is not None:
                await self._learn_phrasing(s, thread, row)

    async def _root_and_answer(
        self, s: AsyncSession, thread: ThreadView, answer_mid: int | None
    ) -> dict[int, Any]:
        ids = [thread.id] + ([answer_mid] if answer_mid is not None else [])
        rows = (await s.execute(select(_MESSAGE).where(_MESSAGE.c.id.in_(ids)))).all()
        return {int(r.id): r for r in rows}

    def _redact(self, text: str) -> str:
        return redact(text, self.env.pii_patterns)[0]

    async def _closest(self, text: str) -> tuple[Any, float] | None:
        """The closest existing entry to ``text`` (an index hit and its confidence), if any."""
        index = self.env.index()
        if index is None or len(index) == 0:
            return None
        gate = self.env.matcher
        try:
            result = await asyncio.to_thread(index.search, text, matcher=gate.kind, k=1, params=gate.params())
        except Exception:  # de-duplication is best effort: a new entry is never wrong
            log.exception("knowledge search for de-duplication failed")
            return None
        best = result.best
        if best is None:
            return None
        entry = index.get(best.entry_id)
        return (entry, result.confidence) if entry is not None else None

    async def _learn(
        self,
        s: AsyncSession,
        thread: ThreadView,
        helper: str,
        answer_mid: int,
        *,
        topic: str | None,
        language: str | None,
    ) -> None:
        rows = await self._root_and_answer(s, thread, answer_mid)
        root, answer = rows.get(thread.id), rows.get(answer_mid)
        if root is None or answer is None or not answer.text.strip():
            return
        question = self._redact("\n".join(t for t in (root.title, root.text) if t).strip())
        rec = self.roster.helpers.get(helper)
        entry_id = f"thread-{thread.id}"
        values: dict[str, Any] = {
            "id": entry_id,
            "title": question[:1000],
            "body": "",
            "answer": self._redact(answer.text.strip()),
            "answer_id": None,
            "credit": rec.profile.display if rec is not None else helper,
            "credit_helper": helper,
            "link": answer.permalink
            or root.permalink
            or (self.env.link.format(thread=thread.id) if self.env.link else None),
            "topic": topic,
            "language": language,
        }
        close = await self._closest(question)
        if close is not None and close[1] >= self.s.merge_confidence:
            entry, _ = close
            # the same question again: this phrasing joins the existing answer (one answer, many phrasings)
            values.update(
                answer_id=entry.answer_key, answer=entry.answer, credit=entry.credit, link=entry.link
            )
            values["credit_helper"] = None
        self.kb_entries.append({**values, "thread_id": thread.id})
        self._fact(thread.id, knowledge_entry_id=entry_id)

    async def _learn_phrasing(self, s: AsyncSession, thread: ThreadView, entry: Any) -> None:
        """An auto-answer was accepted: the asker's phrasing joins that answer (unless it is the same)."""
        rows = await self._root_and_answer(s, thread, None)
        root = rows.get(thread.id)
        if root is None:
            return
        question = self._redact("\n".join(t for t in (root.title, root.text) if t).strip())
        if " ".join(question.lower().split()) == " ".join(str(entry.title).lower().split()):
            return
        entry_id = f"thread-{thread.id}"
        self.kb_entries.append(
            {
                "id": entry_id,
                "title": question[:1000],
                "body": "",
                "answer": entry.answer,
                "answer_id": entry.answer_id or f"entry:{entry.id}",
                "credit": entry.credit,
                "credit_helper": entry.credit_helper,
                "link": entry.link,
                "topic": entry.topic or thread.topic,
                "language": entry.language,
                "thread_id": thread.id,
            }
        )
        self._fact(thread.id, knowledge_entry_id=entry_id)

    # ------------------------------------------------------------------ commands

    async def _run_command(
        self,
        s: AsyncSession,
        message: InboundMessage,
        thread: ThreadView | None,
        cmd: cmds.Command,
        cause: int,
    ) -> None:
        caller = self.caller(message)
        is_asker = thread is not None and thread.asker_id == message.author.id
        tid = thread.id if thread is not None else None
        refused = cmds.refusal(cmd.name, caller, is_asker=is_asker)
        if refused is not None and cmd.name in ("rate", "solved") and thread is None:
            refused = None  # not in a thread: the command itself says where to use it
        if refused is not None:
            self._say(message, refused, thread_id=tid, cause=cause)
            return
        handler = getattr(self, f"_cmd_{cmd.name}")
        reply = await handler(s, message, thread, cmd.args, cause)
        if reply:
            self._say(message, reply, thread_id=tid, cause=cause)

    def _override(self, rec: HelperRecord, **values: Any) -> None:
        """Change a helper's profile: in this batch's roster now, in the database at write."""
        row = self.helper_rows.setdefault(rec.profile.key, {"name": rec.profile.key})
        row.update(values)
        p = rec.profile
        from triage.route import HelperProfile, parse_hours

        fields = {f: getattr(p, f) for f in HelperProfile.__slots__}
        for k, v in values.items():
            if k == "topics":
                fields["topics"] = frozenset(v or ())
            elif k == "languages":
                fields["languages"] = frozenset(v or ())
            elif k == "hours":
                fields["hours"] = parse_hours(v)
            elif k in fields:
                fields[k] = v
        rec.profile = HelperProfile(**fields)
        self._pool = None  # rebuilt with the change

    async def _cmd_help(
        self, s: AsyncSession, m: InboundMessage, t: ThreadView | None, args: tuple[str, ...], cause: int
    ) -> str:
        return cmds.help_text(self.caller(m))

    async def _cmd_join(
        self, s: AsyncSession, m: InboundMessage, t: ThreadView | None, args: tuple[str, ...], cause: int
    ) -> str:
        rec = self.record(m)
        topics = [a.lower() for a in args]
        if rec is not None and rec.profile.role == "staff":
            return "You are staff already; staff are not tagged as helpers."
        if rec is not None and rec.profile.active:
            if topics:
                self._override(rec, topics=topics)
                return f"You are already a helper; topics set to {', '.join(topics)}."
            return "You are already a helper. /topics, /hours, /away and /stats manage your profile."
        if rec is None:
            rec = self._new_helper(
                m.connector_id, m.author.id, m.author.handle, display=m.author.display_name, source="self"
            )
        self._override(rec, active=True, **({"topics": topics} if topics else {}))
        what = f" for {', '.join(topics)}" if topics else " for any topic (set yours with /topics)"
        return (
            f"Welcome, {rec.profile.display}! You'll be tagged on questions{what}. /help lists the commands."
        )

    def _new_helper(
        self,
        connector_id: str,
        user_id: str,
        handle: str | None,
        *,
        display: str | None,
        source: str,
        name: str | None = None,
    ) -> HelperRecord:
        base = name or handle or display or f"{connector_id}:{user_id}"
        key, i = base, 2
        while key in self.roster.helpers:
            key, i = f"{base}-{i}", i + 1
        from triage.route import HelperProfile, HelperStats

        handles = {connector_id: handle} if handle else {}
        rec = HelperRecord(
            profile=HelperProfile(
                key=key,
                display=display or base,
                identities={connector_id: user_id},
                handles=handles,
                languages=frozenset(),
            ),
            stats=HelperStats(),
        )
        self.roster.add(rec)
        self.helper_rows.setdefault(key, {"name": key}).update(display=display or base, source=source)
        self.identities.append(
            {
                "connector_id": connector_id,
                "user_id": user_id,
                "helper": key,
                "handle": handle,
                "created_at": self.now,
            }
        )
        return rec

    async def _cmd_leave(
        self, s: AsyncSession, m: InboundMessage, t: ThreadView | None, args: tuple[str, ...], cause: int
    ) -> str:
        rec = self.record(m)
        assert rec is not None
        self._override(rec, active=False)
        return "You won't be tagged any more. Thanks for helping! /join to come back."

    async def _cmd_topics(
        self, s: AsyncSession, m: InboundMessage, t: ThreadView | None, args: tuple[str, ...], cause: int
    ) -> str:
        rec = self.record(m)
        assert rec is not None
        if args:
            self._override(rec, topics=[a.lower().strip(",") for a in args])
        return f"Your topics: {', '.join(sorted(rec.profile.topics)) or 'any'}."

    async def _cmd_languages(
        self, s: AsyncSession, m: InboundMessage, t: ThreadView | None, args: tuple[str, ...], cause: int
    ) -> str:
        rec = self.record(m)
        assert rec is not None
        if args:
            self._override(rec, languages=[a.lower().strip(",") for a in args])
        return f"Your languages: {', '.join(sorted(rec.profile.languages)) or 'any'}."

    async def _cmd_hours(
        self, s: AsyncSession, m: InboundMessage, t: ThreadView | None, args: tuple[str, ...], cause: int
    ) -> str:
        rec = self.record(m)
        assert rec is not None
        if not args:
            h = rec.profile.hours
            shown = (
                "any time" if h is None else f"{h[0] // 60:02}:{h[0] % 60:02}-{h[1] // 60:02}:{h[1] % 60:02}"
            )
            return f"Your hours: {shown} ({rec.profile.timezone})."
        values: dict[str, Any] = {}
        if args[0].lower() in ("any", "off", "none"):
            values["hours"] = ""
        elif cmds.valid_hours(args[0]):
            values["hours"] = args[0]
        else:
            return 'Hours look like "09:00-17:00" (optionally followed by a time zone like Europe/Berlin).'
        if len(args) > 1:
            from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

            try:
                ZoneInfo(args[1])
            except (ZoneInfoNotFoundError, ValueError):
                return f"Unknown time zone {args[1]!r}: use a name like Europe/Berlin."
            values["timezone"] = args[1]
        self._override(rec, **values)
        if values["hours"] == "":
            return "You can be tagged at any time."
        return f"Your hours: {args[0]} ({values.get('timezone', rec.profile.timezone)})."

    async def _cmd_away(
        self, s: AsyncSession, m: InboundMessage, t: ThreadView | None, args: tuple[str, ...], cause: int
    ) -> str:
        rec = self.record(m)
        assert rec is not None
        until = None
        if args:
            d = cmds.parse_duration(args[0])
            if d is None:
                return "Say how long like 3h, 2d or 1w (or just /away)."
            until = self.now + d
        self._override(rec, away=True, away_until=until)
        return "You're away" + (f" until {until:%Y-%m-%d %H:%M} UTC" if until else "") + ". /back to return."

    async def _cmd_back(
        self, s: AsyncSession, m: InboundMessage, t: ThreadView | None, args: tuple[str, ...], cause: int
    ) -> str:
        rec = self.record(m)
        assert rec is not None
        self._override(rec, away=False, away_until=None)
        return "Welcome back: you'll be tagged again."

    async def _cmd_max(
        self, s: AsyncSession, m: InboundMessage, t: ThreadView | None, args: tuple[str, ...], cause: int
    ) -> str:
        rec = self.record(m)
        assert rec is not None
        if not args or not args[0].isdigit() or int(args[0]) > 100:
            return f"Your cap: {rec.profile.max_open} open threads. Set it with /max <0-100>."
        self._override(rec, max_open=int(args[0]))
        return f"You'll have at most {int(args[0])} open threads at once."

    async def _cmd_stats(
        self, s: AsyncSession, m: InboundMessage, t: ThreadView | None, args: tuple[str, ...], cause: int
    ) -> str:
        rec = self.record(m)
        assert rec is not None
        ranks = self.s.ranks
        rank = rank_of(rec.points, ranks) or "-"
        nxt = next_rank(rec.points, ranks)
        st = rec.stats
        parts = [
            f"{rec.profile.display}: {rec.points} points, rank {rank}"
            + (f" ({nxt.points - rec.points} to {nxt.name})" if nxt else ""),
            f"accepted answers: {st.accepted}, rejected: {st.rejected}, "
            f"open threads: {st.open}/{rec.profile.max_open}",
            f"topics: {', '.join(sorted(rec.profile.topics)) or 'any'}; "
            f"languages: {', '.join(sorted(rec.profile.languages)) or 'any'}",
        ]
        if rec.profile.away:
            parts.append("status: away")
        return "\n".join(parts)

    async def _thread_for(
        self, s: AsyncSession, t: ThreadView | None, args: tuple[str, ...]
    ) -> ThreadView | None:
        n = cmds.thread_arg(args)
        if n is None:
            return t
        if t is not None and t.id == n:
            return t
        row = (await s.execute(select(_THREAD).where(_THREAD.c.id == n))).first()
        return thread_view(row) if row is not None else None

    async def _cmd_claim(
        self, s: AsyncSession, m: InboundMessage, t: ThreadView | None, args: tuple[str, ...], cause: int
    ) -> str:
        target = await self._thread_for(s, t, args)
        if target is None:
            return "Which thread? Reply in the thread or give its number: /claim 123."
        await self._claim_or_decline(s, m, target, "claim", cause)
        return ""

    async def _cmd_decline(
        self, s: AsyncSession, m: InboundMessage, t: ThreadView | None, args: tuple[str, ...], cause: int
    ) -> str:
        target = await self._thread_for(s, t, args)
        if target is None:
            return "Which thread? Reply in the thread or give its number: /decline 123."
        await self._claim_or_decline(s, m, target, "decline", cause)
        return ""

    async def _cmd_kudos(
        self, s: AsyncSession, m: InboundMessage, t: ThreadView | None, args: tuple[str, ...], cause: int
    ) -> str:
        rec: HelperRecord | None = None
        if args:
            rec = self.roster.find(m.connector_id, args[0])
        elif m.reply_to_id:
            target = await self._message(s, m.connector_id, m.reply_to_id)
            if target is not None:
                rec = self.roster.who(m.connector_id, target.author_id)
        if rec is None:
            return "Kudos to whom? /kudos @helper, or reply to their message with /kudos."
        if rec.profile.identities.get(m.connector_id) == m.author.id:
            return "Nice try! Kudos are for others."
        if rec.profile.role == "staff":
            return f"Thanks, passed on to {rec.profile.display} (staff don't collect points)."
        self._award(
            rec.profile.key,
            self.s.points.kudos,
            "kudos",
            f"kudos:{m.connector_id}:{m.external_id}",
            thread=t,
            by=m.author.id,
        )
        return f"Kudos to {rec.profile.display}! (+{self.s.points.kudos})"

    async def _cmd_leaderboard(
        self, s: AsyncSession, m: InboundMessage, t: ThreadView | None, args: tuple[str, ...], cause: int
    ) -> str:
        period, topic = "all", None
        for a in args:
            if a.lower() in ("week", "month", "all"):
                period = a.lower()
            else:
                topic = a.lower()
        rows = await leaderboard(s, since=period_start(period, self.now), topic=topic)
        label = {"week": "This week", "month": "This month", "all": "All time"}[period]
        return format_board(rows, label + (f" in {topic}" if topic else ""))

    async def _cmd_rate(
        self, s: AsyncSession, m: InboundMessage, t: ThreadView | None, args: tuple[str, ...], cause: int
    ) -> str:
        if t is None:
            return "Rate in your question's thread: /rate 1-5."
        if not args or args[0] not in ("1", "2", "3", "4", "5"):
            return "Rate from 1 to 5: /rate 5."
        facts = await self._thread_facts(s, t.id)
        helper = facts.values.get("accepted_helper") or facts.values.get("answer_helper")
        if helper is None:
            return "Thanks! There is no helper answer to rate here yet."
        if facts.values.get("rating") is not None:
            return "You already rated this one. Thanks!"
        n = int(args[0])
        self._fact(t.id, rating=n)
        self._count(helper, rating_sum=n, rating_count=1)
        self._award(
            helper, self.s.points.rating.get(n, 0), "rating", f"t{t.id}:rating", thread=t, by=m.author.id
        )
        return f"Thanks for rating {n}/5!"

    async def _cmd_solved(
        self, s: AsyncSession, m: InboundMessage, t: ThreadView | None, args: tuple[str, ...], cause: int
    ) -> str:
        target = await self._thread_for(s, t, args)
        caller = self.caller(m)
        if target is None:
            return "Which thread? /solved 123 (staff), or /solved in your question's thread."
        if caller != "staff" and target.asker_id != m.author.id:
            return "Only the person who asked (or staff) can mark this solved."
        if target.state is ThreadState.SOLVED:
            return f"Thread #{target.id} is already solved."
        await self._solve(s, target, "staff" if caller == "staff" else "asker", None)
        self._set_state(t, target, ThreadState.SOLVED)
        return f"Marked thread #{target.id} as solved. Thanks!"

    async def _cmd_reopen(
        self, s: AsyncSession, m: InboundMessage, t: ThreadView | None, args: tuple[str, ...], cause: int
    ) -> str:
        target = await self._thread_for(s, t, args)
        if target is None:
            return "Which thread? /reopen 123."
        self._set_state(t, target, ThreadState.REOPENED)
        return f"Reopened thread #{target.id}."

    def _set_state(self, here: ThreadView | None, target: ThreadView, state: ThreadState) -> None:
        if here is not None and here.id == target.id:
            self._here = state  # the worker writes it (and the SLA hooks see it)
            return
        self.thread_states[target.id] = {
            "tid": target.id,
            "state": state.value,
            "solved": self.now if state is ThreadState.SOLVED else None,
        }

    async def _cmd_retire(
        self, s: AsyncSession, m: InboundMessage, t: ThreadView | None, args: tuple[str, ...], cause: int
    ) -> str:
        if not args:
            return "Which entry? /retire <entry id> (shown as kb#<id>)."
        entry_id = args[0].removeprefix("kb#")
        if await self._entry(s, entry_id) is None:
            return f"No knowledge entry {entry_id!r}."
        self.retire.append(entry_id)
        return f"Retired kb#{entry_id}: it won't be used for auto-answers."

    async def _cmd_add(
        self, s: AsyncSession, m: InboundMessage, t: ThreadView | None, args: tuple[str, ...], cause: int
    ) -> str:
        user_id: str | None = None
        handle: str | None = None
        display: str | None = None
        rest = list(args)
        if m.reply_to_id:
            target = await self._message(s, m.connector_id, m.reply_to_id)
            if target is not None:
                user_id, handle, display = target.author_id, target.author_handle, target.author_name
        if user_id is None and rest:
            ref = rest.pop(0)
            stripped = ref.strip("<@!>")
            if stripped.isdigit() or ref.startswith("<@"):
                user_id = stripped
            else:
                handle = ref.lstrip("@")
                row = (
                    await s.execute(
                        select(_MESSAGE.c.author_id, _MESSAGE.c.author_name)
                        .where(
                            _MESSAGE.c.connector_id == m.connector_id,
                            func.lower(_MESSAGE.c.author_handle) == handle.lower(),
                        )
                        .limit(1)
                    )
                ).first()
                if row is not None:
                    user_id, display = row.author_id, row.author_name
        if user_id is None:
            return (
                "Who? /add @user [name] (someone who has posted here), /add <user id> [name], "
                "or reply to them with /add."
            )
        name = rest[0] if rest else None
        existing = self.roster.who(m.connector_id, user_id)
        if existing is not None:
            self._override(existing, active=True)
            return f"{existing.profile.display} is a helper."
        if name is not None and name in self.roster.helpers:
            rec = self.roster.helpers[name]  # one person, another platform: link the account
            self.identities.append(
                {
                    "connector_id": m.connector_id,
                    "user_id": user_id,
                    "helper": name,
                    "handle": handle,
                    "created_at": self.now,
                }
            )
            ids = {**rec.profile.identities, m.connector_id: user_id}
            handles = {**rec.profile.handles, **({m.connector_id: handle} if handle else {})}
            self._override(rec, identities=ids, handles=handles, active=True)
            self.roster.add(rec)
            return f"Linked this account to helper {name}."
        rec = self._new_helper(m.connector_id, user_id, handle, display=display, source="staff", name=name)
        self._override(rec, active=True)
        return f"{rec.profile.display} is now a helper."

    async def _cmd_remove(
        self, s: AsyncSession, m: InboundMessage, t: ThreadView | None, args: tuple[str, ...], cause: int
    ) -> str:
        if not args:
            return "Who? /remove <helper name or @handle>."
        rec = self.roster.find(m.connector_id, " ".join(args))
        if rec is None:
            return f"No helper {' '.join(args)!r}."
        if rec.profile.role == "staff":
            return "Staff are managed in config.yaml."
        self._override(rec, active=False)
        return f"{rec.profile.display} is no longer a helper."

    # ------------------------------------------------------------------ write

    async def write(self, s: AsyncSession) -> None:
        """Apply this batch's community changes (a few multi-row statements)."""
        d = dialect_of(s)
        now = self.now
        touched = (
            set(self.helper_rows)
            | set(self.counters)
            | set(self.last_tagged)
            | {a["helper"] for a in self.awards}
        )
        touched &= set(self.roster.helpers)
        if touched:
            await s.execute(
                insert(d, _HELPER).on_conflict_do_nothing(index_elements=["name"]),
                [
                    {
                        "name": k,
                        "display": self.roster.helpers[k].profile.display,
                        "source": "config" if self.roster.helpers[k].in_config else "self",
                        "away": False,
                        "points": 0,
                        "accepted": 0,
                        "rejected": 0,
                        "rating_sum": 0,
                        "rating_count": 0,
                        "created_at": now,
                        "updated_at": now,
                    }
                    for k in sorted(touched)
                ],
            )
        for key, values in self.helper_rows.items():
            cols = {k: v for k, v in values.items() if k in _HELPER.c and k != "name"}
            if cols:
                await s.execute(update(_HELPER).where(_HELPER.c.name == key).values(**cols, updated_at=now))
        if self.identities:
            await s.execute(
                insert(d, _IDENTITY).on_conflict_do_update(
                    index_elements=["connector_id", "user_id"],
                    set_={"helper": insert(d, _IDENTITY).excluded.helper},
                ),
                self.identities,
            )
        if self.tags:
            ins = insert(d, _TAG)
            stmt = ins.on_conflict_do_update(
                index_elements=["thread_id", "helper"],
                set_={
                    "state": ins.excluded.state,
                    "updated_at": ins.excluded.updated_at,
                    "why": func.coalesce(ins.excluded.why, _TAG.c.why),
                },
            )
            await s.execute(
                stmt,
                [
                    {
                        "thread_id": tid,
                        "helper": h,
                        "state": v["state"],
                        "why": v["why"],
                        "tagged_at": now,
                        "updated_at": now,
                    }
                    for (tid, h), v in self.tags.items()
                ],
            )
        await self._write_points(s, d)
        if self.counters or self.last_tagged:
            names = sorted(set(self.counters) | set(self.last_tagged))
            await s.execute(
                update(_HELPER)
                .where(_HELPER.c.name == bindparam("h"))
                .values(
                    accepted=_HELPER.c.accepted + bindparam("da"),
                    rejected=_HELPER.c.rejected + bindparam("dr"),
                    rating_sum=_HELPER.c.rating_sum + bindparam("drs"),
                    rating_count=_HELPER.c.rating_count + bindparam("drc"),
                    last_tagged_at=func.coalesce(
                        bindparam("lt", type_=_HELPER.c.last_tagged_at.type), _HELPER.c.last_tagged_at
                    ),
                ),
                [
                    {
                        "h": n,
                        "da": self.counters.get(n, {}).get("accepted", 0),
                        "dr": self.counters.get(n, {}).get("rejected", 0),
                        "drs": self.counters.get(n, {}).get("rating_sum", 0),
                        "drc": self.counters.get(n, {}).get("rating_count", 0),
                        "lt": self.last_tagged.get(n),
                    }
                    for n in names
                ],
            )
        if self.topic_deltas:
            ins = insert(d, _TOPIC)
            await s.execute(
                ins.on_conflict_do_update(
                    index_elements=["helper", "topic"],
                    set_={
                        "accepted": _TOPIC.c.accepted + ins.excluded.accepted,
                        "rejected": _TOPIC.c.rejected + ins.excluded.rejected,
                    },
                ),
                [
                    {"helper": h, "topic": t, "accepted": a, "rejected": r}
                    for (h, t), (a, r) in self.topic_deltas.items()
                ],
            )
        if self.facts:
            ins = insert(d, _FACTS)
            await s.execute(
                ins.on_conflict_do_update(
                    index_elements=["thread_id"],
                    set_={
                        **{
                            c: func.coalesce(getattr(ins.excluded, c), getattr(_FACTS.c, c))
                            for c in _FACT_COLS
                        },
                        "updated_at": ins.excluded.updated_at,
                    },
                ),
                [
                    {"thread_id": tid, **{c: v.get(c) for c in _FACT_COLS}, "updated_at": now}
                    for tid, v in self.facts.items()
                ],
            )
        if self.kb_feedback:
            await s.execute(
                update(_KB)
                .where(_KB.c.id == bindparam("eid"))
                .values(
                    served=_KB.c.served + bindparam("ds"),
                    accepted=_KB.c.accepted + bindparam("dac"),
                    rejected=_KB.c.rejected + bindparam("drj"),
                    updated_at=now,  # refresh() picks the new weight up
                ),
                [{"eid": e, "ds": v[0], "dac": v[1], "drj": v[2]} for e, v in self.kb_feedback.items()],
            )
        if self.kb_entries:
            from bot.knowledge import row_values

            rows = []
            for v in self.kb_entries:
                entry = KnowledgeEntry(
                    **{
                        k: v[k]
                        for k in (
                            "id",
                            "title",
                            "body",
                            "answer",
                            "answer_id",
                            "credit",
                            "link",
                            "topic",
                            "language",
                        )
                    }
                )
                rows.append(
                    {
                        **row_values(entry, source="thread", thread_id=v["thread_id"]),
                        "credit_helper": v["credit_helper"],
                    }
                )
            ins = insert(d, _KB)
            kb_cols = (
                "title",
                "body",
                "answer",
                "answer_id",
                "credit",
                "credit_helper",
                "link",
                "topic",
                "language",
                "updated_at",
                "retired",
            )
            await s.execute(
                ins.on_conflict_do_update(
                    index_elements=["id"], set_={c: getattr(ins.excluded, c) for c in kb_cols}
                ),
                rows,
            )
        if self.retire:
            await s.execute(update(_KB).where(_KB.c.id.in_(self.retire)).values(retired=True, updated_at=now))
        if self.thread_states:
            await s.execute(
                update(_THREAD)
                .where(_THREAD.c.id == bindparam("tid"))
                .values(
                    state=bindparam("state"),
                    updated_at=now,
                    solved_at=func.coalesce(
                        bindparam("solved", type_=_THREAD.c.solved_at.type), _THREAD.c.solved_at
                    ),
                ),
                list(self.thread_states.values()),
            )
        if self.outbound:
            await outbox.enqueue_many(s, self.outbound)

    async def _write_points(self, s: AsyncSession, d: str) -> None:
        if not self.awards:
            return
        stmt = (
            insert(d, _POINTS)
            .on_conflict_do_nothing(index_elements=["key"])
            .returning(_POINTS.c.helper, _POINTS.c.points)
        )
        got = (await s.execute(stmt, self.awards)).all()
        delta: dict[str, int] = {}
        for helper, pts in got:
            delta[helper] = delta.get(helper, 0) + int(pts)
        if not delta:
            return
        ranks = self.s.ranks
        rank_rows: list[dict[str, Any]] = []
        for helper, dp in delta.items():
            rec = self.roster.helpers[helper]
            before = max(rank_index(rec.rank, ranks), rank_index(rank_of(rec.points, ranks), ranks))
            rec.points += dp
            new_rank = rank_of(rec.points, ranks)
            reached = rank_index(new_rank, ranks)
            if reached > before:
                rec.rank = new_rank
                if reached > 0:  # the first rank (0 points) is where everyone starts
                    self._announce(rec, new_rank or "")
            rank_rows.append({"h": helper, "dp": dp, "rank": new_rank if reached > before else None})
        await s.execute(
            update(_HELPER)
            .where(_HELPER.c.name == bindparam("h"))
            .values(
                points=_HELPER.c.points + bindparam("dp"),
                rank=func.coalesce(bindparam("rank", type_=_HELPER.c.rank.type), _HELPER.c.rank),
                updated_at=self.now,
            ),
            rank_rows,
        )

    def _announce(self, rec: HelperRecord, rank: str) -> None:
        if not self.s.announce_ranks:
            return
        where = self.where.get(rec.profile.key)
        if where is None:
            return
        conn, conversation, thread_ref = where
        uid = rec.profile.identities.get(conn)
        mention = (
            (Mention(user_id=uid, handle=rec.profile.handles.get(conn), display_name=rec.profile.display),)
            if uid
            else ()
        )
        out = OutboundMessage(
            idempotency_key=f"rank:{rec.profile.key}:{rank}"[:255],
            connector_id=conn,
            conversation_id=conversation,
            thread_ref=thread_ref,
            text=f"🎉 {rec.profile.display} reached the rank {rank} ({rec.points} points). Thank you!",
            mentions=mention,
            purpose="community",
        )
        self.outbound.append((out, None, None))


def build_env(config: Any, triager: Any = None) -> CommunityEnv:
    """The community stage's env from a validated :class:`~bot.settings.Config` (and the triager,
    whose knowledge index is used to de-duplicate new entries)."""
    st = config.settings
    index = getattr(triager, "index", None)
    return CommunityEnv(
        settings=st.community,
        helpers=tuple(st.helpers),
        pii_patterns=tuple(st.triage.pii_patterns),
        matcher=st.triage.matcher,
        index=index if callable(index) else (lambda: None),
        link=st.sla.link,
    )
