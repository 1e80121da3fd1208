"""``unsource report --since 30d --out report.html``: one self-contained HTML file with the key
figures and inline SVG charts (no scripts, no external resources: it opens offline and mails well)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from rich.console import Console

from bot.analytics.stats import OUTCOMES, human_duration
from bot.commands.stats import figures, gather, load, span_of
from bot.web import charts

console = Console()
WEB = Path(__file__).resolve().parents[1] / "web"


def render_report(ov: object, trends: list[object], since: str) -> str:
    from bot.analytics.stats import Overview
    from bot.analytics.trends import Trend

    assert isinstance(ov, Overview)
    env = Environment(loader=FileSystemLoader(WEB / "templates"), autoescape=select_autoescape(["html"]))
    env.filters["dur"] = human_duration
    shares: dict[str, float] = {o: ov.deflection.share(o) for o in OUTCOMES}
    items = [
        {
            "t": t,
            "spark": Markup(
                charts.sparkline(t.counts, mark_from=t.latest.start if t.latest and t.is_recent() else None)
            ),
        }
        for t in trends
        if isinstance(t, Trend) and t.spikes
    ]
    return env.get_template("report.html").render(
        ov=ov,
        f=figures(ov),
        since=since,
        shares=shares,
        css=Markup((WEB / "static" / "style.css").read_text(encoding="utf-8")),
        volume_svg=Markup(charts.stacked_bars(ov.buckets, ov.volume, title="questions per platform")),
        share_svg=Markup(charts.share_bar(shares)),
        trends=items,
    )


def report_cli(
    config: Annotated[Path, typer.Option("--config", "-c", envvar="UNSOURCE_CONFIG")] = Path("config.yaml"),
    since: Annotated[str, typer.Option(help="period: 7d, 30d, 90d, ...")] = "30d",
    out: Annotated[Path, typer.Option("--out", "-o", help="HTML file to write")] = Path("report.html"),
) -> None:
    """Write a self-contained HTML report (figures and charts) for a period."""
    span = span_of(since)
    ov, trends = asyncio.run(gather(load(config), span))
    html = render_report(ov, list(trends), since)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    console.print(f"wrote {out} ({len(html):,} bytes): {ov.total} questions, last {since}")
