"""The FastAPI service (helpers/serving/api.py) through a REAL uvicorn server on 127.0.0.1 (a subprocess on a free
port) over the sample stores, plus the OpenAPI schema in process."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from bench.servers import free_port, stop_process, wait_for_http
from helpers.config import Settings
from helpers.engine.engine import RecommendationEngine
from helpers.engine.inputs import MAX_LIKED
from helpers.engine.reference import numpy_recommend
from helpers.stages import notebook_for
from helpers.stores.build import build_stores
from helpers.stores.catalog import Catalog
from helpers.stores.milvus_client import disconnect
from helpers.training.embeddings import load_movie_embeddings, save_movie_embeddings

from conftest import make_test_embeddings, sample_settings

STORES_NOTEBOOK = re.escape(notebook_for("vectors"))  # the stage table's vector store notebook, as a pattern

ROOT = Path(__file__).resolve().parent.parent
START_SECONDS = 90


def server_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECSYS_")}
    env.update(RECSYS_DATASET=settings.dataset, RECSYS_ARTIFACTS=str(settings.artifacts_root),
               RECSYS_CACHE=str(settings.cache_dir), OMP_NUM_THREADS="1")
    return env


def start_uvicorn(settings: Settings, port: int, log: Path) -> subprocess.Popen:
    with open(log, "w") as out:
        return subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", "helpers.serving.api:create_app",
                                 "--host", "127.0.0.1", "--port", str(port)],
                                cwd=ROOT, env=server_env(settings), stdout=out, stderr=subprocess.STDOUT)


@pytest.fixture(scope="module")
def api(stores_settings, tmp_path_factory) -> Iterator[str]:
    """Base URL of uvicorn serving helpers.serving.api:create_app over the sample stores."""
    port = free_port()
    log = tmp_path_factory.mktemp("api") / "uvicorn.log"
    process = start_uvicorn(stores_settings, port, log)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{base}/health", process, log, START_SECONDS, ready=lambda r: r.status_code == 200)
        yield base
    finally:
        stop_process(process)


@pytest.fixture(scope="module")
def client(api) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def ids(client) -> dict[str, int]:
    found = {}
    for query in ("misérables", "golden", "midnight"):
        found[query] = client.get("/movies", params={"q": query}).json()[0]["movie_id"]
    return found


def test_health_says_both_stores_answer(client, sample_ml):
    response = client.get("/health")
    assert response.status_code == 200
    n = len(sample_ml.movies)
    assert response.json() == {"ok": True, "dataset": "sample", "stores": {"milvus": True, "catalog": True},
                               "movies": {"milvus": n, "catalog": n, "record": n, "added": 0}, "building": False,
                               "problems": [],
                               "encoder": {"name": "mean", "requested": "auto", "fallback_reason": None}}


def test_openapi_docs_are_served(client):
    assert client.get("/docs").status_code == 200
    schema = client.get("/openapi.json").json()
    assert {"/health", "/movies", "/movies/{movie_id}", "/recommend"} <= set(schema["paths"])
    response = schema["components"]["schemas"]["RecommendResponse"]
    assert "encoder" in response["required"] and "query encoder" in response["properties"]["encoder"]["description"]


def test_title_search_keeps_accents_and_years(client):
    response = client.get("/movies", params={"q": "MISér", "limit": 5})
    assert response.status_code == 200
    movies = response.json()
    assert movies and all("Misérables" in m["title"] and isinstance(m["year"], int) for m in movies)
    assert len(client.get("/movies", params={"q": "golden", "limit": 3}).json()) == 3


@pytest.mark.parametrize("params, fragment", [
    ({}, "q"),
    ({"q": ""}, "at least 1 character"),
    ({"q": "   "}, "q is blank"),
    ({"q": "x" * 201}, "at most 200 characters"),
    ({"q": "golden", "limit": 0}, "greater than or equal to 1"),
    ({"q": "golden", "limit": "ten"}, "valid integer"),
])
def test_bad_search_parameters_get_a_clear_422(client, params, fragment):
    response = client.get("/movies", params=params)
    assert response.status_code == 422
    assert fragment in response.text


def test_movie_by_id_and_unknown_ids(client, ids):
    movie_id = ids["misérables"]
    response = client.get(f"/movies/{movie_id}")
    assert response.status_code == 200 and response.json()["title"].startswith("Misérables")
    assert response.json()["n_ratings"] > 0 and 1 <= response.json()["mean_rating"] <= 5
    missing = client.get("/movies/987654321")
    assert missing.status_code == 404 and "No movie with id 987654321" in missing.json()["detail"]
    assert client.get("/movies/abc").status_code == 422
    assert client.get("/movies/0").status_code == 422


def test_recommend_matches_the_brute_force_ranking(client, ids, stores_settings):
    liked = list(ids.values())
    response = client.post("/recommend", json={"liked": liked, "k": 8})
    assert response.status_code == 200
    body = response.json()
    assert body["dataset"] == "sample" and body["liked"] == liked and body["encoder"] == "mean"
    results = body["results"]
    embeddings = load_movie_embeddings(stores_settings)
    expected = numpy_recommend(embeddings.movie_ids, embeddings.vectors, liked, k=8)
    assert [r["movie_id"] for r in results] == [m for m, _, _ in expected]
    assert [r["because_of"] for r in results] == [b for _, _, b in expected]
    assert all(r["because_of_title"] and r["source"] == "pinsage" for r in results)


def test_recommend_filters_and_the_cold_start(client, ids):
    body = {"liked": [ids["golden"]], "k": 5, "genres": ["Drama", "Comedy"], "year_min": 1960, "year_max": 1990}
    results = client.post("/recommend", json=body).json()["results"]
    assert results and all(set(r["genres"]) & {"Drama", "Comedy"} and 1960 <= r["year"] <= 1990 for r in results)
    popular = client.post("/recommend", json={"liked": [], "k": 4}).json()
    assert popular["encoder"] is None  # nothing liked: no query, the most rated movies
    assert len(popular["results"]) == 4 and {r["source"] for r in popular["results"]} == {"popular"}


@pytest.mark.parametrize("body, fragment", [
    ({"liked": [1], "k": 0}, "greater than or equal to 1"),
    ({"liked": [1], "k": 101}, "less than or equal to 100"),
    ({"liked": list(range(1, 1001)), "k": 10}, f"at most {MAX_LIKED} items"),
    ({"liked": [987654321], "k": 10}, "unknown movie id(s) [987654321]"),
    ({"liked": "1, 2", "k": 10}, "valid list"),
    ({"liked": [1, 1], "k": 10}, "repeat"),
    ({"liked": [1], "genres": ["Western'); DROP TABLE movies; --"]}, "Unknown genre"),
    ({"liked": [1], "year_min": 1999, "year_max": 1990}, "swap them"),
    ({"liked": [1], "wat": True}, "Extra inputs are not permitted"),
    ({"k": 10}, "Field required"),
])
def test_bad_recommend_requests_get_a_clear_422(client, body, fragment):
    response = client.post("/recommend", json=body)
    assert response.status_code == 422, response.text
    assert fragment in response.text


def test_malformed_json_gets_a_422(client):
    response = client.post("/recommend", content=b'{"liked": [1, 2', headers={"content-type": "application/json"})
    assert response.status_code == 422 and "JSON decode error" in response.text


def test_hostile_input_changes_nothing_stored(client, stores_settings):
    catalog = Catalog(stores_settings)
    before = catalog.counts()
    for q in ["'; DROP TABLE movies; --", "%' OR '1'='1", "<script>alert(1)</script>", "_%_"]:
        response = client.get("/movies", params={"q": q})
        assert response.status_code == 200 and response.json() == []
    client.post("/recommend", json={"liked": list(range(1, 1001))})
    assert catalog.counts() == before
    assert client.get("/health").json()["ok"]


def test_second_process_on_the_lite_file_says_how_to_share_it(api, stores_settings, tmp_path):
    with pytest.raises(Exception, match="docker compose up -d"):
        RecommendationEngine(stores_settings)  # the running API holds the Milvus Lite file
    log = tmp_path / "second.log"
    second = start_uvicorn(stores_settings, free_port(), log)
    try:
        assert second.wait(timeout=START_SECONDS) != 0
    finally:
        stop_process(second)
    text = log.read_text()
    assert "The API cannot open the sample stores" in text and "one process per file" in text
    assert "RECSYS_MILVUS_URI=http://127.0.0.1:19530" in text and "docker-compose servers" in text


def test_a_store_that_stops_answering_gives_a_503(sample_ml, tmp_path):
    """Its own stores, since the test breaks the catalog while the API runs."""
    settings = sample_settings(tmp_path)
    save_movie_embeddings(settings, *make_test_embeddings(sample_ml.movies))
    build_stores(settings, ml=sample_ml, progress=False)
    disconnect(settings.milvus_uri)
    port = free_port()
    server = start_uvicorn(settings, port, tmp_path / "uvicorn.log")
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{base}/health", server, tmp_path / "uvicorn.log", START_SECONDS,
                      ready=lambda r: r.status_code == 200)
        assert httpx.get(f"{base}/movies", params={"q": "golden"}).status_code == 200
        engine = sa.create_engine(settings.catalog_url)
        with engine.begin() as conn:
            conn.execute(sa.text("DROP TABLE movies"))
        engine.dispose()
        response = httpx.get(f"{base}/movies", params={"q": "golden"})
        assert response.status_code == 503 and re.search(STORES_NOTEBOOK, response.json()["detail"])
    finally:
        stop_process(server)


# -- the hostile-input table (issue 13): every case must get a clear 4xx, a short body, and keep the server up --
BIG = 2**63
HOSTILE_INPUT = [
    # (case, method, path, request kwargs, status, fragment of the body)
    ("NaN k", "POST", "/recommend", {"content": b'{"liked": [1], "k": NaN}'}, 422, "finite"),
    ("Infinity in liked", "POST", "/recommend", {"content": b'{"liked": [Infinity]}'}, 422, "finite"),
    ("-Infinity year", "POST", "/recommend", {"content": b'{"liked": [1], "year_min": -Infinity}'}, 422, "finite"),
    ("1e999 k", "POST", "/recommend", {"content": b'{"liked": [1], "k": 1e999}'}, 422, "finite"),
    ("id 2**63 in body", "POST", "/recommend", {"json": {"liked": [BIG]}}, 422, "less than or equal to"),
    ("id 10**23 in body", "POST", "/recommend", {"json": {"liked": [10**23]}}, 422, "less than or equal to"),
    ("id 2**63 in path", "GET", f"/movies/{BIG}", {}, 422, "less than or equal to"),
    ("id 10**30 in path", "GET", f"/movies/{10**30}", {}, 422, "less than or equal to"),
    ("id 2**63-1 in path", "GET", f"/movies/{BIG - 1}", {}, 404, "No movie with id"),
    ("negative id in path", "GET", "/movies/-1", {}, 422, "greater than or equal to 1"),
    ("body over 64 KB", "POST", "/recommend", {"content": b'{"liked": [' + b"1, " * 40_000 + b'1]}'}, 413, "64 KB"),
    ("streamed body over 64 KB", "POST", "/recommend",
     {"content": iter([b'{"liked": [' + b"1, " * 20_000] * 3 + [b'1]}'])}, 413, "64 KB"),
    ("10,000 ids", "POST", "/recommend", {"json": {"liked": list(range(1, 10_001))}}, 422, f"at most {MAX_LIKED}"),
    ("60 KB string", "POST", "/recommend", {"json": {"liked": [1], "genres": ["x" * 60_000]}}, 422, "at most 40"),
    ("NUL in q", "GET", "/movies?q=god%00father", {}, 422, "control characters"),
    ("only NUL in q", "GET", "/movies?q=%00", {}, 422, "control characters"),
    ("escape in q", "GET", "/movies?q=a%1bb", {}, 422, "control characters"),
    ("k a float", "POST", "/recommend", {"json": {"liked": [1], "k": 2.0}}, 422, "valid integer"),
    ("k a string", "POST", "/recommend", {"json": {"liked": [1], "k": "ten"}}, 422, "valid integer"),
    ("liked of strings", "POST", "/recommend", {"json": {"liked": ["1"]}}, 422, "valid integer"),
    ("liked of booleans", "POST", "/recommend", {"json": {"liked": [True]}}, 422, "valid integer"),
    ("liked null", "POST", "/recommend", {"json": {"liked": None}}, 422, "valid list"),
    ("body a list", "POST", "/recommend", {"json": [1, 2]}, 422, "valid dictionary"),
    ("unknown id", "POST", "/recommend", {"json": {"liked": [987654321]}}, 422, "unknown movie id"),
    ("SQL in genres", "POST", "/recommend", {"json": {"liked": [1], "genres": ["' OR 1=1 --"]}}, 422, "Unknown genre"),
    ("markup in q", "GET", "/movies?q=%3Cscript%3Ealert(1)%3C/script%3E", {}, 200, "[]"),
    ("SQL in q", "GET", "/movies?q=%27%3B%20DROP%20TABLE%20movies%3B%20--", {}, 200, "[]"),
    ("% and _ in q", "GET", "/movies?q=_%25_", {}, 200, "[]"),
    ("q 201 characters", "GET", "/movies?q=" + "y" * 201, {}, 422, "at most 200 characters"),
    ("limit 0", "GET", "/movies?q=golden&limit=0", {}, 422, "greater than or equal to 1"),
    ("limit NaN", "GET", "/movies?q=golden&limit=NaN", {}, 422, "valid integer"),
    ("accents ignored", "GET", "/movies?q=MISERABLES", {}, 200, "Misérables"),
    ("accents in the query", "GET", "/movies?q=mis%C3%A9r", {}, 200, "Misérables"),
    ("malformed JSON", "POST", "/recommend", {"content": b'{"liked": [1, 2'}, 422, "JSON decode error"),
]


@pytest.mark.parametrize("case, method, path, kwargs, status, fragment", HOSTILE_INPUT,
                         ids=[row[0] for row in HOSTILE_INPUT])
def test_hostile_input_table(client, case, method, path, kwargs, status, fragment):
    """Each row of the README's hostile-input table (< 1 s each)."""
    headers = {"content-type": "application/json"} if method == "POST" else {}
    response = client.request(method, path, headers=headers, **kwargs)
    assert response.status_code == status, response.text[:500]
    assert fragment in response.text
    assert len(response.content) < 4_000, f"{case}: a {len(response.content):,}-byte answer echoes the input"
    assert client.get("/health").status_code == 200  # the server is still up and answering



def test_fault_log_writes_one_line_per_kind_per_10_s(caplog):
    """The rate limit on store-fault log lines, on a fake clock (< 1 s)."""
    import logging

    from helpers.serving.api import FaultLog

    now = [0.0]
    faults = FaultLog(logging.getLogger("test.faults"), every=10.0, clock=lambda: now[0])
    with caplog.at_level(logging.ERROR, logger="test.faults"):
        for second in range(30):  # 100 faults a second of one kind, one of another, for 30 s
            now[0] = float(second)
            for _ in range(100):
                faults.record("milvus:VectorStoreError", "down")
            faults.record("catalog:CatalogError", "gone")
    lines = [r.getMessage() for r in caplog.records]
    assert len([line for line in lines if line.startswith("milvus:")]) == 3  # at 0, 10 and 20 s
    assert len([line for line in lines if line.startswith("catalog:")]) == 3
    assert "(and 999 more like it in the last 10 s)" in lines[2]
