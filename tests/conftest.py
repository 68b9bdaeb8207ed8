"""Shared fixtures: the sample dataset, test embeddings, ready-built stores, and the real servers.

Real servers (tests marked `@pytest.mark.real_server`):
* `milvus_server_uri`: `RECSYS_TEST_MILVUS_URI` when set (e.g. the docker-compose server), else one
  `milvus-server` (PyPI package `milvus`; `bench.servers.MilvusServer`) for the whole run, shared by the xdist
  workers, on free ports and stopped with SIGINT at the end.
* `mysql_url`: a fresh database `recsys_test_<pid>_<n>` on the server of `RECSYS_TEST_MYSQL_URL`
  (default `mysql+pymysql://root@127.0.0.1:3306/test`, the local MariaDB), dropped at the end.
Each skips with the reason when its server is unavailable; with `RECSYS_REQUIRE_REAL_SERVERS=1` (CI) it fails.
"""
from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from bench.servers import MilvusServer, milvus_binary, stop_pid
from helpers.config import Settings, get_settings
from helpers.data.movielens import MovieLens
from helpers.graph.build import GraphData, build_graph


def _unavailable(reason: str) -> None:
    """Skip (or fail, when CI says the real servers must be there)."""
    if os.environ.get("RECSYS_REQUIRE_REAL_SERVERS") == "1":
        pytest.fail(f"{reason} (RECSYS_REQUIRE_REAL_SERVERS=1)")
    pytest.skip(reason)


# -- data --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def sample_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="session")
def sample_ml(sample_cache: Path):
    """The synthetic `sample` MovieLens (helpers.data)."""
    from helpers.data.loader import load_movielens

    return load_movielens("sample", cache_dir=sample_cache)


