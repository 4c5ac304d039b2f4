"""The bounded queue between the sink and the workers."""

from __future__ import annotations

import asyncio

from responder.store.queue import AlertQueue, QueuedAlert
from tests.samples import sample_alert


def items(count: int) -> list[QueuedAlert]:
    return [QueuedAlert(sample_alert("falco-direct", 1)) for _ in range(count)]


async def test_taken_alerts_hold_room_until_done() -> None:
    queue = AlertQueue(3)
    assert queue.offer(items(3))
    in_hand = await queue.take()
    assert 3 == len(in_hand)
    # Taken by a worker, or sent to the worker process: not handled yet, so no room.
    assert 3 == len(queue)
    assert not queue.offer(items(1))
    queue.done(2)
    assert 1 == len(queue)
    assert queue.offer(items(2))
    assert not queue.offer(items(1))


async def test_take_returns_what_waits_in_order() -> None:
    queue = AlertQueue(10)
    first, second = items(2)
    queue.put_resumed([first])
    assert queue.offer([second])
    assert [first.id, second.id] == [item.id for item in await queue.take()]
    third = items(1)
    waiting = asyncio.create_task(queue.take())
    await asyncio.sleep(0)
    assert not waiting.done()
    assert queue.offer(third)
    assert third == await asyncio.wait_for(waiting, 5)


async def test_wait_idle_after_done() -> None:
    queue = AlertQueue(5)
    assert queue.offer(items(2))
    idle = asyncio.create_task(queue.wait_idle())
    await queue.get()
    await queue.get()
    queue.done()
    await asyncio.sleep(0)
    assert not idle.done()
    queue.done()
    await asyncio.wait_for(idle, 5)
    assert 0 == len(queue)
