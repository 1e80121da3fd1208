"""Dashboard benchmark: page load times with 100,000 threads in the database.

    python bench/web.py                      # SQLite in a temp dir, 100,000 threads over 30 days
    python bench/web.py --threads 20000
    python bench/web.py --pg postgresql+asyncpg://postgres@127.0.0.1/test

Seeds threads (with their opening message, decision, a helper reply for half of them and the
tag outbox row) across 3 connectors, 8 topics and realistic states (about a quarter open),
then requests every page through the ASGI app in process (httpx, signed in as staff) and
prints the median and worst wall time of several loads, and the median CPU time of this
process (the database runs in it too: a load-independent figure on a shared machine).
Target: every page under 300 ms. Nothing is asserted. The overview's daily roll-ups are computed
first, as the running bot's scheduler keeps them (that time is printed on its own).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table
from sqlalchemy import insert

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.analytics.rollup import warm
from bot.config_watch import ConfigHolder
from bot.settings import load_config
from bot.storage import migrate
from bot.storage.engine import create_engine, session_factory
from bot.storage.tables import DecisionRow, MessageRow, OutboxRow, ThreadRow
from bot.web.app import create_app
from bot.web.auth import hash_password

console = Console()
TOPICS = ["login", "billing", "shipping", "api", "refund", "account", "bug", None]
STATES = [
    ("solved", 70),
    ("closed", 2),
    ("auto_answered", 10),
    ("answered", 8),
    ("awaiting_helper", 6),
    ("with_staff", 3),
    ("escalated", 1),
]
KINDS = ["tag_helpers"] * 6 + ["auto_answer"] * 3 + ["route_private"]
CONFIG = """\
data_dir: {data}
storage:
  url: {url}
connectors:
  x: {{ type: jsonl, settings: {{ inbound: {data}/x.jsonl, outbound: {data}/xo.jsonl,
       platform: twitter }} }}
  tg: {{ type: jsonl, settings: {{ inbound: {data}/t.jsonl, outbound: {data}/to.jsonl,
        platform: telegram }} }}
  dc: {{ type: jsonl, settings: {{ inbound: {data}/d.jsonl, outbound: {data}/do.jsonl,
        platform: discord }} }}
helpers:
{helpers}
  - name: Staffer
    role: staff
    identities: {{ x: s1, tg: s1, dc: s1 }}
