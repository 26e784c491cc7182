"""The `gateway` benchmark's load generator, both paths: Parley's clients (each starts a chat,
subscribes to its `chatEvents` over WebSocket, sends one message over HTTP and times the first
`ReplyDelta` and the assistant's `MessageAdded`), and the baseline's tasks streaming the same
reply from the upstream through the bare `openai` SDK's asynchronous client. Both run on the
benchmark's one event loop (uvloop when installed), at different times."""

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import openai
from websockets.asyncio.client import ClientConnection

from bench.gateway_figures import CpuTimes, CpuUse, Sample
from bench.server import SEND_MESSAGE, START_CHAT, graphql, live_subscribers, subscribe
from testbed.processes import Server

UPSTREAM_MODEL = "gpt-4o-mini"
CHAT_EVENTS = """subscription($chatId: ID!, $after: Int) {
  chatEvents(chatId: $chatId, afterPosition: $after) {
    __typename
    ... on ReplyDelta { delta }
    ... on MessageAdded { message { role content provider finishReason timeToFirstTokenMs
                                    latencyMs } }
  }
}"""


# -- Parley: one client -------------------------------------------------------------------------


@dataclass
class Subscriber:
    """One client's `chatEvents` subscription, on a WebSocket of its own."""

    ws: ClientConnection
    chat_id: str
    first_delta_at: float | None = None
    done_at: float | None = None
    deltas: list[str] = field(default_factory=list)
    reply: dict[str, Any] | None = None
    error: str | None = None
    reader: "asyncio.Task[None] | None" = None

    @classmethod
    async def open(cls, server: Server, token: str, chat: dict[str, Any]) -> "Subscriber":
        # afterPosition: the server waits until the chat is in its read models before it checks
        # that the caller may see it.
        variables = {"chatId": chat["chatId"], "after": chat["position"]}
        # No permessage-deflate: a thousand clients' zlib would cost the load generator's core.
        ws = await subscribe(server, token, CHAT_EVENTS, variables, timeout=60, compression=None)
        sub = cls(ws, chat["chatId"])
        sub.reader = asyncio.create_task(sub._read())
        return sub

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                at = time.perf_counter()
                message = json.loads(raw)
                kind = message.get("type")
                if kind == "ping":
                    await self.ws.send(json.dumps({"type": "pong"}))
                elif kind == "next":
                    payload = message["payload"]
                    if payload.get("errors"):
                        self.error = f"subscription error: {payload['errors']}"
                        return
                    event = payload["data"]["chatEvents"]
                    if event["__typename"] == "ReplyDelta":
                        if self.first_delta_at is None:
                            self.first_delta_at = at
                        self.deltas.append(event["delta"])
                    elif (
                        event["__typename"] == "MessageAdded"
                        and event["message"]["role"] == "ASSISTANT"
                    ):
                        self.done_at, self.reply = at, event["message"]
                        return
                else:
                    self.error = f"the subscription ended: {message}"
                    return
            self.error = "the WebSocket closed before the reply"
        except Exception as e:  # reported as a problem of the round, not raised into the loop
            self.error = f"{type(e).__name__}: {e}"

    async def close(self) -> None:
        if self.reader is not None:
            self.reader.cancel()
        try:
            await self.ws.send(json.dumps({"id": "1", "type": "complete"}))
            await self.ws.close()
        except Exception:
            pass  # already closed


@dataclass
class Gateway:
    """The running `parley serve` and what the clients need to talk to it."""

    server: Server
    http: httpx.AsyncClient
    token: str
    expected: str
    """The fixed reply."""
    upstream_pid: int

    def cpu_now(self) -> CpuTimes:
        return CpuTimes.now(self.server.proc.pid if self.server.proc else 0, self.upstream_pid)

    async def wait_for_subscribers(self, count: int, timeout: float) -> None:
        """Until the server has registered exactly `count` subscriptions (all of this round)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                seen = await live_subscribers(self.http)
            except httpx.TransportError:  # a kept-alive connection the busy server closed
                seen = -1
            if seen == count:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{seen} subscriptions registered, expected {count}")
            await asyncio.sleep(0.02)

    async def settle(self, timeout: float) -> None:
        """Until every follower is at the log head and no reply is in flight: each round starts
        with an idle server, and the baseline does not share the machine with Parley's work."""
        await asyncio.to_thread(self.server.settled_head, timeout)


