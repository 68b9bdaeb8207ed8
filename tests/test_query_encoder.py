"""helpers.engine.query: the query-encoder contract (liked movies in order -> one query vector, through a
chain of movie-vector sources), the registry and its fallback to the mean when an encoder's artifact is
missing or stale, the RECSYS_QUERY_ENCODER setting, and the engine reporting which encoder answered."""
from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

import helpers.config
from helpers.artifacts import atomic_path, write_manifest
from helpers.config import QUERY_ENCODERS, ConfigError, Settings, get_settings
from helpers.engine.engine import PER_MOVIE, RecommendationEngine
from helpers.engine.inputs import RecommendError
from helpers.engine.query import (
    ENCODERS,
    ArrayVectorSource,
    EncoderSpec,
    MeanQueryEncoder,
    MovieVectorLookup,
    QueryEncoder,
    UnknownEncoderError,
    UnknownQueryMovies,
    load_query_encoder,
)
from helpers.errors import RecsysError
from helpers.stores.build import StoresOutOfStepError, build_stores
from helpers.stores.milvus_client import disconnect
from helpers.training.embeddings import (
    EmbeddingsError,
    embeddings_path,
    load_movie_embeddings,
    save_movie_embeddings,
)

from conftest import make_test_embeddings, sample_settings


# -- a small order-aware encoder with its own artifact, registered only inside the tests that use it --------
class ToyRecencyEncoder(QueryEncoder):
    """Weights (its artifact) over the last len(weights) liked movies, the latest last: order matters."""
    name = "toy"

    def __init__(self, lookup: MovieVectorLookup, weights: np.ndarray):
        super().__init__(lookup)
        self.weights = weights

    def encode(self, liked_movie_ids: Sequence[int]) -> np.ndarray:
        recent = list(liked_movie_ids)[-len(self.weights):]
        weights = self.weights[-len(recent):]
        return (weights[:, None] * self.movie_vectors(recent)).sum(axis=0) / weights.sum()


def toy_path(settings: Settings) -> Path:
    return settings.artifacts_dir / "toy_encoder.npy"


def save_toy_artifact(settings: Settings, weights: np.ndarray) -> Path:
    """As a training notebook would: the file, then its manifest naming the embeddings it was trained on."""
    path = toy_path(settings)
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.save(handle, weights)
    write_manifest(path, "toy_encoder", settings, inputs={"embeddings": embeddings_path(settings)})
    return path


def load_toy(settings: Settings, lookup: MovieVectorLookup) -> ToyRecencyEncoder:
    return ToyRecencyEncoder(lookup, np.load(toy_path(settings)))


@pytest.fixture
def toy_registered(monkeypatch):
    monkeypatch.setitem(ENCODERS, "toy", EncoderSpec("toy", load_toy, toy_path, stage="toy_encoder", preference=100))
    monkeypatch.setattr(helpers.config, "QUERY_ENCODERS", (*QUERY_ENCODERS, "toy"))  # as a later issue adds it


@pytest.fixture
def embedded(tmp_path, sample_ml) -> Settings:
    settings = sample_settings(tmp_path)
    save_movie_embeddings(settings, *make_test_embeddings(sample_ml.movies))
    return settings


# -- the lookup: a chain of sources ------------------------------------------------------------------------
def test_the_lookup_asks_the_artifact_first_then_the_extra_sources(embedded) -> None:
    embeddings = load_movie_embeddings(embedded)
    first, second = (int(m) for m in embeddings.movie_ids[:2])
    added = ArrayVectorSource("added", np.array([900_001, first]), np.full((2, embeddings.dim), 7.0))
    lookup = MovieVectorLookup.from_settings(embedded, extra=[added])
    assert [s.name for s in lookup.sources] == ["embeddings", "added"] and lookup.dim == embeddings.dim
    ids = [second, 900_001, 424_242, first]
    assert lookup.known(ids).tolist() == [True, True, False, True]
    assert lookup.missing(ids) == [424_242]
    assert lookup.sources_of(ids) == ["embeddings", "added", None, "embeddings"]  # the artifact wins for `first`
    got = lookup.vectors([900_001, second, first])
    np.testing.assert_array_equal(got[0], np.full(embeddings.dim, 7.0, dtype=np.float32))
    np.testing.assert_array_equal(got[1:], embeddings.query_vectors[[1, 0]])
    with pytest.raises(UnknownQueryMovies, match=r"\[424242, 424243\]") as info:
        lookup.vectors([first, 424_242, 424_243])
    assert info.value.movie_ids == [424_242, 424_243] and isinstance(info.value, RecsysError)
    # the artifact alone does not know the added movie; with_source adds it at the end of the chain
    alone = MovieVectorLookup.from_settings(embedded)
    assert alone.missing([900_001]) == [900_001] and alone.with_source(added).missing([900_001]) == []
    with pytest.raises(EmbeddingsError, match="different lengths"):
        alone.with_source(ArrayVectorSource("short", np.array([1]), np.zeros((1, 3))))


