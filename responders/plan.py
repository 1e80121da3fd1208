"""From a decision to actions: which messages to send and what state the thread moves to.

Pure: no I/O, no clock. Every message gets an idempotency key derived from the thread and
the step (``t<thread>:<step>:<action>``), so planning the same step twice can never send twice.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from bot.models import (
    AnswerCard,
    Button,
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
from responders import texts

AuthorRole = Literal["asker", "helper", "staff", "bot", "other"]


@dataclass(frozen=True)
class ResponderContext:
    """What planning needs besides the decision: who wrote it and who may be tagged."""

    author_role: AuthorRole
    helpers: tuple[Mention, ...] = ()  # helpers chosen for this thread, best first
    staff_connector: str | None = None
    staff_conversation: str | None = None
    solved_emoji: frozenset[str] = frozenset({"✅", "✔️", "☑️"})
    #: community routing (bot/community): why each helper (by user id) was picked, shown to them
    why: Mapping[str, str] = field(default_factory=dict)
    #: the auto-answer the asker said "Not yet" to, shown to the helpers tagged next
    rejected: KnowledgeMatch | None = None
    #: phrases that, from the asker, mean "solved" (their language and English)
    solved_phrases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Plan:
    messages: tuple[OutboundMessage, ...] = ()
    state: ThreadState | None = None  # None: unchanged
    notes: tuple[str, ...] = field(default=())  # why, for the audit log


def _reply(
    thread: ThreadView, message: InboundMessage, key: str, text: str, **extra: object
) -> OutboundMessage:
    return OutboundMessage(
        idempotency_key=f"t{thread.id}:{key}",
        connector_id=thread.connector_id,
        conversation_id=message.conversation_id,
        thread_ref=message.thread_ref,
        reply_to_id=_reply_target(message),
        text=text,
        **extra,
    )


_EVENT_KINDS = frozenset({MessageKind.BUTTON, MessageKind.REACTION, MessageKind.EDIT, MessageKind.DELETE})


def _reply_target(message: InboundMessage) -> str | None:
    """A reply answers a message: for an event (button press, reaction, edit) that is the message
    the event acted on, never the event's own id, which no platform can reply to."""
    if message.kind in _EVENT_KINDS:
        return message.target_id
    return message.external_id


def _to_staff(
    thread: ThreadView, ctx: ResponderContext, key: str, text: str, purpose: str
) -> OutboundMessage | None:
    if ctx.staff_connector is None or ctx.staff_conversation is None:
        return None
    return OutboundMessage(
        idempotency_key=f"t{thread.id}:{key}",
        connector_id=ctx.staff_connector,
        conversation_id=ctx.staff_conversation,
        text=text,
        purpose=purpose,
    )


def _solve_buttons(thread: ThreadView) -> tuple[Button, ...]:
    return (
        Button(label=texts.BUTTON_SOLVED, data=f"solved:{thread.id}"),
        Button(label=texts.BUTTON_NOT_YET, data=f"notyet:{thread.id}"),
    )


def plan(
    decision: Decision, thread: ThreadView | None, message: InboundMessage, ctx: ResponderContext
) -> Plan:
    """Decide what to send for ``message`` given its ``decision`` and (maybe new) ``thread``."""
    if thread is None or decision.kind is DecisionKind.IGNORE:
        return Plan(notes=("nothing to do",))
    if decision.kind is DecisionKind.FOLLOW_UP:
        return _follow_up(thread, message, ctx)
    who = f"@{thread.asker_handle}" if thread.asker_handle else thread.asker_id
    if decision.kind is DecisionKind.ROUTE_PRIVATE:
        msgs = [_reply(thread, message, "open:private_ack", texts.PRIVATE_PUBLIC, purpose="route_private")]
        staff = _to_staff(
            thread,
            ctx,
            "open:staff",
            texts.PRIVATE_STAFF.format(
                category=decision.sensitive or "sensitive",
                asker=who,
                platform=thread.platform,
                thread=thread.id,
                text=decision.redacted_text or message.text,
                link=message.permalink or "",
            ).strip(),
            "route_private",
        )
        if staff is not None:
            msgs.append(staff)
        return Plan(tuple(msgs), ThreadState.WITH_STAFF, ("sensitive: routed privately to staff",))
    if decision.kind is DecisionKind.NEEDS_HUMAN:
        staff = _to_staff(
            thread,
            ctx,
            "open:staff",
            texts.NEEDS_HUMAN_STAFF.format(
                reason="; ".join(decision.reasons) or "triage could not decide",
                thread=thread.id,
                platform=thread.platform,
                asker=who,
                text=decision.redacted_text or "(text withheld)",
                link=message.permalink or "",
            ).strip(),
            "escalation",
        )
        ack = _reply(thread, message, "open:ack", texts.ACK_NO_HELPERS, purpose="notice")
        return Plan(
            tuple(m for m in (ack, staff) if m is not None), ThreadState.WITH_STAFF, ("needs a human",)
        )
    if decision.kind is DecisionKind.AUTO_ANSWER and decision.match is not None:
        match = decision.match
        link = f" ({match.link})" if match.link else ""
        text = texts.AUTO_ANSWER.format(
            answer=match.answer, credit=match.credit or "the community", link=link
        )
        card = AnswerCard(question=match.question, answer=match.answer, credit=match.credit, link=match.link)
        out = _reply(
            thread,
            message,
            "open:auto_answer",
            text,
            card=card,
            buttons=_solve_buttons(thread),
            purpose="auto_answer",
        )
        return Plan((out,), ThreadState.AUTO_ANSWERED, (f"auto-answered from kb#{match.entry_id}",))
    # TAG_HELPERS (and AUTO_ANSWER without a match, which should not happen: be safe)
    return _tag_helpers(decision, thread, message, ctx, step="open")


