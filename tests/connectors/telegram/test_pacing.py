"""The pacer's windows, on a virtual clock (no real waiting)."""

from __future__ import annotations

import asyncio

from connectors.telegram.pacing import Pacer


class VirtualTime:
    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


async def send_times(pacer: Pacer, vt: VirtualTime, chats: list[tuple[str, bool]]) -> list[float]:
    times = []
    for chat, is_group in chats:
        async with pacer.slot(chat, is_group=is_group):
            times.append(vt.now)
    return times


async def test_one_message_per_second_per_chat() -> None:
    vt = VirtualTime()
    pacer = Pacer(per_chat_interval=1.0, clock=vt.clock, sleep=vt.sleep)
    times = await send_times(pacer, vt, [("-1", True), ("-1", True), ("-2", True), ("-1", True)])
    assert times == [0.0, 1.0, 1.0, 2.0]


async def test_twenty_per_minute_per_group_but_not_for_dms() -> None:
    vt = VirtualTime()
    pacer = Pacer(per_chat_interval=0.0, group_limit=20, group_window=60.0, clock=vt.clock, sleep=vt.sleep)
    group = await send_times(pacer, vt, [("-1", True)] * 21)
    assert group[:20] == [0.0] * 20 and group[20] == 60.0
    vt.now = 0.0
    pacer = Pacer(per_chat_interval=0.0, group_limit=20, group_window=60.0, clock=vt.clock, sleep=vt.sleep)
    dm = await send_times(pacer, vt, [("42", False)] * 21)
    assert dm == [0.0] * 21


async def test_thirty_per_second_overall() -> None:
    vt = VirtualTime()
    pacer = Pacer(per_chat_interval=1.0, overall_limit=30, overall_window=1.0, clock=vt.clock, sleep=vt.sleep)
    times = await send_times(pacer, vt, [(str(-i), True) for i in range(1, 32)])
    assert times[:30] == [0.0] * 30 and times[30] == 1.0


async def test_a_429_blocks_only_its_chat() -> None:
    vt = VirtualTime()
    pacer = Pacer(per_chat_interval=0.0, clock=vt.clock, sleep=vt.sleep)
    pacer.block("-1", 5.0)
    assert await send_times(pacer, vt, [("-2", True), ("42", False)]) == [0.0, 0.0]
    assert await send_times(pacer, vt, [("-1", True)]) == [5.0]


async def test_state_for_quiet_chats_is_forgotten_and_limits_still_hold() -> None:
    """A bot answering thousands of DMs keeps state only for chats active lately, and pruning
    never lets a chat that is still inside a window send early."""
    vt = VirtualTime()
    pacer = Pacer(per_chat_interval=1.0, group_limit=2, group_window=60.0, clock=vt.clock, sleep=vt.sleep)
    await send_times(pacer, vt, [("-7", True), ("-7", True)])  # group -7: its window is full until t=60
    for i in range(1200):  # 1,200 distinct DM chats, 25 per second (under the 30/s overall)
        vt.now += 0.04
        assert await send_times(pacer, vt, [(str(i), False)]) == [vt.now]
    assert vt.now < 50.0
    assert len(pacer) < 300, len(pacer)  # not one entry per chat ever answered
    last = vt.now
    assert await send_times(pacer, vt, [("1199", False)]) == [last + 1.0], "its second still holds"
    assert await send_times(pacer, vt, [("-7", True)]) == [60.0], "the group's minute still holds"
