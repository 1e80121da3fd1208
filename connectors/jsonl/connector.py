"""A connector over two JSON Lines files.

Inbound (``inbound``): one JSON object a line, tailed while running; the cursor is the byte
offset after the last complete line stored. Fields (only ``text`` is required)::

    {"id": "m1", "conversation_id": "general", "thread_ref": null, "kind": "channel_post",
     "author": {"id": "u1", "handle": "ann", "display_name": "Ann", "is_bot": false},
     "text": "how do I reset my password?", "sent_at": "2026-11-23T10:00:00Z",
     "reply_to_id": null, "target_id": null, "mentions_bot": false, "is_private": false}

``author`` may also be a plain string (the author id). A missing ``id`` becomes ``@<offset>``
(stable across re-reads); a missing ``sent_at`` becomes the time it was read.

Outbound (``outbound``): one JSON object per sent message, with its idempotency key. The
file doubles as the connector's idempotency record: a key already in it is not written
again, so a crash between writing and marking the outbox item sent never duplicates.

Lines that are not valid JSON or not a valid message are copied, with their offset and
the reason, to ``<inbound>.rejected`` and skipped: nothing is silently lost.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, ValidationError

from bot.errors import MalformedPayload, PermanentSendError, TransientError
from bot.models import (
    Author,
    Capabilities,
    FetchResult,
    HealthState,
    InboundMessage,
    MessageKind,
    OutboundMessage,
    SendReceipt,
    utcnow,
)
from connectors.base import ConnectorContext, ConnectorSettings, PullConnector
from connectors.textsplit import split_text


class JsonlSettings(ConnectorSettings):
    inbound: Path = Field(description="JSON Lines file to read messages from (tailed)")
    outbound: Path = Field(description="JSON Lines file replies are appended to")
    poll_interval: float = Field(default=0.2, gt=0, description="seconds between reads while idle")
    batch_size: int = Field(default=500, gt=0, le=10_000)
    max_text_length: int = Field(default=4000, gt=0)
    fsync: bool = Field(default=False, description="fsync the outbound file after each write")
    platform: str = Field(default="jsonl", description="platform name stamped on inbound messages")


def _message_from_line(obj: Any, *, connector_id: str, platform: str, offset: int) -> InboundMessage:
    if not isinstance(obj, dict):
        raise MalformedPayload(f"expected a JSON object, got {type(obj).__name__}")
    if "text" not in obj:
        raise MalformedPayload("missing 'text'")
    author = obj.get("author", "anonymous")
    if isinstance(author, str | int):
        author = {"id": str(author)}
    elif isinstance(author, dict) and "id" in author:
        author = {**author, "id": str(author["id"])}
    else:
        raise MalformedPayload("'author' must be a string id or an object with an 'id'")
    try:
        return InboundMessage(
            connector_id=connector_id,
            platform=platform,
            external_id=str(obj.get("id") or f"@{offset}"),
            conversation_id=str(obj.get("conversation_id", "default")),
            thread_ref=_opt_str(obj.get("thread_ref")),
            kind=MessageKind(obj.get("kind", MessageKind.CHANNEL_POST)),
            author=Author(**author),
            text=str(obj["text"]),
            sent_at=obj.get("sent_at") or utcnow(),
            reply_to_id=_opt_str(obj.get("reply_to_id")),
            target_id=_opt_str(obj.get("target_id")),
            mentions_bot=bool(obj.get("mentions_bot", False)),
            is_private=bool(obj.get("is_private", False)),
            title=_opt_str(obj.get("title")),
            reaction=_opt_str(obj.get("reaction")),
            button_data=_opt_str(obj.get("button_data")),
            permalink=_opt_str(obj.get("permalink")),
            raw=obj,
        )
    except (ValidationError, ValueError, TypeError) as exc:
        raise MalformedPayload(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from exc


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


class JsonlConnector(PullConnector[JsonlSettings]):
    name: ClassVar[str] = "jsonl"
    platform: ClassVar[str] = "jsonl"
    settings_model: ClassVar[type[ConnectorSettings]] = JsonlSettings
    capabilities: ClassVar[Capabilities] = Capabilities(
        mode="pull",
        max_text_length=4000,
        threads=True,
        dms=True,
        buttons=True,
        edits=True,
        deletes=True,
        rate_limits=(),
    )
    default_poll_interval: ClassVar[float] = 0.2
    #: the outbound file records idempotency keys, so re-sending after a crash is safe
    idempotent_send: ClassVar[bool] = True

    def __init__(self, connector_id: str, settings: JsonlSettings, context: ConnectorContext | None = None):
        super().__init__(connector_id, settings, context)
        self._sent: dict[str, SendReceipt] = {}
        self._out_lock = asyncio.Lock()
        self._seq = 0
        self.rejected = 0

    @property
    def rejected_path(self) -> Path:
        return self.settings.inbound.with_name(self.settings.inbound.name + ".rejected")

    async def start(self) -> None:
        self.settings.outbound.parent.mkdir(parents=True, exist_ok=True)
        if self.settings.outbound.exists():
            await asyncio.to_thread(self._load_sent)
        self.set_health(HealthState.OK, f"reading {self.settings.inbound}")

    def _load_sent(self) -> None:
        good = 0
        with self.settings.outbound.open("rb") as fh:
            for raw in fh:
                if not raw.endswith(b"\n"):
                    break  # a torn last line from a crash: that send did not complete
                good += len(raw)
                try:
                    row = json.loads(raw)
                except ValueError:
                    continue
                key = row.get("idempotency_key")
                if key:
                    self._sent[key] = SendReceipt(
                        external_ids=tuple(row["external_ids"]), sent_at=row["sent_at"]
                    )
                    self._seq += 1
        if good < self.settings.outbound.stat().st_size:
            self.log.warning("outbound file ends in a torn line (crash mid-write); truncating it")
            with self.settings.outbound.open("r+b") as fh:
                fh.truncate(good)

    async def fetch(self, cursor: str | None) -> FetchResult:
        offset = int(cursor) if cursor else 0
        path = self.settings.inbound
        try:
            lines, new_offset, more = await asyncio.to_thread(self._read_from, path, offset)
        except FileNotFoundError:
            self.set_health(HealthState.DEGRADED, f"inbound file {path} does not exist yet")
            return FetchResult(cursor=None, next_poll_after=max(1.0, self.settings.poll_interval))
        except OSError as exc:
            raise TransientError(f"cannot read {path}: {exc}") from exc
        messages: list[InboundMessage] = []
        rejects: list[str] = []
        for line_offset, raw in lines:
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
                messages.append(
                    _message_from_line(
                        obj, connector_id=self.id, platform=self.settings.platform, offset=line_offset
                    )
                )
            except (ValueError, MalformedPayload) as exc:
                reason = str(exc) if isinstance(exc, MalformedPayload) else f"invalid JSON: {exc}"
                rejects.append(
                    json.dumps(
                        {"offset": line_offset, "reason": reason, "line": raw.decode("utf-8", "replace")}
                    )
                )
        if rejects:
            self.rejected += len(rejects)
            await asyncio.to_thread(self._append_rejects, rejects)
            self.log.warning(
                "rejected %d malformed inbound line(s); see %s", len(rejects), self.rejected_path
            )
        self.set_health(HealthState.OK, f"offset {new_offset}", rejected=float(self.rejected))
        return FetchResult(
            messages=tuple(messages),
            cursor=str(new_offset) if new_offset != offset else None,
            more=more,
            next_poll_after=0.0 if more else self.settings.poll_interval,
        )

    def _read_from(self, path: Path, offset: int) -> tuple[list[tuple[int, bytes]], int, bool]:
        out: list[tuple[int, bytes]] = []
        with path.open("rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            if offset > size:  # the file was truncated or replaced: start over
                self.log.warning(
                    "inbound file shrank below the cursor (%d > %d); rereading from 0", offset, size
                )
                offset = 0
            fh.seek(offset)
            pos = offset
            while len(out) < self.settings.batch_size:
                raw = fh.readline()
                if not raw or not raw.endswith(b"\n"):
                    break  # end of file, or a line still being written
                out.append((pos, raw))
                pos += len(raw)
            more = len(out) >= self.settings.batch_size and pos < size
        return out, pos, more

    def _append_rejects(self, rows: list[str]) -> None:
        with self.rejected_path.open("a", encoding="utf-8") as fh:
            fh.write("".join(r + "\n" for r in rows))

    async def send(self, message: OutboundMessage) -> SendReceipt:
        if not message.text.strip() and message.card is None:
            raise PermanentSendError("refusing to send an empty message")
        async with self._out_lock:
            done = self._sent.get(message.idempotency_key)
            if done is not None:
                return done
            parts = split_text(message.text, self.settings.max_text_length)
            self._seq += 1
            ids = tuple(f"{self.id}-out-{self._seq}-{i}" for i in range(len(parts)))
            receipt = SendReceipt(external_ids=ids, sent_at=utcnow())
            row = {
                "idempotency_key": message.idempotency_key,
                "external_ids": list(ids),
                "sent_at": receipt.sent_at.isoformat(),
                "parts": parts,
                **message.model_dump(mode="json", exclude={"idempotency_key"}),
            }
            line = json.dumps(row, ensure_ascii=False) + "\n"
            try:
                await asyncio.to_thread(self._append_out, line)
            except OSError as exc:
                raise TransientError(f"cannot write {self.settings.outbound}: {exc}") from exc
            self._sent[message.idempotency_key] = receipt
            return receipt

    def _append_out(self, line: str) -> None:
        with self.settings.outbound.open("a", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()
            if self.settings.fsync:
                os.fsync(fh.fileno())
