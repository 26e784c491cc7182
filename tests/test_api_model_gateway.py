"""The model gateway through the GraphQL API: a real `parley serve` whose providers (the official
SDKs: openai, its Azure client, anthropic, google-genai) talk to a local server speaking each
provider's streaming protocol."""

import json
import secrets
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from testbed.client import ApiClient
from testbed.llm_fakes import anthropic as claude
from testbed.llm_fakes import google as gemini
from testbed.llm_fakes import openai as oai
from testbed.llm_fakes.server import FakeProviderServer, Stream
from testbed.processes import Server

PRICES = {
    "openai/gpt-4o-mini": {"input": 0.15, "output": 0.6},
    "anthropic/claude-haiku": {"input": 1.0, "output": 5.0},
    "google/gemini-flash": {"input": 0.1, "output": 0.4},
    "azure/chat-prod": {"input": 2.5, "output": 10.0},
}
AZURE_API_VERSION = "2024-10-21"
COMPATIBLE_KEY = "token-" + secrets.token_hex(8)
SETTINGS = """mutation($i: UpdateTenantSettingsInput!) { updateTenantSettings(input: $i) {
    position } }"""
START = "mutation($i: StartChatInput!) { startChat(input: $i) { chatId position } }"
SEND = "mutation($i: SendMessageInput!) { sendMessage(input: $i) { messageId position } }"
STOP = "mutation($i: ChatIdInput!) { stopGeneration(input: $i) { chatId requested } }"
REPLY = """query($id: ID!, $after: Int) { chat(id: $id, afterPosition: $after) {
    messages(first: 50) { nodes {
    role content model provider attempts fallbacks timeToFirstTokenMs costUsd cached
    inputTokens outputTokens finishReason } } } }"""


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeProviderServer]:
    with FakeProviderServer() as fake:
        yield fake


@pytest.fixture(scope="module")
def platform_key() -> str:
    return "sk-test-" + secrets.token_hex(16)  # generated per run, never a real key


@pytest.fixture(scope="module")
def other_keys() -> dict[str, str]:
    """The platform's Anthropic, Google and Azure keys (generated per run)."""
    return {
        name: f"{name}-test-{secrets.token_hex(12)}" for name in ("anthropic", "google", "azure")
    }


@pytest.fixture(scope="module")
def gateway(
    tmp_path_factory: pytest.TempPathFactory,
    upstream: FakeProviderServer,
    platform_key: str,
    other_keys: dict[str, str],
) -> Iterator[Server]:
    server = Server(
        Path(tmp_path_factory.mktemp("gateway")),
        {
            "OPENAI_API_KEY": platform_key,
            "OPENAI_BASE_URL": f"{upstream.url}/v1",
            "ANTHROPIC_API_KEY": other_keys["anthropic"],
            "ANTHROPIC_BASE_URL": upstream.url,
            "GEMINI_API_KEY": other_keys["google"],
            "GOOGLE_GEMINI_BASE_URL": upstream.url,
            "AZURE_OPENAI_API_KEY": other_keys["azure"],
            "AZURE_OPENAI_ENDPOINT": upstream.url,
            "OPENAI_API_VERSION": AZURE_API_VERSION,
            "PARLEY_LLM_COMPATIBLE": json.dumps(
                {"vllm": {"base_url": f"{upstream.url}/v1", "api_key": COMPATIBLE_KEY}}
            ),
            "PARLEY_LLM_CONTEXT_WINDOWS": json.dumps({"vllm/small": 100}),
            "PARLEY_LLM_PRICES": json.dumps(PRICES),
            "PARLEY_LLM_BREAKER_THRESHOLD": "100",  # these tests fail the provider on purpose
        },
    ).start()
    yield server
    server.stop()


def admin_of_new_tenant(server: Server, model: str = "openai/gpt-4o-mini") -> ApiClient:
    tenant = server.create_tenant()
    admin = ApiClient(server.url).login(tenant["slug"], tenant["email"], tenant["password"])
    admin.run(
        SETTINGS,
        {
            "i": {
                "defaultModel": model,
                "allowedModels": [model, "echo"],
                "fallbackModels": ["echo"],
                "systemPrompt": "Answer briefly.",
            }
        },
    )
    return admin


