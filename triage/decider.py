"""``decide(message, ctx) -> Decision``: the pure triage of one inbound message.

Order: event kind and bot authors -> PII redaction -> follow-up in a thread -> question or not
-> language, topic, sensitivity, priority -> knowledge match and the confidence gate.
Every signal fails closed: an exception in any of them yields ``NEEDS_HUMAN`` with the error
in ``reasons`` (and the text redacted if that much worked).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TypeVar

from bot.models import Decision, DecisionKind, InboundMessage, KnowledgeMatch, MessageKind
from triage.context import TriageContext
from triage.language import detect_language
from triage.pii import redact
from triage.priority import assess_priority
from triage.question import is_support_question
from triage.sensitive import detect_sensitive
from triage.topic import classify_topic

T = TypeVar("T")
_MENTION = re.compile(r"(?<!\w)@\w+")
_NON_QUESTION_KINDS = {
    MessageKind.EDIT: "an edit",
    MessageKind.DELETE: "a deletion",
    MessageKind.REACTION: "a reaction",
    MessageKind.BUTTON: "a button press",
}


class _FailClosed(Exception):
    def __init__(self, signal: str, error: BaseException) -> None:
        super().__init__(f"{signal} failed: {type(error).__name__}: {error}")
        self.signal = signal


def _run(signal: str, fn: Callable[[], T]) -> T:
    try:
        return fn()
    except Exception as exc:
        raise _FailClosed(signal, exc) from exc


def question_text(message: InboundMessage) -> str:
    """The text a question is matched on: title (forum posts) and body, without @mentions."""
    body = _MENTION.sub(" ", message.text)
    body = " ".join(body.split())
    title = " ".join((message.title or "").split())
    if title and body and title != body:
        return f"{title}. {body}"
    return title or body


def decide(message: InboundMessage, ctx: TriageContext) -> Decision:
    """Triage one message. Pure: reads only its arguments; never raises."""
    reasons: list[str] = []
    redacted = ""
    try:
        return _decide(message, ctx, reasons)
    except _FailClosed as exc:
        failure = str(exc)
    except Exception as exc:  # a bug outside the signals still fails closed
        failure = f"triage failed: {type(exc).__name__}: {exc}"
    try:
        text = "\n".join(t for t in (message.title, message.text) if t)
        redacted = redact(text, ctx.settings.pii_patterns)[0]
    except Exception:
        redacted = "[redaction failed]"
    return Decision(
        kind=DecisionKind.NEEDS_HUMAN,
        is_question=True,
        redacted_text=redacted,
        reasons=(*reasons, failure),
    )


def _decide(message: InboundMessage, ctx: TriageContext, reasons: list[str]) -> Decision:
    settings = ctx.settings
    if message.kind in _NON_QUESTION_KINDS:
        return Decision(
            kind=DecisionKind.IGNORE,
            is_question=False,
            reasons=(f"not a question: {_NON_QUESTION_KINDS[message.kind]}",),
        )
    author = message.author
    if author.id in ctx.own_author_ids:
        return Decision(kind=DecisionKind.IGNORE, is_question=False, reasons=("ignored: our own message",))
    if author.is_bot or author.id in settings.bot_author_ids:
        return Decision(kind=DecisionKind.IGNORE, is_question=False, reasons=("ignored: bot author",))

    full_text = "\n".join(t for t in (message.title, message.text) if t)
    redacted, pii = _run("pii", lambda: redact(full_text, settings.pii_patterns))
    if pii:
        reasons.append(f"pii masked: {', '.join(pii)}")
    author_ids = tuple(a for a in (author.id, author.handle) if a)

    if not ctx.is_new_thread:
        language, _, why = _run(
            "language",
            lambda: detect_language(
                full_text, languages=settings.languages, default=settings.default_language
            ),
        )
        sensitive = _run("sensitive", lambda: detect_sensitive(full_text, settings.sensitive))
        priority, why_priority = _run(
            "priority",
            lambda: assess_priority(
                full_text, settings.priority, author_ids=author_ids, ask_count=ctx.ask_count
            ),
        )
        reasons.extend(["follow-up in an existing thread", why, *why_priority])
        if sensitive:
            reasons.append(sensitive[1])
        return Decision(
            kind=DecisionKind.FOLLOW_UP,
            is_question=False,
            language=language,
            sensitive=sensitive[0] if sensitive else None,
            priority=priority,
            redacted_text=redacted,
            reasons=tuple(reasons),
        )

    addressed = (
        message.mentions_bot or message.is_private or message.kind in (MessageKind.DM, MessageKind.MENTION)
    )
    if ctx.known_question:
        is_question, why_question = True, "question: known to the caller"
    else:
        is_question, why_question = _run(
            "question", lambda: is_support_question(full_text, addressed=addressed)
        )
    reasons.append(why_question)
    if not is_question:
        return Decision(
            kind=DecisionKind.IGNORE, is_question=False, redacted_text=redacted, reasons=tuple(reasons)
        )

    language, _, why_language = _run(
        "language",
        lambda: detect_language(full_text, languages=settings.languages, default=settings.default_language),
    )
    reasons.append(why_language)
    topic, topic_score, why_topic = _run(
        "topic", lambda: classify_topic(full_text, settings.topics, settings.topic_min_score)
    )
    reasons.append(why_topic)
    priority, why_priority = _run(
        "priority",
        lambda: assess_priority(full_text, settings.priority, author_ids=author_ids, ask_count=ctx.ask_count),
    )
    reasons.extend(why_priority)
    sensitive = _run("sensitive", lambda: detect_sensitive(full_text, settings.sensitive))
    if sensitive is not None:
        reasons.append(sensitive[1])
        reasons.append("route: privately to staff (sensitive)")
        return Decision(
            kind=DecisionKind.ROUTE_PRIVATE,
            is_question=True,
            language=language,
            topic=topic,
            topic_score=topic_score,
            sensitive=sensitive[0],
            priority=priority,
            redacted_text=redacted,
            reasons=tuple(reasons),
        )

    match, confidence, why_feedback = _run("match", lambda: _best_match(message, ctx))
    if why_feedback:
        reasons.append(why_feedback)
    gate = settings.matcher
    if match is None:
        reasons.append(
            "match: none" if ctx.index is not None and len(ctx.index) else "match: empty knowledge base"
        )
        kind = DecisionKind.TAG_HELPERS
    elif confidence >= gate.high_confidence:
        reasons.append(
            f"matched kb#{match.entry_id} at {confidence:.2f} (>= {gate.high_confidence:.2f}: answer)"
        )
        kind = DecisionKind.AUTO_ANSWER
    elif confidence >= gate.medium_confidence:
        reasons.append(f"matched kb#{match.entry_id} at {confidence:.2f} (medium: show helpers)")
        kind = DecisionKind.TAG_HELPERS
    else:
        reasons.append(f"best kb#{match.entry_id} at {confidence:.2f} (low: not shown)")
        kind = DecisionKind.TAG_HELPERS
        match = None
    if topic is None and match is not None and ctx.index is not None:
        entry = ctx.index.get(match.entry_id)
        if entry is not None and entry.topic:
            topic, topic_score = entry.topic, round(confidence, 3)
            reasons.append(f"topic: {topic} (from kb#{entry.id})")
    return Decision(
        kind=kind,
        is_question=True,
        language=language,
        topic=topic,
        topic_score=topic_score,
        priority=priority,
        match=match,
        redacted_text=redacted,
        reasons=tuple(reasons),
    )


def _best_match(
    message: InboundMessage, ctx: TriageContext
) -> tuple[KnowledgeMatch | None, float, str | None]:
    index = ctx.index
    if index is None or len(index) == 0:
        return None, 0.0, None
    gate = ctx.settings.matcher
    text = question_text(message)
    if len(text) < gate.min_question_chars:
        return None, 0.0, None
    title = message.title if message.title and message.text.strip() else None
    result = index.search(text, title=title, matcher=gate.kind, k=1, params=gate.params())
    best = result.best
    if best is None:
        return None, 0.0, None
    entry = index.get(best.entry_id)
    if entry is None:
        return None, 0.0, None
    factor = entry.feedback_factor()
    confidence = result.confidence * factor
    why = (
        f"confidence of kb#{entry.id} x{factor:.2f} ({entry.rejected} rejected, {entry.accepted} accepted)"
        if factor < 1.0
        else None
    )
    return (
        KnowledgeMatch(
            entry_id=entry.id,
            confidence=round(confidence, 4),
            question=entry.question,
            answer=entry.answer,
            credit=entry.credit,
            link=entry.link,
        ),
        confidence,
        why,
    )
