"""The user stories, end to end: all three real SDK connectors, pipeline, triage, routing and the
SLA scheduler against the sandbox fakes, in one process (see tests/e2e/stack.py)."""

from __future__ import annotations

import re
from pathlib import Path

from sqlalchemy import text

from bot.storage.engine import create_engine
from tests.e2e.stack import Stack, stack, until


async def sql(s: Stack, query: str, **params: object) -> list[tuple[object, ...]]:
    engine = create_engine(s.config.settings.storage.url)
    try:
        async with engine.connect() as c:
            return [tuple(r) for r in (await c.execute(text(query), params)).all()]
    finally:
        await engine.dispose()


async def thread_state(s: Stack, platform: str, root: str) -> object:
    rows = await sql(
        s,
        "select state from thread where platform = :p"
        " and (root_external_id = :r or root_external_id like :tail)",
        p=platform,
        r=root,
        tail=f"%:{root}",
    )
    return rows[0][0] if rows else None


async def eventually_state(s: Stack, platform: str, root: str, states: set[str], timeout: float = 20) -> None:
    import asyncio

    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while (got := await thread_state(s, platform, root)) not in states:
        if loop.time() > end:
            raise AssertionError(f"thread {platform}:{root} is {got!r}, expected one of {states}")
        await asyncio.sleep(0.1)


async def test_repeated_question_is_auto_answered_with_credit_on_every_platform(
    tmp_path: Path, db_url: str
) -> None:
    async with stack(tmp_path, db_url) as s:
        people = s.ep.people
        tg_q = await s.telegram.ask(people["mia"], "How can I change the app language?", "group")
        dc = s.discord_people()
        dc_q = await dc.ask(people["noah"], "how do i turn on dark mode in the app", "channel")
        x_q = await s.x.ask(people["lena"], "how can i share a note with someone", "mention")

        tg = await until(
            lambda: [r for r in s.sandbox.telegram.sent() if r.reply_to == int(tg_q.ref)],
            what="telegram answer",
        )
        assert "Settings > General > Language" in tg[0].text and "answered before by Ann" in tg[0].text
        assert "community.acme-notes.example/t/" in tg[0].text
        buttons = [b["callback_data"] for row in tg[0].reply_markup["inline_keyboard"] for b in row]
        assert [b.split(":")[0] for b in buttons] == ["solved", "notyet"]

        dcr = await until(
            lambda: [m for m in s.sandbox.discord.bot_messages() if dc_q.ref in (m["channel_id"], _ref(m))],
            what="discord answer",
        )
        assert "Theme: choose Dark" in dcr[0]["content"] and "Ann" in dcr[0]["content"]
        xr = await until(
            lambda: [p for p in s.sandbox.x.bot_posts() if _replied_to(p) == x_q.ref], what="x answer"
        )
        assert "Share > Invite" in s.sandbox.x.world.visible_text(xr[0]) and "Dee" in xr[0]["text"]

        # the asker accepts the auto-answer with the button: the thread is solved
        [reply] = [r for r in await s.telegram.replies() if r.reply_to == f"{tg_q.chat}:{tg_q.ref}"]
        await s.telegram.confirm(tg_q, reply, solved=True)
        await eventually_state(s, "telegram", tg_q.ref, {"solved"})
        assert await thread_state(s, "discord", dc_q.ref) == "auto_answered"


async def test_new_question_is_routed_to_the_right_helper_answered_and_solved(
    tmp_path: Path, db_url: str
) -> None:
    async with stack(tmp_path, db_url) as s:
        people = s.ep.people
        dc = s.discord_people()
        q = await dc.ask(
            people["omar"],
            "Is there a way to export notes to Markdown with the folder structure kept?",
            "channel",
        )
        tag = (
            await until(
                lambda: [m for m in s.sandbox.discord.bot_messages() if q.ref in (m["channel_id"], _ref(m))],
                what="tag",
            )
        )[0]
        tagged = {u["username"] for u in tag["mentions"]}
        assert "dee" in tagged, tagged  # dee covers export
        assert "omar" not in tagged
        await eventually_state(s, "discord", q.ref, {"awaiting_helper"})

        # the helper answers in the thread the bot opened; the asker marks her answer with ✅
        [reply] = [r for r in await dc.replies() if r.id == tag["id"]]
        answer_id = await dc.answer(
            people["dee"], q, reply, "The 'Export everything' zip keeps notebooks as folders."
        )
        await eventually_state(s, "discord", q.ref, {"answered"})
        await dc.react_solved(people["omar"], answer_id)
        await eventually_state(s, "discord", q.ref, {"solved"})
        rows = await sql(
            s,
            "select first_response_at is not null from thread"
            " where platform = 'discord' and root_external_id = :r",
            r=q.ref,
        )
        assert rows == [(True,)]


