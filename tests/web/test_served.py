"""The running App serves the dashboard (roles all / ingest) on web.host / web.port."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import httpx
from starlette.applications import Starlette

from bot.app import App
from bot.config_watch import ConfigHolder
from bot.web.server import WebServer
from tests.pipeline.helpers import make_config


async def test_the_app_serves_healthz_and_metrics(tmp_path: Path, migrated: str) -> None:
    config = make_config(tmp_path, migrated, workers=1, extra="web:\n  port: 0\n")
    app = App(ConfigHolder(config), role="all")
    stop = asyncio.Event()
    task = asyncio.create_task(app.run(stop))
    try:
        await asyncio.wait_for(app.ready.wait(), 30)
        assert isinstance(app.web, WebServer)
        await asyncio.wait_for(app.web.started.wait(), 10)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{app.web.port}") as c:
            for _ in range(50):  # the jsonl connector reports OK after its first poll
                r = await c.get("/healthz")
                if r.status_code == 200:
                    break
                await asyncio.sleep(0.1)
            assert r.status_code == 200, r.text
            assert r.json()["connectors"]["local"]["state"] == "ok" and r.json()["scheduler"] == "running"
            m = await c.get("/metrics")
            assert m.status_code == 200 and "unsource_outbox_depth" in m.text
            assert (await c.get("/")).status_code == 303  # pages need sign-in
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


async def test_a_busy_port_is_an_error_the_supervisor_can_retry() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        server = WebServer(Starlette(), "127.0.0.1", port)
        try:
            await asyncio.wait_for(server.run(), 10)
        except OSError as exc:
            assert str(port) in str(exc)
        else:
            raise AssertionError("expected an OSError for a port in use")
    assert not server.started.is_set()
