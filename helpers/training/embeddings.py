"""The movie-embedding artifact that notebook 03 writes and the stores (notebook 05) and the engine read.

`movie_embeddings.npz` under `RECSYS_ARTIFACTS/<dataset>/` holds `movie_ids` (int64, MovieLens ids),
`vectors` (float32, one row per movie: the candidate vectors that Milvus stores) and `query_vectors`
(float32, same shape: what the engine's query encoder turns liked movies into). The model's score of movie j
after movie i is `query_vectors[i] . vectors[j]`, so Milvus searches by inner product.

* A directed model (`helpers.training.model.PinSage` with `directed` / `bias`, the default) saves both sides as they
  are: they are NOT unit length (the query side carries the softmax temperature; with a per-movie bias the
  candidate's last dimension is the bias and the query's is a constant 1), so the inner product is the
  model's score, not a cosine.
* One set of vectors (a symmetric model, or vectors from elsewhere) is L2-normalised and serves as both
  sides: then the inner product is the cosine similarity.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from helpers.artifacts import atomic_path, require, write_manifest
from helpers.config import Settings
from helpers.errors import RecsysError
from helpers.ranking import normalise_rows

FILE_NAME = "movie_embeddings.npz"


class EmbeddingsError(RecsysError, ValueError):
    """Movie ids and vectors that do not fit together (counts, shapes, repeats, NaN); the message says what to do."""


@dataclass(frozen=True)
class MovieEmbeddings:
    movie_ids: np.ndarray  # int64, shape (n,)
    vectors: np.ndarray  # float32, shape (n, dim): candidate vectors (what Milvus stores)
    query_vectors: np.ndarray  # float32, shape (n, dim): query vectors (the same array when symmetric)

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])


def embeddings_path(settings: Settings) -> Path:
    return settings.artifacts_dir / FILE_NAME


def save_movie_embeddings(settings: Settings, movie_ids: np.ndarray, vectors: np.ndarray,
                          inputs: dict[str, Path] | None = None, extra: dict | None = None,
                          query_vectors: np.ndarray | None = None) -> Path:
    """Write the embeddings atomically, then their manifest (stage `model`). `vectors` are the candidate
    vectors; with `query_vectors` (a directed model's `helpers.training.inference.MovieVectors`) both are kept as they
    are, without them `vectors` are normalised and serve as both sides (cosine)."""
    movie_ids = np.asarray(movie_ids, dtype=np.int64)
    if movie_ids.ndim != 1 or len(movie_ids) != len(vectors):
        raise EmbeddingsError(f"{len(movie_ids)} movie ids for {len(vectors)} vectors: give one vector per movie id")
    if len(np.unique(movie_ids)) != len(movie_ids):
        raise EmbeddingsError("movie ids repeat: give each movie id once, with its one vector")
    if query_vectors is None:
        vectors = query_vectors = normalise_rows(vectors)
    else:
        vectors = np.asarray(vectors, dtype=np.float32)
        query_vectors = np.asarray(query_vectors, dtype=np.float32)
        if query_vectors.shape != vectors.shape:
            raise EmbeddingsError(f"query vectors of shape {query_vectors.shape} for candidate vectors of shape "
                             f"{vectors.shape}: give one query vector per movie, of the same length")
    for name, values in (("vectors", vectors), ("query vectors", query_vectors)):
        if not np.isfinite(values).all():
            raise EmbeddingsError(f"{name} hold NaN or inf: retrain (notebook 03) before saving")
    path = embeddings_path(settings)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, movie_ids=movie_ids, vectors=vectors, query_vectors=query_vectors)
    write_manifest(path, "model", settings, inputs=inputs, extra=extra)
    return path


def load_movie_embeddings(settings: Settings) -> MovieEmbeddings:
    """Load the embeddings for `settings`' dataset and seed, or say which notebook to run."""
    path = embeddings_path(settings)
    require(path, "model", settings)
    with np.load(path) as data:
        return MovieEmbeddings(movie_ids=data["movie_ids"], vectors=data["vectors"],
                               query_vectors=data["query_vectors"])
