"""helpers.stores.milvus: the Milvus collection on Milvus Lite and on a real Milvus server.

Search results are held to a brute-force NumPy search over the same normalised vectors."""
from __future__ import annotations

import re
import socket
import subprocess
import sys
import uuid

import numpy as np
import pandas as pd
import pytest

from helpers.stages import notebook_for
from helpers.stores.milvus import VectorStore
from helpers.stores.milvus_client import VectorStoreError, connect, disconnect, filter_expression
from helpers.stores.milvus_index import choose_index
from helpers.stores.milvus_rows import MAX_GENRE_FIELDS, field_genre, genre_field, genre_fields, movie_rows

from conftest import make_test_embeddings, sample_settings

STORES_NOTEBOOK = re.escape(notebook_for("vectors"))  # the stage table's vector store notebook, as a pattern


@pytest.fixture
def lite_store(tmp_path):
    store = VectorStore(sample_settings(tmp_path))
    yield store
    store.close()


@pytest.fixture(scope="module")
def server_store(milvus_server_uri, tmp_path_factory):
    settings = sample_settings(tmp_path_factory.mktemp("server-store"), milvus_uri=milvus_server_uri)
    store = VectorStore(settings, collection=f"movies_test_{uuid.uuid4().hex[:8]}")
    yield store
    store.drop()


def brute_force(ids, vectors, query, k, allowed=None):
    scores = vectors @ query
    order = [i for i in np.argsort(-scores, kind="stable") if allowed is None or allowed[i]]
    return [int(ids[i]) for i in order[:k]]


def check_search_matches_brute_force(store: VectorStore, movies: pd.DataFrame) -> None:
    ids, vectors = make_test_embeddings(movies)
    rng = np.random.default_rng(0)
    queries = vectors[rng.choice(len(ids), size=5, replace=False)]
    counts = movies["genres"].explode().value_counts()
    genre, rare = counts.index[3], counts.index[-1]  # any of the chosen genres: `genre_a or genre_b`
    has_genre = movies["genres"].map(lambda gs: genre in gs).to_numpy()
    has_either = movies["genres"].map(lambda gs: genre in gs or rare in gs).to_numpy()
    years = movies["year"].astype("Float64").fillna(0).to_numpy()
    in_years = (years >= 1980) & (years <= 1995)
    for query, hits in zip(queries, store.search(queries, limit=10), strict=True):
        assert [h.movie_id for h in hits] == brute_force(ids, vectors, query, 10)
        np.testing.assert_allclose([h.score for h in hits], np.sort(vectors @ query)[::-1][:10], atol=1e-5)
    for query in queries:
        got = store.search(query, limit=10, genres=[genre])[0]
        assert [h.movie_id for h in got] == brute_force(ids, vectors, query, 10, has_genre)
        got = store.search(query, limit=10, genres=[genre], years=(1980, 1995))[0]
        assert [h.movie_id for h in got] == brute_force(ids, vectors, query, 10, has_genre & in_years)
        got = store.search(query, limit=10, genres=[rare, genre], years=(1980, 1995))[0]
        assert [h.movie_id for h in got] == brute_force(ids, vectors, query, 10, has_either & in_years)
    assert store.search(queries[:2], limit=10, genres=["No Such Genre"]) == [[], []]  # no movie has it


def test_filter_expression_combines() -> None:
    assert filter_expression() == ""
    assert filter_expression(["genre_Comedy", "genre_Sci_2dFi"], (1990, 1999), [3, 1]) == (
        "(genre_Comedy == true or genre_Sci_2dFi == true) and (year >= 1990 and year <= 1999) "
        "and movie_id not in [1, 3]")


def test_genre_fields_are_milvus_identifiers_that_read_back() -> None:
    genres = ["Children's", "Film-Noir", "Sci-Fi", "(no genres listed)", "unknown", "Comédie", "a_b", "a b", "IMAX"]
    fields = genre_fields(genres)
    assert fields["Sci-Fi"] == "genre_Sci_2dFi" and fields["unknown"] == "genre_unknown"
    assert len(set(fields.values())) == len(genres)
    for genre, field in fields.items():
        assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", field) and len(field) <= 255
        assert field_genre(field) == genre
    assert len(genre_field("é" * 32)) <= 255  # the longest genre a row may hold: 64 bytes
    assert field_genre("genres") is None and field_genre("genre_x_zz") is None
    with pytest.raises(VectorStoreError, match=f"at most {MAX_GENRE_FIELDS}"):
        genre_fields(f"g{i}" for i in range(MAX_GENRE_FIELDS + 1))