def make_test_embeddings(movies, dim: int = 16, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic stand-in embeddings for tests: a fixed random projection of each movie's genres and
    year, plus a little per-movie noise (so similar movies are near, and no two vectors tie)."""
    rng = np.random.default_rng(seed)
    genres = sorted({g for gs in movies["genres"] for g in gs})
    multi_hot = np.array([[g in set(gs) for g in genres] for gs in movies["genres"]], dtype=np.float32)
    years = movies["year"].astype("Float64").fillna(1990.0).to_numpy(dtype=np.float32)
    features = np.column_stack([multi_hot, (years - 1990.0) / 20.0])
    projection = rng.normal(size=(features.shape[1], dim)).astype(np.float32)
    vectors = features @ projection + 0.3 * rng.normal(size=(len(movies), dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return movies["movie_id"].to_numpy(dtype=np.int64), vectors.astype(np.float32)


def make_test_directed_embeddings(movies, dim: int = 16, seed: int = 7) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stand-in vectors of a directed model with a per-movie bias, as `helpers.training.inference.MovieVectors` has
    them: (movie ids, candidate vectors `[v, bias]`, query vectors `[W v / 0.1, 1]`), none of unit length, and the
    query side ranks differently from the candidate side (W is a random rotation plus noise)."""
    movie_ids, unit = make_test_embeddings(movies, dim, seed)
    rng = np.random.default_rng(seed + 1)
    head = np.linalg.qr(rng.normal(size=(dim, dim)))[0] + 0.3 * rng.normal(size=(dim, dim))
    bias = rng.normal(scale=2.0, size=(len(unit), 1))
    candidate = np.hstack([unit, bias]).astype(np.float32)
    query = np.hstack([unit @ head.T / 0.1, np.ones((len(unit), 1))]).astype(np.float32)
    return movie_ids, candidate, query


def sample_settings(root: Path, **overrides: object) -> Settings:
    """Settings for the sample dataset with every artifact (Lite file, SQLite file) under `root`."""
    env = {"RECSYS_DATASET": "sample", "RECSYS_ARTIFACTS": str(root / "artifacts"),
           "RECSYS_CACHE": str(root / "cache")}
    return get_settings(env, **overrides)


@pytest.fixture(scope="session")
def stores_settings(tmp_path_factory: pytest.TempPathFactory, sample_ml) -> Iterator[Settings]:
    """Settings whose Milvus Lite file and SQLite catalog hold the sample with test embeddings (saved as the
    real `movie_embeddings.npz` artifact and ingested by `helpers.stores.build.build_stores`). Use it to build a
    `RecommendationEngine(stores_settings)`; close the engine when done."""
    from helpers.stores.build import build_stores
    from helpers.stores.milvus_client import disconnect
    from helpers.training.embeddings import save_movie_embeddings

    settings = sample_settings(tmp_path_factory.mktemp("stores"))
    save_movie_embeddings(settings, *make_test_embeddings(sample_ml.movies))
    build_stores(settings, ml=sample_ml, progress=False)
    disconnect(settings.milvus_uri)
    yield settings
    disconnect(settings.milvus_uri)


def train_tiny(settings: Settings, ml) -> None:
    """The graph, a PinSage trained for a few steps and its embeddings, saved as the artifacts of `settings`:
    what adding a movie (helpers.engine.adding) loads. About 5 s on the sample."""
    from helpers.graph.build import build_graph, graph_path, save_graph
    from helpers.training.config import TrainConfig
    from helpers.training.embeddings import save_movie_embeddings
    from helpers.training.inference import infer_movie_vectors
    from helpers.training.loop import train_pinsage

    gd = build_graph(ml)
    save_graph(gd, settings)
    config = TrainConfig().replace(batch_size=64, steps_per_epoch=10, max_epochs=2, time_budget_s=None, hidden=16)
    result = train_pinsage(gd, settings, config, progress=False)
    vectors = infer_movie_vectors(result.model, gd, seed=settings.seed)
    save_movie_embeddings(settings, gd.movie_ids, vectors.candidate, query_vectors=vectors.query,
                          inputs={"graph": graph_path(settings)})


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory: pytest.TempPathFactory, sample_ml) -> Path:
    """The artifacts folder of `train_tiny` on the sample (graph, checkpoint, embeddings; no stores), trained once
    per run: with pytest-xdist the first worker that needs it trains it (under a file lock) and the others reuse
    it. Copy it into a settings' `artifacts_dir` to use it."""
    import fcntl

    shared = _run_root(tmp_path_factory)
    settings = sample_settings(shared / "trained-model")
    with open(shared / "trained-model.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = shared / "trained-model" / "trained"
        if not done.exists():
            train_tiny(settings, sample_ml)
            done.touch()
    return settings.artifacts_dir


@pytest.fixture(scope="session")
def model_settings(tmp_path_factory: pytest.TempPathFactory, sample_ml, trained_model: Path) -> Iterator[Settings]:
    """Settings whose stores (Milvus Lite, SQLite) hold the sample with a trained model's vectors, with the
    graph and the checkpoint beside them (`trained_model`): stores a movie can be added to."""
    import shutil

    from helpers.stores.build import build_stores
    from helpers.stores.milvus_client import disconnect

    settings = sample_settings(tmp_path_factory.mktemp("model-stores"))
    shutil.copytree(trained_model, settings.artifacts_dir)
    build_stores(settings, ml=sample_ml, progress=False)
    disconnect(settings.milvus_uri)
    yield settings
    disconnect(settings.milvus_uri)


# -- real servers ------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def milvus_server_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URI of a real Milvus server for this run (see the module docstring).

    The server's embedded etcd always takes peer port 2380, so only one can run on a machine: with
    pytest-xdist the first worker that needs it starts it (under a file lock) and the others reuse it; the
    controller stops it when the whole run ends (`pytest_sessionfinish`)."""
    external = os.environ.get("RECSYS_TEST_MILVUS_URI", "").strip()
    if external:
        yield external
        return
    import fcntl
    import json

    shared = _run_root(tmp_path_factory)
    with open(shared / "milvus-server.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        record = shared / "milvus-server.json"
        if record.exists():
            state = json.loads(record.read_text())
        elif milvus_binary() is None:
            state = {"uri": "", "pid": 0, "problem": "no Milvus server: milvus-server is not installed (pip install "
                                                      "milvus==2.3.5) and RECSYS_TEST_MILVUS_URI is not set"}
            record.write_text(json.dumps(state))
        else:
            folder = shared / "milvus-server"
            folder.mkdir()
            server = MilvusServer(folder)
            problem = server.start()
            state = {"uri": server.uri, "pid": server.process.pid if server.process else 0, "problem": problem}
            record.write_text(json.dumps(state))
    if state["problem"]:
        _unavailable(state["problem"])
    yield state["uri"]


def _run_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The temporary folder of the whole run (xdist workers get sub-folders `popen-gwN` of it)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if base.name.startswith("popen-gw") else base


def pytest_sessionfinish(session: pytest.Session) -> None:
    """In the controller (or a run without xdist), stop the Milvus server this run started, if any."""
    import json

    if hasattr(session.config, "workerinput"):
        return
    factory = getattr(session.config, "_tmp_path_factory", None)
    if factory is None:
        return
    record = _run_root(factory) / "milvus-server.json"
    if record.exists():
        pid = json.loads(record.read_text()).get("pid")
        if pid:
            stop_pid(pid)


@pytest.fixture(scope="session")
def mysql_url() -> Iterator[str]:
    """A URL of a fresh, empty MySQL/MariaDB database for this session (dropped at the end)."""
    import sqlalchemy as sa

    base = os.environ.get("RECSYS_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test")
    admin = sa.create_engine(base, pool_pre_ping=True)
    try:
        with admin.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.OperationalError as exc:
        admin.dispose()
        _unavailable(f"no MySQL/MariaDB at {sa.make_url(base).render_as_string(hide_password=True)}: "
                     f"{getattr(exc, 'orig', exc)}")
    name = f"recsys_test_{os.getpid()}_{int(time.time() * 1000) % 1_000_000}"
    with admin.begin() as conn:  # a name we made ourselves: safe to put in DDL
        conn.execute(sa.text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"))
    url = sa.make_url(base).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        from helpers.stores.sql import dispose_engine

        dispose_engine(url)
        with admin.begin() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))
        admin.dispose()


# -- the picker's notebooks --------------------------------------------------------------------------------
PICKER_STATE_CELL = 'import json; print(json.dumps({"liked": picker.liked, "results": len(picker.last_results)}))'


def code_cells(nb: Any) -> list[Any]:
    return [cell for cell in nb.cells if cell.cell_type == "code"]


def run_picker_notebook(path: Path, stores_settings: Settings, monkeypatch: pytest.MonkeyPatch,
                        voila: bool = False) -> tuple[list[Any], dict]:
    """Execute the picker notebook `path` over the sample stores in a fresh kernel, plus one cell that prints the
    picker's state; with `voila`, as Voila runs it (VOILA_KERNEL_ID in the kernel's environment). Returns the
    notebook's code cells (with outputs) and the state."""
    import nbformat
    from nbclient import NotebookClient

    for key in [k for k in os.environ if k.startswith(("RECSYS_", "VOILA_"))]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("RECSYS_DATASET", "sample")
    monkeypatch.setenv("RECSYS_ARTIFACTS", str(stores_settings.artifacts_root))
    monkeypatch.setenv("RECSYS_CACHE", str(stores_settings.cache_dir))
    if voila:
        monkeypatch.setenv("VOILA_KERNEL_ID", "test-kernel")  # what Voila puts in its kernels' environment
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(PICKER_STATE_CELL))
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
                   ).execute()
    cells = code_cells(nb)
    return cells[:-1], json.loads(cells[-1].outputs[0]["text"])


def paired_movies(n_pairs: int = 5) -> GraphData:
    """User k rates exactly movies 2k+1 and 2k+2, so each movie's only neighbour is its partner: the sampled
    neighbourhoods are the same on every draw, whatever the random walks do."""
    ratings = pd.DataFrame([(k + 1, 2 * k + j, 4.0, j) for k in range(n_pairs) for j in (1, 2)],
                           columns=["user_id", "movie_id", "rating", "timestamp"])
    movies = pd.DataFrame({"movie_id": np.arange(1, 2 * n_pairs + 1),
                           "title": [f"Film {i}" for i in range(2 * n_pairs)],
                           "year": pd.array([1990] * (2 * n_pairs), dtype="Int64"),
                           "genres": [["Drama"]] * (2 * n_pairs)})
    ml = MovieLens("sample", ratings.astype({"user_id": "int64", "movie_id": "int64", "rating": "float32",
                                             "timestamp": "int64"}), movies, None, Path("/nonexistent"))
    return build_graph(ml)