def test_extra_sources_come_from_the_registered_factories(embedded, monkeypatch) -> None:
    from helpers.engine import query

    added = ArrayVectorSource("added", np.array([900_001]), np.ones((1, load_movie_embeddings(embedded).dim)))
    monkeypatch.setattr(query, "VECTOR_SOURCES", [lambda settings: None, lambda settings: added])
    encoder = load_query_encoder(embedded)
    assert [s.name for s in encoder.lookup.sources] == ["embeddings", "added"]
    np.testing.assert_allclose(encoder.encode([900_001]), np.ones(encoder.dim))


def test_the_mean_encoder_averages_the_looked_up_vectors_in_any_order(embedded) -> None:
    embeddings = load_movie_embeddings(embedded)
    added = ArrayVectorSource("added", np.array([900_001]), np.ones((1, embeddings.dim)))
    encoder = MeanQueryEncoder(MovieVectorLookup.from_embeddings(embeddings, extra=[added]))
    liked = [int(embeddings.movie_ids[3]), 900_001, int(embeddings.movie_ids[0])]
    want = (embeddings.query_vectors[3] + 1.0 + embeddings.query_vectors[0]) / 3
    np.testing.assert_allclose(encoder.encode(liked), want, rtol=1e-6)
    np.testing.assert_allclose(encoder.encode(liked[::-1]), want, rtol=1e-6)
    assert encoder.movie_vectors(liked).shape == (3, embeddings.dim)
    with pytest.raises(RecommendError, match="at least one movie id"):
        encoder.encode([])
    with pytest.raises(TypeError):
        QueryEncoder(encoder.lookup)  # the interface itself cannot answer


# -- the registry and the fallback ---------------------------------------------------------------------------
def test_auto_is_the_mean_without_a_trained_encoder_and_unknown_names_say_what_to_do(embedded) -> None:
    assert set(QUERY_ENCODERS) == set(ENCODERS)  # the setting's names are the registry's
    for name in (None, "auto", "mean", " Mean "):
        encoder = load_query_encoder(embedded, name)
        assert isinstance(encoder, MeanQueryEncoder) and encoder.name == "mean" and encoder.fallback_reason is None
    assert load_query_encoder(embedded).describe() == {"name": "mean", "requested": "auto", "fallback_reason": None}
    with pytest.raises(UnknownEncoderError, match="Unknown query encoder 'lstm': use auto or one of mean") as info:
        load_query_encoder(embedded, "lstm")
    assert isinstance(info.value, ConfigError) and isinstance(info.value, RecsysError)


def test_an_encoder_is_used_while_its_artifact_matches_the_embeddings(embedded, toy_registered) -> None:
    save_toy_artifact(embedded, np.array([1.0, 2.0, 4.0], dtype=np.float32))
    for name in ("toy", "auto"):  # auto: the toy's preference is above the mean's
        encoder = load_query_encoder(embedded, name)
        assert isinstance(encoder, ToyRecencyEncoder) and encoder.fallback_reason is None
        assert encoder.describe() == {"name": "toy", "requested": name, "fallback_reason": None}
    ids = [int(m) for m in load_movie_embeddings(embedded).movie_ids[:4]]
    assert not np.allclose(encoder.encode(ids), encoder.encode(ids[::-1]))  # order matters to it
    np.testing.assert_allclose(encoder.encode(ids), encoder.encode(ids[1:]))  # only the last 3 count
    assert isinstance(load_query_encoder(embedded, "mean"), MeanQueryEncoder)  # asking for the mean still works


def test_a_stale_or_missing_artifact_falls_back_to_the_mean_and_says_why(embedded, sample_ml, toy_registered,
                                                                          caplog) -> None:
    save_toy_artifact(embedded, np.array([1.0, 2.0], dtype=np.float32))
    save_movie_embeddings(embedded, *make_test_embeddings(sample_ml.movies, seed=99))  # retrained after the toy
    with caplog.at_level(logging.WARNING, logger="helpers.engine.query"):
        encoder = load_query_encoder(embedded, "toy")
    assert isinstance(encoder, MeanQueryEncoder) and encoder.requested == "toy"
    assert "the toy encoder is not used" in encoder.fallback_reason
    assert "older embeddings" in encoder.fallback_reason and "the mean encoder answers" in encoder.fallback_reason
    assert "fallback_reason=" in repr(encoder) and any("older embeddings" in r.getMessage() for r in caplog.records)
    auto = load_query_encoder(embedded, "auto")
    assert auto.name == "mean" and "older embeddings" in auto.fallback_reason
    np.testing.assert_allclose(encoder.encode([1, 2]), load_movie_embeddings(embedded).query_vectors[:2].mean(0))
    save_toy_artifact(embedded, np.array([1.0, 2.0], dtype=np.float32))  # retrained on the new embeddings
    assert load_query_encoder(embedded, "toy").name == "toy"
    toy_path(embedded).unlink()
    missing = load_query_encoder(embedded, "toy")
    assert missing.name == "mean" and "No toy_encoder artifact" in missing.fallback_reason


