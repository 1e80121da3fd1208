"""Clock rules: which thread events start, stop or re-plan which clocks (pure table + real storage)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.models import DecisionKind, MessageKind, ThreadState
from bot.sla.hooks import SlaEvent, apply, classify
from bot.sla.policy import Planner
from bot.storage.engine import create_engine, session_factory
from tests.sla.helpers import seed, sla_config, view

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
FU = DecisionKind.FOLLOW_UP

CLASSIFY_CASES: list[tuple[str, dict[str, Any], ThreadState, list[str]]] = [
    (
        "new thread",
        {"opened": True, "decision_kind": DecisionKind.TAG_HELPERS},
        ThreadState.TRIAGED,
        ["opened"],
    ),
    ("helper reply", {"role": "helper"}, ThreadState.AWAITING_HELPER, ["responded"]),
    ("staff reply", {"role": "staff", "message_kind": MessageKind.DM}, ThreadState.WITH_STAFF, ["responded"]),
    (
        "helper reaction is no reply",
        {"role": "helper", "message_kind": MessageKind.REACTION},
        ThreadState.AWAITING_HELPER,
        [],
    ),
    ("asker adds detail before any answer", {"role": "asker"}, ThreadState.AWAITING_HELPER, []),
    ("asker writes after an answer", {"role": "asker"}, ThreadState.ANSWERED, ["asker_reply"]),
    ("asker answers an auto-answer", {"role": "asker"}, ThreadState.AUTO_ANSWERED, ["asker_reply"]),
    (
        "asker presses not yet",
        {"role": "asker", "message_kind": MessageKind.BUTTON, "button_data": "notyet:7"},
        ThreadState.AUTO_ANSWERED,
        ["asker_reply"],
    ),
    ("solved", {"role": "asker", "new_state": ThreadState.SOLVED}, ThreadState.ANSWERED, ["solved"]),
    ("reopened", {"role": "asker", "new_state": ThreadState.REOPENED}, ThreadState.SOLVED, ["reopened"]),
    (
        "asker raises priority",
        {"role": "asker", "decision_priority": "urgent"},
        ThreadState.AWAITING_HELPER,
        ["priority"],
    ),
    (
        "lower priority is ignored",
        {"role": "asker", "decision_priority": "low"},
        ThreadState.AWAITING_HELPER,
        [],
    ),
    ("someone else chatting", {"role": "other"}, ThreadState.AWAITING_HELPER, []),
    ("ignored message", {"role": "asker", "decision_kind": DecisionKind.IGNORE}, ThreadState.ANSWERED, []),
]


@pytest.mark.parametrize(
    ("name", "kw", "state", "expected"), CLASSIFY_CASES, ids=[c[0] for c in CLASSIFY_CASES]
)
def test_classify(name: str, kw: dict[str, Any], state: ThreadState, expected: list[str]) -> None:
    args: dict[str, Any] = {
        "opened": False,
        "role": "asker",
        "decision_kind": FU,
        "decision_priority": "normal",
        "message_kind": MessageKind.REPLY,
        "button_data": None,
        "new_state": None,
        "message_id": 9,
        "at": T0,
        **kw,
    }
    got = classify(view(7, T0, state=state), **args)
    assert [e.kind for e in got] == expected


EXTRA = """\
  policies:
    - name: urgent
      match: { priority: [urgent] }
      first_response: 2m
      stages:
        - { at: "100%", action: escalate }
    - name: default
      first_response: 10m
      next_response: 20m
      resolution: 1d
      stages:
        - { at: "50%", action: remind }
        - { at: "150%", action: escalate }
        - { at: "100%", action: escalate, clock: resolution }
