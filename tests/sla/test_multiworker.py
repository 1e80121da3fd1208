"""Three scheduling processes on one PostgreSQL database; 1,000 threads fall due in the same
second; every stage fires exactly once (and is sent once by the dispatcher)."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.sla.policy import Planner
from bot.storage.engine import create_engine, session_factory
from tests.conftest import fresh_pg_url, pg_base_url
from tests.pipeline.helpers import read_out
from tests.pipeline.test_crash import start_bot, wait_for
from tests.pipeline.test_pipeline import scalar
from tests.sla.helpers import seed, sla_config

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

N = 1000
SLA = """\
  sweep_interval: 1s
  sweep_batch: 100
  policies:
    - name: due-together
      first_response: 3s
      stages:
        - { at: "100%", action: escalate }
"""


@pytest.fixture
def pg_url() -> Iterator[str]:
    base = pg_base_url()
    if base is None:
        pytest.skip("UNSOURCE_TEST_DATABASE_URL not set (CI sets it)")
    yield from fresh_pg_url(base)


async def _seed(url: str, planner: Planner, opened_at: datetime) -> None:
    engine = create_engine(url)
    try:
        await seed(session_factory(engine), planner, range(1, N + 1), opened_at, tagged=())
    finally:
        await engine.dispose()


def test_three_schedulers_fire_each_stage_exactly_once(tmp_path: Path, pg_url: str) -> None:
    cfg = sla_config(tmp_path, pg_url, SLA, level="INFO")
    assert cfg.source is not None
    from bot.storage import migrate

    asyncio.run(migrate.upgrade(pg_url))
    log = cfg.source.with_suffix(".log")
    procs = [start_bot(cfg.source, "--role", "scheduler", "--no-upgrade") for _ in range(3)]
    procs.append(start_bot(cfg.source, "--role", "ingest", "--no-upgrade"))  # the dispatcher sends
    out = tmp_path / "data" / "out.jsonl"

    def escalations() -> list[dict[str, object]]:
        return [r for r in read_out(out) if r["purpose"] == "escalation"]

    try:
        wait_for(
            lambda: log.exists() and log.read_text("utf-8").count("unsource running") == 4,
            120,
            "4 processes",
            procs,
        )
        # every thread's one stage falls due 3 s from now, in the same second
        asyncio.run(_seed(pg_url, Planner(cfg.settings.sla), datetime.now(UTC)))
        wait_for(lambda: len(escalations()) >= N, 120, "all escalations sent", procs)
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

    assert q("select count(*) from sla_stage where state = 'fired'") == N
    assert q("select count(*) from sla_stage where state <> 'fired'") == 0
    assert q("select count(*) from outbox where purpose = 'escalation'") == N
    keys = Counter(str(r["idempotency_key"]) for r in escalations())
    assert len(keys) == N and max(keys.values()) == 1, "each stage sent exactly once"
    assert {k.split(":")[0] for k in keys} == {f"t{i}" for i in range(1, N + 1)}
    due = q("select max(due_at) - min(due_at) from sla_stage")
    assert isinstance(due, timedelta) and due < timedelta(seconds=60)  # the same minute
    per_process = q("select count(distinct fired_by) from sla_stage")
    late = q("select max(fired_at - due_at) from sla_stage")
    print(f"stages fired by {per_process} process(es); lateness max {late}")
    assert isinstance(per_process, int) and per_process >= 2, "the sweepers shared the work"
