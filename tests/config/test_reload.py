"""Hot reload: a valid config is swapped in whole; an invalid one is rejected and the old one runs on."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from pathlib import Path

import pytest

from bot.app import install_signal_handlers
from bot.config_watch import ConfigHolder
from bot.settings import load_config

VALID = """\
connectors:
  local:
    type: jsonl
    settings: {{ inbound: in.jsonl, outbound: out.jsonl }}
helpers:
  - name: {name}
    identities: {{ local: "{uid}" }}
"""


def write(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)  # like editors do: write a new file, rename it over the old one


def test_valid_change_is_swapped_in_and_invalid_one_rejected(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "config.yaml"
    write(path, VALID.format(name="Ann", uid="1"))
    holder = ConfigHolder(load_config(path))
    seen: list[str] = []
    holder.listeners.append(lambda old, new: seen.append(new.settings.helpers[0].name))

    write(path, VALID.format(name="Bo", uid="2"))
    assert holder.reload() is True
    assert holder.current.settings.helpers[0].name == "Bo" and seen == ["Bo"]

    write(path, VALID.format(name="Cy", uid="3") + "pipeline:\n  workers: -1\n  colour: red\n")
    with caplog.at_level(logging.ERROR):
        assert holder.reload() is False
    assert holder.current.settings.helpers[0].name == "Bo", "the old config keeps running"
    assert holder.last_error is not None and len(holder.last_error.problems) == 2
    assert "pipeline.workers" in caplog.text and "pipeline.colour" in caplog.text
    assert seen == ["Bo"]


async def test_file_change_triggers_reload(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    write(path, VALID.format(name="Ann", uid="1"))
    holder = ConfigHolder(load_config(path))
    task = asyncio.create_task(holder.watch())
    try:
        await asyncio.sleep(0.5)  # let the watcher start
        write(path, VALID.format(name="Bo", uid="2"))
        for _ in range(100):
            if holder.reloads:
                break
            await asyncio.sleep(0.1)
    finally:
        task.cancel()
    assert holder.reloads >= 1
    assert holder.current.settings.helpers[0].name == "Bo"


async def test_sighup_reloads(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    write(path, VALID.format(name="Ann", uid="1"))
    holder = ConfigHolder(load_config(path))
    stop = asyncio.Event()
    install_signal_handlers(stop, holder)
    try:
        write(path, VALID.format(name="Bo", uid="2"))
        os.kill(os.getpid(), signal.SIGHUP)
        for _ in range(50):
            if holder.reloads:
                break
            await asyncio.sleep(0.05)
        assert holder.current.settings.helpers[0].name == "Bo"
        assert not stop.is_set()
    finally:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.remove_signal_handler(sig)
