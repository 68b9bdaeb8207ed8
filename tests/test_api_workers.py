"""Two API processes on milvus-server + MariaDB sharing added movies (issue 18), as `uvicorn --workers 2` runs
them; the write routes themselves and the Lite API are tests/test_api_admin.py.

Cost: about 23 s, measured serially on a shared 2-core machine: 17 s the test (the stores built on the servers
~8 s, Milvus' ingest most of it; an add and a removal, each flushed by milvus-server, ~4 s; three API starts, two
side by side and the third beside the checks), 6 s set-up (milvus-server's start, shared with the run's other
real-server tests, and the tiny model, trained once per run)."""
from __future__ import annotations

import shutil

import httpx
import pytest

from bench.servers import stop_process
from helpers.stores.build import build_stores
from helpers.stores.milvus import VectorStore
from helpers.stores.milvus_client import disconnect

from conftest import sample_settings
from test_api_admin import AUTH, TOKEN, launch, movie, ready


@pytest.mark.real_server
def test_two_api_processes_on_servers_share_added_movies(trained_model, milvus_server_uri, mysql_url, tmp_path,
                                                         sample_ml):
    """Two API processes on milvus-server + MariaDB (as `--workers 2` runs them): a movie added through one is
    found by title (by a process whose title index was built before the add), liked and recommended through the
    other; an API started later sees it; removed through the second, it is gone from the first."""
    settings = sample_settings(tmp_path, milvus_uri=milvus_server_uri, catalog_url=mysql_url)
    shutil.copytree(trained_model, settings.artifacts_dir)
    build_stores(settings, ml=sample_ml, progress=False)
    disconnect(settings.milvus_uri)
    processes = []
    try:
        processes += [launch(settings, tmp_path, TOKEN) for _ in range(2)]  # the two start side by side
        for process, base, log in processes:
            ready(process, base, log)
        (_, one, _), (_, other, _) = processes
        assert httpx.get(f"{other}/movies", params={"q": "zzyzx"}).json() == []  # its title index is built
        added = httpx.post(f"{one}/movies", json=movie(sample_ml), headers=AUTH, timeout=60).json()
        movie_id, neighbour = added["movie_id"], added["neighbours"][0]["movie_id"]
        processes.append(launch(settings, tmp_path, None))  # an API started after the add, ready by its checks below
        assert [m["movie_id"] for m in httpx.get(f"{other}/movies", params={"q": "zzyzx"}).json()] == [movie_id]
        liked = [httpx.post(f"{api}/recommend", json={"liked": [movie_id], "k": 5}).json()["results"]
                 for api in (one, other)]
        assert liked[0] == liked[1] and liked[1] and all(r["because_of"] == movie_id for r in liked[1])
        near = {"liked": [neighbour], "k": 10, "genres": ["Comedy"], "year_min": 2001, "year_max": 2001}
        for api in (one, other):  # recommended from its neighbour; the filter (the sample's movies end in 2000)
            found = httpx.post(f"{api}/recommend", json=near).json()["results"]  # reads its BOOL genre field
            assert [r["movie_id"] for r in found] == [movie_id]
        ready(*processes[-1])
        later = processes[-1][1]
        assert httpx.get(f"{later}/movies/{movie_id}").json()["title"] == added["title"]
        assert httpx.get(f"{later}/health").json()["movies"]["added"] == 1
        assert httpx.delete(f"{other}/movies/{movie_id}", headers=AUTH).status_code == 204
        assert httpx.get(f"{one}/movies/{movie_id}").status_code == 404
        assert httpx.get(f"{one}/movies", params={"q": "zzyzx"}).json() == []
        assert httpx.post(f"{one}/recommend", json={"liked": [movie_id]}).status_code == 422  # it liked it before
    finally:
        for process, _, _ in processes:
            stop_process(process)
        VectorStore(settings).drop()
        disconnect(settings.milvus_uri)
