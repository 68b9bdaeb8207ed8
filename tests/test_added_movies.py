"""Adding a movie the model never saw (helpers.engine.adding, issue 18): the engine's add and remove, every bad
input, the undo path under an injected failure (of an add and of a removal), and build_stores keeping added
movies; a kill between the stores is a cell of the fault matrix (tests/test_faults.py).

Cost: about 6 s, measured serially on a shared 2-core machine: 4.8 s is the session's `model_settings` (a tiny
PinSage trained once per run and shared by the xdist workers, and Lite stores built from it), 1 s the rebuild; the
other tests share one engine (the stores open and the model loads once) and take 0.4 s together."""
from __future__ import annotations

import numpy as np
import pytest

from helpers.engine.adding import NotAnAddedMovieError, UnknownAddedMovieError
from helpers.engine.engine import RecommendationEngine
from helpers.engine.inputs import MAX_NEW_RATINGS, MAX_TITLE_CHARS, RecommendError
from helpers.stores.added import ADDING, LIVE, AddedMovies
from helpers.stores.build import build_stores
from helpers.stores.catalog import Catalog
from helpers.stores.errors import StoreError
from helpers.stores.milvus_client import VectorStoreError


class SharedEngine:
    """One engine for this file's tests, opened at the first that wants it: the stores open once and the model
    loads once (at the first add). `close` gives the stores back to a test that needs them to itself."""

    def __init__(self, settings):
        self.settings, self._engine = settings, None

    def get(self) -> RecommendationEngine:
        if self._engine is None:
            self._engine = RecommendationEngine(self.settings)
        return self._engine

    def close(self) -> None:
        if self._engine is not None:
            self._engine.close()
            self._engine = None


@pytest.fixture(scope="module")
def shared(model_settings):
    shared = SharedEngine(model_settings)
    yield shared
    shared.close()


@pytest.fixture
def engine(shared):
    """The file's engine; whatever a test added is removed after it."""
    engine = shared.get()
    yield engine
    for movie in engine.admin.added.rows():
        engine.remove_movie(movie.movie_id)


def raters(sample_ml, n=5):
    return [(int(u), 5.0, 1_000_000_000 + i) for i, u in enumerate(sample_ml.ratings["user_id"].unique()[:n])]


def counts(engine):
    return engine.store.count(), engine.catalog.movie_count(), engine.admin.added.live_count()


def test_an_added_movie_is_searchable_recommendable_likeable_and_removed(engine, model_settings, sample_ml):
    before = counts(engine)
    other = Catalog(model_settings)  # another reader whose title index was built before the add
    assert other.search_titles("zzyzx") == []
    added = engine.add_movie("Zzyzx Harbor", 2001, ["Comedy"], raters(sample_ml))
    assert added.movie_id > sample_ml.movies["movie_id"].max()
    assert added.neighbours and all(n["title"] for n in added.neighbours)
    for catalog in (engine.catalog, other):  # the add moved the catalog generation: both rebuild their index
        assert [m["movie_id"] for m in catalog.search_titles("zzyzx")] == [added.movie_id]
    liked = engine.recommend([added.movie_id], k=5)  # it can be liked: the lookup reads the added movies
    assert liked and all(r.because_of == added.movie_id for r in liked)
    row = engine.admin.added.get(added.movie_id)  # Milvus holds the vector the catalog row holds
    assert np.array_equal(engine.store.get([added.movie_id])[added.movie_id]["embedding"], row.candidate)
    assert added.movie_id in [h.movie_id for h in engine.store.search(row.query, limit=420)[0]]
    health = engine.health()
    assert health["ok"], health["problems"]
    assert health["movies"]["added"] == 1 and health["movies"]["milvus"] == before[0] + 1
    with pytest.raises(NotAnAddedMovieError):
        engine.remove_movie(int(sample_ml.movies["movie_id"].iloc[0]))
    engine.remove_movie(added.movie_id)
    assert counts(engine) == before and engine.search_titles("zzyzx") == [] == other.search_titles("zzyzx")
    with pytest.raises(UnknownAddedMovieError):
        engine.remove_movie(added.movie_id)
    assert engine.health()["ok"]


def test_ids_come_from_the_database_and_are_never_reused(engine, sample_ml):
    first = engine.add_movie("Zzyzx One", 2001, ["Drama"]).movie_id
    engine.remove_movie(first)
    second = engine.add_movie("Zzyzx Two", 2001, ["Drama"]).movie_id
    assert second > first


