"""The Milvus `movies` collection's schema and rows: the fields and their limits, the per-genre BOOL fields'
names (read back from a collection's schema), and the rows, checked before anything is written.

Each genre gets a BOOL field, so a genre filter is `genre_Comedy == true or genre_Sci_2dFi == true`
(milvus-server 2.3 refuses a bare `genre_Comedy`): on Milvus Lite at 3,883 movies that took 3.4 ms against
27.5 ms for `array_contains_any(genres, [...])` in a probe (issue 20). The field name is the genre itself with
every character other than an ASCII letter or digit written `_` + its UTF-8 bytes in hex ("Sci-Fi" ->
`genre_Sci_2dFi`, "Children's" -> `genre_Children_27s`, "(no genres listed)" ->
`genre__28no_20genres_20listed_29`): always a valid Milvus identifier, and read back into the genre
(`field_genre`), so the collection's own schema is the mapping that every process reading it agrees on (Milvus
Lite drops field descriptions, so they could not carry it).
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from helpers.data.movielens import genre_list
from helpers.stages import notebook_for
from helpers.stores.milvus_client import VectorStoreError

MAX_TITLE_BYTES = 1024
MAX_GENRES = 32
MAX_GENRE_BYTES = 64  # so a genre's field name stays under Milvus' 255 characters (at most 6 + 3 x 64)
GENRE_FIELD_PREFIX = "genre_"
MAX_GENRE_FIELDS = 59  # Milvus allows 64 fields in a collection: 5 are movie_id, embedding, title, year, genres
_PLAIN = re.compile(r"[A-Za-z0-9]")
_ESCAPE = re.compile(r"_([0-9a-f]{2})")


def genre_field(genre: str) -> str:
    """The BOOL field that says whether a movie is in `genre` (see the module docstring)."""
    return GENRE_FIELD_PREFIX + "".join(c if _PLAIN.fullmatch(c) else "".join(f"_{b:02x}" for b in c.encode())
                                        for c in genre)


def field_genre(field: str) -> str | None:
    """The genre a field made by `genre_field` stands for; None for any other field."""
    if not field.startswith(GENRE_FIELD_PREFIX):
        return None
    encoded = field[len(GENRE_FIELD_PREFIX):]
    pieces = _ESCAPE.split(encoded)  # text, hex, text, hex, ...
    raw = b"".join(bytes.fromhex(p) if i % 2 else p.encode() for i, p in enumerate(pieces))
    try:
        genre = raw.decode()
    except UnicodeDecodeError:
        return None
    return genre if genre_field(genre) == field else None


def schema_genre_fields(fields: Iterable[dict[str, Any]]) -> dict[str, str]:
    """Genre -> BOOL field of a collection, from its described `fields` (sorted by genre)."""
    from pymilvus import DataType

    genres = {field_genre(f["name"]): f["name"] for f in fields if f["type"] == DataType.BOOL}
    return {genre: genres[genre] for genre in sorted(g for g in genres if g is not None)}


def collection_schema(client: Any, dim: int, genre_fields: dict[str, str]) -> Any:
    """The schema of a movie collection with `dim`-d vectors and one BOOL field per genre."""
    from pymilvus import DataType

    schema = client.create_schema(auto_id=False, enable_dynamic_field=False,
                                  description="MovieLens movies and their PinSage embeddings")
    schema.add_field("movie_id", DataType.INT64, is_primary=True)
    schema.add_field("embedding", DataType.FLOAT_VECTOR, dim=dim)
    schema.add_field("title", DataType.VARCHAR, max_length=MAX_TITLE_BYTES)
    schema.add_field("year", DataType.INT64)
    schema.add_field("genres", DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=MAX_GENRES,
                     max_length=MAX_GENRE_BYTES)
    for field in genre_fields.values():
        schema.add_field(field, DataType.BOOL)
    return schema


def genre_fields(genres: Iterable[str]) -> dict[str, str]:
    """Genre -> BOOL field name for a collection holding `genres` (sorted; at most `MAX_GENRE_FIELDS`)."""
    names = sorted(set(genres))
    if len(names) > MAX_GENRE_FIELDS:
        raise VectorStoreError(f"The movies have {len(names)} genres; a Milvus collection holds one field per genre "
                               f"and at most {MAX_GENRE_FIELDS} of them: merge genres in the movie file.")
    return {genre: genre_field(genre) for genre in names}


def movie_rows(movie_ids: np.ndarray, vectors: np.ndarray, movies: pd.DataFrame,
               fields: dict[str, str] | None = None) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Rows for the collection and its genre fields, checked before anything is written: every id known to
    `movies` (the MovieLens `movies` frame), unique, vectors finite, titles and genres within the field limits.
    Each row has its genres as a list (`genres`) and one BOOL per genre field: `fields`, an existing
    collection's (rows added to it), else `genre_fields` of the movies' genres (a new collection)."""
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
    genres_used = {g for gs in meta["genres"] for g in genre_list(gs)}
    if fields is None:
        fields = genre_fields(genres_used)
    elif genres_used - set(fields):
        raise VectorStoreError(f"Genres {sorted(genres_used - set(fields))[:10]} have no field in the collection: "
                               f"it was built for other movies; re-run {notebook_for('vectors')}.")
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
                     "year": 0 if pd.isna(year) else int(year), "genres": genres}
                    | {field: genre in genres for genre, field in fields.items()})
    return rows, fields
