"""A local fake of Discord's REST API and gateway for discord.py (see :mod:`sandbox.discord.fake`)."""

from sandbox.discord.fake import DEFAULT_TOKEN, FakeDiscord, Fault
from sandbox.discord.limits import Limits
from sandbox.discord.world import FakeError, Interaction

__all__ = ["DEFAULT_TOKEN", "FakeDiscord", "FakeError", "Fault", "Interaction", "Limits"]
