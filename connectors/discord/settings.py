"""Typed settings of the Discord connector (``settings:`` under a ``type: discord`` connector)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from connectors.base import ConnectorSettings

DISCORD_API = "https://discord.com/api/v10"
DISCORD_GATEWAY = "wss://gateway.discord.gg/"


def _snowflake(value: str) -> str:
    value = str(value).strip()
    if not value.isdigit():
        raise ValueError(f"{value!r} is not a Discord id (a snowflake: digits only)")
    return value


class DiscordSettings(ConnectorSettings):
    token: SecretStr = Field(description="bot token from the Developer Portal; use ${DISCORD_TOKEN}")
    api_base_url: str = Field(default=DISCORD_API, description="REST base, e.g. a proxy or the sandbox")
    gateway_url: str = Field(default=DISCORD_GATEWAY, description="gateway websocket URL")

    guild_ids: tuple[str, ...] = Field(
        default=(), description="guilds to watch; with no channel_ids every text/forum channel in them"
    )
    channel_ids: tuple[str, ...] = Field(
        default=(),
        description="text channels, forum channels or existing threads to watch (their threads too)",
    )
    dms: bool = Field(default=True, description="receive direct messages to the bot")

    thread_per_question: bool = Field(
        default=False,
        description="a reply to a top-level message in a text channel opens a thread on it and goes there",
    )
    thread_auto_archive_minutes: Literal[60, 1440, 4320, 10080] = 1440

    solved_emoji: str = Field(default="✅", min_length=1)
    feedback_emojis: tuple[str, ...] = Field(default=("👍", "👎"))
    all_reactions: bool = Field(
        default=False, description="deliver every reaction, not only the emojis above"
    )
    helper_role_id: str | None = Field(default=None, description="role mentioned when tagging helpers")

    channel_messages: int = Field(
        default=5, gt=0, description="messages per channel_window_seconds per channel"
    )
    channel_window_seconds: float = Field(default=5.0, gt=0)
    pace_margin_seconds: float = Field(default=0.25, ge=0, description="slack added to every pacing window")
    requests_per_second: int = Field(
        default=45, gt=0, le=50, description="REST requests per second, all routes"
    )
    invalid_requests_alert: int = Field(
        default=1000, gt=0, description="401/403/429 answers per 10 min that mark health degraded"
    )
    invalid_requests_brake: int = Field(
        default=8000, gt=0, lt=10_000, description="... and at which sends stop until the window drains"
    )
    max_ratelimit_wait: float = Field(
        default=30.0, ge=30.0, description="a 429 asking to wait longer is raised as RateLimited, not slept"
    )

    require_message_content: bool = Field(
        default=True,
        description="stop (health down) without the message content intent; false: run on without it",
    )
    guild_ready_timeout: float = Field(default=2.0, gt=0, description="seconds to wait for GUILD_CREATEs")
    identify_delay: float = Field(
        default=5.0, ge=0, description="pause before re-IDENTIFY (Discord's 1 per 5 s)"
    )
    start_timeout: float = Field(default=30.0, gt=0, description="seconds start() waits for the gateway")
    backfill_retry_seconds: float = Field(default=1.0, gt=0, description="first wait when a backfill fails")

    @field_validator("guild_ids", "channel_ids", mode="before")
    @classmethod
    def _ids(cls, value: object) -> object:
        if isinstance(value, str | int):
            value = [value]
        if isinstance(value, list | tuple):
            return tuple(_snowflake(str(v)) for v in value)
        return value

    @field_validator("helper_role_id", mode="before")
    @classmethod
    def _role(cls, value: object) -> object:
        return None if value in (None, "") else _snowflake(str(value))

    @field_validator("api_base_url", "gateway_url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://", "ws://", "wss://")):
            raise ValueError("must be an http(s):// or ws(s):// URL")
        return value

    @model_validator(mode="after")
    def _brake_above_alert(self) -> DiscordSettings:
        if self.invalid_requests_brake <= self.invalid_requests_alert:
            raise ValueError("invalid_requests_brake must be above invalid_requests_alert")
        return self

    @property
    def watched_emojis(self) -> frozenset[str]:
        return frozenset((self.solved_emoji, *self.feedback_emojis))
