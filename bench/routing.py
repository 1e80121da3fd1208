"""Routing benchmark: 1,000 helpers, 10,000 open threads; how long one routing decision takes,
and how long a batch takes to load what routing needs from the database.

    python bench/routing.py                        # SQLite in a temp dir
    python bench/routing.py --helpers 1000 --threads 10000 --decisions 10000
    python bench/routing.py --pg postgresql+asyncpg://postgres@127.0.0.1/test

1. The world: helpers with 1-3 of 30 topics (10% generalists), 1-2 of 6 languages, one of 10
   time zones, working hours for half of them, 5% away, caps of 3-15; 10,000 open threads,
   each tagged to two random helpers (so some helpers sit at their cap). It is written to the
   database (community_helper, community_tag, thread, community_topic_stat).
2. ``load_roster`` (the four reads a batch makes) is timed, then ``triage.route.route`` is timed
   for --decisions questions (random topic / language / priority / asker), each decision's tags
   counted for the next one as the worker does.
The figures are printed; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import insert

from bot.community.profiles import base_profiles, load_roster
from bot.settings import HelperEntry
from bot.storage import migrate
from bot.storage.community_tables import HelperRow, HelperTagRow, TopicStatRow
from bot.storage.engine import create_engine, session_factory
from bot.storage.tables import ThreadRow
from triage.route import Pool, Question, RouteSettings, route

TOPICS = [f"topic-{i:02}" for i in range(30)]
LANGS = ["en", "de", "fr", "es", "pt", "it"]
ZONES = [
    "UTC", "Europe/Berlin", "Europe/London", "America/New_York", "America/Los_Angeles",
    "Asia/Tokyo", "Asia/Kolkata", "Australia/Sydney", "America/Sao_Paulo", "Africa/Lagos",
]  # fmt: skip


def helpers(n: int, rng: random.Random) -> list[HelperEntry]:
    out = []
    for i in range(n):
        start = rng.choice([7, 8, 9, 10, 14, 20])
        out.append(
            HelperEntry(
                name=f"h{i:04}",
                identities={"tg": f"u{i}", "dc": f"{10_000 + i}"},
                handles={"tg": f"helper{i:04}"},
                topics=[] if rng.random() < 0.1 else rng.sample(TOPICS, rng.randint(1, 3)),
                languages=rng.sample(LANGS, rng.randint(1, 2)),
                timezone=rng.choice(ZONES),
                hours=f"{start:02}:00-{(start + 8) % 24:02}:00" if rng.random() < 0.5 else None,
                max_open=rng.randint(3, 15),
            )
        )
    return out


async def seed(url: str, entries: list[HelperEntry], threads: int, rng: random.Random) -> None:
    await migrate.upgrade(url)
    engine = create_engine(url)
    sessions = session_factory(engine)
    now = datetime.now(UTC)
    async with sessions() as s, s.begin():
        await s.execute(
            insert(HelperRow.__table__),  # type: ignore[attr-defined]
            [
                {
                    "name": h.name, "source": "config", "away": rng.random() < 0.05, "points": 0,
                    "accepted": rng.randint(0, 30), "rejected": rng.randint(0, 6), "rating_sum": 0,
                    "rating_count": 0, "last_tagged_at": now - timedelta(minutes=rng.randint(0, 10_000)),
                    "created_at": now, "updated_at": now,
                }
                for h in entries
            ],
        )  # fmt: skip
        await s.execute(
            insert(ThreadRow.__table__),  # type: ignore[attr-defined]
            [
                {
                    "id": t, "connector_id": "tg", "platform": "telegram", "conversation_id": "g",
                    "root_message_id": t, "root_external_id": f"m{t}", "asker_id": f"c{t}",
                    "state": "awaiting_helper", "topic": rng.choice(TOPICS),
                    "opened_at": now, "updated_at": now,
                }
                for t in range(1, threads + 1)
            ],
        )  # fmt: skip
        tags = []
        for t in range(1, threads + 1):
            for h in rng.sample(entries, 1 if rng.random() < 0.6 else 0):
                tags.append(
                    {"thread_id": t, "helper": h.name, "state": "tagged", "tagged_at": now, "updated_at": now}
                )
        await s.execute(insert(HelperTagRow.__table__), tags)  # type: ignore[attr-defined]
        stats = {(h.name, t) for h in entries for t in h.topics if rng.random() < 0.5}
        await s.execute(
            insert(TopicStatRow.__table__),  # type: ignore[attr-defined]
            [{"helper": h, "topic": t, "accepted": rng.randint(1, 20), "rejected": 0} for h, t in stats],
        )
    await engine.dispose()


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--helpers", type=int, default=1000)
    ap.add_argument("--threads", type=int, default=10_000)
    ap.add_argument("--decisions", type=int, default=10_000)
    ap.add_argument("--batch", type=int, default=200, help="decisions per batch (tags count within one)")
    ap.add_argument("--pg", default=None, help="a PostgreSQL URL (an empty database) instead of SQLite")
    args = ap.parse_args()
    rng = random.Random(7)
    entries = helpers(args.helpers, rng)
    with tempfile.TemporaryDirectory() as tmp:
        url = args.pg or f"sqlite+aiosqlite:///{tmp}/bench.db"
        t0 = time.perf_counter()
        await seed(url, entries, args.threads, rng)
        print(f"seeded {args.helpers} helpers, {args.threads} open threads (60% tagged to a helper) "
              f"in {time.perf_counter() - t0:.1f}s on {url.split(':')[0]}")  # fmt: skip

        engine = create_engine(url)
        sessions = session_factory(engine)
        base = base_profiles(entries)
        loads: list[float] = []
        for _ in range(20):
            t = time.perf_counter()
            async with sessions() as s:
                roster = await load_roster(s, base)
            loads.append((time.perf_counter() - t) * 1000)
        await engine.dispose()
        t = time.perf_counter()

        def fresh_pool() -> Pool:  # what a batch builds from the roster it loaded
            return Pool(
                (r.profile for r in roster.helpers.values()),
                {k: copy.copy(r.stats) for k, r in roster.helpers.items()},
                RouteSettings(),
            )

        pool = fresh_pool()
        build_ms = (time.perf_counter() - t) * 1000
        at_cap = sum(1 for r in roster.helpers.values() if r.stats.open >= r.profile.max_open)
        print(f"per batch: load_roster p50 {statistics.median(loads):.1f} ms, max {max(loads):.1f} ms; "
              f"Pool() {build_ms:.1f} ms; helpers at their cap: {at_cap}")  # fmt: skip

    settings = RouteSettings()
    now = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)
    times: list[float] = []
    cpu: list[float] = []  # CPU time of this process: what the decision costs, without other load
    to_staff = 0
    for i in range(args.decisions):
        if i % args.batch == 0:
            pool = fresh_pool()  # each batch starts from the database's state
        q = Question(
            connector_id=rng.choice(["tg", "dc"]),
            asker_id=f"c{i}",
            topic=rng.choice(TOPICS) if rng.random() < 0.9 else None,
            language=rng.choice(LANGS),
            priority=rng.choice(["normal"] * 8 + ["high", "urgent"]),
        )
        t, c = time.perf_counter(), time.process_time()
        r = route(pool, q, now, settings)
        times.append((time.perf_counter() - t) * 1000)
        cpu.append((time.process_time() - c) * 1000)
        for p in r.picks:
            pool.note_tagged(p.key, now)
        to_staff += r.to_staff
    print(
        f"routing decisions: {len(times)}; p50 {statistics.median(times):.3f} ms, "
        f"p95 {pct(times, 95):.3f} ms, p99 {pct(times, 99):.3f} ms, max {max(times):.3f} ms; "
        f"to staff (nobody fit): {to_staff}"
    )
    load = os.getloadavg()[0]
    print(f"  CPU time per decision: p50 {statistics.median(cpu):.3f} ms, p95 {pct(cpu, 95):.3f} ms, "
          f"p99 {pct(cpu, 99):.3f} ms; load average {load:.1f} on {os.cpu_count()} CPUs")  # fmt: skip


if __name__ == "__main__":
    asyncio.run(main())
