"""Run the fake standalone: ``python -m sandbox.telegram --port 8081``.

Point the bot at it with ``api_base_url: http://127.0.0.1:8081`` and the printed token.
A small world is set up: a support supergroup, a forum with two topics, and three users.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from sandbox.telegram.fake import FakeTelegram
from sandbox.telegram.limits import Limits


async def _serve(args: argparse.Namespace) -> None:
    fake = FakeTelegram(args.token, limits=Limits(), enforce_limits=args.enforce_limits)
    fake.add_user(1001, "Ann", "ann")
    fake.add_user(1002, "Bo", "bo_helps")
    fake.add_user(1003, "Cy")
    fake.add_group(-1001000000001, "Support", username="acme_support")
    fake.add_group(-1001000000002, "Support Forum", forum=True)
    fake.create_topic(-1001000000002, "Billing")
    fake.create_topic(-1001000000002, "Login problems")
    await fake.start(args.host, args.port)
    print(
        f"fake Telegram Bot API on {fake.url} (token {fake.token}); test API under {fake.url}/_sandbox/",
        flush=True,
    )
    try:
        await asyncio.Event().wait()
    finally:
        await fake.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--token", default="123456:TEST-TOKEN")
    parser.add_argument(
        "--enforce-limits", action="store_true", help="answer 429 when a limit would be exceeded"
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(parser.parse_args()))


if __name__ == "__main__":
    main()