def test_index_choice_is_exact_for_movielens_sizes() -> None:
    assert choose_index(3_883, lite=True).index_type == "FLAT"
    assert choose_index(87_585, lite=False).index_type == "FLAT"
    assert choose_index(5_000_000, lite=True).index_type == "FLAT"  # Lite: always exact (docs/benchmarks.md)
    big = choose_index(5_000_000, lite=False)
    assert (big.index_type, big.metric_type) == ("HNSW", "IP") and big.search_params(10)["params"]["ef"] >= 40


def test_ingest_verifies_count_and_rerun_changes_nothing(lite_store, sample_ml) -> None:
    ids, vectors = make_test_embeddings(sample_ml.movies)
    report = lite_store.ingest(ids, vectors, sample_ml.movies, batch_size=100, progress=False)
    assert (report.rows, report.count, report.removed) == (len(ids), len(ids), 0)
    assert (report.index.index_type, report.index.metric_type) == ("FLAT", "IP")
    before = lite_store.metadata()
    again = lite_store.ingest(ids, vectors, sample_ml.movies, progress=False)
    assert again.count == len(ids)
    pd.testing.assert_frame_equal(lite_store.metadata(), before)
    np.testing.assert_array_equal(lite_store.ids(), np.sort(ids))
    stored = lite_store.get([int(ids[0])])[int(ids[0])]
    np.testing.assert_allclose(stored["embedding"], vectors[0], atol=1e-6)


def test_lite_search_equals_brute_force(lite_store, sample_ml) -> None:
    ids, vectors = make_test_embeddings(sample_ml.movies)
    lite_store.ingest(ids, vectors, sample_ml.movies, progress=False)
    check_search_matches_brute_force(lite_store, sample_ml.movies)


def test_reopened_file_is_loaded_for_search(tmp_path, sample_ml) -> None:
    settings = sample_settings(tmp_path)
    ids, vectors = make_test_embeddings(sample_ml.movies)
    store = VectorStore(settings)
    store.ingest(ids, vectors, sample_ml.movies, progress=False)
    store.close()
    reopened = VectorStore(settings)
    try:
        assert reopened.count() == len(ids)
        assert reopened.search(vectors[0], limit=1)[0][0].movie_id == int(ids[0])
    finally:
        reopened.close()


def test_titles_with_quotes_and_sql_round_trip(lite_store, sample_ml) -> None:
    movies = sample_ml.movies.copy()
    tricky = ['It\'s "Quoted"; DROP TABLE movies; --', "Back\\slash ] [ ) (", "Amélie \u2013 Noël 🎬"]
    movies.loc[:2, "title"] = tricky
    ids, vectors = make_test_embeddings(movies)
    lite_store.ingest(ids, vectors, movies, progress=False)
    got = lite_store.get([int(i) for i in ids[:3]], with_vectors=False)
    assert [got[int(i)]["title"] for i in ids[:3]] == tricky


def test_bad_input_raises_and_keeps_what_is_stored(lite_store, sample_ml) -> None:
    ids, vectors = make_test_embeddings(sample_ml.movies)
    lite_store.ingest(ids, vectors, sample_ml.movies, progress=False)
    before = lite_store.metadata()
    with pytest.raises(VectorStoreError, match="Duplicate movie ids"):
        lite_store.ingest(np.r_[ids, ids[:1]], np.r_[vectors, vectors[:1]], sample_ml.movies, progress=False)
    with pytest.raises(VectorStoreError, match="not in the movies table.*999999"):
        lite_store.ingest(np.r_[ids, 999999], np.r_[vectors, vectors[:1]], sample_ml.movies, progress=False)
    bad = vectors.copy()
    bad[5, 0] = np.nan
    with pytest.raises(VectorStoreError, match="NaN"):
        lite_store.ingest(ids, bad, sample_ml.movies, progress=False)
    with pytest.raises(VectorStoreError, match="holds 16-d vectors but the embeddings are 8-d"):
        lite_store.ingest(ids, vectors[:, :8], sample_ml.movies, progress=False)
    with pytest.raises(VectorStoreError, match="match one row per id"):
        lite_store.ingest(ids[:-1], vectors, sample_ml.movies, progress=False)
    pd.testing.assert_frame_equal(lite_store.metadata(), before)
    assert lite_store.count() == len(ids)


