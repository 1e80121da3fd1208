"""End-to-end benchmark: customers post on all three sandbox fakes at a set rate; the bot (a real
``unsource run`` process on SQLite) answers. Prints, per platform, the latency from the customer's
post to the bot's answer arriving at the fake (p50/p95/max), the sustained throughput, the
backlog over time, the fakes' own limit counters (violations, 429s), and the bot's resident memory.

    .venv/bin/python bench/e2e.py                       # 50 questions/s for 60 s
    .venv/bin/python bench/e2e.py --duration 300        # the full 5 minutes
    .venv/bin/python bench/e2e.py --rate 20 --duration 30

Questions are repeats of the seed knowledge base in new words (auto-answers: the latency target).
Telegram and Discord questions come as DMs from many customers so that answering them stays
inside each platform's per-chat limits; X gets what its post limit allows (100 posts / 15 min).
The fakes run in this process, the bot in its own.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.sandbox_mode import seed_knowledge, write_sandbox_config
from bot.settings import load_config
from sandbox.compose import Sandbox
from sandbox.data import load_scenario
from tests.e2e.stack import ROOT, start_bot

X_RATE = 100 / 900  # X: 100 posts per 15 minutes per user


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def wall(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


async def main(args: argparse.Namespace) -> None:
    scenario = load_scenario()
    asks = [a for i in scenario.intents for a in i.asks]
    tmp = Path(tempfile.mkdtemp(prefix="unsource-bench-e2e-"))
    # one question per customer: a second DM from the same person is a follow-up in their thread
    sb = Sandbox(customers=args.customers or int(args.rate * args.duration) + 50)
    await sb.start()
    ep = sb.endpoints
    extra: dict[str, Any] = {
        "logging": {"level": "WARNING"},
        "web": {"enabled": False},
        "pipeline": {
            "triage": args.triage,
            "workers": args.workers,
            "claim_batch": args.claim_batch,
        },
        "dispatcher": {"concurrency": 64},
        "connectors": {"x": {"settings": {"poll_interval_active": 3.0, "poll_interval_idle": 3.0}}},
    }
    path = write_sandbox_config(ROOT / "config.yaml", ep, tmp / "data", extra=extra)
    config = load_config(path, env={})
    await seed_knowledge(config)
    bot = start_bot(path)
    customers = ep.by_role("customer")
    posted: dict[str, tuple[str, float]] = {}  # key -> (platform, time of post)
    backlog: list[tuple[float, int]] = []
    try:
        while not sb.discord.connected:
            await asyncio.sleep(0.1)
        await asyncio.sleep(2.0)  # the Telegram poller and the X poll start
        print(
            f"bot pid {bot.pid} started, RSS {rss_mb(bot.pid):.0f} MB; "
            f"offering {args.rate}/s for {args.duration}s"
        )
        per_platform = (args.rate - X_RATE) / 2
        start = time.monotonic()
        n = 0
        next_x = start
        xi = 0
        while (now := time.monotonic()) - start < args.duration:
            due = int((now - start) * per_platform * 2)
            while n < due:
                who = customers[n % len(customers)]
                text = asks[n % len(asks)]
                if n % 2 == 0:
                    msg = sb.telegram.dm(who.telegram_id, text)
                    posted[f"tg:{who.telegram_id}:{msg['message_id']}"] = ("telegram", time.monotonic())
                else:
                    m = await sb.discord.dm(text, author=who.name)
                    posted[f"dc:{m['id']}"] = ("discord", time.time())
                n += 1
            if now >= next_x:
                intent = scenario.intents[xi % len(scenario.intents)]
                p = sb.x.mention(customers[xi % len(customers)].name, intent.asks[0])
                posted[f"x:{p['id']}"] = ("x", time.time())
                xi += 1
                next_x += 1 / X_RATE
            if not backlog or (now - start) - backlog[-1][0] >= 5:
                backlog.append((now - start, len(posted) - len(answered(sb, posted))))
            await asyncio.sleep(0.01)
        offered_s = time.monotonic() - start
        # drain: wait for the rest (bounded)
        drain_start = time.monotonic()
        while time.monotonic() - drain_start < 30:
            got = answered(sb, posted)
            if all(k in got for k in posted if not k.startswith("x:")):  # X may wait for its poll
                break
            await asyncio.sleep(0.2)
        drained_s = time.monotonic() - start
        rss = rss_mb(bot.pid)
        report(sb, posted, backlog, offered_s, drained_s, rss, args)
    finally:
        bot.send_signal(signal.SIGTERM)
        with contextlib.suppress(Exception):
            bot.wait(30)
        await sb.stop()


def answered(sb: Sandbox, posted: dict[str, tuple[str, float]]) -> dict[str, float]:
    """question key -> arrival time of the bot's first answer at the fake."""
    out: dict[str, float] = {}
    for s in sb.telegram.sent_log:
        if s.reply_to is not None:
            out.setdefault(f"tg:{s.chat_id}:{s.reply_to}", s.at)
    for m in sb.discord.bot_messages():
        ref = (m.get("message_reference") or {}).get("message_id")
        if ref:
            out.setdefault(f"dc:{ref}", wall(m["timestamp"]))
    for p in sb.x.bot_posts():
        for r in p.get("referenced_tweets", []):
            if r["type"] == "replied_to":
                out.setdefault(f"x:{r['id']}", wall(p["created_at"]))
    return {k: v for k, v in out.items() if k in posted}


