"""The committed build of the web client (api/static, what `parley serve` serves at `/` without
Node.js): it comes from the current sources, the app's first load stays within its JavaScript
budget, and its pages run no inline script and load nothing from another origin (so the pages'
CSP can forbid both)."""

import gzip
import hashlib
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from testbed.processes import ROOT

STATIC = ROOT / "api" / "static"
REBUILD = "run `npm --prefix web run build` and commit api/static"

# Keep in step with web/scripts/manifest.mjs (INPUT_FILES, INPUT_DIRS, isTest): the inputs of
# the build whose hash the manifest records.
BUILD_INPUTS = (
    "queries/schema.graphql",
    "web/package.json",
    "web/package-lock.json",
    "web/index.html",
    "web/graphiql.html",
    "web/vite.config.ts",
    "web/codegen.ts",
    "web/tsconfig.json",
)
BUILD_INPUT_DIRS = ("web/src", "web/public")
GENERATED = "web/src/gql/"

FIRST_LOAD_JS_BUDGET = 100 * 1024
"""Gzipped JavaScript the app's first load fetches (index.html's script and its module preloads).
GraphiQL's chunks load only on /graphql and are not part of it."""
GZIP_SLACK = 0.01
"""Node's zlib (Chromium's fork) and Python's compress a few bytes apart at the same level."""

PAGES = ("index.html", "graphiql.html")


def _is_test(path: str) -> bool:
    return re.search(r"\.test\.tsx?$", path) is not None or path.endswith("test-setup.ts")


def _walk(directory: Path) -> list[Path]:
    """Every file under `directory`, following links as Node's statSync does; none if absent."""
    if not directory.is_dir():
        return []
    found: list[Path] = []
    for entry in directory.iterdir():
        found.extend(_walk(entry) if entry.is_dir() else [entry])
    return found


def build_inputs(root: Path = ROOT) -> tuple[list[str], str]:
    """The build's input files and their digest, exactly as web/scripts/manifest.mjs computes
    them: sha256 over `<path>\\0<sha256 of the file>\\n` for each path in JavaScript's sort order
    (UTF-16 code units)."""
    paths = [root / f for f in BUILD_INPUTS]
    for d in BUILD_INPUT_DIRS:
        paths.extend(_walk(root / d))
    files = sorted(
        (
            rel
            for rel in (p.relative_to(root).as_posix() for p in paths)
            if not _is_test(rel) and not rel.startswith(GENERATED)
        ),
        key=lambda f: f.encode("utf-16-be"),
    )
    digest = hashlib.sha256()
    for f in files:
        content = hashlib.sha256((root / f).read_bytes()).hexdigest()
        digest.update(f"{f}\0{content}\n".encode())
    return files, digest.hexdigest()


