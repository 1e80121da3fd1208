"""Backfill: reading what a new gateway session cannot replay from channel history.

For every watched text channel, active thread (forum posts included) and DM channel in the
cursor, ``GET /channels/{id}/messages?after=<last stored id>`` page by page, oldest first.
A failing read is retried with backoff rather than skipped: live events wait meanwhile, so
a later message can never move a channel's cursor past one that was not stored.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

import aiohttp
import discord

from bot.errors import AuthError, RateLimited
from connectors.discord import normalize
from connectors.discord.client import SupportClient
from connectors.discord.delivery import Live
from connectors.discord.errors import translate
from connectors.discord.watch import Watch, can_read_history

BATCH = 100

Deliver = Callable[[Sequence[Live]], Awaitable[None]]


async def targets(
    client: SupportClient, watch: Watch, cursor_channels: Sequence[str]
) -> list[discord.abc.Messageable]:
    """Watched channels and active threads from the guild cache, plus DM channels in the cursor."""
    out: dict[int, discord.abc.Messageable] = {}
    for guild in client.guilds:
        if not watch.includes_guild(guild):
            continue
        chans: list[discord.TextChannel | discord.Thread] = [*guild.text_channels, *guild.threads]
        for ch in chans:
            if watch.includes(ch, ch.id) and can_read_history(ch):
                out[ch.id] = ch
    if not watch.dms:
        return list(out.values())
    for cid in cursor_channels:
        if int(cid) in out or client.get_channel(int(cid)) is not None:
            continue  # done, or a guild channel no longer watched
        try:
            fetched = await client.fetch_channel(int(cid))
        except discord.HTTPException:
            continue  # gone, or not ours any more
        if isinstance(fetched, discord.DMChannel):
            out[fetched.id] = fetched
    return list(out.values())


class Backfill:
    def __init__(
        self,
        connector_id: str,
        log: logging.Logger,
        *,
        retry_seconds: float,
        on_problem: Callable[[str | None], None],
    ) -> None:
        self.connector_id = connector_id
        self.log = log
        self.retry_seconds = retry_seconds
        self.on_problem = on_problem

    async def channel(
        self,
        client: SupportClient,
        channel: discord.abc.Messageable,
        after_for: Callable[[str], int | None],
        deliver: Deliver,
    ) -> None:
        """Deliver everything in ``channel`` after its stored id, retrying until it worked."""
        assert client.user is not None
        bot_id = client.user.id
        cid = str(getattr(channel, "id", ""))
        delay = self.retry_seconds
        while not client.is_closed():
            after = after_for(cid)  # re-read: a failed attempt may have stored part of it
            if after is None:
                return
            try:
                pending: list[Live] = []
                async for message in channel.history(
                    limit=None, after=discord.Object(id=after), oldest_first=True
                ):
                    if message.author.id == bot_id:
                        continue
                    inbound = normalize.from_message(message, connector_id=self.connector_id, bot_id=bot_id)
                    if inbound is not None:
                        pending.append(Live(inbound, cid, message.id))
                    if len(pending) >= BATCH:
                        await deliver(pending)
                        pending = []
                if pending:
                    await deliver(pending)
                self.on_problem(None)
                return
            except (discord.Forbidden, discord.NotFound) as exc:
                self.log.warning("cannot backfill channel %s: %s", cid, translate(exc))
                return
            except discord.HTTPException as exc:
                err = translate(exc, what="backfill")
                if isinstance(err, AuthError):
                    raise err from exc
                wait = err.retry_after if isinstance(err, RateLimited) else delay
                problem = f"backfill of channel {cid} retrying: {err}"
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                wait = delay
                problem = f"backfill of channel {cid} retrying: {type(exc).__name__}: {exc}"
            self.log.warning("%s (in %.1fs)", problem, wait)
            self.on_problem(problem)
            await asyncio.sleep(wait)
            delay = min(delay * 2, 30.0)
