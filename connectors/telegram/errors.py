"""python-telegram-bot exceptions -> the unsource connector error tree (the only place)."""

from __future__ import annotations

import warnings
from datetime import timedelta

from telegram import error as tg

from bot.errors import (
    AuthError,
    ConflictError,
    ConnectorError,
    PermanentSendError,
    RateLimited,
    TransientError,
)


def retry_after_seconds(exc: tg.RetryAfter) -> float:
    with warnings.catch_warnings():  # PTB 22 warns while moving from int to timedelta
        warnings.simplefilter("ignore")
        value: int | float | timedelta = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def translate(exc: tg.TelegramError, *, scope: str = "") -> ConnectorError:
    """The error-tree equivalent of a PTB exception (to raise ``from exc``)."""
    if isinstance(exc, tg.RetryAfter):
        return RateLimited(retry_after_seconds(exc), "Telegram flood control", scope=scope)
    if isinstance(exc, tg.InvalidToken):
        return AuthError(f"Telegram rejected the bot token: {exc.message}")
    if isinstance(exc, tg.Conflict):
        return ConflictError(f"Telegram: {exc.message}")
    if isinstance(exc, tg.Forbidden):
        return PermanentSendError(f"Telegram refused: {exc.message}")
    if isinstance(exc, tg.BadRequest):
        return PermanentSendError(f"Telegram refused the request: {exc.message}")
    if isinstance(exc, tg.ChatMigrated):
        return PermanentSendError(f"group moved to supergroup {exc.new_chat_id}")
    # TimedOut, NetworkError (5xx, connection errors) and "Invalid server response" (bad JSON)
    return TransientError(f"Telegram: {type(exc).__name__}: {exc.message}")
