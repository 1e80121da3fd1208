"""The Telegram connector: groups, forum topics, DMs, edits and inline buttons via python-telegram-bot."""

from connectors.telegram.connector import TelegramConnector
from connectors.telegram.settings import TelegramSettings, WebhookSettings

__all__ = ["TelegramConnector", "TelegramSettings", "WebhookSettings"]