def report(  # noqa: PLR0917
    sb: Sandbox,
    posted: dict[str, tuple[str, float]],
    backlog: list[tuple[float, int]],
    offered_s: float,
    drained_s: float,
    rss: float,
    args: argparse.Namespace,
) -> None:
    got = answered(sb, posted)
    print(f"\noffered {len(posted)} questions in {offered_s:.0f} s ({len(posted) / offered_s:.1f}/s)")
    print(
        f"{'platform':<10}{'asked':>7}{'answered':>10}{'p50 s':>8}{'p95 s':>8}{'max s':>8}{'answers/s':>11}"
    )
    for platform in ("telegram", "discord", "x"):
        keys = [k for k, (p, _) in posted.items() if p == platform]
        lat = [got[k] - posted[k][1] for k in keys if k in got]
        rate = len(lat) / drained_s if drained_s else 0
        print(
            f"{platform:<10}{len(keys):>7}{len(lat):>10}{pct(lat, 0.5):>8.2f}{pct(lat, 0.95):>8.2f}"
            f"{(max(lat) if lat else float('nan')):>8.2f}{rate:>11.1f}"
        )
    print("backlog (unanswered) every 5 s: " + " ".join(f"{int(t)}s:{b}" for t, b in backlog))
    v = sb.telegram.rate.violations
    print(
        f"telegram: over-limit sends chat {v.chat} group {v.group} overall {v.overall}; "
        f"refused {dict(sb.telegram.stats.rejected)}"
    )
    c = sb.discord.limits.counters
    print(
        f"discord: requests {c.requests}, 429s {c.rate_limited}, "
        f"pace violations {sum(c.pace_violations.values())}, "
        f"global violations {c.global_violations}"
    )
    print(
        f"x: 429s {dict(sb.x.throttled)}, violations {dict(sb.x.violations)}, "
        f"refused posts {len(sb.x.rejected)}"
    )
    if args.verbose:
        print(sb.x.stats())
    print(f"bot resident memory after the run: {rss:.0f} MB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=50.0, help="questions per second across platforms")
    parser.add_argument(
        "--duration", type=float, default=60.0, help="seconds of traffic (300 for the target)"
    )
    parser.add_argument(
        "--customers", type=int, default=0, help="distinct customers (default: one per question)"
    )
    parser.add_argument("--workers", type=int, default=2, help="pipeline.workers of the bot")
    parser.add_argument(
        "--claim-batch", type=int, default=16, help="pipeline.claim_batch of the bot (small: low latency)"
    )
    parser.add_argument(
        "--triage", choices=("product", "rules"), default="product", help="rules: no matcher (tags helpers)"
    )
    parser.add_argument("--verbose", action="store_true")
    asyncio.run(main(parser.parse_args()))
