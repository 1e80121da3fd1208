"""``unsource community ...``: reward export, leaderboards and helper overview for ops."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

community_app = typer.Typer(help="Community helpers: leaderboards, reward export, helper overview.")
console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

ConfigOpt = Annotated[
    Path, typer.Option("--config", "-c", help="configuration file", envvar="UNSOURCE_CONFIG")
]
DEFAULT_CONFIG = Path(os.environ.get("UNSOURCE_CONFIG", "config.yaml"))


def _url(config: Path) -> str:
    from bot.cli import _load

    return str(_load(config).settings.storage.url)


@community_app.command("export")
def export(
    period: Annotated[str, typer.Option("--period", help="a month, e.g. 2026-11")],
    config: ConfigOpt = DEFAULT_CONFIG,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="write here instead of stdout")] = None,
) -> None:
    """Points per helper (and per reason) for one month, as CSV, for reward programs."""
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", period):
        err.print("--period looks like 2026-11")
        raise typer.Exit(2)
    from bot.community.points import export_csv
    from bot.storage.engine import create_engine, session_factory

    url = _url(config)

    async def main() -> str:
        engine = create_engine(url)
        try:
            async with session_factory(engine)() as s:
                return await export_csv(s, period)
        finally:
            await engine.dispose()

    text = asyncio.run(main())
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="utf-8")
        err.print(f"wrote {max(0, len(text.splitlines()) - 1)} helper(s) to {out}")


@community_app.command("leaderboard")
def board(
    period: Annotated[str, typer.Option("--period", help="week, month or all")] = "all",
    topic: Annotated[str | None, typer.Option("--topic")] = None,
    config: ConfigOpt = DEFAULT_CONFIG,
) -> None:
    """Top helpers by points (this week, this month, or all time; optionally in one topic)."""
    if period not in ("week", "month", "all"):
        err.print("--period is week, month or all")
        raise typer.Exit(2)
    from bot.community.points import format_board, leaderboard, period_start
    from bot.models import utcnow
    from bot.storage.engine import create_engine, session_factory

    url = _url(config)

    async def main() -> str:
        engine = create_engine(url)
        try:
            async with session_factory(engine)() as s:
                rows = await leaderboard(s, since=period_start(period, utcnow()), topic=topic)
        finally:
            await engine.dispose()
        return format_board(rows, {"week": "This week", "month": "This month", "all": "All time"}[period])

    console.print(asyncio.run(main()), markup=False, highlight=False)


@community_app.command("helpers")
def helpers(config: ConfigOpt = DEFAULT_CONFIG) -> None:
    """Every helper (config and self-service) with load, points, acceptance and flags."""
    from bot.cli import _load
    from bot.community.profiles import base_profiles, load_roster
    from bot.storage.engine import create_engine, session_factory
    from triage.route import RouteSettings, acceptance, is_flagged

    cfg = _load(config)
    s = cfg.settings

    async def main() -> Table:
        engine = create_engine(s.storage.url)
        try:
            async with session_factory(engine)() as session:
                roster = await load_roster(session, base_profiles(s.helpers))
        finally:
            await engine.dispose()
        route = RouteSettings(
            flag_after_rejections=s.community.flag_after_rejections,
            flag_below_acceptance=s.community.flag_below_acceptance,
        )
        t = Table(
            "helper",
            "role",
            "status",
            "topics",
            "open",
            "points",
            "accepted",
            "rejected",
            "acceptance",
            "flag",
        )
        for key in sorted(roster.helpers):
            r = roster.helpers[key]
            p, st = r.profile, r.stats
            status = "retired" if not p.active else "away" if p.away else "active"
            t.add_row(
                key,
                p.role,
                status,
                ", ".join(sorted(p.topics)) or "any",
                f"{st.open}/{p.max_open}",
                str(r.points),
                str(st.accepted),
                str(st.rejected),
                f"{acceptance(st):.0%}",
                "FLAGGED" if is_flagged(st, route) else "",
            )
        return t

    console.print(asyncio.run(main()))