class _Page(HTMLParser):
    """What an HTML page loads and runs: scripts (with their inline text), links, every URL."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.scripts: list[dict[str, str | None]] = []
        self.links: list[dict[str, str | None]] = []
        self.urls: list[str] = []
        self.handlers: list[str] = []
        self._in_script: dict[str, str | None] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        for name, value in attrs:
            if name.startswith("on"):
                self.handlers.append(f"<{tag} {name}>")
            if name in ("src", "href", "action", "srcset", "poster", "data") and value:
                self.urls.append(value)
        if tag == "script":
            self._in_script = {**attributes, "#text": ""}
            self.scripts.append(self._in_script)
        elif tag == "link":
            self.links.append(attributes)

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = None

    def handle_data(self, data: str) -> None:
        if self._in_script is not None:
            self._in_script["#text"] = (self._in_script["#text"] or "") + data


def page(name: str) -> _Page:
    parsed = _Page()
    parsed.feed(built(name).read_text(encoding="utf-8"))
    return parsed


def built(name: str) -> Path:
    path = STATIC / name
    if not path.is_file():
        pytest.fail(f"api/static/{name} is missing: {REBUILD}", pytrace=False)
    return path


def manifest() -> dict:
    return json.loads(built("build-manifest.json").read_text())


def first_load_scripts(index: _Page) -> list[str]:
    """The JavaScript index.html makes the browser fetch: its scripts and module preloads."""
    urls = [s["src"] for s in index.scripts if s.get("src")]
    urls += [
        link["href"]
        for link in index.links
        if link.get("rel") == "modulepreload" and link.get("href")
    ]
    return [u.removeprefix("/") for u in urls if u and u.endswith(".js")]


def test_the_committed_build_comes_from_the_current_sources() -> None:
    files, digest = build_inputs()
    recorded = manifest()
    assert recorded["sources_sha256"] == digest, (
        f"api/static was built from other sources than these {len(files)} files "
        f"(web/src, web/package*.json, queries/schema.graphql, …): {REBUILD}"
    )
    assert recorded["sources"] == len(files)


def test_the_input_hash_changes_with_any_source_but_not_with_tests_or_generated_code(
    tmp_path: Path,
) -> None:
    """The recomputation itself: what counts as an input (so a stale build cannot slip by)."""
    for f in (*BUILD_INPUTS, "web/src/App.tsx", "web/src/App.test.tsx", "web/src/gql/graphql.ts"):
        (tmp_path / f).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / f).write_text(f)
    files, before = build_inputs(tmp_path)
    assert "web/src/App.tsx" in files and len(files) == len(BUILD_INPUTS) + 1
    (tmp_path / "web/src/App.test.tsx").write_text("changed")
    (tmp_path / "web/src/gql/graphql.ts").write_text("changed")
    assert build_inputs(tmp_path)[1] == before
    (tmp_path / "web/src/App.tsx").write_text("changed")
    assert build_inputs(tmp_path)[1] != before


def test_the_first_load_javascript_is_within_budget_and_the_manifest_says_so_honestly() -> None:
    recorded = manifest()
    scripts = first_load_scripts(page("index.html"))
    assert scripts, "index.html loads no script"
    assert sorted(recorded["first_load_js"]) == sorted(scripts), (
        f"the manifest does not name what index.html loads: {REBUILD}"
    )
    for script in scripts:
        size = len(gzip.compress(built(script).read_bytes(), compresslevel=9, mtime=0))
        claimed = recorded["first_load_js"][script]
        assert abs(size - claimed) <= max(64, size * GZIP_SLACK), (script, size, claimed)
    total = recorded["first_load_js_gzip_bytes"]
    assert total == sum(recorded["first_load_js"].values())
    print(f"first load: {total / 1024:.1f} KiB of gzipped JavaScript ({len(scripts)} files)")
    assert total <= FIRST_LOAD_JS_BUDGET, (
        f"the app's first load is {total / 1024:.1f} KiB of gzipped JavaScript, over the budget "
        f"of {FIRST_LOAD_JS_BUDGET / 1024:.0f} KiB: load the heavy parts lazily (import()) or "
        "drop them"
    )


@pytest.mark.parametrize("name", PAGES)
def test_the_pages_run_only_parleys_own_script_files_and_load_nothing_from_elsewhere(
    name: str,
) -> None:
    parsed = page(name)
    assert parsed.scripts, f"{name} has no script"
    for script in parsed.scripts:
        src = script.get("src")
        assert src and src.startswith("/assets/"), f"{name}: a script not from /assets/: {script}"
        assert not (script["#text"] or "").strip(), f"{name}: an inline script body: {script}"
        assert built(src.removeprefix("/")).is_file(), f"{name} loads a missing {src}"
    assert not parsed.handlers, f"{name}: inline event handlers {parsed.handlers}"
    for url in parsed.urls:
        assert (url.startswith("/") and not url.startswith("//")) or url.startswith("data:"), (
            f"{name} refers to {url}: only Parley's own files (and data: URLs)"
        )
    text = built(name).read_text(encoding="utf-8")
    assert not re.search(r"(?i)\b(https?:|wss?:)?//[a-z0-9.-]+\.[a-z]{2,}", text), (
        f"{name} names another origin"
    )
