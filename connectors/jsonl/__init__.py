"""The JSON Lines connector: inbound messages from a file it tails, replies to another file."""

from connectors.jsonl.connector import JsonlConnector, JsonlSettings

__all__ = ["JsonlConnector", "JsonlSettings"]
