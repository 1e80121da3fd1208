"""Several worker processes share one PostgreSQL database: each message is triaged once."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import fresh_pg_url, pg_base_url
from tests.pipeline.helpers import append, make_config, question, read_out
from tests.pipeline.test_crash import start_bot, wait_for
from tests.pipeline.test_pipeline import scalar

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

N = 10_000


@pytest.fixture
def pg_url() -> Iterator[str]:
    base = pg_base_url()
    if base is None:
        pytest.skip("UNSOURCE_TEST_DATABASE_URL not set (CI sets it)")
    yield from fresh_pg_url(base)


def test_three_workers_and_one_ingest_process_triage_each_message_once(tmp_path: Path, pg_url: str) -> None:
    cfg = make_config(tmp_path, pg_url, workers=1, batch=100, triage="rules")
    assert cfg.source is not None
    data = tmp_path / "data"
    from bot.storage import migrate

    asyncio.run(migrate.upgrade(pg_url))
    procs = [start_bot(cfg.source, "--role", "ingest", "--no-upgrade")]
    procs += [start_bot(cfg.source, "--role", "worker", "--no-upgrade") for _ in range(3)]
    try:
        for start in range(0, N, 1000):
            append(data / "in.jsonl", [question(i) for i in range(start, start + 1000)])
        wait_for(lambda: len(read_out(data / "out.jsonl")) >= N, 300, "all replies", procs)
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                p.kill()

    def q(sql: str) -> object:
        return asyncio.run(scalar(pg_url, sql))

    assert q("select count(*) from decision") == N
    assert q("select count(distinct message_id) from decision") == N
    # the work really was shared: every worker process decided some
    per_worker = q("select count(distinct left(decided_by, length(decided_by) - 3)) from decision")
    assert per_worker == 3
    keys = [r["idempotency_key"] for r in read_out(data / "out.jsonl")]
    assert len(keys) == len(set(keys)) == N
