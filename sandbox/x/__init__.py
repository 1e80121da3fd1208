"""A local fake of the X API v2 (mentions, posts, DMs, rate limits) for the real tweepy."""

from sandbox.x.fake import FakeX, Fault, FaultKind, RequestRecord
from sandbox.x.world import World, WorldError

__all__ = ["FakeX", "Fault", "FaultKind", "RequestRecord", "World", "WorldError"]