def test_reingesting_fewer_movies_removes_the_rest(lite_store, sample_ml) -> None:
    ids, vectors = make_test_embeddings(sample_ml.movies)
    lite_store.ingest(ids, vectors, sample_ml.movies, progress=False)
    report = lite_store.ingest(ids[:-5], vectors[:-5], sample_ml.movies, progress=False)
    assert (report.removed, report.count) == (5, len(ids) - 5)


def test_collection_of_an_earlier_version_says_to_rebuild(tmp_path, sample_ml, monkeypatch) -> None:
    """A collection without the per-genre fields (built before they existed) answers unfiltered searches; a
    genre filter, and the engine's start-up check, say to re-run the vector store notebook."""
    from helpers.stores import milvus

    def without_genre_fields(*args):
        rows, _ = movie_rows(*args)
        return [{k: v for k, v in row.items() if field_genre(k) is None} for row in rows], {}

    settings = sample_settings(tmp_path)
    ids, vectors = make_test_embeddings(sample_ml.movies)
    store = VectorStore(settings)
    monkeypatch.setattr(milvus, "movie_rows", without_genre_fields)
    store.ingest(ids, vectors, sample_ml.movies, progress=False)
    store.close()
    monkeypatch.undo()
    reopened = VectorStore(settings)
    try:
        assert reopened.genre_fields() == {}
        assert reopened.search(vectors[0], limit=1)[0][0].movie_id == int(ids[0])
        for call in (lambda: reopened.search(vectors[0], limit=1, genres=["Comedy"]),
                     lambda: reopened.check_genre_fields(["Comedy"])):
            with pytest.raises(VectorStoreError, match=f"earlier version.*{STORES_NOTEBOOK}"):
                call()
        reopened.ingest(ids, vectors, sample_ml.movies, progress=False)  # the rebuild
        reopened.check_genre_fields(sorted(set(sample_ml.movies["genres"].explode())))
        with pytest.raises(VectorStoreError, match=r"\['Nope'\] have no field.*other movies than the catalog"):
            reopened.check_genre_fields(["Comedy", "Nope"])
    finally:
        reopened.close()


def test_missing_collection_names_the_stores_notebook(lite_store) -> None:
    with pytest.raises(VectorStoreError, match=STORES_NOTEBOOK):
        lite_store.search(np.ones(16, dtype=np.float32), limit=3)


def test_every_milvus_failure_is_a_vector_store_error_naming_the_action(lite_store, sample_ml, monkeypatch) -> None:
    """Whichever client method fails with a driver error (pymilvus' or gRPC's), the caller gets a
    `VectorStoreError` (a `StoreError` of "milvus") that names the action, with the driver error as its cause;
    a failed ingestion leaves the old collection serving (the next one drops any build a failure left)."""
    import grpc
    from pymilvus.exceptions import MilvusException

    ids, vectors = make_test_embeddings(sample_ml.movies)
    lite_store.ingest(ids, vectors, sample_ml.movies, progress=False)
    live = lite_store.physical()
    ingest = lambda: lite_store.ingest(ids, vectors, sample_ml.movies, progress=False)  # noqa: E731
    cases = [("insert", ingest, "inserting movies"), ("flush", ingest, "flushing the new collection"),
             ("alter_alias", ingest, "switching the alias"), ("create_collection", ingest, "creating a collection"),
             ("drop_alias", lite_store.drop, "dropping the alias"), ("load_collection", lite_store.load, "loading"),
             ("search", lambda: lite_store.search(vectors[0], limit=3), "searching"),
             ("query_iterator", lite_store.metadata, "reading every movie")]
    for method, call, action in cases:
        for driver_error in (MilvusException(message=f"{method} broke"), grpc.RpcError(f"{method} broke")):
            def broken(*args, error=driver_error, **kwargs):
                raise error

            monkeypatch.setattr(lite_store.client, method, broken)
            with pytest.raises(VectorStoreError, match=f"failed while {action}.*{method} broke") as caught:
                call()
            assert caught.value.store == "milvus" and caught.value.__cause__ is driver_error
            monkeypatch.undo()
    assert lite_store.physical() == live and lite_store._builds() == [live] and lite_store.count() == len(ids)


