"""``unsource sla ...``: staff commands on escalations (snooze, assign, close) and status.

Heavy imports stay inside the commands so the CLI starts fast.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

sla_app = typer.Typer(help="SLA escalations: status, snooze, assign, close.", no_args_is_help=True)
console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

ConfigOpt = Annotated[
    Path, typer.Option("--config", "-c", help="configuration file", envvar="UNSOURCE_CONFIG")
]
ByOpt = Annotated[str, typer.Option("--by", help="who does it (for the audit note)")]
DEFAULT_CONFIG = Path(os.environ.get("UNSOURCE_CONFIG", "config.yaml"))
DEFAULT_BY = os.environ.get("USER", "staff")
T = TypeVar("T")


def _with_session(config: Path, fn: Callable[[Any, Any], Awaitable[T]]) -> T:
    """Run ``fn(session, config)`` in one transaction on the configured database."""
    from bot.errors import ConfigError, UnsourceError
    from bot.settings import load_config
    from bot.storage.engine import create_engine, session_factory

    try:
        cfg = load_config(config)
    except ConfigError as exc:
        err.print(f"{len(exc.problems)} error(s) in {config}")
        for p in exc.problems:
            err.print(f"  {p}", markup=False, highlight=False)
        raise typer.Exit(2) from None

    async def main() -> T:
        engine = create_engine(cfg.settings.storage.url)
        try:
            async with session_factory(engine)() as s, s.begin():
                return await fn(s, cfg)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(main())
    except UnsourceError as exc:
        err.print(str(exc), markup=False)
        raise typer.Exit(1) from None


@sla_app.command("snooze")
def snooze_cmd(
    thread: int,
    duration: Annotated[str, typer.Argument(help='how long nothing fires, e.g. "30m", "2h"')],
    config: ConfigOpt = DEFAULT_CONFIG,
    by: ByOpt = DEFAULT_BY,
) -> None:
    """Hold the escalation ladder of THREAD for DURATION (the stages keep their gaps)."""
    from bot.config_types import parse_duration
    from bot.models import utcnow
    from bot.sla import commands

    try:
        d = parse_duration(duration)
    except ValueError as exc:
        err.print(str(exc), markup=False)
        raise typer.Exit(2) from None
    n = _with_session(config, lambda s, _c: commands.snooze(s, thread, d, by, utcnow()))
    console.print(f"thread #{thread}: {n} stage(s) snoozed until {utcnow() + d:%Y-%m-%d %H:%M} UTC")


@sla_app.command("assign")
def assign_cmd(
    thread: int,
    name: Annotated[str, typer.Argument(help="a helper's or staff member's name from config")],
    config: ConfigOpt = DEFAULT_CONFIG,
    by: ByOpt = DEFAULT_BY,
) -> None:
    """Re-assign THREAD to NAME: they are tagged now and in every later reminder."""
    from bot.models import utcnow
    from bot.pipeline.roles import Directory
    from bot.sla import commands

    msg = _with_session(
        config,
        lambda s, c: commands.assign(
            s, thread, name, directory=Directory(tuple(c.settings.helpers)), by=by, now=utcnow()
        ),
    )
    console.print(f"thread #{thread}: assigned to {name} (notice queued: {msg.idempotency_key})")


@sla_app.command("close")
def close_cmd(thread: int, config: ConfigOpt = DEFAULT_CONFIG, by: ByOpt = DEFAULT_BY) -> None:
    """Close the escalation of THREAD: no further stages fire until the asker writes again."""
    from bot.models import utcnow
    from bot.sla import commands

    n = _with_session(config, lambda s, _c: commands.close(s, thread, by, utcnow()))
    console.print(f"thread #{thread}: escalation closed ({n} pending stage(s) cancelled)")


@sla_app.command("status")
def status_cmd(
    thread: Annotated[int | None, typer.Argument(help="one thread; default: the next due stages")] = None,
    config: ConfigOpt = DEFAULT_CONFIG,
    limit: int = 20,
) -> None:
    """Show a thread's SLA stages, or the next due stages overall with counts by state."""
    from bot.sla import commands

    async def go(s: Any, _c: Any) -> tuple[list[commands.StageInfo], dict[str, int]]:
        return await commands.status(s, thread, limit), await commands.counts(s)

    rows, counts = _with_session(config, go)
    if thread is None:
        console.print("stages: " + (", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"))
    for r in rows:
        fired = f" fired {r.fired_at:%H:%M:%S} by {r.fired_by}" if r.fired_at else ""
        note = f" ({r.note})" if r.note else ""
        console.print(
            f"#{r.thread_id} {r.policy} {r.clock} {r.at} {r.action}: {r.state}, due "
            f"{r.due_at:%Y-%m-%d %H:%M:%S} UTC{fired}{note}",
            markup=False,
            highlight=False,
        )
