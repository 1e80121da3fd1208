"""A local fake of the Telegram Bot API for tests and the simulated community."""

from sandbox.telegram.fake import BOT_ID, BOT_USERNAME, FakeTelegram, Fault, SentMessage
from sandbox.telegram.limits import Limits

__all__ = ["BOT_ID", "BOT_USERNAME", "FakeTelegram", "Fault", "Limits", "SentMessage"]