def replies_in(user: ApiClient, chat: str, count: int, after: int) -> list[dict]:
    """The chat's assistant replies once there are `count` of them (`after`: the position of
    a write of ours, so that the read models hold the chat at all)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        nodes = user.run(REPLY, {"id": chat, "after": after})["chat"]["messages"]["nodes"]
        replies = [m for m in nodes if m["role"] == "ASSISTANT"]
        if len(replies) >= count:
            return replies
        time.sleep(0.1)
    raise AssertionError(f"fewer than {count} replies within 30 s")


def ask(user: ApiClient, content: str) -> dict:
    """Send a message in a new chat; return the assistant's reply once recorded."""
    chat = user.run(START, {"i": {"title": "Gateway"}})["startChat"]["chatId"]
    sent = user.run(SEND, {"i": {"chatId": chat, "content": content}})["sendMessage"]
    return dict(replies_in(user, chat, 1, sent["position"])[0])


def test_a_reply_streams_from_the_provider_with_usage_cost_and_the_system_prompt(
    gateway: Server, upstream: FakeProviderServer, platform_key: str
) -> None:
    admin = admin_of_new_tenant(gateway)
    upstream.queue(oai.chat_stream(["Paris", " is", " the", " capital."], prompt_tokens=21))
    before = len(upstream.requests)
    reply = ask(admin, "What is the capital of France?")
    assert reply["content"] == "Paris is the capital."
    assert (reply["provider"], reply["model"]) == ("openai", oai.MODEL)
    assert (reply["inputTokens"], reply["outputTokens"], reply["finishReason"]) == (21, 4, "stop")
    assert (reply["attempts"], reply["fallbacks"], reply["cached"]) == (1, 0, False)
    assert reply["costUsd"] == pytest.approx((21 * 0.15 + 4 * 0.6) / 1e6)
    assert reply["timeToFirstTokenMs"] is not None
    [sent] = upstream.requests[before:]
    assert sent.headers["authorization"] == f"Bearer {platform_key}"
    assert sent.body["model"] == "gpt-4o-mini" and sent.body["stream"] is True
    assert sent.body["messages"][0] == {"role": "system", "content": "Answer briefly."}
    assert sent.body["messages"][-1] == {
        "role": "user",
        "content": "What is the capital of France?",
    }
    metrics = httpx.get(f"{gateway.url}/metrics", timeout=10).text
    model = f'gen_ai_provider_name="openai",gen_ai_request_model="{oai.MODEL}"'
    assert f'gen_ai_client_token_usage_count{{gen_ai_operation_name="chat",{model}' in metrics
    assert "gen_ai_client_time_to_first_token_seconds_count{gen_ai_operation_name" in metrics
    assert "parley_gen_ai_spend_usd_total{tenant_id=" in metrics
    assert "chat_id" not in metrics and "user_id" not in metrics


def test_anthropic_answers_through_its_sdk_with_the_system_prompt_as_its_own_parameter(
    gateway: Server, upstream: FakeProviderServer, other_keys: dict[str, str]
) -> None:
    admin = admin_of_new_tenant(gateway, "anthropic/claude-haiku")
    upstream.queue(
        Stream(
            claude.message_events(["Bonjour", " !"], model="claude-haiku-20261001", input_tokens=30)
        )
    )
    before = len(upstream.requests)
    reply = ask(admin, "Say hello in French")
    assert reply["content"] == "Bonjour !"
    assert (reply["provider"], reply["model"]) == ("anthropic", "claude-haiku-20261001")
    assert (reply["inputTokens"], reply["outputTokens"], reply["finishReason"]) == (30, 2, "stop")
    assert reply["costUsd"] == pytest.approx((30 * 1.0 + 2 * 5.0) / 1e6)
    [sent] = upstream.requests[before:]
    assert sent.path == "/v1/messages"
    assert sent.headers["authorization"] == f"Bearer {other_keys['anthropic']}"  # SDK 2.x
    assert sent.body["model"] == "claude-haiku" and sent.body["stream"] is True
    assert sent.body["system"] == "Answer briefly."
    assert sent.body["messages"] == [{"role": "user", "content": "Say hello in French"}]


