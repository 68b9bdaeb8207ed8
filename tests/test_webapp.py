"""The web app at / of the API (helpers/serving/webapp.py) on a REAL uvicorn server over the sample stores, driven in
headless Debian Chromium through Playwright (never a downloaded browser): ten visitors at once get exactly what
`RecommendationEngine.recommend()` gives for their lists; accents; markup and SQL typed into every field shown as
text; rapid typing (a late answer never wins); a server restarted under an open page; an accessible name on every
control and the keyboard alone; a phone-width screen; /docs offline.

Cost: about 60 s on 2 cores (55-62 s measured alone on a shared machine): uvicorn started twice,
Chromium once per browser test; the ten visitors take 13-18 s of it, the restart 19 s. Screenshots go to
test-output/ (gitignored).
"""
from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.servers import free_port, stop_process, wait_for_http
from helpers.config import Settings
from helpers.engine.engine import RecommendationEngine
from helpers.engine.inputs import PAGE_MATCHES
from helpers.stores.milvus_client import disconnect

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "test-output"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
START_SECONDS = 90
WAIT_MS = 30_000
# ten visitors, three searches each (accents included); each likes the first match of each search
VISITORS = [("misérables", "golden", "midnight"), ("crème", "iron summer", "velvet"), ("señor", "frozen", "hollow"),
            ("café", "distant", "electric"), ("göteborg", "burning", "quiet"), ("amélie", "crimson", "savage"),
            ("niño", "lost", "wild"), ("über", "secret", "bright"), ("fête", "hidden", "broken"),
            ("smörg", "last", "midnight harbor")]
MARKUP = '<img src=x onerror="window.__hacked = 1">'
SQL = "'; DROP TABLE movies; --"


def visitor_filters(i: int) -> dict[str, Any]:
    """k and filters of visitor `i`: every third one ticks genres, every third (other) one sets years."""
    return {"k": 5 + i, "genres": ["Comedy", "Drama"] if i % 3 == 1 else None,
            "years": (1950, 1990) if i % 3 == 2 else None}


# -- the server ------------------------------------------------------------------------------------------------
class Server:
    """`scripts/api.sh PORT` (uvicorn, helpers.serving.api:create_app) over the sample stores; can be stopped and
    started again on the same port (the restart test)."""

    def __init__(self, settings: Settings, log: Path) -> None:
        self.settings, self.log, self.port = settings, log, free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RECSYS_")}
        env.update(RECSYS_DATASET=self.settings.dataset, RECSYS_ARTIFACTS=str(self.settings.artifacts_root),
                   RECSYS_CACHE=str(self.settings.cache_dir), OMP_NUM_THREADS="1")
        with open(self.log, "a") as out:
            self.process = subprocess.Popen(["bash", "scripts/api.sh", str(self.port)], cwd=ROOT, env=env, stdout=out,
                                            stderr=subprocess.STDOUT)  # the script execs uvicorn: one process
        wait_for_http(f"{self.url}health", self.process, self.log, START_SECONDS, ready=lambda r: r.status_code == 200)

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)  # uvicorn shuts down gracefully: the engine closes, the Lite file is free


@pytest.fixture(scope="module")
def expected(stores_settings) -> dict[str, Any]:
    """What the engine itself says, computed BEFORE the server opens the Milvus Lite file: for each visitor, the
    first match of each search and `recommend()` for those three movies with the visitor's filters."""
    with RecommendationEngine(stores_settings) as engine:
        visitors = []
        for i, queries in enumerate(VISITORS):
            liked = [engine.search_titles(q, limit=PAGE_MATCHES)[0] for q in queries]
            f = visitor_filters(i)
            results = engine.recommend([m["movie_id"] for m in liked], k=f["k"], genres=f["genres"], years=f["years"])
            assert results, f"visitor {i}: the sample gives no results for {queries} with {f}"
            visitors.append({"liked": liked, "results": results})
        genres = engine.genres()
    disconnect(stores_settings.milvus_uri)
    return {"visitors": visitors, "genres": genres}


