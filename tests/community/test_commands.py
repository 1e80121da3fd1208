"""In-channel commands: parsing and permissions (tables), and their effects on real storage."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from sqlalchemy import insert, select, text

from bot.community import commands as cmds
from bot.community.points import export_csv, leaderboard, month_bounds, period_start, rank_of
from bot.community.stage import CommunityEnv
from bot.models import Author, Decision, DecisionKind, InboundMessage, MessageKind, ThreadState, ThreadView
from bot.settings import CommunitySettings, HelperEntry, RankSettings
from bot.storage.engine import create_engine, session_factory
from bot.storage.knowledge_tables import KnowledgeRow
from bot.storage.tables import MessageRow, ThreadRow
from responders import Plan

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/join", ("join", ())),
        ("!join billing-app login", ("join", ("billing-app", "login"))),
        ("/join@acme_bot export", ("join", ("export",))),
        ("  /AWAY 3d", ("away", ("3d",))),
        ("/solved 12", ("solved", ("12",))),
        ("/start", None),  # not ours: goes through triage as usual
        ("/ join", None),
        ("join", None),  # no prefix
        ("how do I /join?", None),
        ("", None),
    ],
)
def test_parse(text: str, expected: tuple[str, tuple[str, ...]] | None) -> None:
    got = cmds.parse(text)
    assert (None if got is None else (got.name, got.args)) == expected


ALLOWED = {  # command -> callers allowed (user | helper | staff), outside and inside their own thread
    "help": ({"user", "helper", "staff"}, {"user", "helper", "staff"}),
    "join": ({"user", "helper", "staff"}, {"user", "helper", "staff"}),
    "kudos": ({"user", "helper", "staff"}, {"user", "helper", "staff"}),
    "leaderboard": ({"user", "helper", "staff"}, {"user", "helper", "staff"}),
    "leave": ({"helper", "staff"}, {"helper", "staff"}),
    "topics": ({"helper", "staff"}, {"helper", "staff"}),
    "languages": ({"helper", "staff"}, {"helper", "staff"}),
    "hours": ({"helper", "staff"}, {"helper", "staff"}),
    "away": ({"helper", "staff"}, {"helper", "staff"}),
    "back": ({"helper", "staff"}, {"helper", "staff"}),
    "max": ({"helper", "staff"}, {"helper", "staff"}),
    "stats": ({"helper", "staff"}, {"helper", "staff"}),
    "claim": ({"helper", "staff"}, {"helper", "staff"}),
    "decline": ({"helper", "staff"}, {"helper", "staff"}),
    "rate": (set(), {"user", "helper", "staff"}),
    "solved": ({"staff"}, {"user", "helper", "staff"}),
    "add": ({"staff"}, {"staff"}),
    "remove": ({"staff"}, {"staff"}),
    "reopen": ({"staff"}, {"staff"}),
    "retire": ({"staff"}, {"staff"}),
}


def test_every_command_has_a_permission_row() -> None:
    assert set(ALLOWED) == set(cmds.COMMANDS)


@pytest.mark.parametrize(
    ("name", "caller", "is_asker"),
    list(itertools.product(sorted(ALLOWED), ("user", "helper", "staff"), (False, True))),
)
def test_permissions(name: str, caller: cmds.Caller, is_asker: bool) -> None:
    refusal = cmds.refusal(name, caller, is_asker=is_asker)
    allowed = caller in ALLOWED[name][int(is_asker)]
    assert (refusal is None) is allowed, refusal
    if refusal is not None:  # a clear message, naming the command
        assert f"/{name}" in refusal


@pytest.mark.parametrize(
    ("points", "rank"), [(0, "Newcomer"), (24, "Newcomer"), (25, "Helper"), (99, "Helper"), (300, "Guru")]
)
def test_ranks(points: int, rank: str) -> None:
    assert rank_of(points, CommunitySettings().ranks) == rank


def test_rank_thresholds_must_increase() -> None:
    with pytest.raises(ValueError, match="increasing"):
        CommunitySettings(ranks=[RankSettings(name="a", points=10), RankSettings(name="b", points=5)])


def test_periods() -> None:
    assert period_start("week", NOW) == datetime(2026, 11, 23, tzinfo=UTC)  # a Monday
    assert period_start("month", NOW) == datetime(2026, 11, 1, tzinfo=UTC)
    assert period_start("all", NOW) is None
    assert month_bounds("2026-12") == (datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))


# --------------------------------------------------------------------------- on real storage

HELPERS = (
    HelperEntry(name="Ann", identities={"tg": "ann"}, handles={"tg": "ann"}, topics=["login"]),
    HelperEntry(name="Sam", role="staff", identities={"tg": "sam", "dc": "5001"}, handles={"tg": "sam"}),
)


class Chat:
    """Commands sent as a user would, each processed like the worker does (one batch each)."""

    def __init__(self, url: str, settings: CommunitySettings) -> None:
        self.engine = create_engine(url)
        self.sessions = session_factory(self.engine)
        self.env = CommunityEnv(settings=settings, helpers=HELPERS)
        self.ids = itertools.count(1000)

    async def message(
        self,
        user: str,
        body: str,
        *,
        handle: str | None = None,
        reply_to: str | None = None,
        connector: str = "tg",
    ) -> tuple[int, InboundMessage]:
        n = next(self.ids)
        m = InboundMessage(
            connector_id=connector,
            platform="telegram",
            external_id=f"m{n}",
            conversation_id="g",
            kind=MessageKind.REPLY if reply_to else MessageKind.CHANNEL_POST,
            author=Author(id=user, handle=handle or user, display_name=user.title()),
            text=body,
            sent_at=NOW,
            reply_to_id=reply_to,
        )
        async with self.sessions() as s, s.begin():
            await s.execute(
                insert(MessageRow.__table__),  # type: ignore[attr-defined]
                {
                    "id": n,
                    "connector_id": connector,
                    "external_id": m.external_id,
                    "platform": "telegram",
                    "conversation_id": "g",
                    "kind": m.kind.value,
                    "author_id": user,
                    "author_handle": handle or user,
                    "author_name": user.title(),
                    "text": body,
                    "sent_at": NOW,
                    "received_at": NOW,
                    "reply_to_id": reply_to,
                    "raw": {},
                },
            )
        return n, m

    async def say(self, user: str, body: str, *, thread: ThreadView | None = None, **kw: str) -> str:
        n, m = await self.message(user, body, **kw)
        async with self.sessions() as s, s.begin():
            holder = SimpleNamespace(community=None)
            batch = await self.env.for_batch(s, holder, NOW)
            command = batch.command(m)
            assert command is not None, body
            planned = await batch.after(
                s,
                m,
                thread,
                role=batch.role_of(m, thread),
                decision=Decision(kind=DecisionKind.IGNORE, is_question=False),
                plan=Plan(),
                command=command,
                message_id=n,
                prepared=None,
            )
            await batch.write(s)
            if planned.state is not None and thread is not None:  # as the worker writes a plan's state
                await s.execute(
                    text(f"update thread set state = '{planned.state.value}' where id = {thread.id}")
                )
        return "\n".join(o.text for o, _, _ in batch.outbound)

    async def scalar(self, sql: str) -> object:
        async with self.sessions() as s:
            return (await s.execute(text(sql))).scalar()


@pytest.fixture
async def chat(migrated: str) -> AsyncIterator[Chat]:
    c = Chat(migrated, CommunitySettings())
    yield c
    await c.engine.dispose()


async def test_self_service_profile_commands(chat: Chat) -> None:
    assert "for community helpers" in await chat.say("zoe", "/topics billing")  # not a helper yet
    assert "Welcome, Zoe" in await chat.say("zoe", "/join billing-app")
    assert "already a helper" in await chat.say("zoe", "/join")
    assert "billing, export" in await chat.say("zoe", "/topics export billing")
    assert "de, en" in await chat.say("zoe", "/languages en de")
    assert "Europe/Berlin" in await chat.say("zoe", "/hours 08:00-16:00 Europe/Berlin")
    assert "Unknown time zone" in await chat.say("zoe", "/hours 08:00-16:00 Mars/Olympus")
    assert 'look like "09:00-17:00"' in await chat.say("zoe", "/hours 8-4")
    assert "at most 3" in await chat.say("zoe", "/max 3")
    assert "away until" in await chat.say("zoe", "/away 2d")
    row = await _helper(chat, "zoe")
    assert (row.source, row.topics, row.languages, row.hours, row.timezone, row.max_open, row.away) == (
        "self",
        ["export", "billing"],
        ["en", "de"],
        "08:00-16:00",
        "Europe/Berlin",
        3,
        True,
    )
    assert row.away_until is not None
    assert "Welcome back" in await chat.say("zoe", "/back")
    stats = await chat.say("zoe", "/stats")
    assert "0 points, rank Newcomer (25 to Helper)" in stats and "open threads: 0/3" in stats
    assert "won't be tagged" in await chat.say("zoe", "/leave")
    assert (await _helper(chat, "zoe")).active is False
    assert "for community helpers" in await chat.say("zoe", "/stats")


async def test_config_helpers_change_their_profile_in_the_database(chat: Chat) -> None:
    assert "login" in await chat.say("ann", "/topics")
    await chat.say("ann", "/topics login export")
    row = await _helper(chat, "Ann")
    assert row.source == "config" and row.topics == ["login", "export"]


async def test_staff_only_commands_refuse_others_and_work_for_staff(chat: Chat) -> None:
    async with chat.sessions() as s, s.begin():
        await s.execute(
            insert(KnowledgeRow.__table__),  # type: ignore[attr-defined]
            {"id": "kb-1", "title": "q", "answer": "a", "created_at": NOW, "updated_at": NOW},
        )
    for body in ("/add @cy", "/remove Ann", "/reopen 1", "/retire kb-1"):
        assert "for staff only" in await chat.say("ann", body)
        assert "for staff only" in await chat.say("cust", body)
    await chat.message("cy", "hello, I'd like to help", handle="cy_helps")
    assert "Cy is now a helper" in await chat.say("sam", "/add @cy_helps")
    assert await chat.scalar("select helper from community_identity where user_id = 'cy'") == "cy_helps"
    assert "no longer a helper" in await chat.say("sam", "/remove Ann")
    assert (await _helper(chat, "Ann")).active is False
    assert "Retired kb#kb-1" in await chat.say("sam", "/retire kb-1")
    assert await chat.scalar("select retired from knowledge_entry where id = 'kb-1'") in (1, True)
    assert "No knowledge entry" in await chat.say("sam", "/retire kb-404")


async def test_one_person_on_two_platforms_is_one_helper(chat: Chat) -> None:
    # Ann (in config with a Telegram account) also posts on Discord; staff links that account to her
    await chat.message("7001", "hi all", connector="dc")
    assert "Linked this account to helper Ann" in await chat.say("5001", "/add 7001 Ann", connector="dc")
    assert await chat.scalar("select helper from community_identity where user_id = '7001'") == "Ann"
    assert (await chat.say("7001", "/stats", connector="dc")).startswith("Ann: 0 points")
    await chat.say("7001", "/topics export", connector="dc")  # one profile, whichever account changes it
    assert await chat.say("ann", "/topics") == "Your topics: export."
    assert await chat.scalar("select count(*) from community_helper") == 1


async def test_kudos_points_leaderboard_and_export(chat: Chat) -> None:
    assert "Kudos to Ann" in await chat.say("cust", "/kudos @ann")
    assert "Kudos are for others" in await chat.say("ann", "/kudos @ann")
    _, m = await chat.message("ann", "try clearing the cache")
    assert "Kudos to Ann" in await chat.say("bob", "/kudos", reply_to=m.external_id)
    assert "Kudos to whom" in await chat.say("bob", "/kudos @nobody")
    assert "staff don't collect points" in await chat.say("bob", "/kudos @sam")
    assert await chat.scalar("select points from community_helper where name = 'Ann'") == 4
    board = await chat.say("cust", "/leaderboard week")
    assert board == "This week:\n1. Ann — 4 pts"
    async with chat.sessions() as s:
        assert [(r.helper, r.points) for r in await leaderboard(s)] == [("Ann", 4)]
        csv_text = await export_csv(s, "2026-11")
        assert csv_text.splitlines() == ["period,helper,points,awards,kudos", "2026-11,Ann,4,2,4"]
        assert (await export_csv(s, "2026-10")).splitlines() == ["period,helper,points,awards"]


async def test_thread_commands_solved_reopen_rate(chat: Chat) -> None:
    async with chat.sessions() as s, s.begin():
        await s.execute(
            insert(ThreadRow.__table__),  # type: ignore[attr-defined]
            {
                "id": 1, "connector_id": "tg", "platform": "telegram", "conversation_id": "g",
                "root_message_id": 1, "root_external_id": "q1", "asker_id": "cust", "state": "answered",
                "topic": "login", "opened_at": NOW, "updated_at": NOW,
            },
        )  # fmt: skip
    view = ThreadView(
        id=1, state=ThreadState.ANSWERED, connector_id="tg", platform="telegram", conversation_id="g",
        root_external_id="q1", asker_id="cust", topic="login", opened_at=NOW,
    )  # fmt: skip
    assert "Only the person who asked" in await chat.say("bob", "/solved", thread=view)
    assert "Only the person who asked" in await chat.say("ann", "/rate 5", thread=view)
    assert "no helper answer to rate" in await chat.say("cust", "/rate 5", thread=view)
    assert "Marked thread #1 as solved" in await chat.say("cust", "/solved", thread=view)
    assert await chat.scalar("select state from thread where id = 1") == "solved"
    assert await chat.scalar("select solved_by from community_thread where thread_id = 1") == "asker"
    assert "Reopened thread #1" in await chat.say("sam", "/reopen 1")
    assert await chat.scalar("select state from thread where id = 1") == "reopened"
    assert "Which thread?" in await chat.say("ann", "/claim")


async def _helper(chat: Chat, name: str) -> object:
    from bot.storage.community_tables import HelperRow

    t = HelperRow.__table__  # type: ignore[attr-defined]
    async with chat.sessions() as s:
        return (await s.execute(select(t).where(t.c.name == name))).one()
