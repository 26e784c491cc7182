"""The `gateway` benchmark's upstream: a local OpenAI-protocol server streaming one fixed reply to
every request at a steady pace (testbed/llm_fakes' `PacedReplyServer`), in a process of its own."""

import asyncio
import multiprocessing
from multiprocessing.connection import Connection


def serve_upstream(pieces: list[str], first_delay: float, delay: float, ready: Connection) -> None:
    """Serve the fixed reply to every request until terminated (the upstream process)."""
    from testbed.llm_fakes.paced import PacedReplyServer

    async def serve() -> None:
        server = PacedReplyServer(pieces, first_delay, delay)
        ready.send(await server.start())
        await asyncio.Event().wait()

    try:
        import uvloop  # the cheaper loop: a thousand streams' timers and writes
    except ImportError:
        asyncio.run(serve())
    else:
        uvloop.run(serve())


class Upstream:
    """The upstream process: the load generator and the server do not pay for its streams in
    their own interpreters."""

    def __init__(self, pieces: list[str], first_token_ms: float, token_delay_ms: float) -> None:
        """Serve `pieces`, the first after `first_token_ms`, the others `token_delay_ms` apart."""
        context = multiprocessing.get_context("spawn")
        mine, theirs = context.Pipe()
        self._process = context.Process(
            target=serve_upstream,
            args=(pieces, first_token_ms / 1000, token_delay_ms / 1000, theirs),
            name="bench-gateway-upstream",
            daemon=True,
        )
        self._process.start()
        if not mine.poll(30):
            self.stop()
            raise SystemExit("the local OpenAI-protocol server did not start")
        self.url: str = mine.recv()
        self.pid = self._process.pid or 0

    def stop(self) -> None:
        if self._process.is_alive():
            self._process.terminate()
        self._process.join(10)