# -- the setting ----------------------------------------------------------------------------------------------
def test_the_setting_is_read_checked_and_canonical(toy_registered) -> None:
    assert get_settings({}).query_encoder == "auto"
    assert get_settings({"RECSYS_QUERY_ENCODER": " MEAN "}).query_encoder == "mean"
    assert get_settings({}, query_encoder="toy").query_encoder == "toy"  # once registered in both places
    with pytest.raises(ConfigError, match=r"RECSYS_QUERY_ENCODER='gru' is not a query encoder: use one of auto, mean"):
        get_settings({"RECSYS_QUERY_ENCODER": "gru"})


# -- the engine ----------------------------------------------------------------------------------------------
class RecordingEncoder(MeanQueryEncoder):
    """The mean, keeping every list it was asked to encode."""

    def __init__(self, lookup: MovieVectorLookup):
        super().__init__(lookup)
        self.seen: list[list[int]] = []

    def encode(self, liked_movie_ids: Sequence[int]) -> np.ndarray:
        self.seen.append(list(liked_movie_ids))
        return super().encode(liked_movie_ids)


@pytest.fixture
def stores(embedded, sample_ml):
    build_stores(embedded, ml=sample_ml, progress=False)
    yield embedded
    disconnect(embedded.milvus_uri)


def test_the_engine_reports_the_encoder_and_falls_back_when_its_artifact_goes_stale(stores, sample_ml,
                                                                                    toy_registered) -> None:
    save_toy_artifact(stores, np.array([1.0, 3.0], dtype=np.float32))
    liked = [int(m) for m in sample_ml.movies["movie_id"][:3]]
    with RecommendationEngine(dataclasses.replace(stores, query_encoder="toy")) as engine:
        results = engine.recommend(liked, k=5)
        assert results.encoder == "toy" and {r.encoder for r in results} == {"toy"}
        assert engine.health()["encoder"] == {"name": "toy", "requested": "toy", "fallback_reason": None}
        assert "ToyRecencyEncoder" in repr(engine)
        popular = engine.recommend([], k=3)
        assert popular.encoder is None and {(r.source, r.encoder) for r in popular} == {("popular", None)}
    save_movie_embeddings(stores, *make_test_embeddings(sample_ml.movies, seed=99))  # notebook 03 again
    build_stores(stores, ml=sample_ml, progress=False)  # and the stores after it, but not the toy
    with RecommendationEngine(stores, encoder="toy") as engine:
        assert engine.encoder.name == "mean" and engine.recommend(liked, k=5).encoder == "mean"
        health = engine.health()
        assert health["ok"] and health["encoder"]["name"] == "mean" and health["encoder"]["requested"] == "toy"
        assert "older embeddings" in health["encoder"]["fallback_reason"]
        assert "fallback_reason=" in repr(engine)


def test_the_engine_passes_the_liked_list_in_order_and_asks_the_lookup_what_is_known(stores, sample_ml) -> None:
    embeddings = load_movie_embeddings(stores)
    ids = [int(m) for m in embeddings.movie_ids]
    recording = RecordingEncoder(MovieVectorLookup.from_embeddings(embeddings))
    with RecommendationEngine(stores, encoder=recording) as engine:
        liked = [ids[5], ids[1], ids[3]]
        results = engine.recommend(liked, k=4)
        assert recording.seen == [liked] and results.encoder == "mean"
        engine.combine = "max"
        assert engine.recommend(liked, k=4).encoder == PER_MOVIE and recording.seen == [liked]
    # a movie Milvus and the catalog hold but the encoder's lookup does not: the stores are out of step
    keep = np.ones(len(ids), dtype=bool)
    keep[2] = False
    partial = MovieVectorLookup([ArrayVectorSource("embeddings", embeddings.movie_ids[keep],
                                                   embeddings.query_vectors[keep])])
    with RecommendationEngine(stores, encoder=MeanQueryEncoder(partial)) as engine:
        with pytest.raises(StoresOutOfStepError, match=rf"\[{ids[2]}\] are in Milvus but have no query vector"):
            engine.recommend([ids[0], ids[2]])
        assert len(engine.recommend([ids[0]], k=3)) == 3
