"""responders/escalate.py: pure planning of a fired stage (keys, audiences, wording)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.models import Mention, ThreadState
from responders.escalate import Destination, StageFacts, human, plan_stage
from tests.sla.helpers import view

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
ANN = Mention(user_id="ann", handle="ann")
BO = Mention(user_id="bo", display_name="Bo")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0 s"),
        (59, "59 s"),
        (89, "1 min"),
        (90, "2 min"),
        (3600, "1 h"),
        (5400, "1 h 30 min"),
        (86400, "1 d"),
        (93600, "1 d 2 h"),
        (-5, "0 s"),
    ],
)
def test_human(seconds: int, text: str) -> None:
    assert human(timedelta(seconds=seconds)) == text


def facts(**kw: Any) -> StageFacts:
    values: dict[str, Any] = {
        "thread": view(5, T0),
        "policy": "default",
        "clock": "first_response",
        "cycle": 5,
        "stage": 2,
        "action": "escalate",
        "at": "150%",
        "target": timedelta(hours=1),
        "started_at": T0,
        "due_at": T0 + timedelta(minutes=90),
        "breach_at": T0 + timedelta(hours=1),
        "fired_at": T0 + timedelta(minutes=90, seconds=1),
        "offline_after": timedelta(seconds=60),
        "question": "card 4111 1111 1111 1111 declined",
        "question_redacted": "card [card] declined",
        "tagged": (ANN,),
        "tried": ("tagged 1 helper(s)",),
        "link": "https://x/5",
    }
    values.update(kw)
    return StageFacts(**values)


STAFF = Destination("staff", "channel", "tg", "staff-chat", private=True)
PUBLIC_OPS = Destination("ops", "channel", "dc", "ops-room")
DM = Destination("lead", "dm", "tg", user_id="u-lead", private=True)
TAGGED = Destination("tagged", "thread", peer=True, mentions=(ANN,))
MORE = Destination("more_helpers", "thread", peer=True, mentions=(BO,))
HOOK = Destination("hook", "webhook")


def test_keys_one_per_audience_and_state() -> None:
    p = plan_stage(facts(), [STAFF, PUBLIC_OPS, DM, HOOK])
    assert [m.idempotency_key for m in p.messages] == [
        "t5:sla:default:first_response.5.2:staff",
        "t5:sla:default:first_response.5.2:ops",
        "t5:sla:default:first_response.5.2:lead",
    ]
    assert [x.idempotency_key for x in p.external] == ["t5:sla:default:first_response.5.2:hook"]
    assert p.state is ThreadState.ESCALATED
    assert p.messages[2].private_to == "u-lead"


def test_question_is_redacted_except_for_private_staff() -> None:
    p = plan_stage(facts(), [STAFF, PUBLIC_OPS, HOOK])
    staff, ops = p.messages
    assert "4111 1111 1111 1111" in staff.text
    assert "4111" not in ops.text and "[card]" in ops.text
    assert p.external[0].data["question"] == "card [card] declined"


@pytest.mark.parametrize(
    ("late", "offline"),
    [(timedelta(seconds=1), False), (timedelta(seconds=60), False), (timedelta(hours=2), True)],
)
def test_overdue_wording_only_when_the_bot_was_offline(late: timedelta, offline: bool) -> None:
    f = facts(fired_at=T0 + timedelta(minutes=90) + late)
    (staff,) = plan_stage(f, [STAFF]).messages
    assert ("bot was offline" in staff.text) is offline
    if offline:
        assert "Overdue by 2 h, bot was offline" in staff.text


def test_peers_never_hear_of_sensitive_or_private_threads() -> None:
    for f in (facts(sensitive=True), facts(thread=view(5, T0, is_private=True))):
        p = plan_stage(f, [TAGGED, MORE, STAFF])
        assert [m.idempotency_key.rsplit(":", 1)[1] for m in p.messages] == ["staff"]
        assert any("no peers" in n for n in p.notes)


def test_reminders_in_the_thread_tag_and_reply_to_the_question() -> None:
    f = facts(
        action="remind",
        at="50%",
        stage=0,
        due_at=T0 + timedelta(minutes=30),
        fired_at=T0 + timedelta(minutes=30),
    )
    tagged, more = plan_stage(f, [TAGGED, MORE]).messages
    assert tagged.reply_to_id == "q5" and tagged.mentions == (ANN,)
    assert tagged.text.startswith("@ann Friendly reminder") and "first response due in 30 min" in tagged.text
    assert more.purpose == "sla_widen" and more.text.startswith("Bo could you help")
    assert plan_stage(f, [TAGGED, MORE]).state is None  # only escalate changes the state


def test_nobody_to_tag_sends_nothing() -> None:
    p = plan_stage(facts(action="widen"), [Destination("more_helpers", "thread", peer=True)])
    assert p.messages == () and p.state is None and p.notes == ("more_helpers: nobody to tag",)
