"""Run the fake standalone: ``python -m sandbox.x --port 8082``.

Point the connector at it with ``api_base_url: http://127.0.0.1:8082`` and the printed
credentials. Two customers and a helper exist; drive it with ``/_sandbox/...``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from sandbox.x.fake import FakeX


async def _serve(args: argparse.Namespace) -> None:
    fake = FakeX(bot_username=args.bot_username, mention_window=args.mention_window)
    fake.add_user("ann")
    fake.add_user("bo_helps")
    fake.add_user("cy", accepts_dms=False)
    await fake.start(args.host, args.port)
    print(
        f"fake X API v2 on {fake.url} (bot @{args.bot_username}, id {fake.world.bot_id}); "
        f"bearer {fake.bearer_token!r}, consumer key {fake.consumer_key!r}, "
        f"access token {fake.access_token!r} (any secrets); test API under /_sandbox/"
    )
    try:
        await asyncio.Event().wait()
    finally:
        await fake.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8082)
    parser.add_argument("--bot-username", default="acme_support")
    parser.add_argument("--mention-window", type=int, default=800)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(parser.parse_args()))


if __name__ == "__main__":
    main()
