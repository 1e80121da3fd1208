"""Pure parts of the connector: settings, cursor, rendering."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from bot.errors import MalformedPayload, PermanentSendError
from bot.models import AnswerCard, Button, Mention, OutboundMessage
from connectors.discord import DiscordSettings
from connectors.discord.cursor import MAX_CHANNELS, TRIM_SLACK, Cursor, snowflake_at
from connectors.discord.render import nonce_for, render


def msg(text: str, **kw: object) -> OutboundMessage:
    return OutboundMessage(idempotency_key="k", connector_id="dc", conversation_id="1", text=text, **kw)  # type: ignore[arg-type]


def test_settings_validate_ids_and_thresholds() -> None:
    s = DiscordSettings(token="SECRET-TOKEN", guild_ids=[123], channel_ids="456")  # type: ignore[arg-type]
    assert s.guild_ids == ("123",) and s.channel_ids == ("456",)
    assert "SECRET-TOKEN" not in repr(s) and "SECRET-TOKEN" not in s.model_dump_json()
    with pytest.raises(ValidationError, match="snowflake"):
        DiscordSettings(token="t", channel_ids=["#support"])  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="brake"):
        DiscordSettings(token="t", invalid_requests_alert=500, invalid_requests_brake=400)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        DiscordSettings(token="t", max_ratelimit_wait=5)  # type: ignore[arg-type]  # discord.py needs >= 30


def test_cursor_round_trip_and_advance() -> None:
    c = Cursor.parse(None)
    assert c.empty and c.after_for("1") is None
    c = c.advanced({"10": 500, "11": 300})
    c = c.advanced({"10": 400, "12": 900})  # never backwards
    assert c.channels == {"10": 500, "11": 300, "12": 900} and c.watermark == 900
    again = Cursor.parse(c.dump())
    assert again == c
    assert again.after_for("13") == 900  # unknown channel: from the watermark
    with pytest.raises(MalformedPayload):
        Cursor.parse("not json")


def test_cursor_keeps_the_most_recent_channels() -> None:
    c = Cursor().advanced({str(i): 1000 + i for i in range(MAX_CHANNELS + TRIM_SLACK)})
    assert len(c.channels) == MAX_CHANNELS + TRIM_SLACK  # within the slack: nothing cut yet
    n = MAX_CHANNELS + TRIM_SLACK + 1
    c = c.advanced({str(n - 1): 1000 + n - 1})  # one past the slack: cut back to the most recent
    assert len(c.channels) == MAX_CHANNELS and "0" not in c.channels and str(n - 1) in c.channels
    assert min(c.channels.values()) == 1000 + n - MAX_CHANNELS


def test_cursor_dump_is_plain_json_after_any_path() -> None:
    """The incrementally kept serialization equals a fresh one, through advances, cuts and copies."""
    c = Cursor.parse('{"v":1,"ch":{"5":"50"},"w":"50"}')
    for i in range(MAX_CHANNELS + TRIM_SLACK + 40):
        c = c.advanced({str(100 + i % (MAX_CHANNELS + TRIM_SLACK + 7)): 10_000 + i})
        if i % 397 == 0 or i > MAX_CHANNELS + TRIM_SLACK:
            expected = {"v": 1, "ch": {k: str(v) for k, v in c.channels.items()}, "w": str(c.watermark)}
            assert json.loads(c.dump()) == expected
            assert Cursor.parse(c.dump()) == c


def test_snowflake_of_a_time_is_ordered() -> None:
    a = snowflake_at(datetime(2026, 1, 1, tzinfo=UTC))
    b = snowflake_at(datetime(2026, 1, 1, 0, 0, 1, tzinfo=UTC))
    assert 0 < a < b and (b >> 22) - (a >> 22) == 1000


def test_render_mentions_split_and_nonces() -> None:
    text = "\n\n".join(f"para {i} " + "x" * 900 for i in range(5))
    parts = render(
        msg(
            text,
            mentions=(Mention(user_id="42"), Mention(user_id="helpers", role=True)),
            buttons=(Button(label="Solved", data="s"),),
            card=AnswerCard(question="q?", answer="a"),
        ),
        reference_id=7,
        helper_role_id="99",
    )
    assert parts[0].content.startswith("<@42> <@&99> para 0")
    assert all(len(p.content) <= 2000 for p in parts) and len(parts) == 3
    assert parts[0].reference_id == 7 and all(p.reference_id is None for p in parts[1:])
    assert parts[-1].buttons and parts[-1].embed is not None and parts[0].embed is None
    nonces = [p.nonce for p in parts]
    assert len(set(nonces)) == 3 and all(len(n) <= 25 for n in nonces)
    assert nonces[0] == nonce_for("k", 0)  # stable across processes


def test_render_refuses_what_discord_would() -> None:
    with pytest.raises(PermanentSendError):
        render(
            msg("x", mentions=(Mention(user_id="helpers", role=True),)),
            reference_id=None,
            helper_role_id=None,
        )
    with pytest.raises(PermanentSendError):
        render(msg("x", mentions=(Mention(user_id="@dave"),)), reference_id=None, helper_role_id=None)
    with pytest.raises(PermanentSendError):
        render(msg("x", buttons=(Button(label="a", data="d" * 101),)), reference_id=None, helper_role_id=None)
    with pytest.raises(PermanentSendError):
        render(msg(""), reference_id=None, helper_role_id=None)
