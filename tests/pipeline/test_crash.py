"""Crash safety with real processes: kill -9 mid-stream, restart, nothing lost or sent twice."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.pipeline.helpers import append, make_config, question, read_out
from tests.pipeline.test_pipeline import scalar

pytestmark = pytest.mark.slow

N = 5000


def start_bot(config: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "run", "--config", str(config), *args],
        stdout=subprocess.DEVNULL,
        stderr=open(config.with_suffix(".log"), "ab"),
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def wait_for(cond, timeout: float, what: str, procs: list[subprocess.Popen[bytes]] = ()) -> None:  # type: ignore[no-untyped-def,assignment]
    end = time.monotonic() + timeout
    while not cond():
        for p in procs:
            assert p.poll() is None, f"bot exited early with {p.returncode}"
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_kill_9_mid_stream_loses_nothing_and_sends_nothing_twice(tmp_path: Path, db_url: str) -> None:
    cfg = make_config(tmp_path, db_url, batch=200, triage="rules")
    assert cfg.source is not None
    data = tmp_path / "data"
    inbox, outbox = data / "in.jsonl", data / "out.jsonl"

    bot = start_bot(cfg.source)
    try:
        # a stream arriving while the bot runs; kill -9 twice in the middle of it
        for chunk in range(0, 2500, 250):
            append(inbox, [question(i) for i in range(chunk, chunk + 250)])
            time.sleep(0.05)
        wait_for(lambda: len(read_out(outbox)) >= 800, 120, "first replies", [bot])
        bot.send_signal(signal.SIGKILL)
        bot.wait()
        append(inbox, [question(i) for i in range(2500, 4000)])  # arrives while the bot is down
        bot = start_bot(cfg.source)
        wait_for(lambda: len(read_out(outbox)) >= 2600, 120, "replies after restart", [bot])
        bot.send_signal(signal.SIGKILL)
        bot.wait()
        # the platform re-delivers some old events, and the rest arrives
        append(inbox, [question(i) for i in range(3900, N)])
        bot = start_bot(cfg.source)
        wait_for(lambda: len(read_out(outbox)) >= N, 180, "all replies", [bot])
        time.sleep(1.0)  # would anything be sent twice?
    finally:
        bot.send_signal(signal.SIGTERM)
        try:
            bot.wait(30)
        except subprocess.TimeoutExpired:
            bot.kill()
    assert bot.returncode == 0, "graceful shutdown on SIGTERM"

    out = read_out(outbox)
    keys = Counter(r["idempotency_key"] for r in out)
    assert [k for k, n in keys.items() if n > 1] == []
    assert len(keys) == N
    assert {r["reply_to_id"] for r in out} == {f"q{i}" for i in range(N)}

    def q(sql: str) -> object:
        return asyncio.run(scalar(db_url, sql))

    assert q("select count(*) from message where author_is_bot = false") == N
    assert q("select count(distinct external_id) from message where author_is_bot = false") == N
    assert q("select count(*) from decision") == N
    assert q("select count(*) from outbox") == N
    assert q("select count(*) from outbox where state <> 'sent'") == 0
    assert q("select count(*) from work_item where state <> 'done'") == 0