@pytest.fixture(scope="module")
def server(stores_settings, expected, tmp_path_factory) -> Iterator[Server]:
    server = Server(stores_settings, tmp_path_factory.mktemp("webapp") / "uvicorn.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


# -- the browser ------------------------------------------------------------------------------------------------
def in_browser(scenario: Callable[[Any], Awaitable[Any]]) -> Any:
    """Run `scenario(browser)` in a fresh headless Chromium (async Playwright: pages really run at once)."""
    if not CHROMIUM.exists():
        pytest.skip(f"Debian chromium is not installed at {CHROMIUM}: apt-get install -y chromium")
    async_api = pytest.importorskip("playwright.async_api",
                                    reason="playwright is not installed (requirements-test.txt)")

    async def main() -> Any:
        async with async_api.async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                return await scenario(browser)
            finally:
                await browser.close()

    return asyncio.run(main())


async def open_page(browser, url: str, width: int = 1100, height: int = 900):
    """A page in its own context (its own session storage, like a separate visitor), with page errors recorded."""
    context = await browser.new_context(viewport={"width": width, "height": height})
    page = await context.new_page()
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    await page.goto(url)
    await page.wait_for_selector("#genre-list input", timeout=WAIT_MS)  # the genres came from GET /genres
    return page


async def search(page, query: str) -> list[str]:
    """Type `query` into the search box and wait for its answer; return the match labels."""
    await page.fill("#search", query)
    await page.wait_for_function(
        "q => !document.querySelector('#matches').hasAttribute('aria-busy')"
        " && document.querySelector('#search-status').textContent.includes(q)", arg=query, timeout=WAIT_MS)
    return await page.locator("#matches .title").all_inner_texts()


async def status(page) -> str:
    return await page.locator("#search-status").inner_text()


async def message(page) -> str:
    return await page.locator("#message").inner_text()


async def recommend(page) -> None:
    """Press Recommend and wait until the message line gives the outcome."""
    await page.evaluate("document.querySelector('#message').textContent = ''")
    await page.click("#recommend")
    await page.wait_for_function(
        "() => { const t = document.querySelector('#message').textContent; return t && !t.startsWith('Finding'); }",
        timeout=WAIT_MS)


def label(movie: dict) -> str:
    return f"{movie['title']} ({movie['year']})" if movie["year"] is not None else movie["title"]


def assert_no_injection(page_errors: list[str], hacked: Any, injected: int) -> None:
    assert hacked is None and injected == 0 and not page_errors, (hacked, injected, page_errors)


INJECTED = "document.querySelectorAll('body [onerror], body img').length"


# -- HTTP: the page and /docs come from the packages ------------------------------------------------------------
def test_page_and_its_files_are_served_from_the_package(server):
    page = httpx.get(server.url, timeout=10)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<title>Movie picker · sample</title>" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert not re.search(r"(src|href)=\"(https?:)?//", page.text), "the page must load nothing from elsewhere"
    for asset, kind in [("web/app.js", "javascript"), ("web/style.css", "text/css")]:
        response = httpx.get(server.url + asset, timeout=10)
        assert response.status_code == 200 and kind in response.headers["content-type"], asset


def test_genres_endpoint_lists_the_catalog_genres(server, expected):
    response = httpx.get(f"{server.url}genres", timeout=10)
    assert response.status_code == 200 and response.json() == expected["genres"]
    assert "/genres" in httpx.get(f"{server.url}openapi.json", timeout=10).json()["paths"]


def test_docs_load_swagger_ui_from_this_server(server):
    docs = httpx.get(f"{server.url}docs", timeout=10)
    assert docs.status_code == 200
    urls = re.findall(r"(?:src|href)=['\"]([^'\"]+)['\"]", docs.text)
    assert urls and all(u.startswith("/") and not u.startswith("//") for u in urls), urls
    for url in urls:
        assert httpx.get(server.url.rstrip("/") + url, timeout=10).status_code == 200, url


def test_connections_get_tcp_nodelay_even_on_a_listener_bound_like_uvicorns_workers():
    """uvicorn --workers binds the listener with proto 0, so asyncio leaves Nagle on (Kludex/uvicorn#3149):
    scripts/api.sh's protocol switches it off itself."""
    from uvicorn.config import Config
    from uvicorn.server import ServerState

    from helpers.serving.protocol import NoDelayH11Protocol

    async def accepted_nodelay(protocol_class) -> int:
        listener = socket.socket(socket.AF_INET)  # proto 0, as uvicorn.Config.bind_socket() makes it
        listener.bind(("127.0.0.1", 0))
        config = Config(app=None)
        config.load_app = lambda: None  # only the protocol is exercised
        made: list = []

        def factory():
            protocol = protocol_class(config=config, server_state=ServerState(), app_state={})
            made.append(protocol)
            return protocol

        server = await asyncio.get_running_loop().create_server(factory, sock=listener)
        _, writer = await asyncio.open_connection(*listener.getsockname())
        while not made:
            await asyncio.sleep(0.01)
        nodelay = made[0].transport.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        writer.close()
        server.close()
        return nodelay

    from uvicorn.protocols.http.h11_impl import H11Protocol

    # the bug worked around; when this fails, uvicorn fixed #3149 and helpers.serving.protocol can go
    assert asyncio.run(accepted_nodelay(H11Protocol)) == 0
    assert asyncio.run(accepted_nodelay(NoDelayH11Protocol)) != 0


