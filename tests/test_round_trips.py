"""One recommendation, one Milvus round trip and one catalog query (issue 20): a counting double around the REAL
pymilvus client and the REAL SQLAlchemy connections fails if a per-request check (collection exists, fetch the
liked rows, a second catalog query) comes back. Also: the engine's per-stage timings and the API's
Server-Timing header."""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import sqlalchemy as sa

from helpers.engine.engine import RecommendationEngine
from helpers.engine.timings import (
    STAGES,
    TIMINGS_HEADER,
    Stopwatch,
    parse_server_timing,
    server_timing,
)
from helpers.ranking import COMBINE_METHODS


class CountingClient:
    """The real `MilvusClient`, every method call counted by name."""

    def __init__(self, client: Any):
        self._client, self.calls = client, Counter()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute):
            return attribute

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            return attribute(*args, **kwargs)

        return counted


@contextmanager
def counting(engine: RecommendationEngine) -> Iterator[tuple[Counter, Counter]]:
    """(Milvus calls by method, SQL statements by kind) made inside the block, through the engine's real clients:
    `Connection.execute` calls, and every statement the driver's cursor ran except transaction control."""
    milvus = CountingClient(engine.store.client)
    sql: Counter = Counter()
    original = sa.engine.Connection.execute

    def execute(conn: sa.engine.Connection, statement: Any, *args: Any, **kwargs: Any) -> Any:
        sql["execute"] += 1
        return original(conn, statement, *args, **kwargs)

    def cursor(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.strip().upper() not in ("BEGIN", "COMMIT", "ROLLBACK"):
            sql["statements"] += 1

    engine.store.client = milvus
    sa.event.listen(engine.catalog.engine, "before_cursor_execute", cursor)
    sa.engine.Connection.execute = execute
    try:
        yield milvus.calls, sql
    finally:
        sa.engine.Connection.execute = original
        sa.event.remove(engine.catalog.engine, "before_cursor_execute", cursor)
        engine.store.client = milvus._client


@pytest.fixture(scope="module")
def engine(stores_settings) -> Iterator[RecommendationEngine]:
    engine = RecommendationEngine(stores_settings)
    engine.recommend([1], k=3)  # once per engine: the index's search parameters (describe_index)
    yield engine
    engine.combine = "mean"
    engine.close()


@pytest.fixture(scope="module")
def liked_ids(sample_ml) -> list[int]:
    return [int(m) for m in sample_ml.movies["movie_id"].iloc[:20]]


@pytest.mark.parametrize("combine", COMBINE_METHODS)
@pytest.mark.parametrize("n_liked", [1, 20])
@pytest.mark.parametrize("filters", [{}, {"genres": ["Drama"], "years": (1950, 2010)}], ids=["plain", "filtered"])
def test_one_search_and_one_catalog_query_per_recommendation(engine, liked_ids, combine, n_liked, filters) -> None:
    engine.combine = combine
    try:
        with counting(engine) as (milvus, sql):
            results = engine.recommend(liked_ids[:n_liked], k=10, **filters)
    finally:
        engine.combine = "mean"
    assert len(results) > 0
    assert milvus == Counter(search=1), f"Milvus calls per recommendation: {dict(milvus)}"
    assert sql == Counter(execute=1, statements=1), f"catalog statements per recommendation: {dict(sql)}"


def test_nothing_liked_asks_only_the_catalog(engine) -> None:
    with counting(engine) as (milvus, sql):
        results = engine.recommend([], k=5, genres=["Comedy"])
    assert results[0].source == "popular"
    assert milvus == Counter() and sql == Counter(execute=1, statements=1)


def test_an_unknown_id_is_still_named_and_only_errors_read_more(engine, liked_ids) -> None:
    from helpers.engine.inputs import RecommendError

    with counting(engine) as (milvus, _), pytest.raises(RecommendError, match=r"unknown movie id\(s\) \[987654\]"):
        engine.recommend([liked_ids[0], 987654])
    assert milvus["search"] == 0  # the input was refused before any search


def test_timings_split_one_recommendation_by_stage(engine, liked_ids) -> None:
    timings: dict[str, int] = {}
    engine.recommend(liked_ids[:3], k=5, timings=timings)
    assert set(timings) == set(STAGES) and all(ns > 0 for ns in timings.values())
    popular: dict[str, int] = {}
    engine.recommend([], k=5, timings=popular)
    assert set(popular) == {"validation", "catalog"}


def test_the_stopwatch_costs_nothing_when_off() -> None:
    clock = Stopwatch(None)
    clock.lap("search")
    assert clock.timings is None
    text = server_timing({"search": 2_500_000, "catalog": 400_000})
    assert text == "search;dur=2.500, catalog;dur=0.400"
    assert parse_server_timing(text) == {"search": 2.5, "catalog": 0.4}


def test_a_real_movie_without_a_query_vector_is_the_stores_fault(engine, liked_ids, monkeypatch) -> None:
    """A movie the catalog and Milvus hold but the encoder's lookup does not: the stores are out of step with the
    embeddings (a 503 in the API), found from the lookup and, on this error path only, the stores."""
    from helpers.stores.build import StoresOutOfStepError

    lookup = engine.encoder.lookup
    monkeypatch.setattr(lookup, "missing", lambda ids: [i for i in ids if i == liked_ids[1]])
    with pytest.raises(StoresOutOfStepError, match=rf"\[{liked_ids[1]}\] are in Milvus but have no query vector"):
        engine.recommend(liked_ids[:3])


def test_a_collection_dropped_under_a_running_engine_says_which_notebook_to_run(tmp_path, sample_ml) -> None:
    """No per-request "does it exist" call any more: the one search fails, and only then is the collection looked
    for, so the error (a 503 in the API) still names the notebook that builds it."""
    import re

    from helpers.stages import notebook_for
    from helpers.stores.build import build_stores
    from helpers.stores.milvus import VectorStore
    from helpers.stores.milvus_client import VectorStoreError, disconnect
    from helpers.training.embeddings import save_movie_embeddings

    from conftest import make_test_embeddings, sample_settings

    settings = sample_settings(tmp_path)
    save_movie_embeddings(settings, *make_test_embeddings(sample_ml.movies))
    build_stores(settings, ml=sample_ml, progress=False)
    try:
        with RecommendationEngine(settings) as engine:
            liked = [int(m) for m in sample_ml.movies["movie_id"].iloc[:2]]
            assert len(engine.recommend(liked, k=3)) == 3
            VectorStore(settings).drop()
            with pytest.raises(VectorStoreError, match=f"No 'movies' collection.*{re.escape(notebook_for('vectors'))}"):
                engine.recommend(liked, k=3)
    finally:
        disconnect(settings.milvus_uri)


def test_a_timeout_fails_at_once_without_looking_for_the_collection(engine, liked_ids, monkeypatch) -> None:
    """A search that fails without naming a collection (a server that stopped answering) is answered with its own
    error at once: no second call, so no second wait of CALL_TIMEOUT_SECONDS."""
    from pymilvus.exceptions import MilvusException

    from helpers.stores.milvus_client import VectorStoreError

    def stalled(*args: Any, **kwargs: Any) -> Any:
        raise MilvusException(message="DEADLINE_EXCEEDED: deadline exceeded")

    with counting(engine) as (milvus, _):
        monkeypatch.setattr(engine.store.client, "search", stalled, raising=False)
        with pytest.raises(VectorStoreError, match="failed while searching.*deadline exceeded"):
            engine.recommend(liked_ids[:2])
    assert milvus["has_collection"] == 0


def test_the_api_sends_server_timing_only_when_asked(stores_settings, liked_ids) -> None:
    # last in this module: the app's shutdown closes this process's client for the Lite file, which the module's
    # engine shares
    from fastapi.testclient import TestClient

    from helpers.serving.api import create_app

    with TestClient(create_app(stores_settings)) as client:
        plain = client.post("/recommend", json={"liked": liked_ids[:2], "k": 3})
        timed = client.post("/recommend", json={"liked": liked_ids[:2], "k": 3}, headers={TIMINGS_HEADER: "1"})
    assert plain.status_code == timed.status_code == 200
    assert "server-timing" not in plain.headers
    stages = parse_server_timing(timed.headers["server-timing"])
    assert list(stages) == [*STAGES, "handler"] and stages["handler"] >= stages["search"] > 0
    assert timed.json() == plain.json()
