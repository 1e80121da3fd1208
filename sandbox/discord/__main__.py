"""Run the fake standalone: ``python -m sandbox.discord --port 8082``.

Point the bot at it with ``api_base_url: http://127.0.0.1:8082/api/v10`` and
``gateway_url: ws://127.0.0.1:8082/`` and the printed token. The world: one guild with a
``#support`` text channel (and a thread in it), a ``help-forum`` forum channel with tags, an
unwatched ``#off-topic``, a ``helpers`` role and three users (carol, dave the helper, erin staff).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json

from sandbox.discord.fake import DEFAULT_TOKEN, FakeDiscord


async def _serve(args: argparse.Namespace) -> None:
    fake = FakeDiscord(args.token, resume_window=args.resume_window)
    await fake.start("127.0.0.1", args.port)
    print(f"fake Discord on {fake.url}: api {fake.api_base}, gateway {fake.gateway_url}")
    print("test API under /_sandbox/ (see sandbox/discord/control.py)")
    print(json.dumps({k: v for k, v in fake.state().items() if k != "counters"}, indent=2))
    try:
        await asyncio.Event().wait()
    finally:
        await fake.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8082)
    parser.add_argument("--token", default=DEFAULT_TOKEN)
    parser.add_argument("--resume-window", type=float, default=60.0, help="seconds a session stays resumable")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args))


if __name__ == "__main__":
    main()
