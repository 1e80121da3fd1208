"""``unsource eval``: score the knowledge matcher and its answer gate on a labelled corpus."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, cast

import typer
from rich.console import Console
from rich.table import Table

from triage.evaluate import Mode, run_eval
from triage.matcher import MatcherKind

MODES = ("full", "rerank")
MATCHERS = ("bm25", "dense", "hybrid")


def eval_command(corpus: Path, queries: Path, mode: str, matcher: str, json_out: bool) -> None:
    """Build a fresh knowledge base from ``corpus``, run ``queries``, print the figures."""
    if mode not in MODES:
        raise typer.BadParameter(f"--mode must be one of {', '.join(MODES)}")
    if matcher not in MATCHERS:
        raise typer.BadParameter(f"--matcher must be one of {', '.join(MATCHERS)}")
    for path in (corpus, queries):
        if not path.is_file():
            raise typer.BadParameter(f"no such file: {path}")
    result = run_eval(
        corpus, queries, mode=cast(Mode, mode), matcher=cast(MatcherKind, matcher), show_progress=not json_out
    )
    if json_out:
        typer.echo(json.dumps(result))
        return
    table = Table(title=f"{corpus.parent.name or corpus.name}: {matcher}, {mode}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in result.items():
        table.add_row(key, f"{value}")
    Console().print(table)


app = typer.Typer(add_completion=False)


@app.command("eval")
def eval_cli(
    corpus: Annotated[
        Path, typer.Option("--corpus", help="corpus .jsonl[.gz]: {id, title, body, answer_id?}")
    ],
    queries: Annotated[
        Path,
        typer.Option("--queries", help="queries .jsonl[.gz]: {id, text, positives, candidates, in_scope?}"),
    ],
    mode: Annotated[
        str, typer.Option("--mode", help="full: rank the whole corpus; rerank: only candidates")
    ] = "full",
    matcher: Annotated[str, typer.Option("--matcher", help="bm25 | dense | hybrid")] = "hybrid",
    json_out: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Evaluate the knowledge matcher and the auto-answer gate."""
    eval_command(corpus, queries, mode, matcher, json_out)
