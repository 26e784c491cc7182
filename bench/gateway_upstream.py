"""The `gateway` benchmark's upstream: a local OpenAI-protocol server (testbed/llm_fakes'
`FakeProviderServer`) streaming one fixed reply to every request, in a process of its own."""

import multiprocessing
import threading
from multiprocessing.connection import Connection


def serve_upstream(pieces: list[str], first_delay: float, delay: float, ready: Connection) -> None:
    """Serve the fixed reply to every request until terminated (the upstream process)."""
    from testbed.llm_fakes import openai as oai
    from testbed.llm_fakes import server

    # Up to 100 clients connect at once; the default listen backlog (5) would drop their SYNs
    # and add the kernel's one-second retransmit to some of them.
    server._QuietServer.request_queue_size = 1024
    reply = oai.chat_stream(pieces, first_delay=first_delay, delay=delay)
    fake = server.FakeProviderServer(default=lambda _request: reply).start()
    ready.send(fake.url)
    threading.Event().wait()


class Upstream:
    """The upstream process: the load generator and the server do not pay for its threads in
    their own interpreters (the GIL)."""

    def __init__(self, pieces: list[str], first_token_ms: float, chunk_delay_ms: float) -> None:
        """Serve `pieces`, the first after `first_token_ms`, the others `chunk_delay_ms` apart."""
        context = multiprocessing.get_context("spawn")
        mine, theirs = context.Pipe()
        self._process = context.Process(
            target=serve_upstream,
            args=(pieces, first_token_ms / 1000, chunk_delay_ms / 1000, theirs),
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
