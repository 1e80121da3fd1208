"""A simulated community on the three fake platforms, driven over their ``/_sandbox`` HTTP APIs.

Customers ask on Telegram (group, forum topics, DMs), Discord (#support, mentions, forum posts,
DMs) and X (mentions, DMs): some repeat past questions in new words (the knowledge base has
the answer), some ask something new, some are sensitive (a card number, a refund), some are
angry, some are just chatter. Helpers answer the questions they are tagged on after a delay,
decline some ("not my area"), and now and then go away for a while. Askers confirm "Solved"
or say "not yet" (buttons where the bot offers them, words otherwise).

``speed`` scales every rate and delay (``--speed 10``: ten times as busy). The community
only reads what the bot sent (``/_sandbox/sent`` ...) and reacts like people would.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import Counter
from dataclasses import dataclass, field

import aiohttp

from sandbox.community.platforms import Asked, BotReply, PlatformClient, clients
from sandbox.compose import Endpoints, Person
from sandbox.data import Scenario, load_scenario

log = logging.getLogger("sandbox.community")

__all__ = ["Asked", "BotReply", "Community", "Pace"]


@dataclass(frozen=True)
class Pace:
    """Seconds at speed 1."""

    ask_every: float = 6.0  # one new question per this many seconds, across platforms
    helper_delay: tuple[float, float] = (8.0, 25.0)
    confirm_delay: tuple[float, float] = (4.0, 12.0)
    away_for: float = 90.0
    watch_every: float = 1.0
    # what a customer's post is: repeat, new, sensitive, angry, chatter
    mix: tuple[tuple[str, float], ...] = (
        ("repeat", 0.45),
        ("new", 0.25),
        ("sensitive", 0.1),
        ("angry", 0.1),
        ("chatter", 0.1),
    )
    # helpers: answer, decline, go away (after being tagged)
    helper_mix: tuple[tuple[str, float], ...] = (("answer", 0.7), ("decline", 0.15), ("away", 0.15))
    solved_share: float = 0.75  # askers who confirm rather than say "not yet"


@dataclass
class _Open:
    asked: Asked
    intent_answer: str | None = None  # what a helper would say
    bot_replies: list[BotReply] = field(default_factory=list)
    helper_done: bool = False
    confirmed: bool = False


class Community:
    def __init__(
        self,
        endpoints: Endpoints,
        *,
        speed: float = 1.0,
        seed: int = 0,
        scenario: Scenario | None = None,
        pace: Pace | None = None,
        platforms: tuple[str, ...] = ("telegram", "discord", "x"),
    ) -> None:
        self.ep = endpoints
        self.speed = max(speed, 0.01)
        self.rng = random.Random(seed)
        self.scenario = scenario or load_scenario()
        self.pace = pace or Pace()
        self.platforms = platforms
        self.counters: Counter[str] = Counter()
        self.open: dict[str, _Open] = {}  # "<platform>:<ref>" -> open question
        self.away_until: dict[str, float] = {}
        self._seen: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.customers = endpoints.by_role("customer")
        self.helpers = {p.name: p for p in endpoints.by_role("helper")}

    def counts(self) -> dict[str, int]:
        return dict(self.counters)

    # ------------------------------------------------------------------ running
    async def run(self, stop: asyncio.Event) -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
            self.clients: dict[str, PlatformClient] = dict(clients(self.ep, http))
            watcher = asyncio.create_task(self._watch(stop))
            try:
                while not stop.is_set():
                    try:
                        await self.ask_one()
                    except (aiohttp.ClientError, RuntimeError, TimeoutError) as exc:
                        log.warning("community: ask failed: %s", exc)
                    delay = self.rng.expovariate(1.0 / self.pace.ask_every) / self.speed
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), delay)
            finally:
                watcher.cancel()
                for t in list(self._tasks):
                    t.cancel()
                await asyncio.gather(watcher, *self._tasks, return_exceptions=True)

    def _pick(self, mix: tuple[tuple[str, float], ...]) -> str:
        return self.rng.choices([m for m, _ in mix], weights=[w for _, w in mix])[0]

    def compose(self) -> tuple[str, str, str | None]:
        """(kind, text, what a helper would answer)."""
        kind = self._pick(self.pace.mix)
        s = self.scenario
        if kind == "repeat":
            intent = self.rng.choice(s.intents)
            return kind, self.rng.choice(intent.asks), intent.answer
        if kind == "new":
            q = self.rng.choice(s.new_questions)
            return kind, q.text, q.answer
        if kind == "sensitive":
            return kind, self.rng.choice(s.sensitive), None
        if kind == "angry":
            return (
                kind,
                self.rng.choice(s.angry),
                "Sorry about that! Try Trash first, then Settings > Data > Restore.",
            )
        return kind, self.rng.choice(s.not_questions), None

    async def ask_one(self) -> Asked:
        platform = self.rng.choice(self.platforms)
        client = self.clients[platform]
        places: tuple[str, ...] = getattr(client, "places", ("mention",))
        # X DMs are read once a minute (its DM limit): keep them rare
        weights = [0.1 if (platform == "x" and p == "dm") else 1.0 for p in places]
        place = self.rng.choices(places, weights=weights)[0]
        kind, text, answer = self.compose()
        asker = self.rng.choice(self.customers)
        asked = await client.ask(asker, text, place)
        asked.kind, asked.at = kind, time.time()
        self.counters[f"asked_{platform}"] += 1
        self.counters[f"asked_{kind}"] += 1
        self.open[f"{platform}:{self._key(asked)}"] = _Open(asked, answer)
        return asked

    @staticmethod
    def _key(asked: Asked) -> str:
        return f"{asked.chat}:{asked.ref}" if asked.platform == "telegram" else asked.ref

    # ------------------------------------------------------------------ reacting
    async def _watch(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            for platform in self.platforms:
                try:
                    replies = await self.clients[platform].replies()
                except (aiohttp.ClientError, RuntimeError, TimeoutError) as exc:
                    log.warning("community: reading %s failed: %s", platform, exc)
                    continue
                for reply in replies:
                    uid = f"{platform}:{reply.id}"
                    if uid in self._seen:
                        continue
                    self._seen.add(uid)
                    self.counters["bot_messages"] += 1
                    item = self.open.get(f"{platform}:{reply.reply_to}")
                    if item is not None:
                        item.bot_replies.append(reply)
                        self._react(item, reply)
            await asyncio.sleep(self.pace.watch_every / self.speed)

    def _later(self, delay: tuple[float, float], coro_fn: object) -> None:
        async def run() -> None:
            await asyncio.sleep(self.rng.uniform(*delay) / self.speed)
            try:
                await coro_fn()  # type: ignore[operator]
            except (aiohttp.ClientError, RuntimeError, TimeoutError, ValueError, KeyError) as exc:
                log.warning("community: action failed: %s", exc)

        task = asyncio.create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _react(self, item: _Open, reply: BotReply) -> None:
        asked = item.asked
        client = self.clients[asked.platform]
        if reply.buttons or "Did this solve it?" in reply.text:  # an auto-answer
            if item.confirmed:
                return
            item.confirmed = True
            solved = self.rng.random() < self.pace.solved_share

            async def confirm() -> None:
                await client.confirm(asked, reply, solved)
                self.counters["confirmed_solved" if solved else "said_not_yet"] += 1

            self._later(self.pace.confirm_delay, confirm)
            return
        tagged = [self.helpers[n] for n in reply.mentioned if n in self.helpers]
        tagged += [p for p in self.helpers.values() if _ids_of(p) & set(reply.mentioned) and p not in tagged]
        if not tagged or item.helper_done or asked.place == "dm":
            return
        item.helper_done = True
        now = time.monotonic()
        available = [h for h in tagged if self.away_until.get(h.name, 0.0) <= now]
        if not available:
            self.counters["helpers_away"] += 1
            return
        helper = available[0]
        choice = self._pick(self.pace.helper_mix)
        if choice == "away":
            self.away_until[helper.name] = now + self.pace.away_for / self.speed
            self.counters["helper_went_away"] += 1
            return

        async def act() -> None:
            if choice == "decline":
                await client.answer(helper, asked, reply, "Sorry, not my area, maybe someone else can help?")
                self.counters["helper_declined"] += 1
                return
            text = item.intent_answer or "Try signing out and back in; that fixed it for me."
            answer_id = await client.answer(helper, asked, reply, text)
            self.counters["helper_answered"] += 1
            solved = self.rng.random() < self.pace.solved_share

            async def confirm() -> None:
                await client.say(
                    asked.asker,
                    asked,
                    answer_id,
                    "Solved, thanks! That worked." if solved else "Not yet, it still happens.",
                )
                self.counters["confirmed_solved" if solved else "said_not_yet"] += 1

            self._later(self.pace.confirm_delay, confirm)

        self._later(self.pace.helper_delay, act)


def _ids_of(p: Person) -> set[str]:
    return {str(p.telegram_id), p.discord_id, p.x_id}
