"""Real processes: the bot is killed before a deadline and started after it; the stage fires
exactly once at start, and says it is overdue because the bot was offline."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.pipeline.helpers import append, make_config, question, read_out
from tests.pipeline.test_crash import start_bot, wait_for
from tests.pipeline.test_pipeline import scalar

pytestmark = pytest.mark.slow

SLA = """\
web:
  enabled: false
sla:
  sweep_interval: 1s
  offline_after: 2s
  policies:
    - name: quick
      first_response: 8s
      stages:
        - { at: "100%", action: escalate }
"""


def _dt(value: object) -> datetime:
    d = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return d if d.tzinfo else d.replace(tzinfo=UTC)


def test_stage_due_while_down_fires_once_at_start_marked_overdue(tmp_path: Path, db_url: str) -> None:
    cfg = make_config(tmp_path, db_url, extra=SLA)
    assert cfg.source is not None
    out = tmp_path / "data" / "out.jsonl"

    def q(sql: str) -> object:
        return asyncio.run(scalar(db_url, sql))

    def escalations() -> list[dict[str, object]]:
        return [r for r in read_out(out) if r["purpose"] == "escalation"]

    bot = start_bot(cfg.source)
    try:
        append(tmp_path / "data" / "in.jsonl", [question(1)])
        wait_for(lambda: len(read_out(out)) >= 1, 90, "the helpers tag", [bot])
        wait_for(lambda: q("select count(*) from sla_stage where state = 'pending'") == 1, 10, "the deadline")
        bot.send_signal(signal.SIGKILL)
        bot.wait()
        due = _dt(q("select due_at from sla_stage"))
        assert datetime.now(UTC) < due, "killed before the deadline"
        time.sleep(max(0.0, (due - datetime.now(UTC)).total_seconds()) + 4.0)  # down past the deadline
        assert escalations() == []

        bot = start_bot(cfg.source)
        wait_for(lambda: len(escalations()) >= 1, 90, "the escalation after restart", [bot])
        time.sleep(2.0)  # would it fire again?
    finally:
        bot.send_signal(signal.SIGTERM)
        try:
            bot.wait(30)
        except subprocess.TimeoutExpired:
            bot.kill()

    (esc,) = escalations()
    assert "bot was offline" in str(esc["text"]) and "Overdue by" in str(esc["text"])
    assert q("select count(*) from sla_stage where state = 'fired'") == 1
    late = (_dt(q("select fired_at from sla_stage")) - due).total_seconds()
    assert late > 2.0
    assert q("select state from thread") == "escalated"
    assert q("select count(*) from outbox where purpose = 'escalation'") == 1
