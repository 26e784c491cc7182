"""A small GraphQL client for tests: HTTP through httpx, WebSocket through `gql`."""

from typing import Any

import httpx


class GraphQLFailed(AssertionError):
    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(errors)
        self.errors = errors
        self.codes = [e.get("extensions", {}).get("code") for e in errors]


class ApiClient:
    def __init__(self, url: str, token: str | None = None) -> None:
        self.url = url
        self.token = token

    def as_user(self, token: str) -> "ApiClient":
        return ApiClient(self.url, token)

    def raw(self, query: str, variables: dict[str, Any] | None = None, **headers: str) -> dict:
        h = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        h.update(headers)
        r = httpx.post(
            f"{self.url}/graphql",
            json={"query": query, "variables": variables or {}},
            headers=h,
            timeout=30,
        )
        return r.json()

    def run(self, query: str, variables: dict[str, Any] | None = None, **headers: str) -> Any:
        body = self.raw(query, variables, **headers)
        if body.get("errors"):
            raise GraphQLFailed(body["errors"])
        return body["data"]

    def login(self, tenant: str, email: str, password: str) -> "ApiClient":
        data = self.run(
            """mutation($i: LoginInput!) { login(input: $i) { accessToken refreshToken
                 user { id tenantId role } position } }""",
            {"i": {"tenant": tenant, "email": email, "password": password}},
        )
        client = self.as_user(data["login"]["accessToken"])
        client.login_payload = data["login"]  # type: ignore[attr-defined]
        return client

    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/graphql"
