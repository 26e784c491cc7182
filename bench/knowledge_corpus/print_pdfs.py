"""Prints the corpus's Markdown documents to PDF, as a person saving a documentation page as PDF
would: each rendered to HTML (markdown-it-py, CommonMark with tables) and printed by headless
Chromium. The PDFs are committed beside the documents (`pdf/`), so the benchmark measures
extraction on the same bytes every time and needs no browser; run this again only when the
documents change:

    .venv/bin/python -m bench.knowledge_corpus.print_pdfs [--chromium /usr/bin/chromium]
"""

import argparse
import html
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.knowledge_corpus import DOCUMENTS_DIR, PDF_DIR

CHROMIUM = os.environ.get("PARLEY_CHROMIUM", "/usr/bin/chromium")

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font: 11pt/1.45 "DejaVu Serif", serif; margin: 0 1.5cm; }}
code, pre {{ font: 9pt "DejaVu Sans Mono", monospace; }}
pre {{ white-space: pre-wrap; background: #f4f4f4; padding: 6pt; }}
table {{ border-collapse: collapse; font-size: 9pt; }}
td, th {{ border: 1px solid #999; padding: 2pt 4pt; vertical-align: top; }}
</style></head>
<body>
{body}
</body></html>
"""


def render_html(markdown: str, title: str) -> str:
    from markdown_it import MarkdownIt  # a dev tool (rich brings it): only this script needs it

    body = MarkdownIt("commonmark").enable("table").render(markdown)
    return PAGE.format(title=html.escape(title), body=body)


def print_pdf(page: str, target: Path, chromium: str, scratch: Path) -> None:
    source = scratch / f"{target.stem}.html"
    source.write_text(page, encoding="utf-8")
    subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            f"--user-data-dir={scratch / 'profile'}",
            "--no-pdf-header-footer",
            f"--print-to-pdf={target}",
            source.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chromium", default=CHROMIUM, help="the Chromium binary")
    args = parser.parse_args(argv)
    PDF_DIR.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="parley-pdf-") as scratch:
        for document in sorted(DOCUMENTS_DIR.glob("*.md")):
            target = PDF_DIR / f"{document.stem}.pdf"
            page = render_html(document.read_text(encoding="utf-8"), document.name)
            print_pdf(page, target, args.chromium, Path(scratch))
            print(f"{target.relative_to(PDF_DIR.parent)}: {target.stat().st_size:,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
