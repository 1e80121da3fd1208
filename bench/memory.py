"""Resident memory of a bot process with a large history: 1 million stored messages on SQLite.

    .venv/bin/python bench/memory.py                    # 1,000,000 messages
    .venv/bin/python bench/memory.py --messages 200000

1. Store N messages through the storage layer (``bot.storage.ingest.store_batch``: the same
   inserts the ingest path does, with their work items), spread over 3 connectors, 2,000
   conversations and 50,000 authors, then mark their work items done (history, not backlog).
2. Start ``unsource run`` on that database (the product triager with the sandbox's seed
   knowledge base, the dispatcher, the scheduler, the dashboard off) and print its RSS once
   ready and again after it has been idle for a while, plus the database size.
Figures are printed; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import text

from bot.models import Author, InboundMessage, MessageKind
from bot.sandbox_mode import seed_knowledge
from bot.settings import load_config
from bot.storage import migrate
from bot.storage.engine import create_engine, session_factory
from bot.storage.ingest import store_batch

CONFIG = """\
data_dir: {data}
storage: {{ url: "sqlite+aiosqlite:///{data}/unsource.db" }}
logging: {{ level: WARNING }}
connectors:
  local:
    type: jsonl
    settings: {{ inbound: {data}/in.jsonl, outbound: {data}/out.jsonl }}
web: {{ enabled: false }}
staff: {{ connector: local, conversation: staff }}
helpers:
  - {{ name: Ann, identities: {{ local: ann }}, handles: {{ local: ann }} }}
"""

PLATFORMS = (("telegram", "telegram"), ("discord", "discord"), ("x", "twitter"))
TEXTS = (
    "my notes are not syncing between my phone and laptop since this morning",
    "how do I export a notebook as PDF with the attachments?",
    "thanks, that worked!",
    "the app keeps sending me back to the login screen after the update, any idea?",
    "is there a dark mode on the web app?",
)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def fill(url: str, n: int, batch: int = 5000) -> float:
    await migrate.upgrade(url)
    engine = create_engine(url)
    sessions = session_factory(engine)
    start = time.monotonic()
    t0 = datetime.now(UTC) - timedelta(days=90)
    try:
        for b in range(0, n, batch):
            by_connector: dict[str, list[InboundMessage]] = {c: [] for c, _ in PLATFORMS}
            for i in range(b, min(n, b + batch)):
                cid, platform = PLATFORMS[i % 3]
                by_connector[cid].append(
                    InboundMessage(
                        connector_id=cid,
                        platform=platform,
                        external_id=str(10_000_000 + i),
                        conversation_id=f"conv-{i % 2000}",
                        kind=MessageKind.CHANNEL_POST,
                        author=Author(id=f"user{i % 50_000}", handle=f"user{i % 50_000}"),
                        text=f"{TEXTS[i % len(TEXTS)]} ({i})",
                        sent_at=t0 + timedelta(seconds=i * 7.7),
                    )
                )
            async with sessions() as s, s.begin():
                for cid, msgs in by_connector.items():
                    await store_batch(s, cid, msgs, str(b + batch))
            if (b // batch) % 20 == 0:
                print(f"  stored {b + batch:>9,} messages ({time.monotonic() - start:.0f} s)", flush=True)
        async with sessions() as s, s.begin():
            await s.execute(text("update work_item set state = 'done', done_at = created_at"))
    finally:
        await engine.dispose()
    return time.monotonic() - start


def main(args: argparse.Namespace) -> None:
    tmp = Path(args.dir or tempfile.mkdtemp(prefix="unsource-bench-mem-"))
    data = tmp / "data"
    data.mkdir(parents=True, exist_ok=True)
    (data / "in.jsonl").touch()
    cfg_path = tmp / "config.yaml"
    cfg_path.write_text(CONFIG.format(data=data), "utf-8")
    config = load_config(cfg_path, env={})
    url = config.settings.storage.url
    print(f"storing {args.messages:,} messages in {data}/unsource.db ...")
    took = asyncio.run(fill(url, args.messages))
    print(f"stored in {took:.0f} s ({args.messages / took:,.0f} messages/s)")
    asyncio.run(seed_knowledge(config))
    db_mb = (data / "unsource.db").stat().st_size / 2**20
    bot = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "run", "--config", str(cfg_path), "--no-sandbox"],
        stdout=subprocess.DEVNULL,
        stderr=open(tmp / "bot.log", "ab"),  # noqa: SIM115
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        time.sleep(args.settle)
        first = rss_mb(bot.pid)
        time.sleep(args.settle)
        second = rss_mb(bot.pid)
    finally:
        bot.send_signal(signal.SIGTERM)
        bot.wait(30)
    print(f"database: {db_mb:,.0f} MB for {args.messages:,} messages")
    print(
        f"bot RSS after {args.settle:.0f} s: {first:.0f} MB; after {2 * args.settle:.0f} s: {second:.0f} MB"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--settle", type=float, default=20.0, help="seconds between RSS readings")
    parser.add_argument("--dir", help="work directory (default: a new temp dir)")
    main(parser.parse_args())
