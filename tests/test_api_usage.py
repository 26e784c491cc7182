"""Usage per tenant / user / model / day, through the API."""

import datetime as dt
import time
import uuid

from testbed.client import ApiClient

USAGE = """query($from: Date!, $to: Date!, $by: [UsageDimension!], $p: Int) {
  usage(from: $from, to: $to, groupBy: $by, afterPosition: $p) {
    day userId model userMessages assistantMessages inputTokens outputTokens averageLatencyMs } }"""


def chat_with_replies(user: ApiClient, count: int) -> None:
    chat = user.run('mutation { startChat(input: {title: "Usage"}) { chatId } }')["startChat"]
    for n in range(count):
        sent = user.run(
            "mutation($c: ID!, $t: String!) { sendMessage(input: {chatId: $c, content: $t}) "
            "{ position } }",
            {"c": chat["chatId"], "t": f"count these words {n}"},
        )
    # afterPosition: else a poll reaching the read models before the chat does is NOT_FOUND.
    variables = {"id": chat["chatId"], "p": sent["sendMessage"]["position"]}
    deadline = time.monotonic() + 30
    while True:
        chat_row = user.run(
            "query($id: ID!, $p: Int) { chat(id: $id, afterPosition: $p) { messageCount } }",
            variables,
        )["chat"]
        if chat_row["messageCount"] == 2 * count or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert chat_row["messageCount"] == 2 * count


def test_usage_counts_messages_tokens_and_latency_per_user_and_model(
    api: ApiClient, tenant: dict
) -> None:
    admin = api.login(tenant["slug"], tenant["email"], tenant["password"])
    email = f"m-{uuid.uuid4().hex[:6]}@example.com"
    admin.run(
        "mutation($i: RegisterUserInput!) { registerUser(input: $i) { userId } }",
        {"i": {"email": email, "password": "member-password-1", "displayName": "M"}},
    )
    member = api.login(tenant["slug"], email, "member-password-1")
    chat_with_replies(admin, 2)
    chat_with_replies(member, 3)
    today = dt.datetime.now(dt.UTC).date().isoformat()

    by_user = admin.run(USAGE, {"from": today, "to": today, "by": ["USER", "MODEL"]})["usage"]
    counts = {row["userId"]: (row["userMessages"], row["assistantMessages"]) for row in by_user}
    assert counts == {
        admin.login_payload["user"]["id"]: (2, 2),
        member.login_payload["user"]["id"]: (3, 3),
    }
    assert {row["model"] for row in by_user} == {"echo"}
    assert all(row["outputTokens"] > 0 and row["averageLatencyMs"] >= 0 for row in by_user)

    total = admin.run(USAGE, {"from": today, "to": today, "by": []})["usage"]
    assert [(r["userMessages"], r["assistantMessages"], r["day"]) for r in total] == [(5, 5, None)]
    by_day = admin.run(USAGE, {"from": today, "to": today, "by": ["DAY"]})["usage"]
    assert [r["day"] for r in by_day] == [today]

    mine = member.run(USAGE, {"from": today, "to": today, "by": ["USER"]})["usage"]
    assert [(r["userId"], r["userMessages"]) for r in mine] == [
        (member.login_payload["user"]["id"], 3)
    ]


def test_usage_of_another_tenant_is_invisible(api: ApiClient, server, tenant: dict) -> None:
    other = server.create_tenant()
    stranger = api.login(other["slug"], other["email"], other["password"])
    admin = api.login(tenant["slug"], tenant["email"], tenant["password"])
    chat_with_replies(admin, 1)
    today = dt.datetime.now(dt.UTC).date().isoformat()
    assert stranger.run(USAGE, {"from": today, "to": today, "by": ["USER"]})["usage"] == []