def test_google_answers_through_the_genai_sdk(
    gateway: Server, upstream: FakeProviderServer, other_keys: dict[str, str]
) -> None:
    admin = admin_of_new_tenant(gateway, "google/gemini-flash")
    upstream.queue(
        Stream(
            gemini.content_events(
                ["Hallo", " Welt"], model_version="gemini-flash-002", prompt_tokens=12
            )
        )
    )
    before = len(upstream.requests)
    reply = ask(admin, "Say hello in German")
    assert reply["content"] == "Hallo Welt"
    assert (reply["provider"], reply["model"]) == ("google", "gemini-flash-002")
    assert (reply["inputTokens"], reply["outputTokens"], reply["finishReason"]) == (12, 2, "stop")
    assert reply["costUsd"] == pytest.approx((12 * 0.1 + 2 * 0.4) / 1e6)
    [sent] = upstream.requests[before:]
    assert sent.path.endswith("/models/gemini-flash:streamGenerateContent?alt=sse")
    assert sent.headers["x-goog-api-key"] == other_keys["google"]
    assert sent.body["systemInstruction"]["parts"] == [{"text": "Answer briefly."}]
    assert sent.body["contents"] == [{"role": "user", "parts": [{"text": "Say hello in German"}]}]


def test_azure_openai_answers_from_the_deployment_named_in_the_model(
    gateway: Server, upstream: FakeProviderServer, other_keys: dict[str, str]
) -> None:
    admin = admin_of_new_tenant(gateway, "azure/chat-prod")
    upstream.queue(
        oai.chat_stream(["Hej", "!"], model="gpt-4o-2024-11-20", prompt_tokens=9, azure=True)
    )
    before = len(upstream.requests)
    reply = ask(admin, "Say hello in Swedish")
    assert reply["content"] == "Hej!"
    assert (reply["provider"], reply["model"]) == ("azure", "gpt-4o-2024-11-20")
    assert (reply["inputTokens"], reply["outputTokens"], reply["finishReason"]) == (9, 2, "stop")
    assert reply["costUsd"] == pytest.approx((9 * 2.5 + 2 * 10.0) / 1e6)
    [sent] = upstream.requests[before:]
    assert sent.path == oai.azure_path("chat-prod", AZURE_API_VERSION)
    assert sent.headers["api-key"] == other_keys["azure"]
    assert sent.body["messages"][0] == {"role": "system", "content": "Answer briefly."}


def test_an_openai_compatible_server_gets_the_history_trimmed_to_its_context_window(
    gateway: Server, upstream: FakeProviderServer
) -> None:
    admin = admin_of_new_tenant(gateway, "vllm/small")
    change_settings(
        admin,
        {
            "defaultModel": "vllm/small",
            "allowedModels": ["vllm/small", "echo"],
            "modelMaxTokens": [{"model": "vllm/small", "maxTokens": 20}],
        },
    )
    chat = admin.run(START, {"i": {"title": "Long"}})["startChat"]["chatId"]
    before = len(upstream.requests)
    # A window of 100 tokens less 20 for the reply: the system prompt (~9 tokens), then
    # the newest messages that fit (each question ~44 tokens), the oldest dropped first.
    questions = [f"Question {n}: " + "words " * 21 for n in (1, 2, 3)]
    for n, question in enumerate(questions, start=1):
        upstream.queue(oai.chat_stream([f"Answer {n}."], model="small"))
        sent = admin.run(SEND, {"i": {"chatId": chat, "content": question}})["sendMessage"]
        replies_in(admin, chat, n, sent["position"])
    first, _, third = upstream.requests[before:]
    assert first.path == "/v1/chat/completions"
    assert first.headers["authorization"] == f"Bearer {COMPATIBLE_KEY}"
    assert first.body["model"] == "small" and first.body["max_tokens"] == 20
    assert third.body["messages"] == [
        {"role": "system", "content": "Answer briefly."},
        {"role": "assistant", "content": "Answer 2."},
        {"role": "user", "content": questions[2]},
    ]
    assert replies_in(admin, chat, 3, sent["position"])[-1]["provider"] == "vllm"


