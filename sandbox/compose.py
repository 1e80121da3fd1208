"""All three platform fakes on loopback ports, with one shared cast of people.

:class:`Sandbox` starts the fake Telegram Bot API, the fake Discord (REST + gateway) and the
fake X API v2 on 127.0.0.1, builds the same small world on each (a support group, a forum
with topics, a staff chat, helpers, staff and customers) and describes it in
:class:`Endpoints`: URLs, tokens and every id a bot configuration or a simulated community
needs. Imports nothing from the bot: it is a stand-in for the outside world.

``python -m sandbox`` runs it standalone with the simulated community (see ``__main__``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from sandbox.discord import FakeDiscord
from sandbox.telegram import FakeTelegram
from sandbox.x import FakeX

TELEGRAM_TOKEN = "777000:SANDBOX-TELEGRAM-TOKEN"
DISCORD_TOKEN = "SANDBOX.DISCORD.TOKEN"
X_BEARER = "SANDBOX-X-BEARER"
X_CONSUMER_KEY = "SANDBOX-X-CONSUMER-KEY"
X_ACCESS_TOKEN = "SANDBOX-X-ACCESS-TOKEN"
X_SECRET = "SANDBOX-X-SECRET"  # consumer and access secrets (the fake checks keys, not signatures)
X_BOT = "acme_notes"

HELPERS = ("ann", "bo", "cleo", "dee", "eli")
STAFF = ("sam",)
CUSTOMER_NAMES = (
    "mia", "noah", "lena", "omar", "priya", "quinn", "ravi", "sofia", "tom", "uma", "vik", "wen",
)  # fmt: skip

TG_SUPPORT = -1001000000101  # a supergroup
TG_FORUM = -1001000000102  # a forum supergroup with topics
TG_STAFF = -1001000000109  # the private staff group
TG_TOPICS = ("Login & account", "Sync", "Export & import")


def customer_names(n: int) -> tuple[str, ...]:
    """``n`` customer names: the friendly dozen, then cust013, cust014 ..."""
    return tuple(CUSTOMER_NAMES[i] if i < len(CUSTOMER_NAMES) else f"cust{i + 1:03d}" for i in range(n))


@dataclass
class Person:
    name: str
    role: str  # customer | helper | staff
    telegram_id: int
    discord_id: str
    x_id: str

    @property
    def telegram_username(self) -> str:
        return self.name

    @property
    def discord_name(self) -> str:
        return self.name

    @property
    def x_username(self) -> str:
        return self.name


@dataclass
class Endpoints:
    """Where everything is: enough to configure a bot and to drive a community over HTTP."""

    telegram_url: str
    telegram_token: str
    telegram_support: int
    telegram_forum: int
    telegram_topics: dict[str, int]  # topic name -> message_thread_id
    telegram_staff: int
    discord_url: str
    discord_api: str
    discord_gateway: str
    discord_token: str
    discord_guild: str
    discord_support: str  # #support text channel
    discord_forum: str  # help-forum
    discord_bot_id: str
    x_url: str
    x_bot_username: str
    x_bot_id: str
    x_bearer: str
    x_consumer_key: str
    x_access_token: str
    x_secret: str
    people: dict[str, Person] = field(default_factory=dict)

    def by_role(self, role: str) -> list[Person]:
        return [p for p in self.people.values() if p.role == role]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Endpoints:
        people = {k: Person(**v) for k, v in data.get("people", {}).items()}
        values = {**data, "people": people}
        values["telegram_topics"] = {str(k): int(v) for k, v in data["telegram_topics"].items()}
        return cls(**values)

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2)


class Sandbox:
    """The three fakes, started together. ``async with Sandbox() as sb: sb.endpoints ...``"""

    def __init__(
        self,
        *,
        customers: int = len(CUSTOMER_NAMES),
        telegram_port: int = 0,
        discord_port: int = 0,
        x_port: int = 0,
        x_limits: dict[str, tuple[int, float]] | None = None,
    ) -> None:
        self.telegram = FakeTelegram(TELEGRAM_TOKEN, bot_username="acme_notes_bot")
        self.discord = FakeDiscord(DISCORD_TOKEN)
        self.x = FakeX(
            bot_username=X_BOT,
            bearer_token=X_BEARER,
            consumer_key=X_CONSUMER_KEY,
            access_token=X_ACCESS_TOKEN,
            limits=x_limits,
        )
        self.ports = (telegram_port, discord_port, x_port)
        self.n_customers = customers
        self._endpoints: Endpoints | None = None

    @property
    def endpoints(self) -> Endpoints:
        if self._endpoints is None:
            raise RuntimeError("the sandbox is not started")
        return self._endpoints

    async def start(self) -> Endpoints:
        people = self._build_world()
        await self.telegram.start("127.0.0.1", self.ports[0])
        await self.discord.start("127.0.0.1", self.ports[1])
        await self.x.start("127.0.0.1", self.ports[2])
        d = self.discord
        self._endpoints = Endpoints(
            telegram_url=self.telegram.url,
            telegram_token=TELEGRAM_TOKEN,
            telegram_support=TG_SUPPORT,
            telegram_forum=TG_FORUM,
            telegram_topics=self._topics,
            telegram_staff=TG_STAFF,
            discord_url=d.url,
            discord_api=d.api_base,
            discord_gateway=d.gateway_url,
            discord_token=DISCORD_TOKEN,
            discord_guild=d.guild_id,
            discord_support=d.text_channel_id,
            discord_forum=d.forum_channel_id,
            discord_bot_id=d.bot_user["id"],
            x_url=self.x.url,
            x_bot_username=X_BOT,
            x_bot_id=self.x.world.bot_id,
            x_bearer=X_BEARER,
            x_consumer_key=X_CONSUMER_KEY,
            x_access_token=X_ACCESS_TOKEN,
            x_secret=X_SECRET,
            people=people,
        )
        return self._endpoints

    async def stop(self) -> None:
        for fake in (self.x, self.discord, self.telegram):
            await fake.stop()

    async def __aenter__(self) -> Sandbox:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _build_world(self) -> dict[str, Person]:
        tg, dc, x = self.telegram, self.discord, self.x
        people: dict[str, Person] = {}
        cast = [(n, "helper") for n in HELPERS] + [(n, "staff") for n in STAFF]
        cast += [(n, "customer") for n in customer_names(self.n_customers)]
        for i, (name, role) in enumerate(cast):
            tid = 1000 + i if role != "customer" else 3000 + i
            tg.add_user(tid, name.title(), name)
            roles = {"helper": [dc.helper_role_id], "staff": [dc.staff_role_id]}.get(role, [])
            du = dc.add_user(name, roles=roles)
            xu = x.add_user(name, user_id=str(1100 + i if role != "customer" else 5000 + i))
            people[name] = Person(name, role, tid, str(du["id"]), str(xu["id"]))
        tg.add_group(TG_SUPPORT, "Acme Notes Support", username="acme_notes_support")
        tg.add_group(TG_FORUM, "Acme Notes Community", forum=True)
        tg.add_group(TG_STAFF, "Acme Notes Staff")
        self._topics = {name: tg.create_topic(TG_FORUM, name) for name in TG_TOPICS}
        return people
