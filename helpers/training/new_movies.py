"""What serving needs to embed a new movie with the trained model, loaded once: `NewMovieEmbedder`.

The inductive path (`helpers.training.inductive.embed_new_movies`) walks the training graph through the new
movie's raters and pools the graph movies' stored layer vectors with the trained layers. So the embedder holds
the graph (`load_graph`), the checkpoint (`load_trained_model`) and every movie's layer vectors
(`infer_layer_vectors` with the settings' seed: the ones notebook 03's embeddings were computed from). It loads
them on the first `embed` (a few seconds and the graph's memory; reads never need them), under a lock, and keeps
them for the life of the process.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from helpers.config import Settings


@dataclass(frozen=True)
class NewMovieVectors:
    """One new movie's vectors and the graph movies its first layer pooled, heaviest first."""
    candidate: np.ndarray  # what Milvus holds
    query: np.ndarray  # what the engine's lookup gives when the movie is liked
    neighbours: list[tuple[int, float]]  # (graph movie id, visit weight)


class NewMovieEmbedder:
    """Embeds movies outside the training graph with the trained model of `settings`. `years_of(movie_ids)`
    gives the years of the dataset's movies (a Series in that order): their mean and spread place a new year
    on the scale the model was trained with (`helpers.graph.features.year_scale`, over the movies by id)."""

    def __init__(self, settings: Settings, years_of: Callable[[np.ndarray], pd.Series]):
        self.settings = settings
        self.years_of = years_of
        self.year_scale: tuple[float, float] | None = None
        self._lock = threading.Lock()
        self._loaded: tuple | None = None

    @property
    def loaded(self) -> bool:
        return self._loaded is not None

    def load(self) -> tuple:
        """(graph data, model, layer vectors), loaded on the first call."""
        with self._lock:
            if self._loaded is None:
                from helpers.graph.build import load_graph
                from helpers.graph.features import year_scale
                from helpers.training.inference import infer_layer_vectors
                from helpers.training.loop import load_trained_model

                gd = load_graph(self.settings)
                model, _ = load_trained_model(gd, self.settings)
                self.year_scale = year_scale(pd.Series(list(self.years_of(np.sort(gd.movie_ids)))))
                self._loaded = (gd, model, infer_layer_vectors(model, gd, seed=self.settings.seed))
            return self._loaded

    def graph_users(self, user_ids: Sequence[int]) -> set[int]:
        """Those of `user_ids` that are users of the training graph (the walks start from them)."""
        gd = self.load()[0]
        return {int(u) for u in np.asarray(user_ids, dtype=np.int64)[np.isin(user_ids, gd.user_ids)]}

    def embed(self, title: str, year: int | None, genres: Sequence[str], raters: Sequence[int]) -> NewMovieVectors:
        """The vectors of one movie from its features and its `raters` (user ids; those outside the graph are
        not walked from), with walks seeded by the settings' seed, so the same input gives the same vectors."""
        from helpers.training.inductive import embed_new_movies

        gd, model, layers = self.load()
        movies = pd.DataFrame({"movie_id": [0], "title": [title], "year": pd.array([year], dtype="Int64"),
                               "genres": [list(genres)]})
        users = [u for u in raters if u in self.graph_users(raters)]
        ratings = pd.DataFrame({"user_id": np.asarray(users, dtype=np.int64), "movie_id": 0})
        hops: list = []
        vectors = embed_new_movies(model, gd, movies, ratings, layers, year_scale=self.year_scale,
                                   seed=self.settings.seed, hops_out=hops)
        first = hops[0][0]
        order = np.argsort(-first.weight.numpy(), kind="stable")
        neighbours = [(int(gd.movie_ids[first.src[i]]), float(first.weight[i])) for i in order]
        return NewMovieVectors(vectors.candidate[0], vectors.query[0], neighbours)