def test_a_deployment_that_keeps_failing_is_skipped_while_its_circuit_is_open(
    tmp_path: Path,
) -> None:
    with FakeProviderServer() as upstream:
        server = Server(
            tmp_path,
            {
                "OPENAI_API_KEY": "sk-test-" + secrets.token_hex(8),
                "OPENAI_BASE_URL": f"{upstream.url}/v1",
                "PARLEY_LLM_BREAKER_THRESHOLD": "2",
                "PARLEY_LLM_BREAKER_COOLDOWN_SECONDS": "600",
            },
        ).start()
        try:
            admin = admin_of_new_tenant(server)
            upstream.queue(*(oai.server_error() for _ in range(3)))
            first = ask(admin, "are you there?")
            assert (first["provider"], first["attempts"], first["fallbacks"]) == (
                "echo",
                4,
                1,
            )  # 3 openai, 1 echo
            query = """{ modelGateway { reportedAt deployments { deployment state
                consecutiveFailures openSecondsLeft lastError } } }"""
            deployments = gateway_reported_after(admin, query, time.time())["deployments"]
            [openai] = [d for d in deployments if d["deployment"] == "openai/gpt-4o-mini"]
            assert (openai["state"], openai["consecutiveFailures"]) == ("open", 3)
            assert openai["openSecondsLeft"] > 500 and "500" in openai["lastError"]
            calls = len(upstream.requests)
            second = ask(admin, "and now?")
            assert (second["provider"], second["attempts"]) == ("echo", 1)
            assert len(upstream.requests) == calls  # the open circuit kept openai out of it
        finally:
            server.stop()


TENANT_SETTINGS = """query($after: Int) { tenant(afterPosition: $after) { modelSettings {
    fallbackModels systemPrompt enabledProviders modelMaxTokens { model maxTokens } } } }"""


def gateway_reported_after(admin: ApiClient, query: str, since: float) -> dict:
    """`modelGateway` once the replying process (the worker process) has reported it after
    `since` (it reports every 2 s)."""
    deadline = time.monotonic() + 15
    while True:
        status = admin.run(query)["modelGateway"]
        if status and datetime.fromisoformat(status["reportedAt"]).timestamp() > since:
            return status
        assert time.monotonic() < deadline, status
        time.sleep(0.2)


def change_settings(admin: ApiClient, settings: dict) -> dict:
    """Change the tenant's settings; return them as the tenant query then shows them."""
    position = admin.run(SETTINGS, {"i": settings})["updateTenantSettings"]["position"]
    return dict(admin.run(TENANT_SETTINGS, {"after": position})["tenant"]["modelSettings"])


