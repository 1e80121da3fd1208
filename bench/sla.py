"""SLA benchmark: 100,000 open threads with deadlines; the cost of a sweep and how late stages fire.

    python bench/sla.py                         # SQLite in a temp dir
    python bench/sla.py --threads 100000 --due 3000 --window 20
    python bench/sla.py --pg postgresql+asyncpg://postgres@127.0.0.1/test

Seeds N open threads (message, thread, decision rows) with a 3-stage ladder each (3N rows in
``sla_stage``), most due hours from now, and ``--due`` stages falling due uniformly over the
next ``--window`` seconds. Then:
  * idle sweep: the sweep when nothing is due (an index probe + next-due lookup), 50 times;
  * full round: one transaction of ``sla.sweep_batch`` (200) stages that are all due;
  * live: the real APScheduler 3.11 job (sweep_interval 5 s, brought forward to the next due
    stage) runs for the window; lateness = fired_at - due_at for every stage fired.
The figures are printed; nothing is asserted.
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

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from rich.console import Console
from rich.table import Table
from sqlalchemy import insert, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.config_watch import ConfigHolder
from bot.settings import load_config
from bot.sla.service import JOB_ID, SlaService
from bot.sla.sweep import SlaRuntime, SweepResult, sweep
from bot.storage import migrate
from bot.storage.engine import create_engine, session_factory
from bot.storage.sla_tables import SlaStageRow
from bot.storage.tables import DecisionRow, MessageRow, ThreadRow

console = Console()

CONFIG = """\
data_dir: {data}
storage:
  url: {url}
logging:
  level: WARNING
web:
  enabled: false
connectors:
  local:
    type: jsonl
    settings:
      inbound: {data}/in.jsonl
      outbound: {data}/out.jsonl
staff:
  connector: local
  conversation: staff
helpers:
  - name: Ann
    identities: {{ local: ann }}
  - name: Bo
    identities: {{ local: bo }}
sla:
  sweep_interval: 5s
  policies:
    - name: default
      first_response: 1h
      stages:
        - {{ at: "50%", action: remind }}
        - {{ at: "100%", action: widen }}
        - {{ at: "150%", action: escalate }}
