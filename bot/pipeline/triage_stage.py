"""The triage stage behind its interface.

``Triager.decide`` is called by the worker for every stored message. It must be pure and
fail closed; the worker also wraps it, so an exception becomes ``NEEDS_HUMAN``.
``RuleTriager`` is the first, rule-based policy: a question (or problem report) that is not
in an existing thread opens one and is queued for helpers; a message in a thread is a
follow-up. The triage package's matcher replaces it when a knowledge index is configured.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Protocol

import triage
from bot.models import Decision, DecisionKind, InboundMessage, MessageKind, ThreadView
from triage import KnowledgeIndex, TriageContext, TriageSettings

_QUESTION_WORDS = re.compile(
    r"\b(how|what|why|when|where|who|which|can|could|does|do|is|are|should|help|anyone|"
    r"problem|issue|error|broken|crash(es|ed)?|fail(s|ed|ing)?|not working|doesn'?t|can'?t|won'?t|"
    r"stuck|missing|lost|refund|arrived|declined)\b",
    re.IGNORECASE,
)


_THREAD_EVENTS = frozenset({MessageKind.BUTTON, MessageKind.REACTION, MessageKind.EDIT, MessageKind.DELETE})


class Triager(Protocol):
    #: True when ``decide`` is CPU-heavy (model inference): the worker runs it off the event loop
    blocking: bool

    def decide(
        self, message: InboundMessage, thread: ThreadView | None, bot_ids: frozenset[str]
    ) -> Decision: ...


class RuleTriager:
    """A first, transparent policy (no knowledge base)."""

    blocking = False

    def decide(self, message: InboundMessage, thread: ThreadView | None, bot_ids: frozenset[str]) -> Decision:
        if message.author.is_bot or message.author.id in bot_ids:
            return Decision(kind=DecisionKind.IGNORE, is_question=False, reasons=("author is a bot",))
        if thread is not None:
            return Decision(
                kind=DecisionKind.FOLLOW_UP, is_question=False, reasons=(f"in thread #{thread.id}",)
            )
        if message.kind not in (
            MessageKind.MENTION,
            MessageKind.DM,
            MessageKind.CHANNEL_POST,
            MessageKind.REPLY,
        ):
            return Decision(
                kind=DecisionKind.IGNORE, is_question=False, reasons=(f"{message.kind.value} event",)
            )
        text = message.text.strip()
        if "?" in text or _QUESTION_WORDS.search(text):
            return Decision(
                kind=DecisionKind.TAG_HELPERS,
                is_question=True,
                redacted_text=text,
                reasons=("rule: question or problem words",),
            )
        return Decision(kind=DecisionKind.IGNORE, is_question=False, reasons=("rule: not a question",))


class ProductTriager:
    """The triage package's signals and matcher (``triage.decide``) behind the worker's interface."""

    blocking = True

    def __init__(self, settings: TriageSettings, index: Callable[[], KnowledgeIndex | None]) -> None:
        self.settings = settings
        self.index = index  # read per decision: the knowledge service swaps in fresh indexes

    def decide(self, message: InboundMessage, thread: ThreadView | None, bot_ids: frozenset[str]) -> Decision:
        if thread is not None and message.kind in _THREAD_EVENTS:
            # not questions, but about the thread: buttons, reactions, edits are the responders' to act on
            return Decision(
                kind=DecisionKind.FOLLOW_UP,
                is_question=False,
                reasons=(f"{message.kind.value} on thread #{thread.id}",),
            )
        asker = thread is not None and thread.asker_id == message.author.id
        ctx = TriageContext(
            settings=self.settings,
            index=self.index(),
            own_author_ids=bot_ids,
            is_new_thread=thread is None,
            # an upper bound: the thread's messages when the asker writes again
            ask_count=(thread.message_count + 1) if thread is not None and asker else 1,
        )
        return triage.decide(message, ctx)


def decide_safely(
    triager: Triager, message: InboundMessage, thread: ThreadView | None, bot_ids: frozenset[str]
) -> Decision:
    """Fail closed: any error means a human looks at it, never an automatic answer."""
    try:
        return triager.decide(message, thread, bot_ids)
    except Exception as exc:  # a signal bug must not stop the queue
        kind = DecisionKind.FOLLOW_UP if thread is not None else DecisionKind.NEEDS_HUMAN
        return Decision(
            kind=kind,
            is_question=thread is None,
            redacted_text="",
            reasons=(f"triage failed: {type(exc).__name__}: {exc}"[:300],),
        )
