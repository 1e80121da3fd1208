"""``unsource stats`` and ``unsource report`` against a seeded database."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app
from bot.models import utcnow
from bot.storage import migrate
from bot.storage.engine import create_engine, session_factory
from tests.web.seed import make_config, seed


def seeded(tmp_path: Path) -> Path:
    url = f"sqlite+aiosqlite:///{tmp_path}/unsource.db"

    async def go() -> None:
        await migrate.upgrade(url)
        engine = create_engine(url)
        async with session_factory(engine)() as s, s.begin():
            await seed(s, utcnow())
        await engine.dispose()

    asyncio.run(go())
    make_config(tmp_path, url)
    return tmp_path / "config.yaml"


def test_stats_prints_the_key_figures(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = seeded(tmp_path)
    monkeypatch.setenv("TG_TOKEN", "123456789:AAFakeTokenForTestsOnly_abcdefghijk")
    runner = CliRunner()
    r = runner.invoke(app, ["stats", "--config", str(cfg), "--since", "7d", "--json"])
    assert r.exit_code == 0, r.output
    f = json.loads(r.output)
    assert f["questions"] == 5
    assert f["outcomes"] == {"auto": 1, "community": 1, "staff": 1, "waiting": 2}
    assert f["sla"]["compliance"] == 0.5 and f["savings"] == 20
    assert f["first_response_p50_s"] == pytest.approx(3900, abs=0.01)  # 10 and 120 minutes
    r = runner.invoke(app, ["stats", "--config", str(cfg)])
    assert r.exit_code == 0 and re.search(r"questions\s+5", r.output) and "SLA compliance" in r.output
    assert runner.invoke(app, ["stats", "--config", str(cfg), "--since", "soon"]).exit_code == 2


def test_report_is_one_self_contained_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = seeded(tmp_path)
    monkeypatch.setenv("TG_TOKEN", "123456789:AAFakeTokenForTestsOnly_abcdefghijk")
    out = tmp_path / "out" / "report.html"
    r = CliRunner().invoke(app, ["report", "--config", str(cfg), "--since", "30d", "--out", str(out)])
    assert r.exit_code == 0, r.output
    html = out.read_text("utf-8")
    assert '<div class="v" id="total">6</div>' in html  # 30 days include the 9-day-old thread
    assert html.count("<svg") >= 2
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)  # nothing fetched from elsewhere
    assert "<script" not in html
