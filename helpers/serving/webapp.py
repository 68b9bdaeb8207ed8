"""The web app: one page at `/` of the API, for any number of visitors at once.

The page is plain HTML, CSS and JavaScript shipped inside this package (`helpers/serving/web/`, no CDN, no build step).
It talks to the same API that `scripts/api.sh` serves (`GET /movies`, `GET /genres`, `POST /recommend`), and so
to the one `RecommendationEngine` the process opened at start-up: the same engine call as the ipywidgets picker
and the Voila page, but one process holding the stores for every visitor. `create_app()` adds it with
`add_webapp(app, settings)`.
"""
from __future__ import annotations

import html
from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from helpers.config import Settings
from helpers.engine.inputs import DEFAULT_K, MAX_LIKED, PAGE_MATCHES, PAGE_MAX_K, PAGE_MIN_LETTERS

WEB_DIR = Path(__file__).with_name("web")
ASSETS_URL = "/web"
# the page loads only its own files and talks only to this server: injected markup could not load or send anything
PAGE_HEADERS = {
    "Content-Security-Policy": ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                                "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


# the page's limits, from the one place the engine, the API and the picker take them (read by app.js)
PAGE_LIMITS = {"__MIN_LETTERS__": PAGE_MIN_LETTERS, "__MAX_MATCHES__": PAGE_MATCHES, "__MAX_LIKED__": MAX_LIKED,
               "__MAX_K__": PAGE_MAX_K, "__DEFAULT_K__": DEFAULT_K}


@lru_cache(maxsize=8)
def page_html(dataset: str) -> str:
    """index.html with the dataset's name (escaped) and the page's limits filled in."""
    page = (WEB_DIR / "index.html").read_text(encoding="utf-8").replace("__DATASET__", html.escape(dataset))
    for placeholder, value in PAGE_LIMITS.items():
        page = page.replace(placeholder, str(int(value)))
    return page


def add_webapp(app: FastAPI, settings: Settings) -> None:
    """Serve the page at `/`, its assets under `/web/`, and `GET /genres` for its genre filter."""
    app.mount(ASSETS_URL, StaticFiles(directory=WEB_DIR), name="web")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> HTMLResponse:
        return HTMLResponse(page_html(settings.dataset), headers=PAGE_HEADERS)

    @app.get("/genres", response_model=list[str])
    def genres(request: Request) -> Any:
        """The catalog's genres, for the `genres` filter of POST /recommend."""
        return request.app.state.engine.genres()