def test_a_per_model_token_cap_is_what_the_provider_is_asked_for(
    gateway: Server, upstream: FakeProviderServer
) -> None:
    admin = admin_of_new_tenant(gateway)
    caps = [{"model": "openai/gpt-4o-mini", "maxTokens": 77}]
    settings = change_settings(
        admin,
        {
            "defaultModel": "openai/gpt-4o-mini",
            "allowedModels": ["openai/gpt-4o-mini", "echo"],
            "modelMaxTokens": caps,
        },
    )
    upstream.queue(oai.chat_stream(["Short."]))
    before = len(upstream.requests)
    assert ask(admin, "Be brief")["content"] == "Short."
    [sent] = upstream.requests[before:]
    assert sent.body["max_completion_tokens"] == 77
    assert settings["modelMaxTokens"] == caps
    assert settings["fallbackModels"] == ["echo"]  # untouched by a change that omitted it
    assert settings["systemPrompt"] == "Answer briefly."
    bad = admin.raw(
        SETTINGS,
        {
            "i": {
                "defaultModel": "echo",
                "allowedModels": ["echo"],
                "modelMaxTokens": [{"model": "openai/gpt-4o-mini", "maxTokens": 10}],
            }
        },
    )
    assert bad["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "allowed models" in bad["errors"][0]["message"]


def test_disabling_a_provider_stops_its_use_even_in_existing_chats(
    gateway: Server, upstream: FakeProviderServer
) -> None:
    admin = admin_of_new_tenant(gateway)
    chat = admin.run(START, {"i": {"title": "Before"}})["startChat"]["chatId"]
    refused = admin.raw(
        SETTINGS,
        {
            "i": {
                "defaultModel": "openai/gpt-4o-mini",
                "allowedModels": ["openai/gpt-4o-mini", "echo"],
                "enabledProviders": ["echo"],
            }
        },
    )
    assert refused["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "openai/gpt-4o-mini" in refused["errors"][0]["message"]
    echo_only = {"defaultModel": "echo", "allowedModels": ["echo"], "enabledProviders": ["echo"]}
    assert change_settings(admin, echo_only)["enabledProviders"] == ["echo"]
    before = len(upstream.requests)
    sent = admin.run(SEND, {"i": {"chatId": chat, "content": "who answers?"}})["sendMessage"]
    [reply] = replies_in(admin, chat, 1, sent["position"])
    assert (reply["provider"], reply["model"]) == ("echo", "echo")  # the fallback, enabled
    assert len(upstream.requests) == before  # openai was never called
    started = admin.raw(START, {"i": {"title": "After", "model": "openai/gpt-4o-mini"}})
    assert started["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    lifted = change_settings(
        admin,
        {
            "defaultModel": "openai/gpt-4o-mini",
            "allowedModels": ["openai/gpt-4o-mini", "echo"],
            "enabledProviders": [],
        },
    )
    assert lifted["enabledProviders"] is None


def test_members_do_not_see_the_model_settings(gateway: Server) -> None:
    admin = admin_of_new_tenant(gateway)
    admin.run(
        "mutation($i: RegisterUserInput!) { registerUser(input: $i) { userId } }",
        {"i": {"email": "member@x.io", "password": "member-password-1", "displayName": "M"}},
    )
    slug = admin.run("{ tenant { slug } }")["tenant"]["slug"]
    member = ApiClient(gateway.url).login(slug, "member@x.io", "member-password-1")
    assert member.run(TENANT_SETTINGS)["tenant"]["modelSettings"] is None
    assert admin.run(TENANT_SETTINGS)["tenant"]["modelSettings"] is not None


def test_a_rate_limited_request_is_retried_after_retry_after(
    gateway: Server, upstream: FakeProviderServer
) -> None:
    admin = admin_of_new_tenant(gateway)
    upstream.queue(oai.rate_limited(retry_after="1"), oai.chat_stream(["Fine", " now."]))
    started = time.monotonic()
    reply = ask(admin, "Hello?")
    assert reply["content"] == "Fine now."
    assert (reply["provider"], reply["attempts"], reply["fallbacks"]) == ("openai", 2, 0)
    assert time.monotonic() - started >= 1.0


def test_a_failing_provider_falls_back_to_the_next_model(
    gateway: Server, upstream: FakeProviderServer
) -> None:
    admin = admin_of_new_tenant(gateway)
    upstream.queue(*(oai.server_error() for _ in range(3)))
    reply = ask(admin, "fallback please")
    assert (reply["provider"], reply["model"]) == ("echo", "echo")
    assert (reply["attempts"], reply["fallbacks"]) == (4, 1)
    assert "fallback please" in reply["content"]
    assert reply["costUsd"] == 0


def test_a_stream_cut_in_the_middle_keeps_the_text_and_says_so(
    gateway: Server, upstream: FakeProviderServer
) -> None:
    admin = admin_of_new_tenant(gateway)
    upstream.queue(oai.chat_stream(["Half", " of", " an", " answer"], cut_after=3))
    reply = ask(admin, "Tell me everything")
    assert reply["content"].startswith("Half")
    assert (reply["finishReason"], reply["attempts"]) == ("error", 1)


RESUME_EVENTS = """subscription($chatId: ID!, $after: Int) {
  chatEvents(chatId: $chatId, afterPosition: $after) {
    __typename
    ... on MessageAdded { message { role content } }
    ... on ReplyDelta { messageId delta offset }
  }
}"""


def streamed_so_far(user: ApiClient, chat: str, after: int, enough: int) -> str:
    """The reply being generated in `chat`, as a subscriber sees it, once at least `enough`
    characters of it were streamed: proof that the server holds that much of it."""
    from websockets.sync.client import connect

    subscribe = {"query": RESUME_EVENTS, "variables": {"chatId": chat, "after": after}}
    text = ""
    with connect(user.ws_url(), subprotocols=["graphql-transport-ws"]) as ws:
        init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {user.token}"}}
        ws.send(json.dumps(init))
        assert json.loads(ws.recv(10))["type"] == "connection_ack"
        ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": subscribe}))
        while len(text) < enough:
            event = json.loads(ws.recv(30))
            assert event["type"] == "next", event
            item = event["payload"]["data"]["chatEvents"]
            if item["__typename"] == "ReplyDelta":
                text += item["delta"]
            else:
                assert item["message"]["role"] == "USER", f"the reply ended at {text!r}"
    return text


def test_stop_generation_closes_the_upstream_connection_and_keeps_the_text_so_far(
    gateway: Server, upstream: FakeProviderServer
) -> None:
    admin = admin_of_new_tenant(gateway)
    words = [f" word{n}" for n in range(200)]
    upstream.queue(oai.chat_stream(words, delay=0.05))  # ten seconds of streaming
    chat = admin.run(START, {"i": {"title": "Long"}})["startChat"]["chatId"]
    sent = admin.run(SEND, {"i": {"chatId": chat, "content": "Write a long essay"}})
    position = sent["sendMessage"]["position"]
    so_far = streamed_so_far(admin, chat, position, len(" word0"))
    disconnects = upstream.disconnects
    stopped = admin.run(STOP, {"i": {"chatId": chat}})["stopGeneration"]
    assert stopped == {"chatId": chat, "requested": True}
    assert upstream.wait_for_disconnects(disconnects + 1, timeout=5)
    [reply] = replies_in(admin, chat, 1, position)
    assert reply["finishReason"] == "cancelled"
    assert reply["content"].startswith(so_far) and so_far.startswith(" word0")
    assert "word199" not in reply["content"]


def test_only_the_chats_owner_can_stop_its_reply(gateway: Server) -> None:
    owner = admin_of_new_tenant(gateway)
    chat = owner.run(START, {"i": {"title": "Mine"}})["startChat"]["chatId"]
    stranger = admin_of_new_tenant(gateway)
    denied = stranger.raw(STOP, {"i": {"chatId": chat}})
    assert denied["errors"][0]["extensions"]["code"] == "NOT_FOUND"


def test_the_demo_uses_a_real_provider_when_its_key_is_set(
    gateway: Server, upstream: FakeProviderServer
) -> None:
    done = gateway.cli("demo")
    assert done.returncode == 0, done.stderr
    assert "model openai/gpt-4o-mini" in done.stdout
    token = next(line for line in done.stdout.splitlines() if line.startswith("ey"))
    demo = ApiClient(gateway.url, token)
    upstream.queue(oai.chat_stream(["Hi", " from", " the", " demo."]))
    reply = ask(demo, "hello")
    assert (reply["content"], reply["provider"]) == ("Hi from the demo.", "openai")


def test_an_identical_conversation_is_answered_from_the_cache_at_no_cost(
    gateway: Server, upstream: FakeProviderServer
) -> None:
    admin = admin_of_new_tenant(gateway)
    admin.run(
        SETTINGS,
        {
            "i": {
                "defaultModel": "openai/gpt-4o-mini",
                "allowedModels": ["openai/gpt-4o-mini", "echo"],
                "cacheTtlSeconds": 600,
            }
        },
    )
    upstream.queue(oai.chat_stream(["Forty", " two."], prompt_tokens=12))
    before = len(upstream.requests)
    first = ask(admin, "What is the answer?")
    second = ask(admin, "What is the answer?")  # a new chat, the same conversation
    assert first["content"] == second["content"] == "Forty two."
    assert (first["cached"], second["cached"]) == (False, True)
    assert second["costUsd"] == 0 and first["costUsd"] > 0
    assert (second["provider"], second["attempts"]) == ("openai", 0)
    assert len(upstream.requests) == before + 1  # the provider was asked once

    other = admin_of_new_tenant(gateway)  # caches are per tenant: this one is not even on
    upstream.queue(oai.chat_stream(["Forty", " two."]))
    assert ask(other, "What is the answer?")["cached"] is False
    assert len(upstream.requests) == before + 2


def user_messages(user: ApiClient, chat: str, settled: int) -> list[str]:
    """The chat's user messages once the read models hold everything up to `settled` (a
    settled head: whatever a refused request might have recorded would be in it)."""
    nodes = user.run(REPLY, {"id": chat, "after": settled})["chat"]["messages"]["nodes"]
    return [m["content"] for m in nodes if m["role"] == "USER"]


def test_a_user_over_their_rate_limit_is_refused_before_anything_is_recorded(
    gateway: Server,
) -> None:
    admin = admin_of_new_tenant(gateway)
    admin.run(
        SETTINGS,
        {
            "i": {
                "defaultModel": "echo",
                "allowedModels": ["echo"],
                "fallbackModels": [],
                "userRequestsPerMinute": 2,
            }
        },
    )
    chat = admin.run(START, {"i": {"title": "Limited"}})["startChat"]["chatId"]
    for n in range(2):
        admin.run(SEND, {"i": {"chatId": chat, "content": f"message {n}"}})
    refused = admin.raw(SEND, {"i": {"chatId": chat, "content": "one too many"}})
    assert refused["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
    assert "retry in" in refused["errors"][0]["message"]
    assert user_messages(admin, chat, gateway.settled_head()) == ["message 0", "message 1"]


def test_the_tenants_token_rate_counts_the_replies_real_usage(
    gateway: Server, upstream: FakeProviderServer
) -> None:
    admin = admin_of_new_tenant(gateway)
    admin.run(
        SETTINGS,
        {
            "i": {
                "defaultModel": "openai/gpt-4o-mini",
                "allowedModels": ["openai/gpt-4o-mini", "echo"],
                "tenantTokensPerMinute": 600,
            }
        },
    )
    # The question's estimate (~16 tokens) fits; the reply's real usage (5,000 prompt tokens
    # reported by the provider) drains the tenant's minute.
    upstream.queue(oai.chat_stream(["Long", " context."], prompt_tokens=5000))
    chat = admin.run(START, {"i": {"title": "Tokens"}})["startChat"]["chatId"]
    sent = admin.run(SEND, {"i": {"chatId": chat, "content": "Summarise the long document."}})
    replies_in(admin, chat, 1, sent["sendMessage"]["position"])
    calls = len(upstream.requests)
    refused = admin.raw(SEND, {"i": {"chatId": chat, "content": "And the next one?"}})
    assert refused["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
    assert "token rate limit of 600" in refused["errors"][0]["message"]
    head = gateway.settled_head()
    assert user_messages(admin, chat, head) == ["Summarise the long document."]
    assert len(upstream.requests) == calls


def test_the_tenants_request_rate_is_shared_by_its_users(gateway: Server) -> None:
    admin = admin_of_new_tenant(gateway)
    admin.run(
        SETTINGS,
        {
            "i": {
                "defaultModel": "echo",
                "allowedModels": ["echo"],
                "fallbackModels": [],
                "tenantRequestsPerMinute": 1,
            }
        },
    )
    admin.run(
        "mutation($i: RegisterUserInput!) { registerUser(input: $i) { userId } }",
        {"i": {"email": "second@x.io", "password": "member-password-1", "displayName": "S"}},
    )
    slug = admin.run("{ tenant { slug } }")["tenant"]["slug"]
    second = ApiClient(gateway.url).login(slug, "second@x.io", "member-password-1")
    mine = admin.run(START, {"i": {"title": "A"}})["startChat"]["chatId"]
    theirs = second.run(START, {"i": {"title": "B"}})["startChat"]["chatId"]
    admin.run(SEND, {"i": {"chatId": mine, "content": "first"}})
    refused = second.raw(SEND, {"i": {"chatId": theirs, "content": "second"}})
    assert refused["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
    assert "the tenant's rate limit of 1" in refused["errors"][0]["message"]


def test_a_spent_monthly_budget_refuses_new_messages_before_the_provider_is_called(
    gateway: Server, upstream: FakeProviderServer
) -> None:
    admin = admin_of_new_tenant(gateway)
    admin.run(
        SETTINGS,
        {
            "i": {
                "defaultModel": "openai/gpt-4o-mini",
                "allowedModels": ["openai/gpt-4o-mini", "echo"],
                "monthlyBudgetUsd": 0.000004,
            }
        },
    )
    upstream.queue(oai.chat_stream(["Costly", " answer."], prompt_tokens=21))
    first = ask(admin, "Spend it")
    assert first["costUsd"] > 0.000004
    chat = admin.run(START, {"i": {"title": "Over budget"}})["startChat"]["chatId"]
    before = len(upstream.requests)
    refused = admin.raw(SEND, {"i": {"chatId": chat, "content": "more please"}})
    assert refused["errors"][0]["extensions"]["code"] == "QUOTA_EXCEEDED"
    head = gateway.settled_head()
    assert user_messages(admin, chat, head) == [] and len(upstream.requests) == before


def test_admins_see_the_providers_and_each_deployments_circuit(
    gateway: Server, upstream: FakeProviderServer
) -> None:
    admin = admin_of_new_tenant(gateway)
    upstream.queue(oai.server_error(503), oai.chat_stream(["ok"]))
    ask(admin, "status?")
    query = """{ modelGateway { providers reportedAt deployments { deployment state
        consecutiveFailures lastError } } }"""
    status = gateway_reported_after(admin, query, time.time())
    assert {"echo", "openai"} <= set(status["providers"])
    [openai] = [d for d in status["deployments"] if d["deployment"] == "openai/gpt-4o-mini"]
    assert (openai["state"], openai["consecutiveFailures"]) == ("closed", 0)  # recovered
    member = gateway.create_tenant()
    client = ApiClient(gateway.url).login(member["slug"], member["email"], member["password"])
    client.run(
        "mutation($i: RegisterUserInput!) { registerUser(input: $i) { userId } }",
        {"i": {"email": "m@x.io", "password": "member-password-1", "displayName": "M"}},
    )
    plain = ApiClient(gateway.url).login(member["slug"], "m@x.io", "member-password-1")
    denied = plain.raw(query)
    assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_a_client_joining_mid_reply_gets_the_text_so_far_then_the_rest(
    gateway: Server, upstream: FakeProviderServer
) -> None:
    import asyncio

    from gql import Client, GraphQLRequest, gql
    from gql.transport.websockets import WebsocketsTransport

    admin = admin_of_new_tenant(gateway)
    words = [f" w{n}" for n in range(60)]
    upstream.queue(oai.chat_stream(words, delay=0.05))  # three seconds of streaming
    chat = admin.run(START, {"i": {"title": "Resume"}})["startChat"]
    sent = admin.run(SEND, {"i": {"chatId": chat["chatId"], "content": "go"}})["sendMessage"]
    # The reply is well under way: a first subscriber saw more than three words of it.
    await asyncio.to_thread(
        streamed_so_far, admin, chat["chatId"], sent["position"], len(" w0 w1 w2") + 1
    )

    transport = WebsocketsTransport(
        url=admin.ws_url(),
        init_payload={"Authorization": f"Bearer {admin.token}"},
        subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
    )
    deltas: list[dict] = []
    final = ""
    async with Client(transport=transport) as session:
        request = GraphQLRequest(
            gql(RESUME_EVENTS),
            variable_values={"chatId": chat["chatId"], "after": sent["position"]},
        )
        async for event in session.subscribe(request):
            item = event["chatEvents"]
            if item["__typename"] == "ReplyDelta":
                deltas.append(item)
            elif item["message"]["role"] == "ASSISTANT":
                final = item["message"]["content"]
                break
    assert deltas[0]["offset"] == 0 and len(deltas[0]["delta"]) > len(" w0 w1 w2")
    assert all(
        d["offset"] == sum(len(x["delta"]) for x in deltas[:n]) for n, d in enumerate(deltas)
    )
    assert "".join(d["delta"] for d in deltas) == final == "".join(words)


SET_KEY = """mutation($i: SetProviderKeyInput!) { setProviderKey(input: $i) {
    key { provider fingerprint last4 } position } }"""


def test_a_tenants_own_key_is_the_one_sent_and_is_never_shown_or_stored_in_clear(
    gateway: Server, upstream: FakeProviderServer, platform_key: str
) -> None:
    admin = admin_of_new_tenant(gateway)
    own_key = "sk-tenant-" + secrets.token_hex(16)
    done = admin.run(SET_KEY, {"i": {"provider": "openai", "apiKey": own_key}})["setProviderKey"]
    assert done["key"]["provider"] == "openai" and done["key"]["last4"] == own_key[-4:]
    assert own_key not in json.dumps(done)
    listed = admin.run("{ providerKeys { provider fingerprint last4 } }")["providerKeys"]
    assert listed == [done["key"]]

    upstream.queue(oai.chat_stream(["With", " your", " key."]))
    before = len(upstream.requests)
    assert ask(admin, "whose key?")["content"] == "With your key."
    [sent] = upstream.requests[before:]
    assert sent.headers["authorization"] == f"Bearer {own_key}"

    tenant_id = admin.run("{ tenant { id } }")["tenant"]["id"]
    replayed = gateway.cli("replay", tenant_id)
    assert replayed.returncode == 0, replayed.stderr
    assert own_key not in replayed.stdout and done["key"]["fingerprint"] in replayed.stdout

    admin.run(
        "mutation($i: ProviderInput!) { removeProviderKey(input: $i) { position } }",
        {"i": {"provider": "openai"}},
    )
    upstream.queue(oai.chat_stream(["Platform", " again."]))
    before = len(upstream.requests)
    ask(admin, "and now?")
    assert upstream.requests[before].headers["authorization"] == f"Bearer {platform_key}"
