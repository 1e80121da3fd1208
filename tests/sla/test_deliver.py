"""Webhook (signed, retried) and e-mail escalations against real local servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import text

from bot.sla.deliver import deliver_due, verify
from bot.sla.sweep import SlaRuntime, sweep
from bot.storage.engine import create_engine, session_factory
from tests.sla.helpers import seed, sla_config

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


@dataclass
class Hook:
    """A webhook receiver that answers with scripted statuses (then 200)."""

    statuses: list[int] = field(default_factory=list)
    calls: list[tuple[dict[str, str], bytes]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        self.calls.append((dict(request.headers), await request.read()))
        status = self.statuses.pop(0) if self.statuses else 200
        return web.Response(status=status, text="ok" if status < 300 else "nope")


@dataclass
class Smtp:
    """A minimal SMTP server: enough of RFC 5321 for smtplib's send_message."""

    messages: list[bytes] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"220 fake ESMTP\r\n")
        data: list[bytes] | None = None
        while line := await reader.readline():
            if data is not None:
                if line == b".\r\n":
                    self.messages.append(b"".join(data))
                    data = None
                    writer.write(b"250 queued\r\n")
                else:
                    data.append(line)
                    continue
            else:
                cmd = line[:4].upper()
                if cmd in (b"EHLO", b"HELO"):
                    writer.write(b"250 fake\r\n")
                elif cmd in (b"MAIL", b"RCPT", b"RSET", b"NOOP"):
                    writer.write(b"250 ok\r\n")
                elif cmd == b"DATA":
                    writer.write(b"354 go ahead\r\n")
                    data = []
                elif cmd == b"QUIT":
                    writer.write(b"221 bye\r\n")
                    await writer.drain()
                    break
                else:
                    writer.write(b"502 not implemented\r\n")
            await writer.drain()
        writer.close()


@pytest.fixture
async def servers() -> AsyncIterator[tuple[Hook, Smtp, int, int]]:
    hook, smtp = Hook(), Smtp()
    app = web.Application()
    app.router.add_post("/hook", hook.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    http_port = runner.addresses[0][1]
    server = await asyncio.start_server(smtp.handle, "127.0.0.1", 0)
    smtp_port = server.sockets[0].getsockname()[1]
    try:
        yield hook, smtp, http_port, smtp_port
    finally:
        server.close()
        await runner.cleanup()


EXTRA = """\
  smtp: {{ host: 127.0.0.1, port: {smtp}, starttls: false, sender: bot@example.com }}
  webhook: {{ backoff_base: 1s, max_attempts: 3 }}
  targets:
    hook: {{ type: webhook, url: "http://127.0.0.1:{http}/hook", secret: s3cret }}
    oncall: {{ type: email, to: [oncall@example.com] }}
  policies:
    - name: default
      first_response: 10m
      stages:
        - {{ at: "100%", action: escalate, audience: [staff, hook, oncall] }}
"""


async def test_webhook_signed_retried_and_email_sent(tmp_path: Path, servers: Any) -> None:
    hook, smtp, http_port, smtp_port = servers
    hook.statuses = [503]  # the first POST fails: retried with backoff
    url = f"sqlite+aiosqlite:///{tmp_path}/sla.db"
    from bot.storage import migrate

    await migrate.upgrade(url)
    cfg = sla_config(tmp_path, url, EXTRA.format(http=http_port, smtp=smtp_port))
    rt = SlaRuntime.from_config(cfg)
    engine = create_engine(url)
    sessions = session_factory(engine)
    try:
        await seed(sessions, rt.planner, [7], T0)
        r = await sweep(sessions, rt, "p", clock=lambda: T0 + timedelta(minutes=11))
        assert (r.fired, r.messages, r.external) == (1, 1, 2)
        async with aiohttp.ClientSession() as http:
            first = await deliver_due(sessions, rt.settings, "p", http)
            assert (first.sent, first.retried, first.failed) == (1, 1, 0)  # e-mail sent, webhook retried
            again = await deliver_due(sessions, rt.settings, "p", http)
            assert again.sent == 0  # not before its backoff
            later = await deliver_due(
                sessions, rt.settings, "p", http, now=datetime.now(UTC) + timedelta(seconds=5)
            )
            assert later.sent == 1
        async with sessions() as s:
            states: dict[str, str] = dict(
                (await s.execute(text("select kind, state from sla_delivery"))).all()
            )
            attempts = (
                await s.execute(text("select attempts from sla_delivery where kind = 'webhook'"))
            ).scalar()
    finally:
        await engine.dispose()
    assert states == {"webhook": "sent", "email": "sent"} and attempts == 2

    assert len(hook.calls) == 2
    (h1, b1), (h2, b2) = hook.calls
    assert (
        b1 == b2
        and h1["X-Unsource-Delivery"] == h2["X-Unsource-Delivery"] == "t7:sla:default:first_response.7.0:hook"
    )
    assert verify("s3cret", h2["X-Unsource-Timestamp"], b2, h2["X-Unsource-Signature"])
    assert not verify("wrong", h2["X-Unsource-Timestamp"], b2, h2["X-Unsource-Signature"])
    body = json.loads(b2)
    assert body["event"] == "sla.stage" and body["thread"] == 7 and body["action"] == "escalate"
    assert "[card]" in body["question"] and "4111" not in b2.decode()  # not a private target: redacted
    assert body["overdue_seconds"] == 60.0 and body["bot_was_offline"] is False

    (raw,) = smtp.messages
    mail = message_from_bytes(raw)
    assert mail["To"] == "oncall@example.com" and "thread #7" in str(mail["Subject"])
    assert mail["X-Unsource-Delivery"] == "t7:sla:default:first_response.7.0:oncall"
    assert "Tagged: @ann" in mail.get_payload()


async def test_webhook_client_error_fails_without_retry(tmp_path: Path, servers: Any) -> None:
    hook, _smtp, http_port, smtp_port = servers
    hook.statuses = [404]
    url = f"sqlite+aiosqlite:///{tmp_path}/sla.db"
    from bot.storage import migrate

    await migrate.upgrade(url)
    cfg = sla_config(tmp_path, url, EXTRA.format(http=http_port, smtp=smtp_port))
    rt = SlaRuntime.from_config(cfg)
    engine = create_engine(url)
    sessions = session_factory(engine)
    try:
        await seed(sessions, rt.planner, [8], T0)
        await sweep(sessions, rt, "p", clock=lambda: T0 + timedelta(minutes=11))
        async with aiohttp.ClientSession() as http:
            res = await deliver_due(sessions, rt.settings, "p", http)
        async with sessions() as s:
            row = (
                await s.execute(text("select state, last_error from sla_delivery where kind = 'webhook'"))
            ).one()
    finally:
        await engine.dispose()
    assert res.failed == 1 and row.state == "failed" and "HTTP 404" in row.last_error