"""


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


async def seed(url: str, n: int, t0: datetime) -> None:
    """N open threads, each with a 3-stage ladder due hours from ``t0``."""
    engine = create_engine(url)
    sessions = session_factory(engine)
    rnd = random.Random(7)
    chunk = 5000
    actions = ("remind", "widen", "escalate")
    try:
        for start in range(1, n + 1, chunk):
            ids = range(start, min(n, start + chunk - 1) + 1)
            msgs, threads, decisions, stages = [], [], [], []
            for i in ids:
                opened = t0 - timedelta(minutes=rnd.uniform(0, 20))
                msgs.append(
                    {
                        "id": i,
                        "connector_id": "local",
                        "external_id": f"q{i}",
                        "platform": "jsonl",
                        "conversation_id": "general",
                        "kind": "channel_post",
                        "author_id": f"c{i}",
                        "text": f"question {i}",
                        "sent_at": opened,
                        "received_at": opened,
                        "raw": {},
                        "thread_id": i,
                    }
                )
                threads.append(
                    {
                        "id": i,
                        "connector_id": "local",
                        "platform": "jsonl",
                        "conversation_id": "general",
                        "root_message_id": i,
                        "root_external_id": f"q{i}",
                        "asker_id": f"c{i}",
                        "state": "awaiting_helper",
                        "priority": "normal",
                        "opened_at": opened,
                        "updated_at": opened,
                    }
                )
                decisions.append(
                    {
                        "message_id": i,
                        "thread_id": i,
                        "kind": "tag_helpers",
                        "payload": {"redacted_text": f"question {i}"},
                        "decided_by": "bench",
                        "created_at": opened,
                    }
                )
                for k, (action, at) in enumerate(zip(actions, ("50%", "100%", "150%"), strict=True)):
                    stages.append(
                        {
                            "thread_id": i,
                            "policy": "default",
                            "clock": "first_response",
                            "cycle": i,
                            "stage": k,
                            "action": action,
                            "at": at,
                            "started_at": opened,
                            # the far future by default; a chosen few fall due inside the window
                            "due_at": t0 + timedelta(hours=2 + k, seconds=rnd.uniform(0, 3600)),
                            "state": "pending",
                            "created_at": opened,
                        }
                    )
            async with sessions() as s, s.begin():
                await s.execute(insert(MessageRow.__table__), msgs)  # type: ignore[attr-defined]
                await s.execute(insert(ThreadRow.__table__), threads)  # type: ignore[attr-defined]
                await s.execute(insert(DecisionRow.__table__), decisions)  # type: ignore[attr-defined]
                await s.execute(insert(SlaStageRow.__table__), stages)  # type: ignore[attr-defined]
        async with sessions() as s, s.begin():
            if engine.dialect.name == "postgresql":
                await s.execute(
                    text("select setval(pg_get_serial_sequence('message','id'), max(id)) from message")
                )
            await s.execute(text("analyze"))
    finally:
        await engine.dispose()


async def arm(sessions: Any, n: int, due: int, window: float, t1: datetime) -> None:
    """``due`` distinct threads get their first stage due uniformly within ``window`` s of ``t1``."""
    rnd = random.Random(11)
    chosen = rnd.sample(range(1, n + 1), due)
    async with sessions() as s, s.begin():
        await s.execute(
            text("update sla_stage set due_at = :d where thread_id = :t and stage = 0"),
            [{"d": t1 + timedelta(seconds=rnd.uniform(2, window)), "t": t} for t in chosen],
        )


async def run(url: str, data: Path, n: int, due: int, window: float) -> dict[str, Any]:
    await migrate.upgrade(url)
    path = data / "config.yaml"
    (data / "in.jsonl").touch()
    path.write_text(CONFIG.format(data=data, url=url), encoding="utf-8")
    config = load_config(path, env={})
    t0 = datetime.now(UTC)
    t = time.perf_counter()
    await seed(url, n, t0)
    seeded = time.perf_counter() - t
    engine = create_engine(url)
    sessions = session_factory(engine)
    t1 = datetime.now(UTC)
    await arm(sessions, n, due, window, t1)
    rt = SlaRuntime.from_config(config)

    # idle sweeps: nothing due yet (the first window stage is >= 2 s away)
    idle: list[float] = []
    for _ in range(50):
        t = time.perf_counter()
        await sweep(sessions, rt, "bench-idle", clock=lambda: t1)
        idle.append((time.perf_counter() - t) * 1000)

    # the live run: the real job in a real AsyncIOScheduler
    service = SlaService(sessions, ConfigHolder(config), "bench")
    costs: list[tuple[float, int]] = []
    orig = service.tick

    async def timed_tick() -> SweepResult:
        t = time.perf_counter()
        r = await orig()
        costs.append(((time.perf_counter() - t) * 1000, r.fired))
        return r

    service.tick = timed_tick  # type: ignore[method-assign]
    scheduler = AsyncIOScheduler(timezone=UTC, job_defaults={"coalesce": True, "max_instances": 1})

    async def job() -> None:
        await service.run_job(scheduler)

    scheduler.add_job(
        job, "interval", seconds=5, id=JOB_ID, next_run_time=datetime.now(UTC), misfire_grace_time=None
    )
    scheduler.start()
    end = t1 + timedelta(seconds=window + 3)
    while datetime.now(UTC) < end:
        await asyncio.sleep(0.2)
    scheduler.shutdown(wait=False)
    await asyncio.sleep(0.5)
    async with sessions() as s:
        rows = (
            await s.execute(
                text(
                    "select due_at, fired_at from sla_stage where state = 'fired' and fired_by like 'bench:%'"
                )
            )
        ).all()

    def dt(v: Any) -> datetime:
        d = v if isinstance(v, datetime) else datetime.fromisoformat(str(v))
        return d if d.tzinfo else d.replace(tzinfo=UTC)

    late = [(dt(f) - dt(d)).total_seconds() for d, f in rows]

    # one full round: 500 stages due at once (pushed into the past)
    async with sessions() as s, s.begin():
        await s.execute(
            text(
                "update sla_stage set due_at = :past where id in "
                "(select id from sla_stage where state = 'pending' order by id limit 200)"
            ),
            {"past": t1 - timedelta(minutes=1)},
        )
    t = time.perf_counter()
    full = await sweep(sessions, rt, "bench-full", clock=lambda: datetime.now(UTC), max_rounds=1)
    full_ms = (time.perf_counter() - t) * 1000
    async with sessions() as s:
        total = (await s.execute(text("select count(*) from sla_stage"))).scalar()
    await service.close()
    await engine.dispose()
    busy = [c for c, f in costs if f]
    return {
        "threads": n,
        "stage rows": total,
        "seeded in (s)": round(seeded, 1),
        "idle sweep p50 (ms)": round(statistics.median(idle), 2),
        "idle sweep max (ms)": round(max(idle), 2),
        "full round of 200 (ms)": round(full_ms, 1),
        "full round fired": full.fired,
        "live: job runs": len(costs),
        "live: stages fired": len(late),
        "live: sweep with firing p50 (ms)": round(statistics.median(busy), 2) if busy else "-",
        "lateness p50 (s)": round(pct(late, 50), 3),
        "lateness p95 (s)": round(pct(late, 95), 3),
        "lateness max (s)": round(max(late), 3) if late else "-",
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=100_000)
    ap.add_argument("--due", type=int, default=2000, help="stages falling due during the window")
    ap.add_argument("--window", type=float, default=20.0, help="seconds")
    ap.add_argument("--pg", help="a PostgreSQL URL (a scratch database: tables are created in it)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.pg or f"sqlite+aiosqlite:///{tmp}/bench.db"
        figures = asyncio.run(run(url, Path(tmp), args.threads, args.due, args.window))
    table = Table(title=f"SLA sweep on {'PostgreSQL' if args.pg else 'SQLite'}")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for k, v in figures.items():
        table.add_row(k, str(v))
    console.print(table)


if __name__ == "__main__":
    main()