CARD = "4111 1111 1111 1111"


async def test_sensitive_question_goes_privately_to_staff_with_nothing_sensitive_in_public(
    tmp_path: Path, db_url: str
) -> None:
    async with stack(tmp_path, db_url) as s:
        people = s.ep.people
        q = await s.telegram.ask(
            people["priya"],
            f"I was charged twice for my subscription, my card is {CARD}, please refund me",
            "group",
        )
        dc = s.discord_people()
        dq = await dc.ask(
            people["quinn"], "I want a refund for the yearly plan, I paid yesterday by credit card", "channel"
        )
        staff = await until(
            lambda: (
                [r for r in s.sandbox.telegram.sent(s.ep.telegram_staff)]
                if len(s.sandbox.telegram.sent(s.ep.telegram_staff)) >= 2
                else None
            ),
            what="both in the staff chat",
        )
        public = await until(
            lambda: [r for r in s.sandbox.telegram.sent(s.ep.telegram_support) if r.reply_to == int(q.ref)],
            what="public notice",
        )
        await until(
            lambda: [m for m in s.sandbox.discord.bot_messages() if dq.ref in (m["channel_id"], _ref(m))],
            what="discord notice",
        )
        assert "continue privately" in public[0].text
        assert any("charged twice" in r.text for r in staff)
        assert any("refund" in r.text for r in staff)
        digits = re.sub(r"\D", "", CARD)
        for t in s.public_texts():
            assert digits not in re.sub(r"\D", "", t), t
            assert "4111" not in t
        assert await thread_state(s, "telegram", q.ref) == "with_staff"
        assert await thread_state(s, "discord", dq.ref) == "with_staff"


async def test_unanswered_question_is_escalated_by_its_sla(tmp_path: Path, db_url: str) -> None:
    stages = [{"at": "50%", "action": "remind"}, {"at": "150%", "action": "escalate"}]
    policy = {"name": "fast", "first_response": "2s", "stages": stages}
    sla = {"sla": {"sweep_interval": "500ms", "policies": [policy]}}
    async with stack(tmp_path, db_url, sla) as s:
        q = await s.telegram.ask(s.ep.people["ravi"], "How do I pin a note to the top of the list?", "forum")
        await until(
            lambda: [r for r in s.sandbox.telegram.sent(s.ep.telegram_forum) if r.reply_to == int(q.ref)],
            what="helpers tagged",
        )
        await until(
            lambda: s.sandbox.telegram.sent(s.ep.telegram_staff), timeout=30, what="escalation to staff"
        )
        await eventually_state(s, "telegram", q.ref, {"escalated"}, timeout=20)
        fired = await sql(s, "select action from sla_stage where state = 'fired' order by due_at")
        assert [a for (a,) in fired] == ["remind", "escalate"]
        staff_texts = " ".join(r.text for r in s.sandbox.telegram.sent(s.ep.telegram_staff))
        assert "pin a note" in staff_texts or "#" in staff_texts


def _ref(m: dict[str, object]) -> str | None:
    ref = m.get("message_reference")
    return str(ref.get("message_id")) if isinstance(ref, dict) else None


def _replied_to(p: dict[str, object]) -> str | None:
    refs = p.get("referenced_tweets")
    if isinstance(refs, list):
        for r in refs:
            if r.get("type") == "replied_to":
                return str(r["id"])
    return None


async def test_the_simulated_community_gets_answers_on_all_three_platforms(
    tmp_path: Path, db_url: str
) -> None:
    import asyncio

    from bot.sandbox_mode import read_summary
    from sandbox.community import Community, Pace

    pace = Pace(ask_every=0.3, helper_delay=(0.5, 1.0), confirm_delay=(0.3, 0.6), watch_every=0.3)
    async with stack(tmp_path, db_url) as s:
        community = Community(s.ep, pace=pace, seed=7)
        stop = asyncio.Event()
        task = asyncio.create_task(community.run(stop))
        engine = create_engine(s.config.settings.storage.url)
        try:

            async def progressed() -> bool:
                summary = await read_summary(engine)
                return (
                    set(summary.questions) >= {"telegram", "discord", "x"}
                    and summary.auto_answered > 0
                    and summary.helpers_tagged > 0
                    and summary.solved > 0
                )

            loop = asyncio.get_running_loop()
            end = loop.time() + 60
            while not await progressed():
                assert loop.time() < end, (await read_summary(engine), community.counts())
                await asyncio.sleep(0.5)
        finally:
            stop.set()
            await task
            await engine.dispose()
        counts = community.counts()
        assert counts["asked_telegram"] and counts["asked_discord"] and counts["asked_x"]
        assert counts.get("confirmed_solved", 0) + counts.get("said_not_yet", 0) > 0
