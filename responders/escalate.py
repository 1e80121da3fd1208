"""From a fired SLA stage to messages: reminders, widening, escalation to staff.

Pure: no I/O, no clock (the fire time is an input). Every message has an idempotency key
``t<thread>:sla:<policy>:<clock>.<cycle>.<stage>:<audience>``, so planning the same stage twice
(a crash between claim and send, two processes) can never send twice.

The escalation text is self-contained: the question (redacted unless the destination is
private staff), who was tagged, how long it has waited, the policy and target, a link, what
the bot already tried, and "overdue by 2 h, bot was offline" when the stage fires late.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from bot.models import Mention, OutboundMessage, ThreadState, ThreadView

DestinationKind = Literal["thread", "channel", "dm", "webhook", "email"]

CLOCK_LABEL = {
    "first_response": "first response",
    "next_response": "next response",
    "resolution": "resolution",
}
ACTION_TITLE = {
    "warn": "warning",
    "remind": "reminder",
    "widen": "more helpers needed",
    "escalate": "escalation",
}


@dataclass(frozen=True)
class Destination:
    """One resolved audience of a stage."""

    name: str  # tagged | more_helpers | topic_channel | staff | a target name
    kind: DestinationKind
    connector_id: str | None = None
    conversation_id: str | None = None
    user_id: str | None = None
    private: bool = False  # private staff: may see the question unredacted
    peer: bool = False  # community helpers (never for sensitive or private threads)
    mentions: tuple[Mention, ...] = ()  # for in-thread posts: who to tag


@dataclass(frozen=True)
class StageFacts:
    """Everything about one fired stage that the message needs."""

    thread: ThreadView
    policy: str
    clock: str
    cycle: int
    stage: int
    action: str
    at: str
    target: timedelta | None  # the clock's target (None: a fixed-duration stage without one)
    started_at: datetime
    due_at: datetime
    breach_at: datetime | None  # when the target is (was) breached, in calendar time
    fired_at: datetime
    offline_after: timedelta
    question: str  # the full text (private staff only)
    question_redacted: str
    tagged: tuple[Mention, ...] = ()
    tried: tuple[str, ...] = ()
    link: str | None = None
    assignee: str | None = None
    sensitive: bool = False


@dataclass(frozen=True)
class External:
    """A webhook POST or an e-mail (delivered by bot/sla/deliver.py, not by a connector)."""

    idempotency_key: str
    target: str
    kind: Literal["webhook", "email"]
    subject: str
    text: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StagePlan:
    messages: tuple[OutboundMessage, ...] = ()
    external: tuple[External, ...] = ()
    state: ThreadState | None = None
    notes: tuple[str, ...] = ()


def human(d: timedelta) -> str:
    """``45 s``, ``12 min``, ``2 h``, ``1 h 30 min``, ``3 d 4 h``."""
    s = max(0, int(d.total_seconds()))
    if s < 60:
        return f"{s} s"
    m = (s + 30) // 60  # to the nearest minute
    if m < 60:
        return f"{m} min"
    h, m = divmod(m, 60)
    if h < 24:
        return f"{h} h {m} min" if m else f"{h} h"
    d_, h = divmod(h, 24)
    return f"{d_} d {h} h" if h else f"{d_} d"


def stage_key(f: StageFacts) -> str:
    return f"t{f.thread.id}:sla:{f.policy}:{f.clock}.{f.cycle}.{f.stage}"


def lateness(f: StageFacts) -> timedelta:
    return max(f.fired_at - f.due_at, timedelta(0))


def was_offline(f: StageFacts) -> bool:
    return lateness(f) > f.offline_after


def _who(m: Mention) -> str:
    return f"@{m.handle}" if m.handle else (m.display_name or m.user_id)


def _asker(t: ThreadView) -> str:
    return f"@{t.asker_handle}" if t.asker_handle else t.asker_id


def _deadline_phrase(f: StageFacts) -> str:
    label = CLOCK_LABEL.get(f.clock, f.clock)
    if f.breach_at is None or f.target is None:
        return ""
    if f.fired_at < f.breach_at:
        return f"{label} due in {human(f.breach_at - f.fired_at)}"
    return f"{label} target of {human(f.target)} breached {human(f.fired_at - f.breach_at)} ago"


def escalation_text(f: StageFacts, *, private: bool) -> str:
    """The self-contained staff message (also the body of webhooks and e-mails)."""
    t = f.thread
    title = ACTION_TITLE.get(f.action, f.action)
    target = f" {CLOCK_LABEL.get(f.clock, f.clock)} target {human(f.target)}," if f.target else ""
    lines = [
        f"SLA {title} ({f.at}): thread #{t.id} on {t.platform} — policy {f.policy},{target} "
        f"stage {f.stage + 1}",
        f"Waiting {human(f.fired_at - f.started_at)} since {f.started_at:%Y-%m-%d %H:%M} UTC"
        + (f"; {_deadline_phrase(f)}" if _deadline_phrase(f) else ""),
    ]
    if was_offline(f):
        lines.append(
            f"Overdue by {human(lateness(f))}, bot was offline (this stage was due "
            f"{f.due_at:%Y-%m-%d %H:%M} UTC)."
        )
    lines.append(
        f"From {_asker(t)} · topic {t.topic or '-'} · priority {t.priority}"
        + (" · sensitive" if f.sensitive else "")
    )
    question = f.question if private else f.question_redacted
    lines.append(f"Question: {question.strip() or '(text withheld)'}")
    lines.append("Tagged: " + (", ".join(_who(m) for m in f.tagged) or "nobody yet"))
    lines.append("Tried: " + ("; ".join(f.tried) or "nothing yet"))
    if f.assignee:
        lines.append(f"Assigned to: {f.assignee}")
    if f.link:
        lines.append(f"Link: {f.link}")
    lines.append(
        f"Staff: unsource sla snooze {t.id} 30m · unsource sla assign {t.id} NAME · unsource sla close {t.id}"
    )
    return "\n".join(lines)


def _thread_text(f: StageFacts, dest: Destination) -> str:
    tags = " ".join(_who(m) for m in dest.mentions)
    waited = human(f.fired_at - f.started_at)
    deadline = _deadline_phrase(f)
    tail = f" ({deadline})" if deadline else ""
    late = (
        f" Sorry for the delay: overdue by {human(lateness(f))}, bot was offline." if was_offline(f) else ""
    )
    if dest.name == "more_helpers":
        return f"{tags} could you help here? This question has waited {waited} without an answer{tail}.{late}"
    word = "Heads-up" if f.action == "warn" else "Friendly reminder"
    return f"{tags} {word}: this question has waited {waited} for an answer{tail}.{late}".strip()


def _channel_text(f: StageFacts, dest: Destination) -> str:
    if not dest.peer:
        return escalation_text(f, private=dest.private)
    t = f.thread
    link = f"\n{f.link}" if f.link else ""
    return (
        f"Unanswered {t.topic or 'community'} question, waiting {human(f.fired_at - f.started_at)} "
        f"(thread #{t.id} on {t.platform}): {f.question_redacted.strip() or '(see thread)'}{link}"
    )


def plan_stage(f: StageFacts, destinations: Sequence[Destination]) -> StagePlan:
    """The messages for one fired stage, one per destination (skipping ones that cannot apply)."""
    t = f.thread
    key = stage_key(f)
    messages: list[OutboundMessage] = []
    external: list[External] = []
    notes: list[str] = []
    purpose = "escalation" if f.action == "escalate" else f"sla_{f.action}"
    for dest in destinations:
        if dest.peer and (f.sensitive or t.is_private):
            notes.append(f"{dest.name}: skipped (sensitive or private thread: no peers)")
            continue
        k = f"{key}:{dest.name}"
        if dest.kind == "thread":
            if not dest.mentions:
                notes.append(f"{dest.name}: nobody to tag")
                continue
            messages.append(
                OutboundMessage(
                    idempotency_key=k,
                    connector_id=t.connector_id,
                    conversation_id=t.conversation_id,
                    thread_ref=t.thread_ref,
                    reply_to_id=t.root_external_id,
                    text=_thread_text(f, dest),
                    mentions=dest.mentions,
                    purpose="sla_widen" if dest.name == "more_helpers" else purpose,
                )
            )
        elif dest.kind in ("channel", "dm"):
            assert dest.connector_id is not None
            messages.append(
                OutboundMessage(
                    idempotency_key=k,
                    connector_id=dest.connector_id,
                    conversation_id=dest.conversation_id or (dest.user_id or ""),
                    private_to=dest.user_id if dest.kind == "dm" else None,
                    text=_channel_text(f, dest),
                    purpose=purpose,
                )
            )
        else:
            external.append(_external(f, dest, k))
        notes.append(f"{dest.name}: {f.action}")
    state = ThreadState.ESCALATED if f.action == "escalate" and (messages or external) else None
    return StagePlan(tuple(messages), tuple(external), state, tuple(notes))


def _external(f: StageFacts, dest: Destination, key: str) -> External:
    t = f.thread
    text = escalation_text(f, private=dest.private)
    subject = (
        f"[SLA {ACTION_TITLE.get(f.action, f.action)}] thread #{t.id} on {t.platform}"
        f" waiting {human(f.fired_at - f.started_at)}" + (" (bot was offline)" if was_offline(f) else "")
    )
    data: dict[str, Any] = {
        "event": "sla.stage",
        "idempotency_key": key,
        "thread": t.id,
        "platform": t.platform,
        "connector": t.connector_id,
        "policy": f.policy,
        "clock": f.clock,
        "stage": f.stage,
        "at": f.at,
        "action": f.action,
        "started_at": f.started_at.isoformat(),
        "due_at": f.due_at.isoformat(),
        "fired_at": f.fired_at.isoformat(),
        "overdue_seconds": round(lateness(f).total_seconds(), 3),
        "bot_was_offline": was_offline(f),
        "waited_seconds": round((f.fired_at - f.started_at).total_seconds(), 3),
        "topic": t.topic,
        "priority": t.priority,
        "question": f.question if dest.private else f.question_redacted,
        "tagged": [_who(m) for m in f.tagged],
        "tried": list(f.tried),
        "assignee": f.assignee,
        "link": f.link,
        "text": text,
    }
    kind: Literal["webhook", "email"] = "email" if dest.kind == "email" else "webhook"
    return External(key, dest.name, kind, subject, text, data)