def _tag_helpers(
    decision: Decision | None,
    thread: ThreadView,
    message: InboundMessage,
    ctx: ResponderContext,
    *,
    step: str,
) -> Plan:
    if not ctx.helpers:
        staff = _to_staff(
            thread,
            ctx,
            f"{step}:staff",
            texts.NEEDS_HUMAN_STAFF.format(
                reason="no helper available",
                thread=thread.id,
                platform=thread.platform,
                asker=thread.asker_handle or thread.asker_id,
                text=(decision.redacted_text if decision else "") or "(see thread)",
                link=message.permalink or "",
            ).strip(),
            "escalation",
        )
        ack = _reply(thread, message, f"{step}:ack", texts.ACK_NO_HELPERS, purpose="notice")
        return Plan(
            tuple(m for m in (ack, staff) if m is not None),
            ThreadState.WITH_STAFF,
            ("no helper fits: staff",),
        )
    match = decision.match if decision else None
    text = (
        texts.ACK_HELPERS_WITH_MATCH.format(entry=match.entry_id, confidence=match.confidence)
        if match is not None
        else texts.NOT_YET
        if step != "open"
        else texts.ACK_HELPERS
    )
    if step != "open" and ctx.rejected is not None:
        text += "\n" + texts.REJECTED_MATCH.format(
            entry=ctx.rejected.entry_id, answer=_snippet(ctx.rejected.answer)
        )
    lines = [
        texts.TAG_LINE.format(who=m.display_name or m.handle or m.user_id, why=ctx.why[m.user_id])
        for m in ctx.helpers
        if ctx.why.get(m.user_id)
    ]
    if lines:
        text += "\n" + "\n".join(lines)
    out = _reply(
        thread,
        message,
        f"{step}:tag",
        text,
        mentions=ctx.helpers,
        buttons=(
            Button(label=texts.BUTTON_CLAIM, data=f"claim:{thread.id}"),
            Button(label=texts.BUTTON_DECLINE, data=f"decline:{thread.id}"),
            Button(label=texts.BUTTON_SOLVED, data=f"solved:{thread.id}"),  # for the asker, once answered
        )
        if ctx.why
        else (),
        purpose="tag_helpers",
    )
    if message.kind is MessageKind.BUTTON:  # "Not yet": the helpers are tagged on the question itself
        out = out.model_copy(update={"reply_to_id": thread.root_external_id})
    return Plan((out,), ThreadState.AWAITING_HELPER, (f"tagged {len(ctx.helpers)} helper(s)",))


def _snippet(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


_TEXT_KINDS = (MessageKind.REPLY, MessageKind.CHANNEL_POST, MessageKind.DM, MessageKind.MENTION)


def says_solved(text: str, phrases: tuple[str, ...]) -> bool:
    """The asker's words mean "solved": a phrase as whole words, in a short message."""
    norm = " ".join(re.sub(r"[^\w\s']", " ", text.lower()).split())
    if not norm or len(norm) > 200:
        return False
    for phrase in phrases:
        p = " ".join(re.sub(r"[^\w\s']", " ", phrase.lower()).split())
        if p and re.search(rf"(?<!\w){re.escape(p)}(?!\w)", norm):
            # "not solved", "that worked? no" are not confirmations
            return not re.search(r"\b(not|n't|nicht|pas|no|non|niet)\b", norm.replace(p, " "))
    return False


def _follow_up(thread: ThreadView, message: InboundMessage, ctx: ResponderContext) -> Plan:
    role = ctx.author_role
    if message.kind is MessageKind.BUTTON and message.button_data:
        action, _, tid = message.button_data.partition(":")
        if tid != str(thread.id) or role not in ("asker", "staff"):
            return Plan(notes=("button ignored: not the asker's or staff's",))
        if action == "solved":
            out = _reply(
                thread, message, f"solved:{message.external_id}", texts.SOLVED_THANKS, purpose="notice"
            )
            return Plan((out,), ThreadState.SOLVED, ("asker confirmed solved",))
        if action == "notyet":
            return _tag_helpers(None, thread, message, ctx, step=f"notyet:{message.external_id}")
        return Plan(notes=(f"unknown button {action!r}",))
    if message.kind is MessageKind.REACTION and message.reaction in ctx.solved_emoji:
        if role in ("asker", "helper", "staff"):
            return Plan(state=ThreadState.SOLVED, notes=(f"{role} reacted {message.reaction}: solved",))
        return Plan(notes=("reaction ignored",))
    if message.kind in (MessageKind.EDIT, MessageKind.DELETE, MessageKind.REACTION):
        return Plan(notes=(f"{message.kind.value} recorded",))
    if (
        role == "asker"
        and message.kind in _TEXT_KINDS
        and thread.state in (ThreadState.AUTO_ANSWERED, ThreadState.ANSWERED)  # confirms an answer
        and says_solved(message.text, ctx.solved_phrases)
    ):
        out = _reply(thread, message, f"solved:{message.external_id}", texts.SOLVED_THANKS, purpose="notice")
        return Plan((out,), ThreadState.SOLVED, ("asker said it is solved",))
    if role in ("helper", "staff") and thread.state not in (ThreadState.SOLVED, ThreadState.CLOSED):
        return Plan(state=ThreadState.ANSWERED, notes=(f"{role} replied",))
    return Plan(notes=(f"{role} message in thread",))
