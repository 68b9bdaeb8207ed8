"""The picker as a page: scripts/page.sh serves the page notebook (helpers.stages.PAGE_NOTEBOOK) with Voila on
127.0.0.1 over the sample stores, and headless Debian Chromium (through Playwright, never a downloaded browser)
searches, adds three movies, presses Recommend and sees k results. Screenshots go to test-output/ (gitignored)."""
from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.servers import free_port, wait_for_http

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "test-output"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
START_SECONDS = 90
PAGE_SECONDS = 180  # Voila runs the whole notebook (imports torch, opens the stores) before the picker shows
QUERIES = ["misérables", "golden", "midnight"]
# ipywidgets shows option labels with non-breaking spaces
FIRST_MATCH_CONTAINS = ("q => { const o = document.querySelector('.picker-matches select option');"
                        "  return o !== null && o.textContent.replace(/\\u00a0/g, ' ').toLowerCase().includes(q); }")

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"Debian chromium is not installed at {CHROMIUM}: apt-get install -y chromium")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (requirements-test.txt)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def page_url(stores_settings, tmp_path_factory) -> Iterator[str]:
    """scripts/page.sh (Voila) on a free 127.0.0.1 port, over the sample stores."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RECSYS_", "VOILA_"))}
    env.update(RECSYS_DATASET="sample", RECSYS_ARTIFACTS=str(stores_settings.artifacts_root),
               RECSYS_CACHE=str(stores_settings.cache_dir), OMP_NUM_THREADS="1")
    log = tmp_path_factory.mktemp("voila") / "voila.log"
    with open(log, "w") as out:  # its own session, so teardown can stop Voila and its kernels together
        process = subprocess.Popen(["bash", "scripts/page.sh", str(port)], cwd=ROOT, env=env, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_for_http(f"{url}api/status", process, log, START_SECONDS)
        yield url
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


def test_page_searches_adds_three_movies_and_shows_k_results(browser, page_url):
    page = browser.new_page(viewport={"width": 1100, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto(page_url, timeout=PAGE_SECONDS * 1000)
        search = page.locator(".picker-search input")
        search.wait_for(timeout=PAGE_SECONDS * 1000)
        # the page notebook shows the picker empty: nothing drives it
        assert page.locator(".picker-liked option").count() == 0
        assert page.locator(".picker-results table").count() == 0

        page.locator("button.picker-recommend").click()  # nothing liked yet: a message, not a traceback
        page.wait_for_function("document.querySelector('.picker-message').innerText.includes('Add at least one')")

        for n, query in enumerate(QUERIES, start=1):
            search.fill(query)
            page.wait_for_function(FIRST_MATCH_CONTAINS, arg=query)
            page.locator("button.picker-add").click()
            page.wait_for_function("n => document.querySelectorAll('.picker-liked option').length === n", arg=n)
        liked = [t.replace("\xa0", " ") for t in page.locator(".picker-liked option").all_inner_texts()]
        assert any("Misérables" in title for title in liked)  # accents survive the round trip

        k = 10
        page.locator("button.picker-recommend").click()
        page.wait_for_function("k => document.querySelectorAll('.picker-results table tbody tr').length === k",
                               arg=k, timeout=60_000)
        rows = page.locator(".picker-results table tbody tr").all_inner_texts()
        because = {row.split("\t")[-1].strip() for row in rows}  # the "because you liked" column
        assert len(rows) == k and because <= {title.rsplit(" (", 1)[0] for title in liked}, (because, liked)
        assert f"{k} recommendations" in page.locator(".picker-message").inner_text()
        OUTPUT.mkdir(exist_ok=True)
        page.screenshot(path=str(OUTPUT / "picker-sample.png"), full_page=True)

        # markup typed into the search box is shown as text, never run
        search.fill("<img src=x onerror=\"window.__hacked = 1\">")
        page.wait_for_function("document.querySelector('.picker-message').innerText.includes('No title contains')")
        assert "<img src=x" in page.locator(".picker-message").inner_text()
        assert page.evaluate("window.__hacked") is None
        assert not errors, errors
    finally:
        page.close()



def test_the_next_visitor_gets_a_fresh_picker_after_the_previous_page_closed(browser, page_url):
    """Voila leaves the closed page's kernel (holding the Milvus Lite file) running; scripts/page.sh culls it
    and the new page's kernel waits for the file (helpers.engine.startup.open_engine)."""
    first = browser.new_page()
    first.goto(page_url, timeout=PAGE_SECONDS * 1000)
    first.locator(".picker-search input").wait_for(timeout=PAGE_SECONDS * 1000)
    first.close()
    page = browser.new_page()
    try:
        page.goto(page_url, timeout=PAGE_SECONDS * 1000)
        search = page.locator(".picker-search input")
        search.wait_for(timeout=PAGE_SECONDS * 1000)  # includes the wait for the file (up to a minute)
        search.fill("golden")
        page.wait_for_function("document.querySelectorAll('.picker-matches select option').length > 0",
                               timeout=PAGE_SECONDS * 1000)
        assert page.locator(".picker-liked option").count() == 0
    finally:
        page.close()
