"""The CLI as a user runs it: exit codes and what it prints."""

from __future__ import annotations

import io
import logging
from pathlib import Path

from typer.testing import CliRunner

from bot import logging_setup
from bot.cli import app

ROOT = Path(__file__).resolve().parents[2]


def test_version_and_help() -> None:
    r = CliRunner().invoke(app, ["--version"])
    assert r.exit_code == 0 and r.output.startswith("unsource ")
    for cmd in (["--help"], ["run", "--help"], ["check-config", "--help"], ["db", "upgrade", "--help"]):
        assert CliRunner().invoke(app, cmd).exit_code == 0


def test_check_config_ok_and_errors(tmp_path: Path) -> None:
    r = CliRunner().invoke(app, ["check-config", str(ROOT / "config.yaml")], env={"TELEGRAM_BOT_TOKEN": ""})
    assert r.exit_code == 0, r.output
    assert "connector local: type jsonl, enabled" in r.output
    bad = tmp_path / "config.yaml"
    bad.write_text(
        "pipeline:\n  workers: 0\n  lease: forever\nstorage:\n  url: mysql://x\n", encoding="utf-8"
    )
    r = CliRunner().invoke(app, ["check-config", str(bad)])
    assert r.exit_code == 2
    for needle in (
        "config.yaml:2 pipeline.workers",
        "config.yaml:3 pipeline.lease",
        "config.yaml:5 storage.url",
    ):
        assert needle in r.output
    r = CliRunner().invoke(app, ["check-config", str(tmp_path / "missing.yaml")])
    assert r.exit_code == 2 and "file not found" in r.output


def test_logs_never_contain_a_secret() -> None:
    token = "123456:AAE-very-secret-token"
    logging_setup.configure("json", "INFO", [token])
    stream = io.StringIO()
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(stream)
    log = logging.getLogger("unsource.test")
    log.info("calling https://api.telegram.org/bot%s/getMe", token)
    try:
        raise RuntimeError(f"boom with {token}")
    except RuntimeError:
        log.exception("failed")
    out = stream.getvalue()
    assert token not in out
    assert out.count("***") >= 2
    logging_setup.configure("keyvalue", "WARNING", [])
