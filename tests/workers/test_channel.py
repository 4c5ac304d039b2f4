"""The channel between the sink process and the worker process, over a real socket pair."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from responder.store.journal import Decision
from responder.store.queue import QueuedAlert
from responder.workers.channel import Channel, ChannelClosed
from tests.samples import sample_alert


@pytest_asyncio.fixture
async def pair() -> AsyncIterator[tuple[Channel, Channel]]:
    left, right = socket.socketpair()
    ends = (await Channel.open(left), await Channel.open(right))
    try:
        yield ends
    finally:
        for end in ends:
            await end.close()


async def test_one_frame_per_loop_pass(pair: tuple[Channel, Channel]) -> None:
    sink, workers = pair
    item = QueuedAlert(sample_alert("falco-direct", 1))
    decision = Decision(item.id, "action", 1, "shell", "label_pod", 0, "success", "labelled")
    sink.send("alerts", [(item, None)])
    sink.send("record", decision)
    sink.send("finish", item.id)
    messages = await asyncio.wait_for(workers.receive(), 5)
    assert [message[0] for message in messages] == ["alerts", "record", "finish"]
    received = messages[0][1][0][0]
    assert (received.id, received.alert, received.received_ns) == (
        item.id,
        item.alert,
        item.received_ns,
    )
    assert decision == messages[1][1]


async def test_both_directions_and_order(pair: tuple[Channel, Channel]) -> None:
    sink, workers = pair
    for number in range(3):
        sink.send("alerts", number)
        await asyncio.sleep(0)  # a pass of the loop each: one frame each
    workers.send("handled", "a")
    got: list[object] = []
    while len(got) < 3:
        got += [message[1] for message in await asyncio.wait_for(workers.receive(), 5)]
    assert [0, 1, 2] == got
    assert [("handled", "a")] == await asyncio.wait_for(sink.receive(), 5)


async def test_closed_peer_raises(pair: tuple[Channel, Channel]) -> None:
    sink, workers = pair
    await sink.close()
    with pytest.raises(ChannelClosed):
        await asyncio.wait_for(workers.receive(), 5)
    with pytest.raises(ChannelClosed):
        sink.send("drain")


async def test_frame_cut_short_raises() -> None:
    left, right = socket.socketpair()
    channel = await Channel.open(right)
    try:
        # A header that announces 100 bytes, then the end of the stream.
        left.sendall(struct.pack(">I", 100) + b"abc")
        left.close()
        with pytest.raises(ChannelClosed, match="closed the channel"):
            await asyncio.wait_for(channel.receive(), 5)
    finally:
        await channel.close()


async def test_oversized_frame_refused() -> None:
    left, right = socket.socketpair()
    channel = await Channel.open(right)
    try:
        left.sendall(struct.pack(">I", 0xFFFFFFFF))
        with pytest.raises(ChannelClosed, match="4294967295 bytes"):
            await asyncio.wait_for(channel.receive(), 5)
    finally:
        left.close()
        await channel.close()
