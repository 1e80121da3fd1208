"""Frozen value objects that cross package boundaries.

``connectors``, ``triage`` and ``responders`` import this module (and ``bot.errors``)
and nothing else from ``bot``. Platform ids are strings everywhere; datetimes are
timezone-aware UTC.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field


def utcnow() -> datetime:
    """Now, timezone-aware, in UTC."""
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """Convert an aware datetime to UTC; refuse naive ones (they are a bug)."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("naive datetime: expected a timezone-aware value")
    return value.astimezone(UTC)


UTCDateTime = Annotated[AwareDatetime, AfterValidator(as_utc)]


class Frozen(BaseModel):
    """Base for value objects: immutable, unknown fields refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")


# --------------------------------------------------------------------------- inbound


class MessageKind(StrEnum):
    MENTION = "mention"  # a public post addressing the bot (X mention, Telegram @bot)
    DM = "dm"  # a private message to the bot
    CHANNEL_POST = "channel_post"  # a message in a watched group / channel / forum
    REPLY = "reply"  # a reply to another message (reply_to_id is set)
    EDIT = "edit"  # an edit of an earlier message (target_id is set)
    DELETE = "delete"  # a deletion of an earlier message (target_id is set)
    REACTION = "reaction"  # an emoji reaction on a message (target_id, reaction)
    BUTTON = "button"  # a press on one of the bot's buttons (target_id, button_data)


class Author(Frozen):
    id: str
    handle: str | None = None  # @username without the @, when the platform has one
    display_name: str | None = None
    is_bot: bool = False


class InboundMessage(Frozen):
    """One inbound event, normalized. ``(connector_id, external_id)`` is unique."""

    connector_id: str
    platform: str
    external_id: str  # unique per connector for this *event* (edits get their own id)
    conversation_id: str  # chat / channel / DM channel
    thread_ref: str | None = None  # platform thread: forum topic, Discord thread, X conversation
    kind: MessageKind
    author: Author
    text: str = ""
    sent_at: UTCDateTime
    reply_to_id: str | None = None  # external id of the message this one answers
    target_id: str | None = None  # for edit/delete/reaction/button: the message acted on
    mentions_bot: bool = False
    is_private: bool = False  # true for DMs
    title: str | None = None  # forum post title, when there is one
    reaction: str | None = None  # the emoji, for REACTION
    button_data: str | None = None  # the button's payload, for BUTTON
    permalink: str | None = None
    raw: Mapping[str, Any] = Field(default_factory=dict)  # for audit only; never logic


class FetchResult(Frozen):
    """What a pull connector's ``fetch`` returns: messages and the cursor after them."""

    messages: tuple[InboundMessage, ...] = ()
    cursor: str | None = None  # opaque to the core; None means "unchanged"
    more: bool = False  # true when the connector has more ready right now
    next_poll_after: float | None = None  # seconds; a hint for adaptive polling


# --------------------------------------------------------------------------- outbound


class Mention(Frozen):
    """A person to notify in a message, by platform user id (and handle when known)."""

    user_id: str
    handle: str | None = None
    display_name: str | None = None
    role: bool = False  # a role/group mention (Discord role) rather than a user


class Button(Frozen):
    label: str
    data: str  # payload returned in InboundMessage.button_data when pressed


class AnswerCard(Frozen):
    """A structured auto-answer: platforms with rich messages render it (embeds)."""

    question: str
    answer: str
    credit: str | None = None  # display name of the helper who wrote the answer
    link: str | None = None  # where the original answer lives


class OutboundMessage(Frozen):
    """One message the bot wants to send. ``idempotency_key`` is unique in the outbox."""

    idempotency_key: str
    connector_id: str
    conversation_id: str
    thread_ref: str | None = None
    reply_to_id: str | None = None
    text: str
    mentions: tuple[Mention, ...] = ()
    buttons: tuple[Button, ...] = ()
    card: AnswerCard | None = None
    private_to: str | None = None  # user id: send as a direct message to this user
    purpose: str = "reply"  # auto_answer, tag_helpers, route_private, escalation, notice, ...


class SendReceipt(Frozen):
    external_ids: tuple[str, ...]  # ids of the message(s) created (several when split)
    sent_at: UTCDateTime
    permalink: str | None = None


# --------------------------------------------------------------------------- connector facts


class RateLimit(Frozen):
    """At most ``limit`` sends per ``per_seconds`` within ``scope``."""

    scope: Literal["connector", "conversation"]
    limit: int = Field(gt=0)
    per_seconds: float = Field(gt=0)


class Capabilities(Frozen):
    mode: Literal["pull", "push"]
    max_text_length: int = Field(gt=0)
    threads: bool = False
    dms: bool = False
    reactions: bool = False
    buttons: bool = False
    edits: bool = False
    deletes: bool = False
    rate_limits: tuple[RateLimit, ...] = ()


class HealthState(StrEnum):
    STARTING = "starting"
    OK = "ok"
    DEGRADED = "degraded"
    DOWN = "down"
    STOPPED = "stopped"


class Health(Frozen):
    state: HealthState
    detail: str = ""
    checked_at: UTCDateTime = Field(default_factory=utcnow)
    metrics: Mapping[str, float] = Field(default_factory=dict)


# --------------------------------------------------------------------------- threads


class ThreadState(StrEnum):
    NEW = "new"
    TRIAGED = "triaged"
    AUTO_ANSWERED = "auto_answered"
    AWAITING_HELPER = "awaiting_helper"
    WITH_STAFF = "with_staff"
    ANSWERED = "answered"
    SOLVED = "solved"
    REOPENED = "reopened"
    ESCALATED = "escalated"
    CLOSED = "closed"


OPEN_THREAD_STATES = frozenset(
    {
        ThreadState.NEW,
        ThreadState.TRIAGED,
        ThreadState.AUTO_ANSWERED,
        ThreadState.AWAITING_HELPER,
        ThreadState.WITH_STAFF,
        ThreadState.ANSWERED,
        ThreadState.REOPENED,
        ThreadState.ESCALATED,
    }
)


class ThreadView(Frozen):
    """What the pure layers may know about a thread."""

    id: int
    state: ThreadState
    connector_id: str
    platform: str
    conversation_id: str
    thread_ref: str | None = None
    root_external_id: str  # the question that opened it
    asker_id: str
    asker_handle: str | None = None
    is_private: bool = False
    topic: str | None = None
    priority: str = "normal"
    opened_at: UTCDateTime
    message_count: int = 1


# --------------------------------------------------------------------------- decisions


class DecisionKind(StrEnum):
    IGNORE = "ignore"  # not a support question (chatter, thanks, bots)
    FOLLOW_UP = "follow_up"  # a message in an existing thread (answer, asker reply)
    AUTO_ANSWER = "auto_answer"  # answer from the knowledge base, in channel
    TAG_HELPERS = "tag_helpers"  # ask the community
    ROUTE_PRIVATE = "route_private"  # sensitive: privately to staff, never to peers
    NEEDS_HUMAN = "needs_human"  # triage failed closed: staff decides


class Priority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


class KnowledgeMatch(Frozen):
    entry_id: str
    confidence: float  # calibrated, 0..1
    question: str
    answer: str
    credit: str | None = None
    link: str | None = None


class Decision(Frozen):
    kind: DecisionKind
    is_question: bool
    language: str | None = None
    topic: str | None = None
    topic_score: float = 0.0
    sensitive: str | None = None  # category, when sensitive
    priority: Priority = Priority.NORMAL
    match: KnowledgeMatch | None = None
    redacted_text: str = ""  # the text safe to show in public / to helpers / in logs
    reasons: tuple[str, ...] = ()
