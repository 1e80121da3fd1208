"""Pipeline benchmark: throughput and ingest-to-outbox latency on SQLite (and PostgreSQL).

    python bench/pipeline.py                       # SQLite in a temp dir
    python bench/pipeline.py --pg postgresql+asyncpg://postgres@127.0.0.1/test
    python bench/pipeline.py --messages 20000 --rate 200 --seconds 30

Two runs per database:
  * burst: N messages are already waiting in the jsonl inbox; the bot starts and drains them.
    Throughput = N / (last outbox row written - first message stored).
  * offered load: messages are appended at --rate per second for --seconds while the bot runs;
    latency per message = outbox row created_at - message received_at (p50/p95/max).
The figures are printed; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from sqlalchemy import select, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.app import App
from bot.config_watch import ConfigHolder
from bot.settings import load_config
from bot.storage.engine import create_engine
from bot.storage.tables import MessageRow, OutboxRow

console = Console()

CONFIG = """\
data_dir: {data}
storage: {{ url: "{url}" }}
logging: {{ level: WARNING }}
connectors:
  local:
    type: jsonl
    settings:
      {{ inbound: {data}/in.jsonl, outbound: {data}/out.jsonl, poll_interval: 0.02, batch_size: 1000 }}
pipeline: {{ workers: 2, claim_batch: 500, idle_poll: 20ms }}
dispatcher: {{ idle_poll: 20ms, concurrency: 16 }}
staff: {{ connector: local, conversation: staff }}
helpers:
  - {{ name: Ann, identities: {{ local: ann }}, handles: {{ local: ann }}, topics: [login] }}
  - {{ name: Bo, identities: {{ local: bo }}, handles: {{ local: bo }} }}
"""


def line(i: int, run: str) -> str:
    return json.dumps(
        {
            "id": f"{run}-{i}",
            "conversation_id": f"chan-{i % 50}",
            "author": {"id": f"cust{i}", "handle": f"cust{i}"},
            "text": f"my app crashes on login after the update, what can I do? ({i})",
        }
    )


async def db_figures(url: str) -> tuple[list[float], float, int]:
    engine = create_engine(url)
    try:
        async with engine.connect() as c:
            m, o = MessageRow.__table__, OutboxRow.__table__  # type: ignore[attr-defined]
            rows = (
                await c.execute(
                    select(m.c.received_at, o.c.created_at).join_from(o, m, m.c.id == o.c.message_id)
                )
            ).all()
    finally:
        await engine.dispose()
    lat = [(b - a).total_seconds() * 1000 for a, b in rows]
    span = (max(b for _, b in rows) - min(a for a, _ in rows)).total_seconds() if rows else 0.0
    return lat, span, len(rows)


async def count(url: str) -> int:
    engine = create_engine(url)
    try:
        async with engine.connect() as c:
            return int((await c.execute(text("select count(*) from outbox"))).scalar() or 0)
    finally:
        await engine.dispose()


async def run_bot(url: str, data: Path, feed: object, total: int, label: str) -> None:
    path = data / "config.yaml"
    path.write_text(CONFIG.format(data=data, url=url), encoding="utf-8")
    app = App(ConfigHolder(load_config(path, env={})), role="all")
    stop = asyncio.Event()
    task = asyncio.create_task(app.run(stop))
    await app.ready.wait()
    feeder = asyncio.create_task(feed()) if callable(feed) else None  # type: ignore[arg-type]
    with Progress(console=console, transient=True) as progress:
        bar = progress.add_task(label, total=total)
        while (n := await count(url)) < total:
            progress.update(bar, completed=n)
            await asyncio.sleep(0.25)
    if feeder is not None:
        await feeder
    stop.set()
    await task


def pct(values: list[float], q: float) -> float:
    return (
        statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] if len(values) > 1 else values[0]
    )


async def bench(url: str, url2: str, messages: int, rate: float, seconds: float) -> dict[str, float]:
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        (data / "in.jsonl").write_text("".join(line(i, "burst") + "\n" for i in range(messages)))
        t0 = time.perf_counter()
        await run_bot(url, data, None, messages, f"burst {messages}")
        wall = time.perf_counter() - t0
        lat, span, n = await db_figures(url)
        out["burst_messages"] = n
        out["burst_msgs_per_s"] = n / span if span else float("nan")
        out["burst_wall_s"] = wall

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        (data / "in.jsonl").touch()
        total = int(rate * seconds)

        async def feed() -> None:
            start = time.perf_counter()
            with (data / "in.jsonl").open("a") as fh:
                for i in range(total):
                    due = start + i / rate
                    delay = due - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    fh.write(line(i, "load") + "\n")
                    fh.flush()

        await run_bot(url2, data, feed, total, f"offered {rate:g}/s for {seconds:g}s")
        lat, span, n = await db_figures(url2)
        out["load_rate"] = rate
        out["load_messages"] = n
        out["latency_ms_p50"] = pct(lat, 50)
        out["latency_ms_p95"] = pct(lat, 95)
        out["latency_ms_max"] = max(lat)
    return out


async def fresh_pg(base: str) -> str:
    import asyncpg

    name = f"unsource_bench_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(base.replace("postgresql+asyncpg://", "postgresql://"))
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    return base.rpartition("/")[0] + "/" + name


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--messages", type=int, default=10_000)
    ap.add_argument("--rate", type=float, default=200.0)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--pg", help="PostgreSQL server URL (a fresh database is created on it)")
    args = ap.parse_args()
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        results["sqlite"] = asyncio.run(
            bench(
                f"sqlite+aiosqlite:///{tmp}/bench.db",
                f"sqlite+aiosqlite:///{tmp}/bench2.db",
                args.messages,
                args.rate,
                args.seconds,
            )
        )
    if args.pg:
        urls = [asyncio.run(fresh_pg(args.pg)) for _ in range(2)]
        results["postgresql"] = asyncio.run(bench(urls[0], urls[1], args.messages, args.rate, args.seconds))
    table = Table(title="unsource pipeline (ingest -> triage -> outbox), rule-based triage")
    table.add_column("figure")
    for db in results:
        table.add_column(db, justify="right")
    for key in next(iter(results.values())):
        table.add_row(key, *(f"{results[db][key]:.1f}" for db in results))
    console.print(table)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
