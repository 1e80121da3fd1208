"""Typed settings of the X connector (``type: twitter`` in config.yaml)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, model_validator

from connectors.base import ConnectorSettings


class TwitterSettings(ConnectorSettings):
    # ------------------------------------------------------------------ where and who
    api_base_url: str = Field(
        default="https://api.x.com",
        description="X API v2 base URL; the official hosts (api.x.com / api.twitter.com) are used as "
        "tweepy sends them, anything else (the sandbox) receives every request instead",
    )
    bearer_token: SecretStr = Field(description="app bearer token (reads: mentions, post lookup)")
    consumer_key: SecretStr = Field(description="OAuth 1.0a consumer (API) key")
    consumer_secret: SecretStr
    access_token: SecretStr = Field(description="OAuth 1.0a access token of the bot account")
    access_token_secret: SecretStr
    bot_user_id: str | None = Field(default=None, description="the bot account's id; looked up once if unset")
    bot_username: str | None = Field(
        default=None, description="the bot's @handle without @; looked up if unset"
    )
    request_timeout: float = Field(default=20.0, gt=0, description="seconds per HTTP request")

    # ------------------------------------------------------------------ reading
    dms_enabled: bool = Field(default=True, description="also poll GET /2/dm_events for private follow-ups")
    page_size: int = Field(default=100, ge=5, le=100, description="mentions per page (max_results)")
    dm_page_size: int = Field(default=20, ge=1, le=100, description="DM events per page")
    initial_backfill: int = Field(
        default=20,
        ge=0,
        le=800,
        description="mentions (and DMs) delivered by the very first poll (no cursor yet)",
    )
    mention_window: int = Field(default=800, gt=0, description="how far back X's mention timeline reaches")

    # ------------------------------------------------------------------ adaptive polling
    poll_interval_active: float = Field(default=30.0, gt=0, description="seconds between polls while active")
    poll_interval_idle: float = Field(default=300.0, gt=0, description="seconds between polls when idle")
    poll_backoff_factor: float = Field(default=1.5, ge=1.0, description="growth per empty poll when idle")
    active_window: float = Field(
        default=900.0, ge=0, description="seconds after the last mention / DM / reply that count as active"
    )
    dm_poll_interval_active: float = Field(default=90.0, gt=0)
    dm_poll_interval_idle: float = Field(default=900.0, gt=0)
    max_poll_interval: float = Field(default=3600.0, gt=0, description="never wait longer than this")

    # ------------------------------------------------------------------ cost (pay-per-use)
    monthly_budget_usd: float = Field(default=50.0, ge=0, description="spend cap per calendar month (UTC)")
    read_price_usd: float = Field(default=0.005, ge=0, description="price of one post / DM event read")
    write_price_usd: float = Field(default=0.01, ge=0, description="price of one post / DM created")
    request_price_usd: float = Field(default=0.0, ge=0, description="price per request, if your plan has one")
    write_reserve: float = Field(
        default=0.2, ge=0, lt=1, description="share of the budget reads may not use, kept for answers"
    )

    # ------------------------------------------------------------------ sending
    long_answer: Literal["link", "thread"] = Field(
        default="link",
        description="an answer over 280: 'link' = a short reply with the answer's link (a numbered thread "
        "when there is no link); 'thread' = a numbered reply chain (a link when it would be too long)",
    )
    max_thread_parts: int = Field(default=6, ge=2, le=25)
    link_lead: str = Field(default="The full answer is here:", description="used when no sentence fits")
    reply_settings: Literal["everyone", "mentionedUsers", "following"] | None = Field(
        default=None, description="who may reply to the bot's posts (X reply_settings); unset = X's default"
    )

    # ------------------------------------------------------------------ rate limits
    rate_limit_margin: float = Field(default=1.0, ge=0, description="seconds added to x-rate-limit-reset")
    backoff_base: float = Field(default=5.0, gt=0, description="first pause after a 429 without headers")
    backoff_max: float = Field(default=900.0, gt=0)

    @model_validator(mode="after")
    def _intervals_ordered(self) -> TwitterSettings:
        if self.poll_interval_active > self.poll_interval_idle:
            raise ValueError("poll_interval_active must not exceed poll_interval_idle")
        if self.dm_poll_interval_active > self.dm_poll_interval_idle:
            raise ValueError("dm_poll_interval_active must not exceed dm_poll_interval_idle")
        if self.backoff_base > self.backoff_max:
            raise ValueError("backoff_base must not exceed backoff_max")
        return self
