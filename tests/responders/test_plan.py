"""responders.plan: a table of (decision, who wrote, what event) -> messages and thread state."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.models import (
    Author,
    Decision,
    DecisionKind,
    InboundMessage,
    KnowledgeMatch,
    Mention,
    MessageKind,
    ThreadState,
    ThreadView,
)
from responders import ResponderContext, plan

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
THREAD = ThreadView(
    id=7,
    state=ThreadState.TRIAGED,
    connector_id="tg",
    platform="telegram",
    conversation_id="-100",
    thread_ref="-100:5",
    root_external_id="-100:41",
    asker_id="u1",
    asker_handle="kim",
    opened_at=NOW,
)
HELPERS = (Mention(user_id="h1", handle="ann"), Mention(user_id="h2", handle="bo"))
MATCH = KnowledgeMatch(
    entry_id="kb-1", confidence=0.95, question="q?", answer="Do X.", credit="Ann", link="L"
)


def msg(kind: MessageKind = MessageKind.CHANNEL_POST, author: str = "u1", **kw: object) -> InboundMessage:
    return InboundMessage(
        connector_id="tg",
        platform="telegram",
        external_id=str(kw.pop("external_id", "-100:41")),
        conversation_id="-100",
        thread_ref="-100:5",
        kind=kind,
        author=Author(id=author),
        text=str(kw.pop("text", "app crashes on login")),
        sent_at=NOW,
        **kw,  # type: ignore[arg-type]
    )


def ctx(role: str = "asker", helpers: tuple[Mention, ...] = HELPERS, staff: bool = True) -> ResponderContext:
    return ResponderContext(
        author_role=role,  # type: ignore[arg-type]
        helpers=helpers,
        staff_connector="tg" if staff else None,
        staff_conversation="staff-chat" if staff else None,
    )


D = Decision
CASES = [
    # id, decision, message, ctx, expected (keys, purposes), state
    ("ignore", D(kind=DecisionKind.IGNORE, is_question=False), msg(), ctx(), [], None),
    (
        "tag helpers",
        D(kind=DecisionKind.TAG_HELPERS, is_question=True),
        msg(),
        ctx(),
        [("t7:open:tag", "tag_helpers")],
        ThreadState.AWAITING_HELPER,
    ),
    (
        "nobody to tag: staff at once",
        D(kind=DecisionKind.TAG_HELPERS, is_question=True, redacted_text="app crashes"),
        msg(),
        ctx(helpers=()),
        [("t7:open:ack", "notice"), ("t7:open:staff", "escalation")],
        ThreadState.WITH_STAFF,
    ),
    (
        "auto answer",
        D(kind=DecisionKind.AUTO_ANSWER, is_question=True, match=MATCH),
        msg(),
        ctx(),
        [("t7:open:auto_answer", "auto_answer")],
        ThreadState.AUTO_ANSWERED,
    ),
    (
        "sensitive: public ack and private staff message",
        D(
            kind=DecisionKind.ROUTE_PRIVATE,
            is_question=True,
            sensitive="billing",
            redacted_text="card [card]",
        ),
        msg(text="card 4111 1111 1111 1111 charged twice"),
        ctx(),
        [("t7:open:private_ack", "route_private"), ("t7:open:staff", "route_private")],
        ThreadState.WITH_STAFF,
    ),
    (
        "triage failed: a human decides",
        D(kind=DecisionKind.NEEDS_HUMAN, is_question=True, reasons=("triage failed: boom",)),
        msg(),
        ctx(),
        [("t7:open:ack", "notice"), ("t7:open:staff", "escalation")],
        ThreadState.WITH_STAFF,
    ),
    (
        "helper reply answers",
        D(kind=DecisionKind.FOLLOW_UP, is_question=False),
        msg(author="h1", external_id="-100:42", reply_to_id="-100:41"),
        ctx(role="helper"),
        [],
        ThreadState.ANSWERED,
    ),
    (
        "asker presses Solved",
        D(kind=DecisionKind.FOLLOW_UP, is_question=False),
        msg(MessageKind.BUTTON, external_id="cb:9", button_data="solved:7", target_id="-100:50", text=""),
        ctx(),
        [("t7:solved:cb:9", "notice")],
        ThreadState.SOLVED,
    ),
    (
        "a stranger's Solved press is ignored",
        D(kind=DecisionKind.FOLLOW_UP, is_question=False),
        msg(MessageKind.BUTTON, author="x", external_id="cb:10", button_data="solved:7", target_id="-100:50"),
        ctx(role="other"),
        [],
        None,
    ),
    (
        "asker reacts with the solved emoji",
        D(kind=DecisionKind.FOLLOW_UP, is_question=False),
        msg(MessageKind.REACTION, external_id="rx:1", reaction="✅", target_id="-100:42", text=""),
        ctx(),
        [],
        ThreadState.SOLVED,
    ),
    (
        "an edit is only recorded",
        D(kind=DecisionKind.FOLLOW_UP, is_question=False),
        msg(MessageKind.EDIT, external_id="-100:41:edit:1", target_id="-100:41"),
        ctx(),
        [],
        None,
    ),
]


@pytest.mark.parametrize(
    ("decision", "message", "context", "expected", "state"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_plan_table(
    decision: Decision,
    message: InboundMessage,
    context: ResponderContext,
    expected: list[tuple[str, str]],
    state: ThreadState | None,
) -> None:
    p = plan(decision, THREAD, message, context)
    assert [(m.idempotency_key, m.purpose) for m in p.messages] == expected
    assert p.state == state
    for m in p.messages:
        if m.conversation_id == "staff-chat":
            continue
        # replies answer a message: the event's target for button presses, never an event id
        expected_target = message.target_id if message.kind is MessageKind.BUTTON else message.external_id
        assert m.reply_to_id == expected_target


def test_planning_twice_gives_the_same_keys() -> None:
    d = D(kind=DecisionKind.TAG_HELPERS, is_question=True)
    a, b = plan(d, THREAD, msg(), ctx()), plan(d, THREAD, msg(), ctx())
    assert [m.idempotency_key for m in a.messages] == [m.idempotency_key for m in b.messages]


def test_private_details_never_in_public() -> None:
    d = D(kind=DecisionKind.ROUTE_PRIVATE, is_question=True, sensitive="billing", redacted_text="card [card]")
    p = plan(d, THREAD, msg(text="card 4111 1111 1111 1111 charged twice"), ctx())
    public = [m for m in p.messages if m.conversation_id != "staff-chat"]
    assert public and all("4111" not in m.text for m in p.messages)


def test_auto_answer_credits_and_offers_feedback_buttons() -> None:
    d = D(kind=DecisionKind.AUTO_ANSWER, is_question=True, match=MATCH)
    [m] = plan(d, THREAD, msg(), ctx()).messages
    assert "Do X." in m.text and "Ann" in m.text and m.card is not None and m.card.credit == "Ann"
    assert [b.data for b in m.buttons] == ["solved:7", "notyet:7"]


def test_no_thread_means_nothing_to_send() -> None:
    d = D(kind=DecisionKind.TAG_HELPERS, is_question=True)
    assert plan(d, None, msg(), ctx()).messages == ()


@pytest.mark.parametrize(
    ("state", "solves"),
    [
        (ThreadState.AUTO_ANSWERED, True),
        (ThreadState.ANSWERED, True),
        (ThreadState.AWAITING_HELPER, False),  # nothing was answered yet: "thanks" confirms nothing
        (ThreadState.WITH_STAFF, False),
        (ThreadState.SOLVED, False),
    ],
)
def test_thanks_solves_only_an_answered_thread(state: ThreadState, solves: bool) -> None:
    thread = THREAD.model_copy(update={"state": state})
    context = ResponderContext(author_role="asker", solved_phrases=("thanks, that worked",))
    p = plan(
        D(kind=DecisionKind.FOLLOW_UP, is_question=False), thread, msg(text="thanks, that worked"), context
    )
    assert (p.state is ThreadState.SOLVED) is solves
