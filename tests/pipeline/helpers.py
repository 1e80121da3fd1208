"""Helpers for pipeline tests: a config on temp files, jsonl traffic, reading results."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bot.settings import Config, load_config

BASE_CONFIG = """\
data_dir: {data}
storage:
  url: {url}
logging:
  level: WARNING
connectors:
  local:
    type: jsonl
    settings:
      inbound: {data}/in.jsonl
      outbound: {data}/out.jsonl
      poll_interval: 0.05
      batch_size: {batch}
pipeline:
  workers: {workers}
  idle_poll: 50ms
  triage: {triage}
dispatcher:
  idle_poll: 50ms
  backoff_base: 100ms
  backoff_cap: 1s
staff:
  connector: local
  conversation: staff
helpers:
  - name: Ann
    identities: {{ local: ann }}
    handles: {{ local: ann }}
    topics: [login]
    max_open: 100000  # these tests send many questions: the load cap (docs/community.md) is not their subject
  - name: Bo
    identities: {{ local: bo }}
    handles: {{ local: bo }}
    max_open: 100000
  - name: Sam
    role: staff
    identities: {{ local: sam }}
"""


def make_config(
    tmp: Path, url: str, *, workers: int = 2, batch: int = 500, extra: str = "", triage: str = "product"
) -> Config:
    """A config on temp files. ``triage="rules"`` keeps model inference out of durability tests."""
    data = tmp / "data"
    data.mkdir(parents=True, exist_ok=True)
    (data / "in.jsonl").touch()
    path = tmp / "config.yaml"
    path.write_text(
        BASE_CONFIG.format(data=data, url=url, workers=workers, batch=batch, triage=triage) + extra,
        encoding="utf-8",
    )
    return load_config(path, env={})


def append(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("a", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")


def question(i: int, **kw: Any) -> dict[str, Any]:
    return {
        "id": f"q{i}",
        "author": {"id": f"cust{i}", "handle": f"cust{i}"},
        "text": f"my app crashes on login after the update, what can I do? #{i}",
        **kw,
    }


def read_out(path: Path) -> list[dict[str, Any]]:
    """The complete lines of the bot's outbound file. Read while the bot appends, the last line
    can be half written (an append that spans a page boundary becomes visible in pieces): it is
    left for the next read, as the connector itself does with a torn line at start."""
    if not path.exists():
        return []
    text = path.read_bytes().decode("utf-8", "replace")
    complete = text[: text.rfind("\n") + 1]
    return [json.loads(line) for line in complete.splitlines() if line.strip()]
