"""A small OpenID Connect issuer for tests: discovery, an authorize endpoint that signs in each
client's configured test user without asking, a token endpoint that checks client
authentication and PKCE (S256), and the JWKS of keys generated at run time (RS256 or ES256).

Clients are registered by the test with their secret, redirect URIs, the user to sign in and
anything the next ID tokens should get wrong (`claims` overrides, `tamper`). `rotate()` replaces
the signing keys with new ones under a new key id. Loopback only: it binds 127.0.0.1."""

import base64
import hashlib
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote_plus, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa


@dataclass
class Client:
    client_id: str
    secret: str | None
    redirect_uris: list[str]
    email: str
    email_verified: bool = True
    name: str = "Test User"
    alg: str = "RS256"
    claims: dict[str, Any] = field(default_factory=dict)
    """Overrides of the next ID tokens' claims (e.g. a wrong `aud` or `nonce`)."""
    tamper: bool = False
    """Change the ID token's payload after signing it."""


@dataclass
class Grant:
    client_id: str
    redirect_uri: str
    challenge: str
    nonce: str | None
    expires: float


def _generate(alg: str) -> Any:
    if alg == "ES256":
        return ec.generate_private_key(ec.SECP256R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class OidcIssuer:
    def __init__(self) -> None:
        self.clients: dict[str, Client] = {}
        self.grants: dict[str, Grant] = {}
        self.jwks_fetches = 0
        self.token_requests: list[dict[str, Any]] = []
        self._generation = 0
        self._keys: dict[str, tuple[str, Any]] = {}
        self.rotate()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> "OidcIssuer":
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def register(self, client: Client) -> Client:
        self.clients[client.client_id] = client
        return client

    def rotate(self) -> None:
        """New RS256 and ES256 keys under new key ids; the old ones are no longer published."""
        self._generation += 1
        self._keys = {
            alg: (f"{alg}-{self._generation}", _generate(alg)) for alg in ("RS256", "ES256")
        }

    def kid(self, alg: str) -> str:
        return self._keys[alg][0]

    # -- protocol -------------------------------------------------------------------------------

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.url,
            "authorization_endpoint": f"{self.url}/authorize",
            "token_endpoint": f"{self.url}/token",
            "jwks_uri": f"{self.url}/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256", "ES256"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        }

    def jwks(self) -> dict[str, Any]:
        self.jwks_fetches += 1
        keys = []
        for alg, (kid, private) in self._keys.items():
            jwk = json.loads(
                jwt.algorithms.get_default_algorithms()[alg].to_jwk(private.public_key())
            )
            keys.append({**jwk, "kid": kid, "use": "sig", "alg": alg})
        return {"keys": keys}

    def authorize(self, query: dict[str, str]) -> tuple[int, dict[str, str], dict[str, Any]]:
        client = self.clients.get(query.get("client_id", ""))
        redirect_uri = query.get("redirect_uri", "")
        if client is None or redirect_uri not in client.redirect_uris:
            return 400, {}, {"error": "invalid_request", "error_description": "unknown client"}
        if query.get("response_type") != "code" or "openid" not in query.get("scope", "").split():
            return 400, {}, {"error": "invalid_request"}
        if query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
            return 400, {}, {"error": "invalid_request", "error_description": "PKCE S256 needed"}
        code = secrets.token_urlsafe(24)
        self.grants[code] = Grant(
            client.client_id,
            redirect_uri,
            query["code_challenge"],
            query.get("nonce"),
            time.time() + 60,
        )
        back = urlencode({"code": code, "state": query.get("state", "")})
        return 302, {"Location": f"{redirect_uri}?{back}"}, {}

    def token(self, form: dict[str, str], authorization: str | None) -> tuple[int, dict[str, Any]]:
        self.token_requests.append(dict(form))
        client_id, secret = form.get("client_id"), form.get("client_secret")
        if authorization and authorization.startswith("Basic "):
            raw = base64.b64decode(authorization[6:]).decode()
            user, _, password = raw.partition(":")
            client_id, secret = unquote_plus(user), unquote_plus(password)
        client = self.clients.get(client_id or "")
        if client is None or (client.secret is not None and secret != client.secret):
            return 401, {"error": "invalid_client"}
        grant = self.grants.pop(form.get("code", ""), None)
        if grant is None or grant.client_id != client.client_id or grant.expires < time.time():
            return 400, {"error": "invalid_grant"}
        if form.get("redirect_uri") != grant.redirect_uri:
            return 400, {"error": "invalid_grant", "error_description": "redirect_uri"}
        verifier = form.get("code_verifier", "")
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
        if challenge.rstrip(b"=").decode() != grant.challenge:
            return 400, {"error": "invalid_grant", "error_description": "PKCE verification failed"}
        return 200, {
            "access_token": secrets.token_urlsafe(24),
            "token_type": "Bearer",
            "expires_in": 300,
            "id_token": self.id_token(client, grant.nonce),
        }

    def id_token(self, client: Client, nonce: str | None) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.url,
            "sub": hashlib.sha256(client.email.encode()).hexdigest()[:20],
            "aud": client.client_id,
            "iat": now,
            "exp": now + 300,
            "email": client.email,
            "email_verified": client.email_verified,
            "name": client.name,
        }
        if nonce is not None:
            claims["nonce"] = nonce
        claims.update(client.claims)
        kid, private = self._keys[client.alg]
        token = jwt.encode(claims, private, algorithm=client.alg, headers={"kid": kid})
        if client.tamper:
            header, _, signature = token.split(".")
            forged = {**claims, "email": "ceo@" + client.email.split("@", 1)[1]}
            body = base64.urlsafe_b64encode(json.dumps(forged).encode()).rstrip(b"=").decode()
            token = f"{header}.{body}.{signature}"
        return token

    # -- HTTP -------------------------------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: object) -> None:
                pass

            def _send(self, status: int, body: dict[str, Any], headers: dict[str, str]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                if parts.path == "/.well-known/openid-configuration":
                    self._send(200, issuer.discovery(), {})
                elif parts.path == "/jwks":
                    self._send(200, issuer.jwks(), {})
                elif parts.path == "/authorize":
                    status, headers, body = issuer.authorize(query)
                    self._send(status, body, headers)
                else:
                    self._send(404, {"error": "not_found"}, {})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length).decode()
                form = {k: v[0] for k, v in parse_qs(raw).items()}
                if urlsplit(self.path).path == "/token":
                    status, body = issuer.token(form, self.headers.get("Authorization"))
                    self._send(status, body, {"Cache-Control": "no-store"})
                else:
                    self._send(404, {"error": "not_found"}, {})

        return Handler
