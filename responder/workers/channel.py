"""Messages between the sink process and the worker process, over a socket pair.

A frame is a 4-byte big-endian length and a pickled list of messages. Every message sent during
one pass of the event loop goes in one frame, so a busy loop makes one write per pass rather
than one per message. Both ends are processes of the same program started by the sink, so
pickle carries the settings and the alerts as they are.
"""

from __future__ import annotations

import asyncio
import pickle
import socket
import struct
from typing import Any

import structlog

log = structlog.get_logger("responder.workers")

_LENGTH = struct.Struct(">I")

# A frame larger than this is a broken peer, not a batch: the largest real frames carry the
# settings or a batch of alerts bounded by server.queue_size.
MAX_FRAME_BYTES = 1 << 30

Message = tuple[Any, ...]


class ChannelClosed(Exception):
    """The other process closed its end or exited."""


class Channel:
    """One end of the socket pair: ``send`` queues a message, ``receive`` returns the next
    frame's messages."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._outgoing: list[Message] = []
        self._closed = False

    @classmethod
    async def open(cls, sock: socket.socket) -> Channel:
        reader, writer = await asyncio.open_connection(sock=sock, limit=MAX_FRAME_BYTES)
        return cls(reader, writer)

    def send(self, *message: Any) -> None:
        """Queue one message; it leaves with the others of this loop pass."""
        if self._closed:
            raise ChannelClosed("the channel is closed")
        if not self._outgoing:
            asyncio.get_running_loop().call_soon(self._flush)
        self._outgoing.append(message)

    def _flush(self) -> None:
        messages, self._outgoing = self._outgoing, []
        if not messages or self._writer.is_closing():
            return
        payload = pickle.dumps(messages, protocol=pickle.HIGHEST_PROTOCOL)
        self._writer.write(_LENGTH.pack(len(payload)) + payload)

    async def drain(self) -> None:
        """Send what is queued and wait until the socket has taken it."""
        self._flush()
        if not self._writer.is_closing():
            await self._writer.drain()

    async def receive(self) -> list[Message]:
        """Wait for the next frame and return its messages; raise ChannelClosed at the end."""
        try:
            header = await self._reader.readexactly(_LENGTH.size)
            (length,) = _LENGTH.unpack(header)
            if length > MAX_FRAME_BYTES:
                raise ChannelClosed(f"frame of {length} bytes from the other process")
            payload = await self._reader.readexactly(length)
        except (asyncio.IncompleteReadError, ConnectionError) as error:
            raise ChannelClosed("the other process closed the channel") from error
        messages: list[Message] = pickle.loads(payload)
        return messages

    async def close(self) -> None:
        """Send what is queued, then close this end."""
        if self._closed:
            return
        self._flush()
        self._closed = True
        self._writer.close()
        try:
            await self._writer.wait_closed()
        except ConnectionError as error:
            log.debug("channel_close_failed", error=str(error))