async def parley_round(
    gw: Gateway, chats: int, label: str, timeout: float, cpu: CpuUse | None
) -> list[Sample]:
    """`chats` clients at once: start a chat, subscribe, then (timed) send and await the reply."""
    started = await asyncio.gather(
        *(
            graphql(gw.http, gw.token, START_CHAT, {"i": {"title": f"{label}-{n}"}})
            for n in range(chats)
        )
    )
    await gw.wait_for_subscribers(0, timeout)  # the last round's are gone
    subscribers: list[Subscriber] = []
    try:
        for opened in await asyncio.gather(
            *(Subscriber.open(gw.server, gw.token, s["startChat"]) for s in started),
            return_exceptions=True,
        ):
            if isinstance(opened, BaseException):
                raise opened
            subscribers.append(opened)
        await gw.wait_for_subscribers(chats, timeout)
        await gw.settle(timeout)
        before = gw.cpu_now()
        samples = await asyncio.wait_for(
            asyncio.gather(
                *(converse(gw, sub, f"{label}-{n}") for n, sub in enumerate(subscribers))
            ),
            timeout,
        )
        if cpu is not None:
            cpu.add(before, gw.cpu_now())
        return samples
    finally:
        await asyncio.gather(*(sub.close() for sub in subscribers))


async def converse(gw: Gateway, sub: Subscriber, label: str) -> Sample:
    sent_at = time.perf_counter()
    content = f"Question {label}: how far is the moon?"
    await graphql(
        gw.http, gw.token, SEND_MESSAGE, {"i": {"chatId": sub.chat_id, "content": content}}
    )
    acked_at = time.perf_counter()
    assert sub.reader is not None
    await sub.reader
    if sub.error is not None:
        raise RuntimeError(f"chat {sub.chat_id}: {sub.error}")
    assert sub.reply is not None and sub.done_at is not None
    text = "".join(sub.deltas)
    if sub.first_delta_at is None or text != gw.expected or sub.reply["content"] != gw.expected:
        raise RuntimeError(
            f"chat {sub.chat_id}: wrong reply (deltas {text[:60]!r}, message "
            f"{sub.reply['content'][:60]!r}, provider {sub.reply['provider']})"
        )
    provider_ttft, latency = sub.reply["timeToFirstTokenMs"], sub.reply["latencyMs"]
    return Sample(
        ttft=sub.first_delta_at - sent_at,
        total=sub.done_at - sent_at,
        ack=acked_at - sent_at,
        provider_ttft=None if provider_ttft is None else provider_ttft / 1000,
        reply=None if latency is None else latency / 1000,
    )


# -- the baseline: the bare openai SDK ----------------------------------------------------------


async def baseline_round(
    client: openai.AsyncOpenAI, chats: int, label: str, expected: str
) -> list[Sample]:
    """`chats` tasks, released together, each streaming one reply through a shared asynchronous
    client (as Parley's responder shares one on its event loop)."""
    gate = asyncio.Event()

    async def one(n: int) -> Sample:
        content = f"Question {label}-{n}: how far is the moon?"
        await gate.wait()
        sent_at = time.perf_counter()
        first_at: float | None = None
        parts: list[str] = []
        stream = await client.chat.completions.create(
            model=UPSTREAM_MODEL,
            messages=[{"role": "user", "content": content}],
            stream=True,
            stream_options={"include_usage": True},
            max_completion_tokens=1024,
        )
        async with stream:
            async for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    if first_at is None:
                        first_at = time.perf_counter()
                    parts.append(chunk.choices[0].delta.content)
        done_at = time.perf_counter()
        if first_at is None or "".join(parts) != expected:
            raise RuntimeError(f"baseline: wrong reply {''.join(parts)[:60]!r}")
        return Sample(ttft=first_at - sent_at, total=done_at - sent_at)

    tasks = [asyncio.create_task(one(n)) for n in range(chats)]
    await asyncio.sleep(0)  # every task waits at the gate
    gate.set()
    return list(await asyncio.gather(*tasks))
