"""Configuration: durations, env expansion, every error at once with path and line."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from bot.config_types import parse_duration
from bot.errors import ConfigError
from bot.settings import load_config

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("30m", timedelta(minutes=30)),
        ("4h", timedelta(hours=4)),
        ("2d", timedelta(days=2)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("250ms", timedelta(milliseconds=250)),
        (45, timedelta(seconds=45)),
        (" 5 m ", timedelta(minutes=5)),
    ],
)
def test_durations(text: object, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("bad", ["soon", "", "5", "m5", "5x", "-3m", True, None, -1, "1h soon"])
def test_bad_durations(bad: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "config.yaml"
    p.write_text(text, encoding="utf-8")
    return p


def test_shipped_config_is_valid() -> None:
    cfg = load_config(ROOT / "config.yaml", env={})
    assert any(c.enabled for c in cfg.connectors)
    # platform connectors are off without credentials, and say why
    for c in cfg.connectors:
        if c.type in ("telegram", "discord", "twitter"):
            assert not c.enabled and "not set" in c.note


def test_three_independent_mistakes_all_reported(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        """\
pipeline:
  workers: 0
connectors:
  local:
    type: jsonl
    settings:
      inbound: in.jsonl
      outbound: out.jsonl
      colour: blue
sla:
  policies:
    - name: a
      first_response: 30m
    - name: b
      first_response: 1h
    - name: c
      first_response: soon
""",
    )
    with pytest.raises(ConfigError) as info:
        load_config(p, env={})
    got = {(pr.path, pr.line) for pr in info.value.problems}
    assert got == {
        ("pipeline.workers", 2),
        ("connectors.local.settings.colour", 9),
        ("sla.policies[2].first_response", 17),
    }
    text = str(info.value)
    assert 'config.yaml:17 sla.policies[2].first_response: expected a duration like "30m"' in text
    assert "3 configuration errors" in text


def test_missing_env_var_is_named(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        """\
connectors:
  local:
    type: jsonl
    enabled: true
    settings:
      inbound: ${INBOX_PATH}
      outbound: out.jsonl
""",
    )
    with pytest.raises(ConfigError) as info:
        load_config(p, env={})
    [problem] = info.value.problems
    assert problem.path == "connectors.local.settings.inbound"
    assert "INBOX_PATH" in problem.message and problem.line == 6


def test_env_expansion_and_defaults(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        """\
storage:
  url: ${DB_URL:-sqlite+aiosqlite:///x.db}
pipeline:
  workers: ${WORKERS}
""",
    )
    cfg = load_config(p, env={"WORKERS": "3", "DB_URL": ""})
    assert cfg.settings.storage.url == "sqlite+aiosqlite:///x.db"
    assert cfg.settings.pipeline.workers == 3


def test_auto_connector_without_secret_is_disabled_not_an_error(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        """\
connectors:
  local:
    type: jsonl
    settings:
      inbound: ${SOME_PATH}
      outbound: out.jsonl
""",
    )
    cfg = load_config(p, env={})
    [c] = cfg.connectors
    assert not c.enabled and "SOME_PATH" in c.note


def test_unknown_top_level_key_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, "storge:\n  url: x\n"), env={})
    assert info.value.problems[0].path == "storge" and info.value.problems[0].line == 1
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, "a: [1, 2\nb: 3\n"), env={})
    assert "invalid YAML" in str(info.value)


def test_cross_references_are_checked(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        """\
staff:
  connector: nowhere
helpers:
  - name: Ann
    identities: { ghost: "1" }
sla:
  policies:
    - name: p
      first_response: 1h
      match: { topic: [unknown-topic] }
""",
    )
    with pytest.raises(ConfigError) as info:
        load_config(p, env={})
    paths = {pr.path for pr in info.value.problems}
    assert paths == {"staff.connector", "helpers[0].identities.ghost", "sla.policies[0].match.topic[0]"}


def test_secrets_never_print(tmp_path: Path) -> None:
    from pydantic import SecretStr

    from bot.config_watch import secrets_of
    from bot.logging_setup import SecretScrubber

    s = SecretStr("123456:VERY-SECRET")
    assert "VERY-SECRET" not in repr(s) and "VERY-SECRET" not in str(s)
    scrub = SecretScrubber(["123456:VERY-SECRET"])
    assert (
        scrub.scrub("calling https://api/bot123456:VERY-SECRET/getMe") == "calling https://api/bot***/getMe"
    )
    cfg = load_config(ROOT / "config.yaml", env={})
    assert isinstance(secrets_of(cfg), list)


def test_time_zones_are_checked_wherever_they_appear(tmp_path: Path) -> None:
    p = write(
        tmp_path,
        """\
helpers:
  - name: Ann
    timezone: Mars/Olympus
sla:
  calendars:
    office: { timezone: Europe/Berlni }
""",
    )
    with pytest.raises(ConfigError) as info:
        load_config(p, env={})
    got = {(pr.path, pr.line) for pr in info.value.problems if "unknown time zone" in pr.message}
    assert got == {("helpers[0].timezone", 3), ("sla.calendars.office.timezone", 6)}
