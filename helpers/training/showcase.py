"""Looking at the embeddings (notebook 03): well-known movies and their nearest neighbours."""
from __future__ import annotations

import numpy as np
import pandas as pd

from helpers.graph.features import GraphError
from helpers.ranking import normalise_rows

# -- looking at the embeddings (notebook 03) -------------------------------------------------------------
WELL_KNOWN_TITLES: tuple[str, ...] = ("Toy Story", "Star Wars: Episode IV - A New Hope", "Silence of the Lambs, The",
                                      "Godfather, The", "Matrix, The")


def showcase_movie_ids(movies: pd.DataFrame, gd, titles: tuple[str, ...] = WELL_KNOWN_TITLES,
                       count: int = 4) -> list[int]:
    """MovieLens ids of up to `count` movies to show neighbours of: the well-known `titles` this dataset has
    (exact title match, first release), topped up with its most-rated training movies (the synthetic sample
    has none of the titles, so it gets its most popular movies)."""
    chosen: list[int] = []
    for title in titles:
        found = movies.loc[movies["title"] == title, "movie_id"]
        if len(found) and len(chosen) < count:
            chosen.append(int(found.iloc[0]))
    popular = gd.train["movie"].value_counts().index.to_numpy()
    for movie_id in gd.movie_ids[popular]:
        if len(chosen) >= count:
            break
        if int(movie_id) not in chosen:
            chosen.append(int(movie_id))
    return chosen


def nearest_movies(vectors: np.ndarray, gd, movies: pd.DataFrame, movie_ids: list[int], k: int = 5) -> pd.DataFrame:
    """For each MovieLens id in `movie_ids`, its `k` nearest movies by cosine similarity of `vectors` (row i =
    movie node i): columns query, rank, title, year, genres, similarity. Unknown ids raise a `GraphError`
    (a ValueError) that names them."""
    unknown = [m for m in movie_ids if m not in set(gd.movie_ids.tolist())]
    if unknown:
        raise GraphError(f"Unknown movie id(s) {unknown}: they are not in the {gd.dataset} graph. "
                         "Pick ids from the movies table (e.g. ml.movies.movie_id).")
    unit = normalise_rows(vectors)
    info = movies.set_index("movie_id")
    rows = []
    for movie_id in movie_ids:
        index = int(np.searchsorted(gd.movie_ids, movie_id))
        similarity = unit @ unit[index]
        similarity[index] = -np.inf
        for rank, other in enumerate(np.argsort(-similarity, kind="stable")[:k], start=1):
            other_id = int(gd.movie_ids[other])
            rows.append({"query": info.at[movie_id, "title"], "rank": rank, "title": info.at[other_id, "title"],
                         "year": info.at[other_id, "year"], "genres": ", ".join(info.at[other_id, "genres"]),
                         "similarity": round(float(similarity[other]), 3)})
    return pd.DataFrame(rows).set_index(["query", "rank"])

