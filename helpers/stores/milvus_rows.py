"""The rows of the Milvus `movies` collection, checked before anything is written, and the fields' limits."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from helpers.data.movielens import genre_list
from helpers.stages import notebook_for
from helpers.stores.milvus_client import VectorStoreError

MAX_TITLE_BYTES = 1024
MAX_GENRES = 32
MAX_GENRE_BYTES = 64


def movie_rows(movie_ids: np.ndarray, vectors: np.ndarray, movies: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows for the collection, checked before anything is written: every id known to `movies` (the
    MovieLens `movies` frame), unique, vectors finite, titles and genres within the field limits."""
    movie_ids = np.asarray(movie_ids, dtype=np.int64)
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or len(vectors) != len(movie_ids):
        raise VectorStoreError(f"{len(movie_ids)} movie ids for vectors of shape {vectors.shape}: "
                               "they must match one row per id")
    if len(movie_ids) == 0:
        raise VectorStoreError(f"No embeddings to ingest: run {notebook_for('model')} first.")
    unique, counts = np.unique(movie_ids, return_counts=True)
    if (counts > 1).any():
        raise VectorStoreError(f"Duplicate movie ids in the embeddings: {unique[counts > 1][:10].tolist()}")
    if not np.isfinite(vectors).all():
        raise VectorStoreError(f"Some embedding values are NaN or infinite: retrain ({notebook_for('model')}).")
    meta = movies.set_index("movie_id")
    unknown = np.setdiff1d(movie_ids, meta.index.to_numpy(dtype=np.int64))
    if len(unknown):
        raise VectorStoreError(f"{len(unknown)} embedded movie ids are not in the movies table, e.g. "
                               f"{unknown[:10].tolist()}: the embeddings were made from another dataset.")
    meta = meta.loc[movie_ids]
    rows = []
    for movie_id, vector, title, year, genres in zip(movie_ids, vectors, meta["title"], meta["year"],
                                                     meta["genres"], strict=True):
        genres = genre_list(genres)
        if len(str(title).encode()) > MAX_TITLE_BYTES:
            raise VectorStoreError(f"Title of movie {movie_id} is over {MAX_TITLE_BYTES} bytes")
        if len(genres) > MAX_GENRES or any(len(g.encode()) > MAX_GENRE_BYTES for g in genres):
            raise VectorStoreError(f"Movie {movie_id} has more than {MAX_GENRES} genres or a genre name over "
                                   f"{MAX_GENRE_BYTES} bytes: {genres}")
        rows.append({"movie_id": int(movie_id), "embedding": vector.tolist(), "title": str(title),
                     "year": 0 if pd.isna(year) else int(year), "genres": genres})
    return rows
