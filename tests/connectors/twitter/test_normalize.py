"""Normalizing X payloads, and the cursor format."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.errors import MalformedPayload
from bot.models import MessageKind
from connectors.twitter.cursor import XCursor, newer
from connectors.twitter.normalize import dm_to_message, post_to_message, snowflake_time, strip_addressing

USERS = {"2001": {"id": "2001", "username": "ann", "name": "Ann"}}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("@acme_support how do I pay?", "how do I pay?"),
        ("@ann @acme_support  thanks!", "thanks!"),
        ("how do I reach @acme_support?", "how do I reach @acme_support?"),  # not leading: kept
        ("@acme_support", ""),
        ("email@acme.com is broken", "email@acme.com is broken"),
    ],
)
def test_strip_addressing(text: str, expected: str) -> None:
    assert strip_addressing(text) == expected


def test_post_normalization() -> None:
    post = {
        "id": "1800000000000000006",
        "text": "@acme_support fish &amp; chips &lt;3",
        "author_id": "2001",
        "conversation_id": "1800000000000000000",
        "referenced_tweets": [
            {"type": "quoted", "id": "5"},
            {"type": "replied_to", "id": "1800000000000000000"},
        ],
        "entities": {"mentions": [{"username": "ACME_support", "id": "1000"}]},
        "created_at": "2026-11-23T15:07:13.000Z",
    }
    m = post_to_message(post, USERS, connector_id="x", bot_id="1000", bot_username="acme_support")
    assert m.text == "fish & chips <3"
    assert m.kind is MessageKind.REPLY and m.reply_to_id == "1800000000000000000"
    assert m.thread_ref == m.conversation_id == "1800000000000000000"
    assert m.mentions_bot and m.author.handle == "ann"
    assert m.sent_at == datetime(2026, 11, 23, 15, 7, 13, tzinfo=UTC)


def test_missing_time_falls_back_to_the_snowflake() -> None:
    post = {"id": "1800000000000000006", "text": "hi", "author_id": "2001"}
    m = post_to_message(post, {}, connector_id="x", bot_id="1000", bot_username="acme_support")
    assert m.sent_at == snowflake_time("1800000000000000006")
    assert m.sent_at.year == 2024 and m.author.handle is None and m.kind is MessageKind.MENTION


def test_malformed_payloads_are_refused() -> None:
    with pytest.raises(MalformedPayload):
        post_to_message({"id": "1"}, {}, connector_id="x", bot_id="1000", bot_username="b")
    with pytest.raises(MalformedPayload):
        dm_to_message({"id": "1", "sender_id": "2"}, {}, connector_id="x", bot_id="1000")


def test_cursor_round_trip_and_legacy_forms() -> None:
    cur = XCursor(mentions="123", dms="456")
    assert XCursor.loads(cur.dumps()) == cur
    assert XCursor.loads(None) == XCursor() == XCursor.loads("")
    assert XCursor.loads("789") == XCursor(mentions="789")
    for bad in ("{nope", "[1]", '{"mentions": "abc"}'):
        with pytest.raises(MalformedPayload):
            XCursor.loads(bad)
    assert newer("99", "100") == "100" and newer(None, "5") == "5" and newer("5", None) == "5"
