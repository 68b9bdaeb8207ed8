"""Looking at the graph (notebook 02): degrees, random walks told in titles, the schema, a user's time line."""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from helpers.graph.build import GraphData, GraphError

if TYPE_CHECKING:
    pass


# ------------------------------------------------------------------------------------------ exploring
def degrees(gd: GraphData) -> dict[str, np.ndarray]:
    """Training-edge degree of every node: `{"user": ratings per user, "movie": ratings per movie}`."""
    return {"user": gd.graph.out_degrees(etype="watched").numpy(),
            "movie": gd.graph.in_degrees(etype="watched").numpy()}


def random_walk(gd: GraphData, movie_id: int, hops: int = 3, seed: int | None = None) -> list[tuple[str, int]]:
    """A walk movie -> user who watched it -> another movie that user watched -> ... (`hops` times),
    as `[("movie", movie id), ("user", user id), ("movie", movie id), ...]` in MovieLens ids.

    Uses `dgl.sampling.random_walk` with the metapath `watched-by, watched`; `seed` seeds DGL first."""
    import torch

    from helpers.dgl_import import dgl

    start = int(gd.movie_index([movie_id])[0])
    if gd.graph.in_degrees(start, etype="watched") == 0:
        raise GraphError(f"Movie {movie_id} has no training ratings, so a walk cannot leave it; "
                         "start at a rated movie.")
    if seed is not None:
        dgl.seed(seed)
    traces, _ = dgl.sampling.random_walk(gd.graph, torch.tensor([start]), metapath=["watched-by", "watched"] * hops)
    steps: list[tuple[str, int]] = []
    for position, node in enumerate(traces[0].tolist()):
        if node < 0:  # the walk stopped early (never happens here: every user has a training rating)
            break
        kind = "movie" if position % 2 == 0 else "user"
        steps.append((kind, int((gd.movie_ids if kind == "movie" else gd.user_ids)[node])))
    return steps


def describe_walk(steps: Sequence[tuple[str, int]], movies: pd.DataFrame) -> str:
    """The walk in words, one hop per line, with movie titles (and years) from `movies`."""
    titles = movies.set_index("movie_id")
    def name(movie_id: int) -> str:
        row = titles.loc[movie_id]
        return f"{row['title']} ({row['year']})" if pd.notna(row["year"]) else str(row["title"])
    lines = [f"start at {name(steps[0][1])}"]
    for (_, user), (_, movie) in zip(steps[1::2], steps[2::2], strict=False):  # a walk may stop at a user
        lines.append(f"  -> watched by user {user}, who also watched {name(movie)}")
    return "\n".join(lines)


def schema_table(gd: GraphData) -> pd.DataFrame:
    """One row per node or edge feature: where it lives, its name, shape and dtype."""
    g = gd.graph
    rows = [(f"node '{nt}'", name, tuple(t.shape), str(t.dtype).replace("torch.", ""))
            for nt in g.ntypes for name, t in g.nodes[nt].data.items()]
    rows += [(f"edge '{et}' ({src}->{dst})", name, tuple(t.shape), str(t.dtype).replace("torch.", ""))
             for src, et, dst in g.canonical_etypes for name, t in g.edges[et].data.items()]
    return pd.DataFrame(rows, columns=["on", "feature", "shape", "dtype"])


def timeline(gd: GraphData, movies: pd.DataFrame, user_ids: Sequence[int] | None = None) -> pd.DataFrame:
    """Ratings of `user_ids` (default: all users) in time order, with titles and the split each one is in."""
    frames = [gd.split(name).assign(split=name) for name in ("train", "val", "test")]
    rows = pd.concat(frames, ignore_index=True)
    if user_ids is not None:
        rows = rows[rows["user"].isin(gd.user_index(user_ids))]
    rows = rows.sort_values(["user", "timestamp", "movie"], kind="stable")
    titles = movies.set_index("movie_id")["title"]
    movie_ids = gd.movie_ids[rows["movie"].to_numpy()]
    return pd.DataFrame({"user_id": gd.user_ids[rows["user"].to_numpy()], "movie_id": movie_ids,
                         "title": titles.loc[movie_ids].to_numpy(), "rating": rows["rating"].to_numpy(),
                         "time": pd.to_datetime(rows["timestamp"].to_numpy(), unit="s"),
                         "split": rows["split"].to_numpy()})

