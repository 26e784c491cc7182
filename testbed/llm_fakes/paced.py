"""A local OpenAI-protocol server that streams one fixed reply at a steady pace to every request,
on asyncio (benchmarks only).

`FakeProviderServer` (beside it) is for tests: scriptable, recording, a thread per connection.
A benchmark that holds a thousand replies open at 50 tokens a second needs the stand-in to cost
less than what it measures: here every stream is a coroutine, the events are encoded once, and
pacing is one timer per token. The wire format is `openai.chat_events` (role chunk, one content
chunk per piece, finish chunk, usage chunk, `[DONE]`), sent with chunked transfer encoding on
keep-alive HTTP/1.1 connections. Loopback only: it binds 127.0.0.1.
"""

import asyncio
import contextlib
from collections.abc import Sequence

from testbed.llm_fakes.openai import chat_events

_HEAD = (
    b"HTTP/1.1 200 OK\r\n"
    b"Content-Type: text/event-stream\r\n"
    b"Cache-Control: no-cache\r\n"
    b"Transfer-Encoding: chunked\r\n"
    b"\r\n"
)


def _chunked(event: bytes) -> bytes:
    return f"{len(event):x}\r\n".encode() + event + b"\r\n"


class PacedReplyServer:
    """Streams `pieces` to every request: the role chunk and the first piece after `first_delay`
    seconds, each further piece `delay` seconds after the one before, then the end at once."""

    def __init__(self, pieces: Sequence[str], first_delay: float, delay: float) -> None:
        events = [_chunked(e) for e in chat_events(pieces)]
        # role + first piece | each further piece | finish + usage + [DONE] + last chunk
        self._first = _HEAD + events[0] + events[1]
        self._rest = events[2 : 1 + len(pieces)]
        self._end = b"".join(events[1 + len(pieces) :]) + b"0\r\n\r\n"
        self._first_delay = first_delay
        self._delay = delay
        self._server: asyncio.Server | None = None
        self.streams = 0
        """Replies streamed to the end."""

    async def start(self) -> str:
        """Listen on a free port; its URL (`http://127.0.0.1:PORT`)."""
        # Up to a thousand clients connect at once: a small listen backlog would drop SYNs and
        # add the kernel's one-second retransmit to some of them.
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, backlog=4096)
        host, port = self._server.sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await self._request(reader):
                await asyncio.sleep(self._first_delay)
                writer.write(self._first)
                for event in self._rest:
                    await asyncio.sleep(self._delay)
                    writer.write(event)
                    await writer.drain()
                writer.write(self._end)
                await writer.drain()
                self.streams += 1
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client went away
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    @staticmethod
    async def _request(reader: asyncio.StreamReader) -> bool:
        """Read one request (headers and body, which we ignore); False at the connection's end."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return False
        length = 0
        for line in head.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        if length:
            await reader.readexactly(length)
        return True
