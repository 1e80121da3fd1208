"""The ``unsource`` command line."""

from __future__ import annotations

import asyncio
import os
import sys
from importlib.metadata import version as pkg_version
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from bot.errors import ConfigError

app = typer.Typer(
    help="unsource: peer-to-peer customer support for X, Telegram and Discord communities.",
    no_args_is_help=True,
    add_completion=False,
)
db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
app.add_typer(db_app, name="db")
kb_app = typer.Typer(help="The knowledge base the bot answers from.", no_args_is_help=True)
app.add_typer(kb_app, name="kb")

console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

DEFAULT_CONFIG = Path(os.environ.get("UNSOURCE_CONFIG", "config.yaml"))
ConfigOpt = Annotated[
    Path, typer.Option("--config", "-c", help="configuration file", envvar="UNSOURCE_CONFIG")
]


def _version(value: bool) -> None:
    if value:
        console.print(f"unsource {pkg_version('unsource')}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="print the version and exit")
    ] = False,
) -> None:
    pass


def _load(path: Path):  # type: ignore[no-untyped-def]
    from bot.settings import load_config

    try:
        return load_config(path)
    except ConfigError as exc:
        err.print(f"[bold red]{len(exc.problems)} error(s) in {path}[/]")
        for p in exc.problems:
            err.print(f"  {p}", markup=False, highlight=False)
        raise typer.Exit(2) from None


@app.command("check-config")
def check_config(path: Annotated[Path, typer.Argument(help="configuration file")] = DEFAULT_CONFIG) -> None:
    """Validate a configuration: print a summary and exit 0, or every error and exit 2."""
    config = _load(path)
    console.print(f"[green]OK[/] {path}")
    for line in config.summary_lines():
        console.print(f"  {line}", markup=False, highlight=False)


@app.command()
def run(
    config: ConfigOpt = DEFAULT_CONFIG,
    role: Annotated[str, typer.Option(help="all | ingest | worker | scheduler")] = "all",
    upgrade: Annotated[bool, typer.Option("--upgrade/--no-upgrade", help="apply migrations on start")] = True,
    sandbox: Annotated[
        bool | None,
        typer.Option(
            "--sandbox/--no-sandbox",
            help="run against the local sandbox (default: sandbox.enabled; auto: no platform credentials)",
        ),
    ] = None,
    speed: Annotated[
        float | None,
        typer.Option(help="sandbox: how busy the simulated community is (default: sandbox.speed)"),
    ] = None,
) -> None:
    """Run the bot (connectors, triage workers, dispatcher, scheduler) until SIGINT/SIGTERM."""
    if role not in ("all", "ingest", "worker", "scheduler"):
        err.print(f"unknown role {role!r}: use all, ingest, worker or scheduler")
        raise typer.Exit(2)
    from bot import logging_setup
    from bot.app import App, install_signal_handlers
    from bot.config_watch import ConfigHolder, secrets_of

    cfg = _load(config)
    # --- sandbox (bot/sandbox_mode.py, docs/sandbox.md): no platform credentials -> the local sandbox
    from bot.sandbox_mode import sandbox_wanted

    if role == "all" and (sandbox if sandbox is not None else sandbox_wanted(cfg)):
        _run_sandbox(config, cfg, speed or cfg.settings.sandbox.speed, with_bot=True)
        return
    # --- end sandbox
    ls = cfg.settings.logging
    logging_setup.configure(ls.format, ls.level, secrets_of(cfg))
    holder = ConfigHolder(cfg)

    async def main() -> None:
        stop = asyncio.Event()
        install_signal_handlers(stop, holder)
        the_app = App(holder, role=role, upgrade=upgrade and cfg.settings.storage.auto_upgrade)  # type: ignore[arg-type]
        await the_app.run(stop)

    asyncio.run(main())


def _run_sandbox(path: Path, cfg, speed: float, *, with_bot: bool) -> None:  # type: ignore[no-untyped-def]
    from bot import logging_setup
    from bot.config_watch import secrets_of
    from bot.sandbox_mode import run_sandbox

    ls = cfg.settings.logging
    # the live summary owns the terminal: only warnings and errors are logged meanwhile
    logging_setup.configure(ls.format, "WARNING", secrets_of(cfg))
    if with_bot:
        console.print("[bold]starting the local sandbox[/]: fake Telegram, Discord and X (docs/sandbox.md)")
    asyncio.run(run_sandbox(path, speed=speed, with_bot=with_bot, console=console))