@pytest.mark.parametrize("change, fragment", [
    ({"title": ""}, "title must be non-empty"),
    ({"title": "x" * (MAX_TITLE_CHARS + 1)}, "at most"),
    ({"title": "bad\x00title"}, "control characters"),
    ({"year": 1700}, "year must be a whole year"),
    ({"year": 2001.0}, "year must be a whole year"),
    ({"genres": ["No Such Genre"]}, "Unknown genre"),
    ({"ratings": [(1, 9.0, 0)]}, "not on the dataset's scale"),
    ({"ratings": [(1, 4.5, 0)]}, "not on the dataset's scale"),
    ({"ratings": [(1, float("nan"), 0)]}, "not on the dataset's scale"),
    ({"ratings": [(10**9, 4.0, 0)]}, "not in the catalog"),
    ({"ratings": [(1, 4.0, -1)]}, "timestamp"),
    ({"ratings": [(1, 4.0, 0), (1, 3.0, 5)]}, "more than once"),
    ({"ratings": [(1, 4.0)]}, "each rating is"),
    ({"ratings": [(1, 4.0, 0)] * (MAX_NEW_RATINGS + 1)}, "more than the 1000"),
])
def test_bad_input_is_refused_and_changes_nothing(engine, change, fragment):
    before = counts(engine)
    movie = {"title": "Zzyzx", "year": 2001, "genres": ["Comedy"], "ratings": [], **change}
    with pytest.raises(RecommendError, match=fragment):
        engine.add_movie(**movie)
    assert counts(engine) == before and not engine.admin.added.rows((ADDING,))


@pytest.mark.parametrize("step", ["milvus", "catalog"])
def test_a_failure_between_the_stores_is_undone(engine, sample_ml, monkeypatch, step):
    before = counts(engine)
    if step == "milvus":  # Milvus fails after writing (e.g. the flush): the row is there and must go
        real = engine.store.put

        def put(*args):
            real(*args)
            raise VectorStoreError("injected: Milvus failed after the upsert")
        monkeypatch.setattr(engine.store, "put", put)
    else:
        def publish(movie_id):
            raise StoreError("injected: the catalog failed while publishing")
        monkeypatch.setattr(engine.admin.added, "publish", publish)
    with pytest.raises(StoreError, match="injected"):
        engine.add_movie("Zzyzx Undone", 2001, ["Comedy"], raters(sample_ml))
    monkeypatch.undo()
    assert counts(engine) == before
    assert not engine.admin.added.rows((ADDING,)) and engine.search_titles("zzyzx") == []
    assert engine.health()["ok"]


def test_a_failed_removal_puts_the_movie_back(engine, sample_ml, monkeypatch):
    """The catalog fails after the Milvus row went: the row is put back from the catalog's copy of the vector.
    (A kill there, and at the add, is a cell of the fault matrix: tests/test_faults.py.)"""
    added = engine.add_movie("Zzyzx Put Back", 2001, ["Comedy"], raters(sample_ml))
    before = counts(engine)

    def delete(movie_id):
        raise StoreError("injected: the catalog failed while deleting")
    monkeypatch.setattr(engine.admin.added, "delete", delete)
    with pytest.raises(StoreError, match="injected"):
        engine.remove_movie(added.movie_id)
    monkeypatch.undo()
    assert counts(engine) == before and engine.admin.added.get(added.movie_id).state == LIVE
    assert [m["movie_id"] for m in engine.search_titles("zzyzx put back")] == [added.movie_id]
    assert engine.recommend([added.movie_id], k=3) and engine.health()["ok"]


def test_build_stores_keeps_added_movies(shared, model_settings, sample_ml):
    shared.close()  # the build and the engines after it (as in a new process) have the stores to themselves
    with RecommendationEngine(model_settings) as engine:
        added = engine.add_movie("Zzyzx Kept", 2001, ["Comedy"], raters(sample_ml))
        vector = engine.store.get([added.movie_id])[added.movie_id]["embedding"]
    build_stores(model_settings, ml=sample_ml, progress=False)
    with RecommendationEngine(model_settings) as engine:
        assert [m["movie_id"] for m in engine.search_titles("zzyzx kept")] == [added.movie_id]
        assert engine.movie(added.movie_id)["n_ratings"] == 5
        assert np.allclose(engine.store.get([added.movie_id])[added.movie_id]["embedding"], vector, atol=1e-6)
        assert engine.health()["ok"], engine.health()["problems"]
        engine.remove_movie(added.movie_id)
        assert AddedMovies(engine.catalog).live_count() == 0