# -- the browser --------------------------------------------------------------------------------------------------
@pytest.mark.browser
def test_ten_visitors_at_once_get_exactly_the_engines_recommendations(server, expected):
    async def visit(browser, i: int) -> None:
        page = await open_page(browser, server.url)
        want = expected["visitors"][i]
        for n, query in enumerate(VISITORS[i]):
            matches = await search(page, query)
            assert matches[0] == label(want["liked"][n]), (query, matches)
            if (i + n) % 2:
                await page.press("#search", "Enter")  # the keyboard way: Enter adds the first match
            else:
                await page.locator("#matches button.add").first.click()
            await page.wait_for_function("n => document.querySelectorAll('#liked li').length === n", arg=n + 1)
        liked = await page.locator("#liked .title").all_inner_texts()
        assert liked == [label(m) for m in want["liked"]]  # kept in the order added
        f = visitor_filters(i)
        await page.fill("#k", str(f["k"]))
        for genre in f["genres"] or []:
            await page.get_by_role("checkbox", name=genre, exact=True).check()
        if f["years"]:
            await page.fill("#year-min", str(f["years"][0]))
            await page.fill("#year-max", str(f["years"][1]))
        await recommend(page)
        rows = page.locator("#results tbody tr")
        shown = [{"id": int(await row.get_attribute("data-movie-id")),
                  "cells": await row.locator("td").all_inner_texts()} for row in await rows.all()]
        results = want["results"]
        assert [r["id"] for r in shown] == [r.movie_id for r in results], (i, await message(page))
        for row, result in zip(shown, results, strict=True):
            year = "" if result.year is None else str(result.year)
            assert row["cells"][1:] == [result.title, year, ", ".join(result.genres), f"{result.score:.3f}",
                                        result.because_of_title], (i, row)
        assert f"{len(results)}" in await message(page)
        caption = await page.locator("#results-caption").inner_text()  # says what the score is: not a cosine
        assert "inner product" in caption and f"query encoder: {results.encoder}" in caption, caption
        assert not page.errors, page.errors
        if i == 0:
            OUTPUT.mkdir(exist_ok=True)
            await page.screenshot(path=str(OUTPUT / "webapp-sample.png"), full_page=True)
        await page.context.close()

    async def scenario(browser) -> float:
        start = time.perf_counter()
        await asyncio.gather(*(visit(browser, i) for i in range(len(VISITORS))))
        return time.perf_counter() - start

    print(f"ten visitors took {in_browser(scenario):.1f} s")


@pytest.mark.browser
def test_accents_markup_and_sql_in_every_field_are_shown_as_text(server):
    async def scenario(browser) -> None:
        page = await open_page(browser, server.url)
        assert any("Misérables" in m for m in await search(page, "MISÉR"))  # accents, any case
        for text in (MARKUP, SQL):
            assert await search(page, text) == []
            assert f"No title contains “{text}”" in await status(page)
        assert len(await search(page, "golden")) > 0  # the catalog is still there after the SQL
        await page.locator("#matches button.add").first.click()
        for field, name in [("#year-min", "From year"), ("#year-max", "To year"), ("#k", "How many")]:
            for text in (MARKUP, SQL):
                await page.fill(field, text)
                await recommend(page)
                assert f"{name} “{text}” is not valid" in await message(page), (field, await message(page))
            await page.fill(field, "10" if field == "#k" else "")
        await recommend(page)
        assert "recommendations for your 1 liked movie" in await message(page)
        assert_no_injection(page.errors, await page.evaluate("window.__hacked"), await page.evaluate(INJECTED))

    in_browser(scenario)


