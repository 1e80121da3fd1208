"""The Discord connector: channels, threads, forum posts, DMs, reactions and buttons via discord.py."""

from connectors.discord.connector import DiscordConnector
from connectors.discord.settings import DiscordSettings

__all__ = ["DiscordConnector", "DiscordSettings"]
