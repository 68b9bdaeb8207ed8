"""The API's write routes (issue 18): absent without RECSYS_ADMIN_TOKEN (the app checked in process), and through
a real uvicorn 401 without the right Bearer token, bad input 422 changing nothing, a movie added through the API
found, recommended and liked, still there after the API restarts, then removed with `python -m
helpers.serving.admin` going through the API that holds the Milvus Lite file; the web app finding an added movie by
title (marker `browser`). Two API processes on the servers: tests/test_api_workers.py.

Cost: about 9 s, measured serially on a shared 2-core machine (plus the session's `model_settings`, ~5 s, when
this file is the first on its xdist worker to need it): one API shared by the file's tests and restarted once
(~1.4 s a start), the admin command, one Chromium."""
from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from bench.servers import free_port, stop_process, wait_for_http
from helpers.engine.inputs import MAX_NEW_RATINGS
from helpers.serving.api import create_app

from test_api import ROOT, START_SECONDS, server_env
from test_webapp import in_browser, open_page, search

TOKEN = "test-admin-token-18"
AUTH = {"authorization": f"Bearer {TOKEN}"}


def launch(settings, folder: Path, token: str | None) -> tuple[subprocess.Popen, str, Path]:
    """Start uvicorn over `settings`' stores, with the admin token when given: (process, base URL, log)."""
    port = free_port()
    log = folder / f"uvicorn-{port}.log"
    env = (server_env(settings) | {"RECSYS_MILVUS_URI": settings.milvus_uri, "RECSYS_CATALOG_URL": settings.catalog_url}
           | ({"RECSYS_ADMIN_TOKEN": token} if token else {}))
    with open(log, "w") as out:
        process = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", "helpers.serving.api:create_app",
                                    "--host", "127.0.0.1", "--port", str(port)], cwd=ROOT, env=env, stdout=out,
                                   stderr=subprocess.STDOUT)
    return process, f"http://127.0.0.1:{port}", log


def ready(process: subprocess.Popen, base: str, log: Path) -> None:
    """Wait until the API `launch` started answers /health with 200 (stopping it if it never does)."""
    try:
        wait_for_http(f"{base}/health", process, log, START_SECONDS, ready=lambda r: r.status_code == 200)
    except BaseException:
        stop_process(process)
        raise


class Api:
    """The API with the admin token over the session's `model_settings` stores, shared by this file's tests (one
    process holds the Milvus Lite file); `restart` stops it and starts a new one."""

    def __init__(self, settings, folder: Path):
        self.settings, self.folder = settings, folder
        self.start()

    def start(self) -> None:
        process, base, log = launch(self.settings, self.folder, TOKEN)
        ready(process, base, log)
        self.process, self.base = process, base

    def restart(self) -> None:
        stop_process(self.process)
        self.start()

    def stop(self) -> None:
        stop_process(self.process)


@pytest.fixture(scope="module")
def api(model_settings, tmp_path_factory) -> Iterator[Api]:
    served = Api(model_settings, tmp_path_factory.mktemp("admin-api"))
    yield served
    served.stop()


def movie(sample_ml, title="Zzyzx Through The API", n=5):
    users = sample_ml.ratings["user_id"].unique()[:n]
    return {"title": title, "year": 2001, "genres": ["Comedy"],
            "ratings": [{"user_id": int(u), "rating": 4, "timestamp": 1_000_000_000 + i} for i, u in enumerate(users)]}


def test_without_a_token_setting_the_write_routes_do_not_exist(model_settings):
    """The app `uvicorn --factory` builds, from settings without RECSYS_ADMIN_TOKEN: the write routes are absent
    (405; routing needs no stores, so the app is not started) and undocumented."""
    app = create_app(replace(model_settings, admin_token=""))

    async def answers() -> list[int]:  # ASGITransport does not run the lifespan (which opens the stores)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client:
            return [(await client.post("/movies", json={"title": "Zzyzx"}, headers=AUTH)).status_code,
                    (await client.delete("/movies/1", headers=AUTH)).status_code]

    assert asyncio.run(answers()) == [405, 405]
    assert "post" not in app.openapi()["paths"]["/movies"] and "/movies/{movie_id}" in app.openapi()["paths"]
    assert "post" in create_app(replace(model_settings, admin_token=TOKEN)).openapi()["paths"]["/movies"]