"""


async def seed(url: str, n: int, now: datetime) -> None:
    rng = random.Random(42)
    engine = create_engine(url)
    sessions = session_factory(engine)
    states = [s for s, w in STATES for _ in range(w)]
    conns = [("x", "twitter"), ("tg", "telegram"), ("dc", "discord")]
    chunk = 5000
    mid = 0
    t0 = time.perf_counter()
    for start in range(0, n, chunk):
        msgs: list[dict[str, Any]] = []
        threads: list[dict[str, Any]] = []
        decisions: list[dict[str, Any]] = []
        outs: list[dict[str, Any]] = []
        for tid in range(start + 1, min(start + chunk, n) + 1):
            cid, platform = conns[tid % 3]
            opened = now - timedelta(seconds=rng.uniform(0, 30 * 86400))
            topic = rng.choice(TOPICS)
            kind = rng.choice(KINDS)
            state = rng.choice(states)
            mid += 1
            root = mid
            msgs.append(
                _msg(
                    root, (cid, platform, f"q{tid}", tid), f"u{tid}", f"question about {topic} #{tid}", opened
                )
            )
            first = None
            if kind == "tag_helpers" and state != "awaiting_helper":
                mid += 1
                first = opened + timedelta(seconds=rng.expovariate(1 / 1800))
                helper = f"h{rng.randrange(20)}"
                msgs.append(_msg(mid, (cid, platform, f"r{mid}", tid), helper, "try this", first))
            threads.append(
                {
                    "id": tid,
                    "connector_id": cid,
                    "platform": platform,
                    "conversation_id": "c",
                    "root_message_id": root,
                    "root_external_id": f"q{tid}",
                    "asker_id": f"u{tid}",
                    "asker_handle": f"u{tid}",
                    "is_private": kind == "route_private",
                    "state": state,
                    "topic": topic,
                    "priority": rng.choice(["normal"] * 8 + ["high", "urgent"]),
                    "message_count": 2 if first else 1,
                    "opened_at": opened,
                    "updated_at": opened,
                    "first_response_at": first,
                    "solved_at": (first or opened) + timedelta(minutes=5) if state == "solved" else None,
                }
            )
            decisions.append(
                {
                    "message_id": root,
                    "thread_id": tid,
                    "kind": kind,
                    "payload": {
                        "kind": kind,
                        "redacted_text": f"question about {topic}",
                        "reasons": ["bench"],
                    },
                    "decided_by": "bench",
                    "created_at": opened,
                }
            )
            if kind == "tag_helpers":
                outs.append(
                    {
                        "idempotency_key": f"t{tid}:open:tag",
                        "connector_id": cid,
                        "conversation_id": "c",
                        "thread_id": tid,
                        "message_id": root,
                        "purpose": "tag_helpers",
                        "payload": {"text": "help?", "mentions": [{"user_id": "h1", "display_name": "H1"}]},
                        "state": "sent",
                        "next_try_at": opened,
                        "created_at": opened,
                    }
                )
        async with sessions() as s, s.begin():
            await s.execute(insert(MessageRow.__table__), msgs)  # type: ignore[attr-defined]
            await s.execute(insert(ThreadRow.__table__), threads)  # type: ignore[attr-defined]
            await s.execute(insert(DecisionRow.__table__), decisions)  # type: ignore[attr-defined]
            await s.execute(insert(OutboxRow.__table__), outs)  # type: ignore[attr-defined]
    if engine.dialect.name == "postgresql":
        # what autovacuum does to a live database: statistics, and the visibility map that
        # lets PostgreSQL answer the overview's index range scans from the index alone
        async with engine.connect() as c:
            from sqlalchemy import text

            await (await c.execution_options(isolation_level="AUTOCOMMIT")).execute(text("VACUUM ANALYZE"))
    else:
        async with engine.begin() as c:
            from sqlalchemy import text

            await c.execute(text("ANALYZE"))
    await engine.dispose()
    console.print(f"seeded {n:,} threads, {mid:,} messages in {time.perf_counter() - t0:.1f} s")


def _msg(mid: int, where: tuple[str, str, str, int], author: str, body: str, at: datetime) -> dict[str, Any]:
    cid, platform, ext, tid = where
    return {
        "id": mid,
        "connector_id": cid,
        "external_id": ext,
        "platform": platform,
        "conversation_id": "c",
        "kind": "channel_post",
        "author_id": author,
        "text": body,
        "sent_at": at,
        "received_at": at,
        "raw": {},
        "thread_id": tid,
    }


async def measure(url: str, tmp: Path, threads: int, rounds: int) -> None:
    data = tmp / "data"
    data.mkdir(parents=True, exist_ok=True)
    helpers = "\n".join(
        f"  - name: H{i}\n    identities: {{ x: h{i}, tg: h{i}, dc: h{i} }}\n    topics: [{TOPICS[i % 7]}]"
        for i in range(20)
    )
    cfg_path = tmp / "config.yaml"
    cfg_path.write_text(CONFIG.format(data=data, url=url, helpers=helpers), encoding="utf-8")
    config = load_config(cfg_path, env={})
    engine = create_engine(url)
    app = create_app(
        ConfigHolder(config),
        session_factory(engine),
        env={
            "UNSOURCE_WEB_USERS": f"b:staff:{hash_password('benchmark!', iterations=1000)}",
            "UNSOURCE_WEB_SECRET": "k" * 32,
        },
    )
    pages = [
        "/",
        "/?since=30d",
        "/queue",
        "/queue/rows",
        "/queue/rows?topic=billing&platform=telegram",
        f"/thread/{threads // 2}",
        "/helpers",
        "/trends",
        "/knowledge",
        "/config",
        "/metrics",
        "/healthz",
    ]
    # what the bot's scheduler does every 10 minutes (bot/analytics/rollup.py): store the settled
    # days' figures, so that page loads read them
    t0 = time.perf_counter()
    await warm(session_factory(engine), config.settings)
    console.print(f"overview roll-ups computed (scheduler job, cold) in {time.perf_counter() - t0:.1f} s")
    table = Table(title=f"page load, {threads:,} threads ({engine.dialect.name}), {rounds} loads each")
    for col in ("page", "median ms", "worst ms", "CPU ms", "bytes"):
        table.add_column(col, justify="right" if col != "page" else "left")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as c:
        import re

        login = await c.get("/login")
        token = re.search(r'name="csrf" value="([^"]+)"', login.text)
        assert token
        r = await c.post("/login", data={"username": "b", "password": "benchmark!", "csrf": token.group(1)})
        assert r.status_code == 303
        for path in pages:
            times: list[float] = []
            cpu: list[float] = []
            size = 0
            for _ in range(rounds):
                t, p = time.perf_counter(), time.process_time()
                resp = await c.get(path)
                times.append((time.perf_counter() - t) * 1000)
                cpu.append((time.process_time() - p) * 1000)
                assert resp.status_code in (200, 503), (path, resp.status_code)
                size = len(resp.content)
            table.add_row(
                path,
                f"{statistics.median(times):.0f}",
                f"{max(times):.0f}",
                f"{statistics.median(cpu):.0f}",
                f"{size:,}",
            )
    await engine.dispose()
    console.print(table)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--pg", help="a PostgreSQL base URL (a fresh database is created and dropped)")
    ap.add_argument("--db", type=Path, help="SQLite file to keep between runs (seeded only if missing)")
    args = ap.parse_args()
    now = datetime.now(UTC)

    async def run(url: str, tmp: Path, fresh: bool) -> None:
        await migrate.upgrade(url)
        if fresh:
            await seed(url, args.threads, now)
        await measure(url, tmp, args.threads, args.rounds)

    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        if args.pg:
            from tests.conftest import fresh_pg_url

            gen = fresh_pg_url(args.pg)  # creates (and at the end drops) a database
            url = next(gen)
            try:
                asyncio.run(run(url, tmp, True))
            finally:
                for _ in gen:
                    pass
        else:
            path = args.db or tmp / "bench.db"
            asyncio.run(run(f"sqlite+aiosqlite:///{path}", tmp, not path.exists()))


if __name__ == "__main__":
    main()