@pytest.mark.browser
def test_every_empty_or_bad_input_gets_a_friendly_message(server):
    async def scenario(browser) -> None:
        page = await open_page(browser, server.url)
        await recommend(page)
        assert "Add at least one movie you like first" in await message(page)
        await page.fill("#search", "g")
        await page.wait_for_function(
            "() => document.querySelector('#search-status').textContent.includes('at least 2')")
        await page.fill("#search", "   ")
        await page.press("#search", "Enter")
        assert "at least 2 letters" in await status(page)
        await page.click("#clear")
        assert "already empty" in await message(page)

        titles = await search(page, "golden")
        await page.locator("#matches button.add").nth(0).click()
        await page.locator("#matches button.add").nth(0).click()  # now "Liked": a second add says so
        assert "already in your liked list" in await message(page)
        for n in (1, 2):
            await page.locator("#matches button.add").nth(n).click()
        assert await page.locator("#liked .title").all_inner_texts() == titles[:3]
        await page.get_by_role("button", name=f"Remove {titles[1]}").click()  # remove from the middle
        assert await page.locator("#liked .title").all_inner_texts() == [titles[0], titles[2]]
        assert f"Removed {titles[1]}" in await message(page)

        for field, value, fragment in [("#year-min", "1990", "From year 1990 is after To year 1980: swap them"),
                                       ("#year-min", "1700", "From year “1700” is not valid"),
                                       ("#k", "0", "How many “0” is not valid"),
                                       ("#k", "51", "How many “51” is not valid"),
                                       ("#k", "", "How many is empty")]:
            await page.fill("#year-max", "1980")
            await page.fill(field, value)
            await recommend(page)
            assert fragment in await message(page), (field, value, await message(page))
            await page.fill("#year-min", "")
            await page.fill("#year-max", "")
            await page.fill("#k", "10")

        await page.fill("#year-min", "2099")  # valid, but nothing that recent: no results, and it says so
        await recommend(page)
        assert "No movie matches these filters" in await message(page)
        assert await page.locator("#results-section").is_hidden()
        await page.fill("#year-min", "")
        await recommend(page)
        assert await page.locator("#results tbody tr").count() == 10

        await page.click("#clear")
        assert await page.locator("#liked li").count() == 0 and await page.locator("#results-section").is_hidden()
        assert "liked list is empty" in await message(page)

        # a list kept from an older catalog (the tab's session storage) holds an id the server does not know:
        # the API's 422 detail is shown, and the list stays as it was
        await page.evaluate("""() => sessionStorage.setItem('movie-picker:' + document.title,
                                   JSON.stringify([{movie_id: 987654321, label: 'Gone (1990)'}]))""")
        await page.reload()
        await page.wait_for_selector("#genre-list input", timeout=WAIT_MS)
        assert await page.locator("#liked .title").all_inner_texts() == ["Gone (1990)"]
        await recommend(page)
        assert "987654321" in await message(page), await message(page)  # the detail names the id
        assert await page.locator("#message").get_attribute("data-kind") == "warn"
        assert not page.errors, page.errors

    in_browser(scenario)


@pytest.mark.browser
def test_rapid_typing_a_late_answer_never_overwrites_a_newer_one(server):
    async def scenario(browser) -> None:
        page = await open_page(browser, server.url)
        searched: list[str] = []
        page.on("request", lambda r: searched.append(r.url) if "/movies?" in r.url else None)
        await page.locator("#search").press_sequentially("midnight", delay=40)
        await page.wait_for_function("() => document.querySelector('#search-status').textContent.includes('midnight')")
        assert len(searched) <= 3, searched  # debounced: not one request per letter
        assert all("Midnight" in t for t in await page.locator("#matches .title").all_inner_texts())

        # the answer for "golden" is held back until the answer for the newer "crimson" is on screen
        release, done = asyncio.Event(), asyncio.Event()

        async def hold_golden(route) -> None:
            await release.wait()
            try:
                await route.continue_()
            except Exception:  # the page gave up on this request (it aborts superseded searches)
                pass
            done.set()

        await page.route(re.compile(r".*/movies\?q=golden.*"), hold_golden)
        await page.fill("#search", "golden")
        await asyncio.sleep(0.6)  # past the debounce: the "golden" request is on its way (and held)
        assert any("q=golden" in u for u in searched)
        newer = await search(page, "crimson")
        assert newer and all("Crimson" in t for t in newer)
        release.set()
        await asyncio.wait_for(done.wait(), 10)
        await asyncio.sleep(0.5)  # time for a late answer to (wrongly) land
        assert await page.locator("#matches .title").all_inner_texts() == newer
        assert "crimson" in await status(page)
        assert not page.errors, page.errors

    in_browser(scenario)


@pytest.mark.browser
def test_a_server_restart_under_an_open_page_gives_a_message_then_works_again(server):
    async def scenario(browser) -> None:
        page = await open_page(browser, server.url)
        await search(page, "golden")
        await page.press("#search", "Enter")
        await page.wait_for_function("() => document.querySelectorAll('#liked li').length === 1")
        await asyncio.to_thread(server.stop)
        try:
            await page.fill("#search", "midnight")
            await page.wait_for_function(
                "() => document.querySelector('#search-status').textContent.includes('does not answer')",
                timeout=WAIT_MS)
            await recommend(page)
            assert "does not answer" in await message(page) and "kept" in await message(page)
            assert await page.locator("#liked li").count() == 1  # nothing the visitor did is lost
        finally:
            await asyncio.to_thread(server.start)
        assert len(await search(page, "midnight harbor")) > 0
        await recommend(page)
        assert "10 recommendations for your 1 liked movie" in await message(page)
        assert await page.locator("#results tbody tr").count() == 10
        assert not page.errors, page.errors

    in_browser(scenario)


