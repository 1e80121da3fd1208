"""The first-command rule (sandbox.enabled: auto) and the derived sandbox configuration."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.sandbox_mode import sandbox_wanted, write_sandbox_config
from bot.settings import load_config
from sandbox.compose import Sandbox
from sandbox.data import kb_rows, load_scenario
from tests.e2e.stack import ROOT

SHIPPED = ROOT / "config.yaml"
TG = {"TELEGRAM_BOT_TOKEN": "123:abc"}
X = {
    "X_BEARER_TOKEN": "b",
    "X_CONSUMER_KEY": "k",
    "X_CONSUMER_SECRET": "s",
    "X_ACCESS_TOKEN": "t",
    "X_ACCESS_TOKEN_SECRET": "u",
}

LOCAL_ONLY = """\
connectors:
  local: {{ type: jsonl, settings: {{ inbound: {d}/in.jsonl, outbound: {d}/out.jsonl }} }}
{extra}"""


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, True),  # a fresh machine: no platform credentials -> the sandbox
        (TG, False),  # Telegram's token set -> the real platforms
        ({"DISCORD_BOT_TOKEN": "x"}, False),
        (X, False),
        ({"X_BEARER_TOKEN": "only one of five"}, True),  # X stays off until all its secrets are set
        ({"TELEGRAM_BOT_TOKEN": ""}, True),  # empty counts as unset
    ],
)
def test_shipped_config_starts_the_sandbox_only_without_credentials(
    env: dict[str, str], expected: bool
) -> None:
    assert sandbox_wanted(load_config(SHIPPED, env=env)) is expected


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("", False),  # no platform connectors configured: never the sandbox
        ("sandbox: { enabled: true }", True),
        ("sandbox: { enabled: false }", False),
        ("sandbox: { enabled: auto }", False),
    ],
)
def test_local_only_configs(tmp_path: Path, extra: str, expected: bool) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(LOCAL_ONLY.format(d=tmp_path, extra=extra), "utf-8")
    assert sandbox_wanted(load_config(path, env={})) is expected


def test_explicit_false_wins_over_missing_credentials(tmp_path: Path) -> None:
    text = SHIPPED.read_text("utf-8").replace("enabled: auto               # auto", "enabled: false  # auto")
    path = tmp_path / "config.yaml"
    path.write_text(text, "utf-8")
    assert sandbox_wanted(load_config(path, env={})) is False


async def test_sandbox_config_points_every_platform_at_the_fakes(tmp_path: Path) -> None:
    async with Sandbox() as sb:
        ep = sb.endpoints
        path = write_sandbox_config(SHIPPED, ep, tmp_path / "sb", first_response="45s")
        config = load_config(path, env={})  # loads with no environment at all
    on = {c.id: c for c in config.enabled_connectors}
    assert set(on) == {"telegram", "discord", "x"}
    assert on["telegram"].settings.api_base_url == ep.telegram_url  # type: ignore[union-attr]
    assert on["discord"].settings.gateway_url == ep.discord_gateway  # type: ignore[union-attr]
    assert on["x"].settings.api_base_url == ep.x_url  # type: ignore[union-attr]
    s = config.settings
    assert s.sandbox.enabled is False  # the derived config never recurses into the sandbox
    assert str(tmp_path / "sb") in s.storage.url
    assert [p.first_response.total_seconds() for p in s.sla.policies] == [45.0]
    assert s.staff.connector == "telegram" and s.staff.conversation == str(ep.telegram_staff)
    helpers = {h.name: h for h in s.helpers}
    assert helpers["Dee"].identities["discord"] == ep.people["dee"].discord_id
    assert helpers["Sam"].role == "staff"
    # the rest of the shipped file is kept
    assert s.pipeline.claim_batch == load_config(SHIPPED, env={}).settings.pipeline.claim_batch


def test_seed_knowledge_base_rows() -> None:
    scenario = load_scenario()
    rows = kb_rows(scenario)
    assert len(rows) == sum(len(i.kb) for i in scenario.intents) == 40
    assert len({r["id"] for r in rows}) == len(rows)
    assert all(r["question"] and r["answer"] and r["credit"] and r["link"] for r in rows)
    # what customers ask is never literally what the knowledge base holds for most intents
    kb = {r["question"].lower() for r in rows}
    fresh = [a for i in scenario.intents for a in i.asks if a.lower() not in kb]
    assert len(fresh) >= len(scenario.intents)
