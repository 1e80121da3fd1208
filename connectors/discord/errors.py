"""discord.py exceptions -> the connector error tree (nothing from discord.py leaks upward)."""

from __future__ import annotations

import asyncio

import aiohttp
import discord

from bot.errors import (
    AuthError,
    ConnectorError,
    PermanentSendError,
    RateLimited,
    TransientError,
)

#: Discord JSON error codes that mean "this will never work", whatever the HTTP status
PERMANENT_CODES = frozenset(
    {
        10003,  # unknown channel
        10008,  # unknown message
        10013,  # unknown user
        50001,  # missing access
        50006,  # empty message
        50007,  # cannot send messages to this user (DMs closed)
        50008,  # cannot send messages in a non-text channel
        50013,  # missing permissions
        50035,  # invalid form body
        160002,  # thread is archived / locked
    }
)


def translate(exc: BaseException, *, what: str = "request") -> ConnectorError:
    """The error-tree exception for a discord.py / network failure."""
    if isinstance(exc, ConnectorError):
        return exc
    if isinstance(exc, discord.RateLimited):
        return RateLimited(exc.retry_after, f"discord {what} rate limited")
    if isinstance(exc, discord.LoginFailure):
        return AuthError(f"discord rejected the bot token: {exc}")
    if isinstance(exc, discord.PrivilegedIntentsRequired):
        return AuthError(
            "the message content intent is not enabled for this bot (Developer Portal > Bot > "
            "Privileged Gateway Intents > Message Content Intent)"
        )
    if isinstance(exc, discord.HTTPException):
        return _from_http(exc, what)
    if isinstance(exc, discord.ConnectionClosed):
        if exc.code == 4004:
            return AuthError("discord gateway: authentication failed (4004)")
        return TransientError(f"discord gateway closed ({exc.code})")
    if isinstance(exc, discord.GatewayNotFound | aiohttp.ClientError | OSError | asyncio.TimeoutError):
        return TransientError(f"discord {what} failed: {type(exc).__name__}: {exc}")
    if isinstance(exc, discord.ClientException):
        return PermanentSendError(f"discord {what} refused by the client: {exc}")
    return TransientError(f"discord {what} failed unexpectedly: {type(exc).__name__}: {exc}")


def _from_http(exc: discord.HTTPException, what: str) -> ConnectorError:
    status = exc.status
    detail = f"discord {what}: HTTP {status} (code {exc.code}) {exc.text}".strip()
    if status == 429:
        retry = _retry_after(exc)
        return RateLimited(retry, detail, scope="cloudflare" if not exc.response.headers.get("Via") else "")
    if status == 401:
        return AuthError(detail)
    if isinstance(exc, discord.DiscordServerError) or status >= 500:
        return TransientError(detail)
    if status in (403, 404) or exc.code in PERMANENT_CODES or 400 <= status < 500:
        return PermanentSendError(detail)
    return TransientError(detail)


def _retry_after(exc: discord.HTTPException) -> float:
    header = exc.response.headers.get("Retry-After")
    try:
        return float(header) if header is not None else 60.0
    except ValueError:
        return 60.0