INTERACTIVE_ROLES = {"button", "textbox", "searchbox", "checkbox", "spinbutton", "combobox", "link", "listbox",
                     "radio", "slider", "switch", "menuitem", "option", "tab"}
DOM_CONTROLS = "document.querySelectorAll('button, input, select, textarea, a[href]').length"


@pytest.mark.browser
def test_every_control_has_an_accessible_name_and_the_keyboard_alone_works(server):
    async def scenario(browser) -> None:
        page = await open_page(browser, server.url)
        await page.keyboard.press("Tab")  # the first stop is the search box
        assert await page.evaluate("document.activeElement.id") == "search"
        await page.keyboard.type("golden")
        await page.wait_for_function("() => document.querySelector('#search-status').textContent.includes('golden')")
        await page.keyboard.press("Enter")  # adds the first match
        await page.keyboard.press("ArrowDown")  # into the matches
        await page.keyboard.press("ArrowDown")  # the second match
        await page.keyboard.press("Enter")
        await page.wait_for_function("() => document.querySelectorAll('#liked li').length === 2")
        for _ in range(80):  # Tab to Recommend
            if await page.evaluate("document.activeElement.id") == "recommend":
                break
            await page.keyboard.press("Tab")
        assert await page.evaluate("document.activeElement.id") == "recommend"
        await page.keyboard.press("Enter")
        await page.wait_for_function("() => document.querySelectorAll('#results tbody tr').length === 10",
                                     timeout=WAIT_MS)

        cdp = await page.context.new_cdp_session(page)
        tree = await cdp.send("Accessibility.getFullAXTree")
        controls = [n for n in tree["nodes"] if not n.get("ignored")
                    and n.get("role", {}).get("value") in INTERACTIVE_ROLES]
        nameless = [(n["role"]["value"], n.get("backendDOMNodeId")) for n in controls
                    if not n.get("name", {}).get("value", "").strip()]
        assert not nameless, nameless
        assert len(controls) == await page.evaluate(DOM_CONTROLS)  # every control is in the tree
        names = {n["name"]["value"] for n in controls}
        assert {"Search titles", "From year", "To year", "How many (1 to 50)", "Recommend", "Clear list",
                "Drama"} <= names
        assert not page.errors, page.errors

    in_browser(scenario)


@pytest.mark.browser
def test_a_phone_width_screen_needs_no_sideways_scrolling(server):
    async def scenario(browser) -> None:
        page = await open_page(browser, server.url, width=360, height=740)
        for query in ("misérables", "golden", "midnight"):
            await search(page, query)
            await page.press("#search", "Enter")
        await recommend(page)
        assert await page.locator("#results tbody tr").count() == 10
        sizes = await page.evaluate("""() => ({
            page: document.documentElement.scrollWidth, screen: window.innerWidth,
            font: parseFloat(getComputedStyle(document.body).fontSize),
            outside: [...document.querySelectorAll('button, input, td, h1, h2, label')]
                .filter(e => { const r = e.getBoundingClientRect();
                               return r.width && (r.left < 0 || r.right > window.innerWidth); })
                .map(e => e.id || e.textContent.slice(0, 30)) })""")
        assert sizes["page"] <= sizes["screen"] and not sizes["outside"], sizes
        assert sizes["font"] >= 16
        OUTPUT.mkdir(exist_ok=True)
        await page.screenshot(path=str(OUTPUT / "webapp-phone.png"), full_page=True)
        assert not page.errors, page.errors

    in_browser(scenario)


@pytest.mark.browser
def test_docs_render_with_no_network_beyond_this_server(server):
    async def scenario(browser) -> None:
        context = await browser.new_context()
        elsewhere: list[str] = []

        async def local_only(route) -> None:
            if route.request.url.startswith(server.url):
                await route.continue_()
            else:
                elsewhere.append(route.request.url)
                await route.abort()

        await context.route("**/*", local_only)
        page = await context.new_page()
        await page.goto(f"{server.url}docs")
        await page.wait_for_selector(".swagger-ui .opblock", timeout=WAIT_MS)
        assert await page.locator(".opblock-summary-path").filter(has_text="/recommend").count() == 1
        assert not elsewhere, elsewhere

    in_browser(scenario)