"""


@pytest.fixture
async def env(
    tmp_path: Path, migrated: str
) -> AsyncIterator[tuple[async_sessionmaker[AsyncSession], Planner]]:
    engine = create_engine(migrated)
    planner = Planner(sla_config(tmp_path, migrated, EXTRA).settings.sla)
    try:
        yield session_factory(engine), planner
    finally:
        await engine.dispose()


async def stages(
    sessions: async_sessionmaker[AsyncSession], tid: int
) -> list[tuple[str, str, int, str, str, str]]:
    async with sessions() as s:
        rows = (
            await s.execute(
                text(
                    "select policy, clock, cycle, action, state, coalesce(note, '') as note from sla_stage"
                    " where thread_id = :t order by id"
                ),
                {"t": tid},
            )
        ).all()
    return [tuple(r) for r in rows]


async def event(sessions: async_sessionmaker[AsyncSession], planner: Planner, *events: SlaEvent) -> None:
    async with sessions() as s, s.begin():
        await apply(s, events, planner)


async def test_clock_rules_on_storage(env: Any) -> None:
    sessions, planner = env
    (t,) = await seed(sessions, planner, [10], T0, tagged=())
    fr = [("default", "first_response", 10, a, "pending", "") for a in ("remind", "escalate")]
    res = [("default", "resolution", 10, "escalate", "pending", "")]
    assert await stages(sessions, 10) == [*fr, *res]

    # a helper answers: the response clock stops, resolution keeps running
    await event(sessions, planner, SlaEvent("responded", t, 11, T0 + timedelta(minutes=1)))
    assert [s[4:] for s in await stages(sessions, 10)] == [("cancelled", "answered")] * 2 + [("pending", "")]

    # the asker writes again: next response starts (a new cycle: message 12)
    await event(sessions, planner, SlaEvent("asker_reply", t, 12, T0 + timedelta(minutes=2)))
    nr = [s for s in await stages(sessions, 10) if s[1] == "next_response"]
    assert nr == [("default", "next_response", 12, a, "pending", "") for a in ("remind", "escalate")]
    # writing again does not restart it: the wait counts from the first unanswered message
    await event(sessions, planner, SlaEvent("asker_reply", t, 15, T0 + timedelta(minutes=3)))
    assert [s for s in await stages(sessions, 10) if s[1] == "next_response"] == nr

    # solved stops everything; reopened restarts first response and resolution
    await event(sessions, planner, SlaEvent("solved", t, 13, T0 + timedelta(minutes=3)))
    assert {s[4] for s in await stages(sessions, 10)} == {"cancelled"}
    await event(sessions, planner, SlaEvent("reopened", t, 14, T0 + timedelta(minutes=4)))
    pending = [s[1:3] for s in await stages(sessions, 10) if s[4] == "pending"]
    assert pending == [("first_response", 14), ("first_response", 14), ("resolution", 14)]


async def test_priority_raise_replans_under_the_matching_policy(env: Any) -> None:
    sessions, planner = env
    (t,) = await seed(sessions, planner, [20], T0, tagged=())
    await event(sessions, planner, SlaEvent("priority", t, 21, T0 + timedelta(minutes=1), priority="urgent"))
    rows = await stages(sessions, 20)
    assert [r for r in rows if r[4] == "pending"] == [
        ("urgent", "first_response", 20, "escalate", "pending", "")
    ]
    assert {r[5] for r in rows if r[4] == "cancelled"} == {"re-planned"}
    async with sessions() as s:
        due = (await s.execute(text("select due_at from sla_stage where state = 'pending'"))).scalar()
    assert str(due).startswith("2026-11-23 10:02")  # 2 min from the question, not from the raise

    # the raise sticks: a later restart (reopen) uses the urgent policy again
    await event(sessions, planner, SlaEvent("reopened", t, 22, T0 + timedelta(minutes=5)))
    assert [r[0] for r in await stages(sessions, 20) if r[4] == "pending"] == ["urgent"]


async def test_auto_answer_counts_as_first_response_and_batches_fold(env: Any) -> None:
    sessions, planner = env
    a = view(30, T0)
    b = view(31, T0)
    async with sessions() as s, s.begin():
        n = await apply(
            s,
            [
                SlaEvent("opened", a, 30, T0, auto_answered=True),
                SlaEvent("opened", b, 31, T0),
                SlaEvent("responded", b, 32, T0),  # answered within the same batch
            ],
            planner,
        )
    assert n == 2  # only the two resolution stages
    assert [r[1] for r in await stages(sessions, 30)] == ["resolution"]
    assert [r[1] for r in await stages(sessions, 31)] == ["resolution"]
