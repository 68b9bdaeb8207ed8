"""The API's write routes (issue 18) through a real uvicorn: absent without RECSYS_ADMIN_TOKEN, 401 without the
right Bearer token, bad input 422 changing nothing, a movie added through the API found, recommended and liked,
still there after the API restarts, then removed; the web app finding it by title (marker `browser`); and `python -m helpers.serving.admin` going through the API
that holds the Milvus Lite file.

Cost: about 60 s (seven uvicorn starts, one Chromium over the session's `model_settings` stores; the two-API test on
milvus-server + MariaDB ~25 s of it)."""
from __future__ import annotations

import shutil
import subprocess
import sys

import httpx
import pytest
from test_api import ROOT, START_SECONDS, server_env
from test_webapp import in_browser, open_page, search

from bench.servers import free_port, stop_process, wait_for_http
from helpers.engine.inputs import MAX_NEW_RATINGS
from helpers.stores.build import build_stores
from helpers.stores.milvus import VectorStore
from helpers.stores.milvus_client import disconnect

from conftest import sample_settings

TOKEN = "test-admin-token-18"


def serve(settings, tmp_path, token: str | None) -> tuple[subprocess.Popen, str]:
    port, log = free_port(), tmp_path / f"uvicorn-{free_port()}.log"
    env = (server_env(settings) | {"RECSYS_MILVUS_URI": settings.milvus_uri, "RECSYS_CATALOG_URL": settings.catalog_url}
           | ({"RECSYS_ADMIN_TOKEN": token} if token else {}))
    with open(log, "w") as out:
        process = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", "helpers.serving.api:create_app",
                                    "--host", "127.0.0.1", "--port", str(port)], cwd=ROOT, env=env, stdout=out,
                                   stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    wait_for_http(f"{base}/health", process, log, START_SECONDS, ready=lambda r: r.status_code == 200)
    return process, base


AUTH = {"authorization": f"Bearer {TOKEN}"}


def movie(sample_ml, title="Zzyzx Through The API", n=5):
    users = sample_ml.ratings["user_id"].unique()[:n]
    return {"title": title, "year": 2001, "genres": ["Comedy"],
            "ratings": [{"user_id": int(u), "rating": 4, "timestamp": 1_000_000_000 + i} for i, u in enumerate(users)]}


def test_without_a_token_setting_the_write_routes_do_not_exist(model_settings, tmp_path, sample_ml):
    process, base = serve(model_settings, tmp_path, None)
    try:
        assert httpx.post(f"{base}/movies", json=movie(sample_ml), headers=AUTH).status_code == 405
        assert httpx.delete(f"{base}/movies/1", headers=AUTH).status_code == 405
        assert "post" not in httpx.get(f"{base}/openapi.json").json()["paths"]["/movies"]
    finally:
        stop_process(process)


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


def test_token_rules_bad_input_add_restart_and_remove(model_settings, tmp_path, sample_ml):
    first, api = serve(model_settings, tmp_path, TOKEN)
    try:
        added, count = add_through(api, sample_ml)
    finally:
        stop_process(first)
    process, again = serve(model_settings, tmp_path, TOKEN)  # a restarted API sees the added movie
    try:
        assert httpx.get(f"{again}/movies/{added['movie_id']}").json()["title"] == added["title"]
        assert httpx.get(f"{again}/health").json()["ok"]
        tool = subprocess.run([sys.executable, "-m", "helpers.serving.admin", "--api", again, "remove",
                               str(added["movie_id"])], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
                              env=server_env(model_settings) | {"RECSYS_ADMIN_TOKEN": TOKEN})
        assert tool.returncode == 0, tool.stderr
        assert httpx.get(f"{again}/movies/{added['movie_id']}").status_code == 404
        assert httpx.delete(f"{again}/movies/{added['movie_id']}", headers=AUTH).status_code == 404
        assert httpx.get(f"{again}/health").json()["movies"]["catalog"] == count
    finally:
        stop_process(process)


@pytest.mark.browser
def test_the_web_app_finds_a_movie_added_through_the_api(model_settings, tmp_path, sample_ml):
    """Browser (Debian Chromium): a movie added with POST /movies is found by title in the web app at once."""
    process, api = serve(model_settings, tmp_path, TOKEN)
    try:
        added = httpx.post(f"{api}/movies", json=movie(sample_ml, "Zzyzx Browser Premiere"), headers=AUTH,
                           timeout=60).json()

        async def scenario(browser):
            page = await open_page(browser, api)
            return await search(page, "zzyzx brow")

        assert in_browser(scenario) == [f"Zzyzx Browser Premiere ({added['year']})"]
        assert httpx.delete(f"{api}/movies/{added['movie_id']}", headers=AUTH).status_code == 204
    finally:
        stop_process(process)


@pytest.mark.real_server
def test_two_api_processes_on_servers_share_added_movies(model_settings, milvus_server_uri, mysql_url, tmp_path,
                                                         sample_ml):
    """Two API processes on milvus-server + MariaDB (as `--workers 2` runs them): a movie added through one is
    found by title (by a process whose title index was built before the add), liked and recommended through the
    other; an API started later sees it; removed through the second, it is gone from the first."""
    settings = sample_settings(tmp_path, milvus_uri=milvus_server_uri, catalog_url=mysql_url)
    shutil.copytree(model_settings.artifacts_dir, settings.artifacts_dir,  # the trained model, not the Lite stores
                    ignore=shutil.ignore_patterns("milvus.db", "catalog.sqlite*", "stores.*"))
    build_stores(settings, ml=sample_ml, progress=False)
    disconnect(settings.milvus_uri)
    processes = []
    try:
        for _ in range(2):
            processes.append(serve(settings, tmp_path, TOKEN))
        (_, one), (_, other) = processes
        assert httpx.get(f"{other}/movies", params={"q": "zzyzx"}).json() == []  # its title index is built
        added = httpx.post(f"{one}/movies", json=movie(sample_ml), headers=AUTH, timeout=60).json()
        movie_id, neighbour = added["movie_id"], added["neighbours"][0]["movie_id"]
        assert [m["movie_id"] for m in httpx.get(f"{other}/movies", params={"q": "zzyzx"}).json()] == [movie_id]
        liked = [httpx.post(f"{api}/recommend", json={"liked": [movie_id], "k": 5}).json()["results"]
                 for api in (one, other)]
        assert liked[0] == liked[1] and liked[1] and all(r["because_of"] == movie_id for r in liked[1])
        near = {"liked": [neighbour], "k": 10, "genres": ["Comedy"], "year_min": 2001, "year_max": 2001}
        for api in (one, other):  # recommended from its neighbour; the filter (the sample's movies end in 2000)
            found = httpx.post(f"{api}/recommend", json=near).json()["results"]  # reads its BOOL genre field
            assert [r["movie_id"] for r in found] == [movie_id]
        processes.append(serve(settings, tmp_path, None))  # an API started after the add
        later = processes[-1][1]
        assert httpx.get(f"{later}/movies/{movie_id}").json()["title"] == added["title"]
        assert httpx.get(f"{later}/health").json()["movies"]["added"] == 1
        assert httpx.delete(f"{other}/movies/{movie_id}", headers=AUTH).status_code == 204
        assert httpx.get(f"{one}/movies/{movie_id}").status_code == 404
        assert httpx.get(f"{one}/movies", params={"q": "zzyzx"}).json() == []
        assert httpx.post(f"{one}/recommend", json={"liked": [movie_id]}).status_code == 422  # it liked it before
    finally:
        for process, _ in processes:
            stop_process(process)
        VectorStore(settings).drop()
        disconnect(settings.milvus_uri)
