"""A restart in the middle of traffic: the bot is a real process, killed with SIGKILL while
customers keep asking on all three platforms, then started again. Judged from the fakes' own
records: every question got exactly one answer, nothing was lost and nothing was sent twice."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from collections import Counter
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import text

from bot.storage.engine import create_engine
from sandbox.community.platforms import Asked, DiscordPeople, TelegramPeople, XPeople
from sandbox.compose import Sandbox
from sandbox.data import load_scenario
from tests.e2e.stack import prepare, start_bot

pytestmark = pytest.mark.slow


def answers(sb: Sandbox, asked: list[Asked]) -> Counter[str]:
    """question key -> how many bot messages answer it, from the fakes' records."""
    n: Counter[str] = Counter()
    for s in sb.telegram.sent():
        if s.reply_to is not None:
            n[f"telegram:{s.chat_id}:{s.reply_to}"] += 1
    for m in sb.discord.bot_messages():
        ref = (m.get("message_reference") or {}).get("message_id")
        n[f"discord:{ref or m['channel_id']}"] += 1
    for p in sb.x.bot_posts():
        for r in p.get("referenced_tweets", []):
            if r["type"] == "replied_to":
                n[f"x:{r['id']}"] += 1
    return n


async def in_flight(url: str, asked: int) -> int:
    """Questions not yet stored, work not yet triaged, outbound messages not yet sent or failed."""
    engine = create_engine(url)
    try:
        async with engine.connect() as c:
            work = (await c.execute(text("select count(*) from work_item where state != 'done'"))).scalar()
            out = (
                await c.execute(text("select count(*) from outbox where state not in ('sent', 'failed')"))
            ).scalar()
            stored = (
                await c.execute(text("select count(*) from message where author_is_bot = false"))
            ).scalar()
            return max(0, asked - int(stored or 0)) + int(work or 0) + int(out or 0)
    finally:
        await engine.dispose()


def key(a: Asked) -> str:
    return f"telegram:{a.chat}:{a.ref}" if a.platform == "telegram" else f"{a.platform}:{a.ref}"


async def wait_until(cond, timeout: float, what, bot: subprocess.Popen[bytes]) -> None:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not cond():
        assert bot.poll() is None, f"bot exited early with {bot.returncode}"
        if loop.time() > end:
            raise AssertionError(f"timed out waiting for {what() if callable(what) else what}")
        await asyncio.sleep(0.1)


async def test_sigkill_mid_traffic_loses_nothing_and_sends_nothing_twice(tmp_path: Path, db_url: str) -> None:
    scenario = load_scenario()
    asks = [a for i in scenario.intents for a in i.asks] + [q.text for q in scenario.new_questions]
    async with Sandbox() as sb:
        config = await prepare(tmp_path, db_url, sb)
        assert config.source is not None
        ep = sb.endpoints
        customers = ep.by_role("customer")
        asked: list[Asked] = []
        async with aiohttp.ClientSession() as http:
            tg, dc, x = TelegramPeople(ep, http), DiscordPeople(ep, http), XPeople(ep, http)

            async def wave(start: int, n: int, x_texts: list[str]) -> None:
                for i in range(start, start + n):
                    who = customers[i % len(customers)]
                    asked.append(await tg.ask(who, asks[i % len(asks)], "dm" if i % 2 else "group"))
                    asked.append(await dc.ask(who, asks[(i + 7) % len(asks)], "channel"))
                    await asyncio.sleep(0.05)
                for t in x_texts:  # distinct texts: X refuses duplicate posts
                    asked.append(await x.ask(customers[0], t, "mention"))

            bot = start_bot(config.source)
            try:
                await wait_until(lambda: sb.discord.connected, 60, "the bot to connect", bot)
                await wave(0, 8, [scenario.intents[0].asks[0]])
                await wait_until(lambda: sum(answers(sb, asked).values()) >= 4, 60, "first answers", bot)
                bot.send_signal(signal.SIGKILL)
                bot.wait()
                # customers keep asking while the bot is down
                await wave(8, 6, [scenario.intents[5].asks[0]])
                bot = start_bot(config.source)
                # until every question is answered, or the bot has nothing left in flight
                loop = asyncio.get_running_loop()
                end = loop.time() + 150
                idle_since: float | None = None
                while not all(answers(sb, asked)[key(a)] >= 1 for a in asked):
                    assert bot.poll() is None, f"bot exited early with {bot.returncode}"
                    if loop.time() > end:
                        break
                    # "nothing in flight" must hold for a while: stored community events (presses,
                    # reactions) can make the stored count reach the asked count before the last
                    # question is even polled
                    if await in_flight(config.settings.storage.url, len(asked)) == 0:
                        idle_since = idle_since or loop.time()
                        if loop.time() - idle_since > 10.0:
                            break
                    else:
                        idle_since = None
                    await asyncio.sleep(0.5)
                await asyncio.sleep(2.0)  # would anything be sent twice?
            finally:
                bot.send_signal(signal.SIGTERM)
                try:
                    bot.wait(30)
                except subprocess.TimeoutExpired:
                    bot.kill()
        assert bot.returncode == 0, "graceful shutdown on SIGTERM"
        assert len(asked) == 2 * 14 + 2
        got = answers(sb, asked)
        # nothing sent twice
        assert [k for k, n in got.items() if n > 1] == []
        # nothing lost
        missing = [key(a) for a in asked if got[key(a)] == 0]
        unsent: list[tuple[object, ...]] = []
        if missing:
            engine = create_engine(config.settings.storage.url)
            try:
                async with engine.connect() as c:
                    ambiguous = (
                        await c.execute(
                            text("select count(*) from outbox where state = 'failed' and last_error like :e"),
                            {"e": "%interrupted mid-send%"},
                        )
                    ).scalar()
                    unsent = [
                        tuple(r)
                        for r in await c.execute(
                            text(
                                "select idempotency_key, state, attempts, last_error from outbox"
                                " where state != 'sent'"
                            )
                        )
                    ]
            finally:
                await engine.dispose()
            if ambiguous and len(missing) <= int(ambiguous):
                # By design (at-most-once on platforms without idempotency keys): an item whose platform
                # request was cut by the kill, or whose receipt was not yet recorded, is 'sending' at
                # restart; on connectors that cannot de-duplicate (Telegram, X) it is failed as
                # "ambiguous" rather than risk a double reply. Items only claimed (waiting for their
                # pacing slot) are re-queued, so any other loss fails this test.
                pytest.xfail(f"{len(missing)} answer(s) lost: {ambiguous} outbox item(s) failed as ambiguous")
        assert missing == [], unsent