def add_through(api, sample_ml) -> tuple[dict, int]:
    """The token rules and every bad input (nothing changes), then one movie added: (its answer, the count before)."""
    spec = httpx.get(f"{api}/openapi.json").json()
    assert "post" in spec["paths"]["/movies"] and "delete" in spec["paths"]["/movies/{movie_id}"]
    assert "HTTPBearer" in spec["components"]["securitySchemes"]
    count = httpx.get(f"{api}/health").json()["movies"]["catalog"]
    for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": f"Basic {TOKEN}"},
                    {"authorization": f"Bearer {TOKEN}x"}):
        assert httpx.post(f"{api}/movies", json=movie(sample_ml), headers=headers).status_code == 401
        assert httpx.delete(f"{api}/movies/1", headers=headers).status_code == 401
    bad = [{"title": ""}, {"year": 1700}, {"genres": ["Nope"]}, {"extra": 1},
           {"ratings": [{"user_id": 10**9, "rating": 4, "timestamp": 0}]},
           {"ratings": [{"user_id": 1, "rating": 7, "timestamp": 0}]}]
    for change in bad:
        answer = httpx.post(f"{api}/movies", json=movie(sample_ml) | change, headers=AUTH)
        assert answer.status_code == 422, (change, answer.text)
    many = movie(sample_ml) | {"ratings": [{"user_id": 1, "rating": 4, "timestamp": 1_000_000_000 + i}
                                           for i in range(MAX_NEW_RATINGS)]}
    answer = httpx.post(f"{api}/movies", json=many, headers=AUTH)  # 1,000 ratings fit the 64 KB body limit
    assert answer.status_code == 422 and "more than once" in answer.text
    assert httpx.get(f"{api}/health").json()["movies"]["catalog"] == count
    answer = httpx.post(f"{api}/movies", json=movie(sample_ml), headers=AUTH, timeout=60)
    assert answer.status_code == 201, answer.text
    added = answer.json()
    assert added["neighbours"] and added["n_ratings"] == 5
    assert httpx.get(f"{api}/movies", params={"q": "zzyzx"}).json()[0]["movie_id"] == added["movie_id"]
    liked = httpx.post(f"{api}/recommend", json={"liked": [added["movie_id"]], "k": 5}).json()
    assert liked["results"] and liked["results"][0]["because_of"] == added["movie_id"]
    health = httpx.get(f"{api}/health").json()
    assert health["ok"] and health["movies"]["added"] == 1 and health["movies"]["catalog"] == count + 1
    assert httpx.delete(f"{api}/movies/{int(sample_ml.movies['movie_id'].iloc[0])}", headers=AUTH).status_code == 409
    return added, count


def test_token_rules_bad_input_add_restart_and_remove(api, sample_ml):
    added, count = add_through(api.base, sample_ml)
    api.restart()  # a restarted API sees the added movie
    assert httpx.get(f"{api.base}/movies/{added['movie_id']}").json()["title"] == added["title"]
    assert httpx.get(f"{api.base}/health").json()["ok"]
    tool = subprocess.run([sys.executable, "-m", "helpers.serving.admin", "--api", api.base, "remove",
                           str(added["movie_id"])], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
                          env=server_env(api.settings) | {"RECSYS_ADMIN_TOKEN": TOKEN})
    assert tool.returncode == 0, tool.stderr
    assert httpx.get(f"{api.base}/movies/{added['movie_id']}").status_code == 404
    assert httpx.delete(f"{api.base}/movies/{added['movie_id']}", headers=AUTH).status_code == 404
    assert httpx.get(f"{api.base}/health").json()["movies"]["catalog"] == count


@pytest.mark.browser
def test_the_web_app_finds_a_movie_added_through_the_api(api, sample_ml):
    """Browser (Debian Chromium): a movie added with POST /movies is found by title in the web app at once."""
    added = httpx.post(f"{api.base}/movies", json=movie(sample_ml, "Zzyzx Browser Premiere"), headers=AUTH,
                       timeout=60).json()

    async def scenario(browser):
        page = await open_page(browser, api.base)
        return await search(page, "zzyzx brow")

    try:
        found = in_browser(scenario)
    finally:
        deleted = httpx.delete(f"{api.base}/movies/{added['movie_id']}", headers=AUTH)
    assert found == [f"Zzyzx Browser Premiere ({added['year']})"]
    assert deleted.status_code == 204
