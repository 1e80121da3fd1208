"""``unsource sla ...`` on a real database."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from typer.testing import CliRunner

from bot.cli import app
from bot.models import utcnow
from bot.sla.policy import Planner
from bot.storage import migrate
from bot.storage.engine import create_engine, session_factory
from tests.pipeline.test_pipeline import scalar
from tests.sla.helpers import seed, sla_config


def test_status_snooze_assign_close(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/sla.db"
    cfg = sla_config(tmp_path, url)
    assert cfg.source is not None

    async def prepare() -> None:
        await migrate.upgrade(url)
        engine = create_engine(url)
        try:
            await seed(
                session_factory(engine), Planner(cfg.settings.sla), [42], utcnow() - timedelta(minutes=1)
            )
        finally:
            await engine.dispose()

    asyncio.run(prepare())
    runner = CliRunner()
    c = ["--config", str(cfg.source)]

    res = runner.invoke(app, ["sla", "status", *c])
    assert res.exit_code == 0, res.output
    assert "pending 4" in res.output and "#42 default first_response 50% remind: pending" in res.output

    res = runner.invoke(app, ["sla", "snooze", "42", "1h", "--by", "sam", *c])
    assert res.exit_code == 0 and "4 stage(s) snoozed" in res.output, res.output
    res = runner.invoke(app, ["sla", "status", "42", *c])
    assert res.output.count("(snoozed by sam)") == 4

    res = runner.invoke(app, ["sla", "assign", "42", "Cy", *c])
    assert res.exit_code == 0 and "assigned to Cy" in res.output, res.output
    assert asyncio.run(scalar(url, "select assignee from sla_thread where thread_id = 42")) == "Cy"

    res = runner.invoke(app, ["sla", "close", "42", *c])
    assert res.exit_code == 0 and "4 pending stage(s) cancelled" in res.output

    bad = runner.invoke(app, ["sla", "assign", "42", "Nobody", *c])
    assert bad.exit_code == 1 and "no helper or staff named 'Nobody'" in bad.output
    bad = runner.invoke(app, ["sla", "snooze", "42", "soon", *c])
    assert bad.exit_code == 2
