"""Which channels the connector listens to (``guild_ids``, ``channel_ids``, ``dms``)."""

from __future__ import annotations

import discord

from connectors.discord.settings import DiscordSettings


class Watch:
    def __init__(self, settings: DiscordSettings) -> None:
        self.guild_ids = frozenset(settings.guild_ids)
        self.channel_ids = frozenset(settings.channel_ids)
        self.dms = settings.dms

    def includes(self, channel: object, channel_id: int, *, guild_id: int | None = None) -> bool:
        """Is an event in ``channel`` (a discord.py channel, or None when not cached) watched?

        A thread is watched when it, or its parent text/forum channel, is named in ``channel_ids``;
        with no ``channel_ids`` every channel of the watched guilds (all guilds if none) is.
        """
        if isinstance(channel, discord.DMChannel | discord.GroupChannel) or (
            channel is None and guild_id is None
        ):
            return self.dms
        guild = getattr(channel, "guild", None)
        gid = str(guild.id) if guild is not None else (str(guild_id) if guild_id is not None else None)
        if self.guild_ids and gid not in self.guild_ids:
            return False
        if not self.channel_ids:
            return True
        ids = {str(channel_id)}
        if isinstance(channel, discord.Thread):
            ids.add(str(channel.parent_id))
        return bool(ids & self.channel_ids)

    def includes_guild(self, guild: discord.Guild) -> bool:
        return not self.guild_ids or str(guild.id) in self.guild_ids


def can_read_history(channel: discord.TextChannel | discord.Thread) -> bool:
    """Whether the bot may read the channel's history (asking anyway only collects 403s)."""
    me = channel.guild.me
    if me is None:
        return True
    perms = channel.permissions_for(me)
    return perms.read_messages and perms.read_message_history
