"""The browser client, served from Parley's own assets: the web/ build (`api/static` in the
package, or `PARLEY_WEB_DIR`) at `/` and at every client-side route, its content-hashed files at
`/assets/`, and its GraphiQL page at `GET /graphql`. Nothing comes from a third-party origin, so
the pages' Content-Security-Policy (`WEB_CSP`, api/hardening.py) allows Parley's own scripts
only."""

import mimetypes
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from starlette.exceptions import HTTPException

PACKAGED = Path(__file__).resolve().parent / "static"
"""Where `npm --prefix web run build` writes the client, installed with the package."""

API_PATHS = ("/graphql", "/auth/", "/healthz", "/readyz", "/metrics", "/.well-known/", "/audit/")
"""Paths the API answers: never the client's, whatever the Accept header says."""

IMMUTABLE = "public, max-age=31536000, immutable"
"""The build names its assets by their content hash: a changed file is a new name."""
REVALIDATE = "no-cache"
"""The pages name the current assets: browsers ask again every time (ETag: cheap)."""

CONTENT_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".svg": "image/svg+xml",
    ".woff": "font/woff",
    ".woff2": "font/woff2",
    ".ttf": "font/ttf",
    ".wasm": "application/wasm",
    ".webmanifest": "application/manifest+json",
    ".ico": "image/x-icon",
    ".png": "image/png",
    ".txt": "text/plain; charset=utf-8",
}
"""Explicit where the platform's mime types differ or lack one (nosniff makes them count)."""

NOT_BUILT = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Parley: the web client is not built</title></head>
<body>
<h1>Parley is running; its web client is not built</h1>
<p>This checkout has no build of the browser client ({missing} is missing). Build it with
Node.js 20 or later:</p>
<pre>npm --prefix web ci &amp;&amp; npm --prefix web run build</pre>
<p>and reload. Meanwhile the API works: POST GraphQL to <code>/graphql</code>.</p>
</body>
</html>
"""


class WebClient:
    """The built client in `directory`: its pages and assets."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = (directory or PACKAGED).resolve()
        self.assets = self.directory / "assets"

    def page(self, name: str) -> HTMLResponse:
        """`index.html` or `graphiql.html` (a few kilobytes, read as they are now: a new build
        shows at the next load); a page saying how to build them when missing."""
        try:
            content = (self.directory / name).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            content = NOT_BUILT.format(missing=name).encode()
        return HTMLResponse(content, headers={"Cache-Control": REVALIDATE})

    def asset(self, name: str) -> Response:
        """A file of `assets/` (never outside it), cached for good; else 404."""
        try:
            path = (self.assets / name).resolve()
            found = path.is_relative_to(self.assets) and path.is_file()
        except (ValueError, OSError):  # a NUL byte, a name too long: not a file of ours
            found = False
        if not found:
            raise HTTPException(404)
        return FileResponse(
            path, media_type=content_type(path), headers={"Cache-Control": IMMUTABLE}
        )


def content_type(path: Path) -> str:
    return (
        CONTENT_TYPES.get(path.suffix.lower())
        or mimetypes.guess_type(path.name)[0]
        or "application/octet-stream"
    )


def wants_page(request: Request) -> bool:
    """A browser navigating (it asks for HTML), to a path the API does not answer."""
    path = request.url.path
    if path == "/":
        return True
    if any(path.startswith(api) or path == api.rstrip("/") for api in API_PATHS):
        return False
    return "text/html" in request.headers.get("accept", "").lower()


def web_client_router(client: WebClient) -> APIRouter:
    """`/assets/…` and, last of every route, the client's own routes (`/chats/…`, `/admin/…`):
    include it after the API's routes."""
    router = APIRouter(include_in_schema=False)

    @router.api_route("/assets/{name:path}", methods=["GET", "HEAD"])
    async def web_asset(name: str) -> Response:
        return client.asset(name)

    @router.api_route("/{path:path}", methods=["GET", "HEAD"])
    async def web_page(request: Request, path: str) -> Response:
        if not wants_page(request):
            raise HTTPException(404)
        return client.page("index.html")

    return router
