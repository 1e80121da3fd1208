"""The X (Twitter) connector: mentions, conversations and DMs through tweepy's AsyncClient."""

from connectors.twitter.connector import TwitterConnector
from connectors.twitter.settings import TwitterSettings

__all__ = ["TwitterConnector", "TwitterSettings"]
