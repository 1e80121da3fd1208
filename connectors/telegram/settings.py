"""Typed settings of the Telegram connector (``settings:`` under a ``type: telegram`` connector)."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from connectors.base import ConnectorSettings

_SECRET_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


class WebhookSettings(ConnectorSettings):
    """Where the bot's own web server listens and what Telegram is told to call."""

    listen_host: str = Field(default="127.0.0.1", description="interface to bind (behind a reverse proxy)")
    listen_port: int = Field(default=8443, ge=0, le=65535, description="0 picks a free port")
    path: str = Field(default="/telegram/webhook", description="URL path the server answers on")
    public_url: str = Field(description="the https URL Telegram posts updates to (reaches listen_port)")
    secret_token: SecretStr = Field(
        description="sent by Telegram in X-Telegram-Bot-Api-Secret-Token; 1-256 of A-Z a-z 0-9 _ -"
    )
    max_connections: int = Field(default=40, ge=1, le=100)
    max_body_bytes: int = Field(default=1_000_000, gt=0)

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        return value if value.startswith("/") else "/" + value

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("public_url must be an http(s) URL")
        return value

    @field_validator("secret_token")
    @classmethod
    def _secret(cls, value: SecretStr) -> SecretStr:
        if not _SECRET_TOKEN_RE.match(value.get_secret_value()):
            raise ValueError("secret_token must be 1-256 characters of A-Z, a-z, 0-9, _ and -")
        return value


class TelegramSettings(ConnectorSettings):
    token: SecretStr = Field(description="bot token from @BotFather (use ${TELEGRAM_BOT_TOKEN})")
    api_base_url: str = Field(
        default="https://api.telegram.org",
        description="Bot API server root; a self-hosted telegram-bot-api server or the sandbox",
    )
    mode: Literal["polling", "webhook"] = "polling"
    webhook: WebhookSettings | None = Field(default=None, description="required when mode is webhook")
    poll_timeout: int = Field(default=25, ge=0, le=50, description="getUpdates long-poll seconds")
    poll_limit: int = Field(default=100, ge=1, le=100, description="updates per getUpdates call")
    chats: tuple[str, ...] = Field(
        default=(),
        description="chat ids to watch (groups, supergroups, forums); empty: every chat the bot is in",
    )
    accept_dms: bool = Field(default=True, description="accept private messages to the bot")
    group_messages: Literal["all_messages", "mentions_only"] = Field(
        default="all_messages",
        description="all_messages needs privacy mode off (or the bot as admin); "
        "mentions_only keeps messages that mention the bot or reply to it",
    )
    parse_mode: Literal["HTML", "MarkdownV2"] = "HTML"
    per_chat_interval: float = Field(default=1.0, gt=0, description="seconds between messages in one chat")
    group_per_minute: int = Field(default=20, gt=0, description="messages per minute in one group")
    overall_per_second: int = Field(default=30, gt=0, description="messages per second in all chats")
    request_timeout: float = Field(default=10.0, gt=0, description="seconds to wait for one API call")
    callback_answer_text: str | None = Field(
        default=None, max_length=200, description="toast shown to whoever presses a button (None: none)"
    )
    max_backoff: float = Field(default=30.0, gt=0, description="longest wait between failing polls")

    @field_validator("token")
    @classmethod
    def _token_shape(cls, value: SecretStr) -> SecretStr:
        if not re.fullmatch(r"\d+:[A-Za-z0-9_-]+", value.get_secret_value().strip()):
            raise ValueError("token must look like '<bot id>:<secret>' as @BotFather gives it")
        return SecretStr(value.get_secret_value().strip())

    @field_validator("chats", mode="before")
    @classmethod
    def _chat_ids(cls, value: Any) -> Any:
        if isinstance(value, str | int):
            value = [value]
        if isinstance(value, list | tuple):
            return tuple(str(v).strip() for v in value)
        return value

    @field_validator("chats")
    @classmethod
    def _numeric(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for chat in value:
            if not re.fullmatch(r"-?\d+", chat):
                raise ValueError(
                    f"chat id {chat!r} is not a number (use the numeric id, e.g. -1001234567890)"
                )
        return value

    @field_validator("api_base_url")
    @classmethod
    def _base(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("api_base_url must be an http(s) URL")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _webhook_needed(self) -> TelegramSettings:
        if self.mode == "webhook" and self.webhook is None:
            raise ValueError("mode 'webhook' needs a 'webhook' section (public_url, secret_token, ...)")
        return self