@app.command("sandbox")
def sandbox_cmd(
    config: ConfigOpt = DEFAULT_CONFIG,
    speed: Annotated[
        float | None, typer.Option(help="how fast the simulated community acts (2 = twice as busy)")
    ] = None,
    bot: Annotated[bool, typer.Option("--bot/--no-bot", help="also run the bot against the sandbox")] = False,
) -> None:
    """Start fake X, Telegram and Discord on 127.0.0.1 with a simulated community (docs/sandbox.md)."""
    cfg = _load(config)
    _run_sandbox(config, cfg, speed or cfg.settings.sandbox.speed, with_bot=bot)


@db_app.command("upgrade")
def db_upgrade(config: ConfigOpt = DEFAULT_CONFIG, revision: str = "head") -> None:
    """Apply database migrations up to REVISION (default: the newest)."""
    from bot.settings import redact_url
    from bot.storage import migrate

    cfg = _load(config)
    url = cfg.settings.storage.url
    asyncio.run(migrate.upgrade(url, revision))
    console.print(
        f"database at {redact_url(url)} is at revision {asyncio.run(migrate.current_revision(url))}"
    )


@kb_app.command("import")
def kb_import(
    file: Annotated[Path, typer.Argument(help="CSV or JSON Lines (.gz ok) of question/answer pairs")],
    config: ConfigOpt = DEFAULT_CONFIG,
    source: Annotated[str, typer.Option(help="recorded as the entries' source")] = "import",
) -> None:
    """Import question/answer pairs: stored in the database, then added to the matcher's index."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from bot.knowledge import KnowledgeService
    from bot.storage import migrate
    from bot.storage.engine import create_engine, session_factory
    from triage.kb_import import parse_kb_file

    if not file.exists():
        err.print(f"no such file: {file}")
        raise typer.Exit(2)
    cfg = _load(config)
    s = cfg.settings
    parsed = parse_kb_file(file)
    if parsed.skipped:
        err.print(f"skipped {len(parsed.skipped)} line(s):")
        for line, reason in parsed.skipped[:20]:
            err.print(f"  {file.name}:{line}: {reason}", markup=False)
        if len(parsed.skipped) > 20:
            err.print(f"  ... and {len(parsed.skipped) - 20} more")

    async def main() -> None:
        if s.storage.auto_upgrade:
            await migrate.upgrade(s.storage.url)
        engine = create_engine(s.storage.url)
        service = KnowledgeService(session_factory(engine), s.data_dir / "kb-index")
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        try:
            with Progress(*columns, console=err) as bar:
                opening = bar.add_task("loading index", total=None)
                await service.open(
                    progress=lambda done, total: bar.update(opening, completed=done, total=total)
                )
                storing = bar.add_task("storing", total=len(parsed.entries))
                for start in range(0, len(parsed.entries), 1000):
                    chunk = parsed.entries[start : start + 1000]
                    await service.upsert(chunk, source=source)
                    bar.advance(storing, len(chunk))
                indexing = bar.add_task("indexing", total=len(parsed.entries))
                await service.refresh(
                    progress=lambda done, total: bar.update(indexing, completed=done, total=total)
                )
            console.print(
                f"imported {len(parsed.entries)} entries, skipped {len(parsed.skipped)}; "
                f"knowledge base: {await service.stats()}"
            )
        finally:
            await engine.dispose()

    asyncio.run(main())


@kb_app.command("retire")
def kb_retire(entry_id: str, config: ConfigOpt = DEFAULT_CONFIG) -> None:
    """Stop answering from an entry (it stays in the database; running bots drop it on refresh)."""
    from bot.knowledge import KnowledgeService
    from bot.storage.engine import create_engine, session_factory

    cfg = _load(config)

    async def main() -> bool:
        engine = create_engine(cfg.settings.storage.url)
        try:
            service = KnowledgeService(session_factory(engine), cfg.settings.data_dir / "kb-index")
            return await service.retire(entry_id)
        finally:
            await engine.dispose()

    if not asyncio.run(main()):
        err.print(f"no active entry {entry_id!r}")
        raise typer.Exit(1)
    console.print(f"retired {entry_id}")


def _register_optional() -> None:
    from bot.commands.eval import eval_cli

    app.command("eval")(eval_cli)


_register_optional()


def _register_sla() -> None:  # staff commands on escalations (bot/sla/cli.py, docs/sla.md)
    from bot.sla.cli import sla_app

    app.add_typer(sla_app, name="sla")


_register_sla()


def _register_community() -> None:  # reward export, leaderboards (bot/community/cli.py, docs/community.md)
    from bot.community.cli import community_app

    app.add_typer(community_app, name="community")


_register_community()


def _register_reports() -> None:  # dashboard figures: terminal and HTML (bot/commands, docs/dashboard.md)
    from bot.commands.report import report_cli
    from bot.commands.stats import stats_cli

    app.command("stats")(stats_cli)
    app.command("report")(report_cli)


_register_reports()


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
