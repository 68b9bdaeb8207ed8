"""The movie-embedding artifact that notebook 03 writes and notebooks 04-05 read.

`movie_embeddings.npz` under `RECSYS_ARTIFACTS/<dataset>/` holds `movie_ids` (int64, MovieLens ids) and
`vectors` (float32, one row per movie, L2-normalised so inner product equals cosine similarity).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from helpers.artifacts import atomic_path, require, write_manifest
from helpers.config import Settings

FILE_NAME = "movie_embeddings.npz"


@dataclass(frozen=True)
class MovieEmbeddings:
    movie_ids: np.ndarray  # int64, shape (n,)
    vectors: np.ndarray  # float32, shape (n, dim), rows of unit length

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])


def embeddings_path(settings: Settings) -> Path:
    return settings.artifacts_dir / FILE_NAME


def normalise(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def save_movie_embeddings(settings: Settings, movie_ids: np.ndarray, vectors: np.ndarray,
                          inputs: dict[str, Path] | None = None, extra: dict | None = None) -> Path:
    """Normalise and write the embeddings atomically, then their manifest (stage `model`)."""
    movie_ids = np.asarray(movie_ids, dtype=np.int64)
    if movie_ids.ndim != 1 or len(movie_ids) != len(vectors):
        raise ValueError(f"{len(movie_ids)} movie ids for {len(vectors)} vectors: they must match one to one")
    if len(np.unique(movie_ids)) != len(movie_ids):
        raise ValueError("movie ids must be unique")
    path = embeddings_path(settings)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, movie_ids=movie_ids, vectors=normalise(vectors))
    write_manifest(path, "model", settings, inputs=inputs, extra=extra)
    return path


def load_movie_embeddings(settings: Settings) -> MovieEmbeddings:
    """Load the embeddings for `settings`' dataset and seed, or say which notebook to run."""
    path = embeddings_path(settings)
    require(path, "model", settings)
    with np.load(path) as data:
        return MovieEmbeddings(movie_ids=data["movie_ids"], vectors=data["vectors"])
