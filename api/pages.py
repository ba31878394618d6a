"""The web page at `/`, its static files, the filter choices it offers, and the HTML article view."""

from __future__ import annotations

import html
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

from rag.articles import Article

STATIC = Path(__file__).resolve().parent / "static"
# Everything the pages load comes from this server: no inline script, no CDN.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}

router = APIRouter(tags=["web page"])


def mount_static(app) -> None:
    """Serve api/static/ at /static (the page's script and style sheet)."""
    app.mount("/static", StaticFiles(directory=STATIC), name="static")


@router.get("/", include_in_schema=False)
def index_page() -> FileResponse:
    return FileResponse(STATIC / "index.html", media_type="text/html", headers=PAGE_HEADERS)


@router.get("/filters", summary="The sources and date range the page's filters can take")
def filter_choices(request: Request, index: str | None = None) -> dict:
    return sources_json(request.app.state.newsrag.archive(index))


def sources_json(archive) -> dict:
    """The sources with their article counts and the date range (the MCP tool `list_sources` shares it)."""
    first, last = archive.date_range()
    return {"sources": [{"name": name, "articles": n} for name, n in archive.sources().items() if name],
            "date_range": {"from": first, "to": last}}


def _quality(accept: str, media_type: str) -> float:
    """The q the Accept header gives `media_type`, taken from its most specific matching range."""
    kind = media_type.split("/")[0]
    best = (-1, 0.0)
    for part in accept.split(","):
        fields = [f.strip() for f in part.split(";")]
        rng = fields[0].lower()
        specificity = 2 if rng == media_type else 1 if rng == f"{kind}/*" else 0 if rng == "*/*" else -1
        if specificity < 0:
            continue
        q = 1.0
        for param in fields[1:]:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        best = max(best, (specificity, q))
    return best[1]


def prefers_html(request: Request) -> bool:
    """True when Accept ranks text/html above application/json (a browser); ties go to JSON."""
    accept = request.headers.get("accept", "")
    return _quality(accept, "text/html") > _quality(accept, "application/json")


def _clip(text: str, start: int | None, end: int | None) -> tuple[int, int] | None:
    if start is None or end is None or not 0 <= start < end <= len(text):
        return None
    return start, end


def article_page(article: Article, start: int | None = None, end: int | None = None) -> HTMLResponse:
    """The article's full text, with characters [start, end) in a <mark id="hl"> when they are in range."""
    e = html.escape
    span = _clip(article.text, start, end)
    if span:
        a, b = span
        body = f'{e(article.text[:a])}<mark id="hl">{e(article.text[a:b])}</mark>{e(article.text[b:])}'
        note = f'<p class="range">Highlighted: characters {a}–{b} of the stored text. <a href="#hl">Jump to it</a></p>'
    else:
        body = e(article.text)
        note = ('<p class="range">The requested characters are outside this article.</p>'
                if start is not None or end is not None else "")
    meta = [f'<time datetime="{e(article.date)}">{e(article.date)}</time>' if article.date else "undated"]
    if article.source:
        meta.append(e(article.source))
    if article.url and article.url.lower().startswith(("http://", "https://")):
        meta.append(f'<a href="{e(article.url)}" rel="noopener noreferrer">original</a>')
    meta.append(f"<code>{e(article.id)}</code>")
    page = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{e(article.title)} · newsrag</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/static/style.css">
</head>
<body>
<header class="site"><a href="/" class="brand">newsrag</a></header>
<main class="article-view">
<article>
<h1>{e(article.title)}</h1>
<p class="meta">{" · ".join(meta)}</p>
{note}
<div class="article-text">{body}</div>
</article>
<p><a href="/">Ask another question</a></p>
</main>
</body>
</html>
"""
    return HTMLResponse(page, headers=PAGE_HEADERS)