def test_a_bug_is_not_dressed_up_as_a_store_fault(lite_store, sample_ml, monkeypatch) -> None:
    ids, vectors = make_test_embeddings(sample_ml.movies)
    lite_store.ingest(ids, vectors, sample_ml.movies, progress=False)
    monkeypatch.setattr(lite_store.client, "search", lambda *a, **kw: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        lite_store.search(vectors[0], limit=3)


def test_a_collection_that_is_not_loaded_is_loaded_and_the_call_retried(lite_store, sample_ml, monkeypatch) -> None:
    from pymilvus.exceptions import MilvusException

    ids, vectors = make_test_embeddings(sample_ml.movies)
    lite_store.ingest(ids, vectors, sample_ml.movies, progress=False)
    get, loads = lite_store.client.get, []

    def get_once_unloaded(*args, **kwargs):
        if not loads:
            raise MilvusException(message="collection not loaded")
        return get(*args, **kwargs)

    monkeypatch.setattr(lite_store.client, "get", get_once_unloaded)
    monkeypatch.setattr(lite_store, "load", lambda: loads.append(1))
    assert list(lite_store.get([int(ids[0])], with_vectors=False)) == [int(ids[0])] and loads == [1]


def test_second_process_on_the_lite_file_is_told_why(tmp_path) -> None:
    settings = sample_settings(tmp_path)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from helpers.stores.milvus import connect; connect(sys.argv[1]); "
                               "print('ready', flush=True); sys.stdin.read()", settings.milvus_uri],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(VectorStoreError, match=r"Another process.*one process per file.*"
                                                   r"RECSYS_MILVUS_URI=http://127.0.0.1:19530"):
            connect(settings.milvus_uri)
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    client = connect(settings.milvus_uri)  # released: now this process can open it
    assert client.list_collections() == []
    disconnect(settings.milvus_uri)


def test_unreachable_server_names_the_uri_and_the_fix(tmp_path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    uri = f"http://127.0.0.1:{port}"
    with pytest.raises(VectorStoreError, match=rf"{uri}.*docker compose up -d milvus.*unset RECSYS_MILVUS_URI"):
        VectorStore(sample_settings(tmp_path, milvus_uri=uri))


@pytest.mark.real_server
def test_server_ingest_and_search_equal_brute_force(server_store, sample_ml) -> None:
    ids, vectors = make_test_embeddings(sample_ml.movies)
    report = server_store.ingest(ids, vectors, sample_ml.movies, batch_size=150, progress=False)
    assert report.count == len(ids) and report.index.index_type == "FLAT"
    again = server_store.ingest(ids, vectors, sample_ml.movies, progress=False)
    assert again.count == len(ids)
    check_search_matches_brute_force(server_store, sample_ml.movies)
    got = server_store.get([int(ids[0]), 10**9], with_vectors=True)
    assert list(got) == [int(ids[0])]
    np.testing.assert_allclose(got[int(ids[0])]["embedding"], vectors[0], atol=1e-6)


@pytest.mark.real_server
def test_server_keeps_data_on_bad_input(server_store, sample_ml) -> None:
    ids, vectors = make_test_embeddings(sample_ml.movies)
    server_store.ingest(ids, vectors, sample_ml.movies, progress=False)
    with pytest.raises(VectorStoreError, match="holds 16-d"):
        server_store.ingest(ids, vectors[:, :4], sample_ml.movies, progress=False)
    assert server_store.count() == len(ids)
