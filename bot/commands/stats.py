"""``unsource stats [--since 7d]``: the dashboard's key figures in the terminal."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from bot.analytics.stats import OUTCOMES, Overview, human_duration
from bot.analytics.trends import Trend
from bot.config_types import parse_duration
from bot.errors import ConfigError
from bot.models import utcnow
from bot.settings import Config, load_config

console = Console()
err = Console(stderr=True)


def load(path: Path) -> Config:
    try:
        return load_config(path)
    except ConfigError as exc:
        err.print(f"[bold red]{len(exc.problems)} error(s) in {path}[/]")
        for p in exc.problems:
            err.print(f"  {p}", markup=False, highlight=False)
        raise typer.Exit(2) from None


def span_of(since: str) -> timedelta:
    try:
        return parse_duration(since)
    except (ValueError, TypeError):
        raise typer.BadParameter(f"--since: expected a duration like 24h, 7d or 30d, got {since!r}") from None


async def gather(config: Config, span: timedelta) -> tuple[Overview, list[Trend]]:
    """The overview and the trends, read from the configured database."""
    from sqlalchemy.exc import OperationalError, ProgrammingError

    from bot.analytics.queries import has_table, load_overview
    from bot.analytics.trends import load_trends
    from bot.storage.engine import create_engine, session_factory

    engine = create_engine(config.settings.storage.url)
    try:
        async with session_factory(engine)() as s:
            if not await has_table(s, "thread"):
                err.print("the database has no tables yet: run `unsource db upgrade` (or start the bot)")
                raise typer.Exit(1)
            now = utcnow()
            try:
                ov = await load_overview(s, config.settings, now - span, now)
                trends = await load_trends(s, config.settings.web.trends, now)
            except (OperationalError, ProgrammingError) as exc:
                err.print(f"cannot read the database: {exc.orig}")
                raise typer.Exit(1) from None
            return ov, trends
    finally:
        await engine.dispose()


def figures(ov: Overview) -> dict[str, Any]:
    """The key figures as plain values (``--json`` and tests)."""
    return {
        "since": ov.since.isoformat(),
        "until": ov.until.isoformat(),
        "questions": ov.total,
        "outcomes": dict(ov.deflection.counts),
        "shares": {o: round(ov.deflection.share(o), 4) for o in OUTCOMES},
        "first_response_p50_s": ov.p50_s,
        "first_response_p90_s": ov.p90_s,
        "responses": ov.responses,
        "sla": {
            "met": ov.sla.met,
            "breached": ov.sla.breached,
            "pending": ov.sla.pending,
            "compliance": ov.sla.compliance,
        },
        "resolved_without_staff": ov.deflection.resolved_without_staff,
        "savings": ov.savings,
        "currency": ov.currency,
        "open_by_state": ov.open_by_state,
        "per_platform": {p: sum(v) for p, v in ov.volume.items()},
        "decisions_by_kind": ov.decisions_by_kind,
    }


def stats_cli(
    config: Annotated[Path, typer.Option("--config", "-c", envvar="UNSOURCE_CONFIG")] = Path("config.yaml"),
    since: Annotated[str, typer.Option(help="period: 24h, 7d, 30d, ...")] = "7d",
    json_out: Annotated[bool, typer.Option("--json", help="print JSON instead of tables")] = False,
) -> None:
    """Key figures for a period: questions, deflection, first response, SLA, savings, trends."""
    span = span_of(since)
    ov, trends = asyncio.run(gather(load(config), span))
    f = figures(ov)
    if json_out:
        f["trends"] = [
            {"kind": t.kind, "name": t.label, "peak": t.latest.peak_count, "expected": t.latest.expected}
            for t in trends
            if t.is_recent() and t.latest is not None
        ]
        console.print_json(json.dumps(f))
        return
    console.print(
        f"[bold]unsource[/] · last {since} ({ov.since:%Y-%m-%d %H:%M} – {ov.until:%Y-%m-%d %H:%M} UTC)"
    )
    t = Table(show_header=False, box=None, pad_edge=False)
    t.add_column(style="dim")
    t.add_column(justify="right", style="bold")
    t.add_row("questions", str(ov.total))
    for o, label in (
        ("auto", "auto-answered"),
        ("community", "solved by helpers"),
        ("staff", "handled by staff"),
    ):
        t.add_row(label, f"{ov.deflection.share(o):.0%} ({ov.deflection.counts[o]})")  # type: ignore[arg-type]
    t.add_row("waiting", str(ov.deflection.counts["waiting"]))
    t.add_row("first response p50 / p90", f"{human_duration(ov.p50_s)} / {human_duration(ov.p90_s)}")
    c = ov.sla.compliance
    rate = "-" if c is None else f"{c:.0%}"
    t.add_row(
        "SLA compliance", f"{rate} ({ov.sla.met} met, {ov.sla.breached} breached, {ov.sla.pending} pending)"
    )
    t.add_row(
        "estimated savings",
        f"{ov.savings:,.0f} {ov.currency} ({ov.deflection.resolved_without_staff} threads)",
    )
    t.add_row("open threads", str(sum(ov.open_by_state.values())))
    console.print(t)
    if ov.volume:
        p = Table(title="questions per platform")
        p.add_column("platform")
        p.add_column("questions", justify="right")
        for name, values in ov.volume.items():
            p.add_row(name, str(sum(values)))
        console.print(p)
    if ov.open_by_state:
        s = Table(title="open threads by state")
        s.add_column("state")
        s.add_column("threads", justify="right")
        for state, n in ov.open_by_state.items():
            s.add_row(state, str(n))
        console.print(s)
    spiking = [tr for tr in trends if tr.is_recent() and tr.latest is not None]
    if spiking:
        tt = Table(title="trends above their baseline now")
        for col in ("kind", "name", "peak", "expected"):
            tt.add_column(col)
        for tr in spiking:
            assert tr.latest is not None
            tt.add_row(tr.kind, tr.label, str(tr.latest.peak_count), f"{tr.latest.expected:.1f}")
        console.print(tt)
    else:
        console.print("[dim]no trend above its baseline right now[/]")
