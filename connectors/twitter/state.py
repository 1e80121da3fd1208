"""The connector's small local state file (``<data_dir>/twitter-<connector id>.json``).

It holds what must survive a restart but is not the core's business: this month's usage (so a
restart does not reset the budget), the bot account (so ``users/me`` is not asked again), and a
journal of sends by idempotency key (so a retried reply chain continues where it stopped
instead of posting its first parts again). Writes are atomic (temp file + rename).
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

JOURNAL_SIZE = 2000


@dataclass
class SendRecord:
    ids: list[str]
    done: bool
    sent_at: str


@dataclass
class LocalState:
    path: Path
    usage: dict[str, Any] | None = None
    me: dict[str, str] | None = None
    journal: OrderedDict[str, SendRecord] = field(default_factory=OrderedDict)
    _written: str = field(default="", repr=False)

    @classmethod
    def load(cls, path: Path) -> LocalState:
        state = cls(path)
        try:
            data = json.loads(path.read_text("utf-8"))
        except FileNotFoundError:
            return state
        except (OSError, ValueError):
            path.replace(path.with_suffix(".corrupt"))  # keep it for a human; start afresh
            return state
        if isinstance(data, dict):
            state.usage = data.get("usage")
            me = data.get("me")
            if isinstance(me, dict) and "id" in me and "username" in me:
                state.me = {"id": str(me["id"]), "username": str(me["username"])}
            for key, rec in (data.get("journal") or {}).items():
                state.journal[str(key)] = SendRecord(
                    ids=[str(i) for i in rec.get("ids", [])],
                    done=bool(rec.get("done")),
                    sent_at=str(rec.get("sent_at", "")),
                )
        return state

    def record(self, key: str, record: SendRecord) -> None:
        self.journal[key] = record
        self.journal.move_to_end(key)
        while len(self.journal) > JOURNAL_SIZE:
            self.journal.popitem(last=False)

    def save(self) -> None:
        data = {
            "usage": self.usage,
            "me": self.me,
            "journal": {
                k: {"ids": r.ids, "done": r.done, "sent_at": r.sent_at} for k, r in self.journal.items()
            },
        }
        blob = json.dumps(data, separators=(",", ":"))
        if blob == self._written:
            return  # nothing changed since the last write
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(blob, "utf-8")
        os.replace(tmp, self.path)
        self._written = blob
