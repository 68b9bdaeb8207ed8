"""Matplotlib figures for the notebooks, each titled with its dataset (`dataset_label`).

Every function returns the `Figure`; in a notebook write `fig = plot_...(ml)` and the inline backend shows
it once. Data-exploration plots (notebook 01) come first; other stages append their own below.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from helpers.data.movielens import MovieLens
from helpers.errors import RecsysError


class PlotError(RecsysError, ValueError):
    """A figure was asked for with arguments it cannot draw; the message names the argument and what to give."""


_NAMES = {"ml-1m": "ML-1M", "ml-100k": "ML-100K", "ml-latest-small": "ML-latest-small", "ml-25m": "ML-25M",
          "ml-32m": "ML-32M", "sample": "synthetic sample"}
_FULL_USER_COUNT = {"ml-1m": 6040, "ml-100k": 943}


def dataset_label(ml: MovieLens) -> str:
    """How figures name the dataset, e.g. "ML-1M" or "ML-1M, users 1-2999" for a partial copy."""
    label = _NAMES.get(ml.name, ml.name)
    users = ml.ratings["user_id"]
    full = _FULL_USER_COUNT.get(ml.name)
    if full is not None and len(users) and users.nunique() != full:
        label += f", users {users.min()}-{users.max()}"
    if ml.name == "sample":
        seed = ml.source_dir.name.removeprefix("sample-seed")
        label += f", seed {seed}" if seed.isdigit() else ""
    return label


def _figure(ncols: int = 1, width: float = 8.0, height: float = 4.0):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, ncols, figsize=(width, height), layout="constrained")
    return fig, axes


def plot_rating_distribution(ml: MovieLens) -> Figure:
    """Bar chart: how many ratings give each number of stars."""
    fig, ax = _figure()
    counts = ml.ratings["rating"].value_counts().sort_index()
    width = 0.4 if (counts.index % 1 != 0).any() else 0.8
    ax.bar(counts.index.astype(float), counts.to_numpy(), width=width, color="tab:blue")
    ax.set_xticks(counts.index.astype(float))
    ax.set_xlabel("rating (stars)")
    ax.set_ylabel("number of ratings")
    ax.set_title(f"Rating distribution: {dataset_label(ml)}")
    for x, y in zip(counts.index.astype(float), counts.to_numpy(), strict=True):
        ax.annotate(f"{y / counts.sum():.0%}", (x, y), ha="center", va="bottom", fontsize=9)
    return fig


def plot_long_tail(ml: MovieLens) -> Figure:
    """Two log-scale panels: ratings per user (histogram) and ratings per movie by popularity rank."""
    fig, (left, right) = _figure(ncols=2, width=11)
    per_user = ml.ratings.groupby("user_id").size()
    bins = np.logspace(np.log10(max(per_user.min(), 1)), np.log10(per_user.max() + 1), 30)
    left.hist(per_user, bins=bins, color="tab:blue")
    left.set_xscale("log")
    left.set_xlabel("ratings per user (log scale)")
    left.set_ylabel("number of users")
    left.set_title(f"Ratings per user (median {per_user.median():.0f})")

    per_movie = ml.ratings.groupby("movie_id").size().sort_values(ascending=False).to_numpy()
    rank = np.arange(1, len(per_movie) + 1)
    right.loglog(rank, per_movie, color="tab:orange")
    head = max(1, len(per_movie) // 10)
    share = per_movie[:head].sum() / per_movie.sum()
    right.axvline(head, color="grey", linestyle="--", linewidth=1)
    right.annotate(f"top 10% of movies:\n{share:.0%} of ratings", (head, per_movie[head - 1]),
                   xytext=(8, 8), textcoords="offset points", fontsize=9)
    right.set_xlabel("movie popularity rank (log scale)")
    right.set_ylabel("ratings per movie (log scale)")
    right.set_title("Ratings per movie: the long tail")
    fig.suptitle(f"Activity is long-tailed: {dataset_label(ml)}")
    return fig


def genre_table(ml: MovieLens) -> pd.DataFrame:
    """Per genre: movies in the catalogue and ratings received (a movie counts once per genre it has)."""
    movie_genres = ml.movies[["movie_id", "genres"]].explode("genres").dropna()
    per_movie = ml.ratings.groupby("movie_id").size().rename("ratings")
    table = movie_genres.join(per_movie, on="movie_id").fillna({"ratings": 0})
    out = table.groupby("genres").agg(movies=("movie_id", "nunique"), ratings=("ratings", "sum"))
    out.index.name = "genre"
    return out.astype("int64").sort_values("ratings", ascending=False)


def plot_genres(ml: MovieLens) -> Figure:
    """Horizontal bars: movies per genre and ratings per genre, side by side."""
    table = genre_table(ml).sort_values("ratings")
    fig, (left, right) = _figure(ncols=2, width=11, height=max(4.0, 0.28 * len(table) + 1.5))
    left.barh(table.index, table["movies"], color="tab:blue")
    left.set_xlabel("movies in the catalogue")
    left.set_ylabel("genre")
    left.set_title("Movies per genre")
    right.barh(table.index, table["ratings"], color="tab:orange")
    right.set_xlabel("ratings")
    right.set_title("Ratings per genre")
    right.tick_params(labelleft=False)
    fig.suptitle(f"Genres (a movie can have several): {dataset_label(ml)}")
    return fig


def plot_activity_over_time(ml: MovieLens) -> Figure:
    """Ratings per month, with the number of users who rated that month on a second axis."""
    fig, ax = _figure(width=10)
    when = pd.to_datetime(ml.ratings["timestamp"], unit="s")
    by_month = ml.ratings.assign(month=when.dt.to_period("M").dt.to_timestamp()).groupby("month")
    ratings = by_month.size()
    users = by_month["user_id"].nunique()
    ax.bar(ratings.index, ratings.to_numpy(), width=25, color="tab:blue", label="ratings")
    ax.set_ylabel("ratings per month")
    ax.set_xlabel("month")
    twin = ax.twinx()
    twin.plot(users.index, users.to_numpy(), color="tab:red", marker=".", label="active users")
    twin.set_ylabel("users who rated that month", color="tab:red")
    twin.grid(False)
    ax.set_title(f"Activity over time: {dataset_label(ml)}")
    handles = ax.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
    ax.legend(handles, ["ratings", "active users"], loc="upper right")
    return fig


def graph_counts(ml: MovieLens) -> pd.DataFrame:
    """What the users-movies graph will be made of: nodes per type and edges (one per rating, both ways)."""
    users = int(ml.ratings["user_id"].nunique())
    movies = len(ml.movies)
    edges = len(ml.ratings)
    rows = [
        ("user nodes", users, "every user with at least one rating"),
        ("movie nodes", movies, f"every movie in the catalogue ({ml.ratings['movie_id'].nunique():,} rated)"),
        ("watched edges (user → movie)", edges, "one per rating; rating and timestamp ride on the edge"),
        ("watched-by edges (movie → user)", edges, "the same ratings in reverse, so messages flow both ways"),
    ]
    table = pd.DataFrame(rows, columns=["part", "count", "meaning"]).set_index("part")
    table.attrs["density"] = edges / max(users * movies, 1)
    return table


def plot_graph_sketch(ml: MovieLens, n_users: int = 4, movies_per_user: int = 3, seed: int = 0) -> Figure:
    """A tiny piece of the bipartite graph: a few users (left), movies they rated (right), one edge per rating."""
    rng = np.random.default_rng(seed)
    counts = ml.ratings.groupby("user_id").size()
    chosen = rng.choice(counts.index.to_numpy(), size=min(n_users, len(counts)), replace=False)
    ratings = ml.ratings.sort_values("timestamp")
    picked = ratings[ratings["user_id"].isin(chosen)].groupby("user_id").head(movies_per_user)
    # add ratings from the chosen users to movies already drawn, so shared movies show up
    shared = ratings[ratings["user_id"].isin(chosen) & ratings["movie_id"].isin(picked["movie_id"])]
    shared = shared.merge(picked[["user_id", "movie_id"]], how="left", indicator=True)
    extra = shared[shared["_merge"] == "left_only"].drop(columns="_merge").head(n_users + 2)
    edges = pd.concat([picked, extra]).drop_duplicates(["user_id", "movie_id"])
    users = sorted(edges["user_id"].unique())
    movies = list(dict.fromkeys(edges.sort_values(["user_id", "timestamp"])["movie_id"]))
    titles = ml.movies.set_index("movie_id")["title"]
    fig, ax = _figure(width=10, height=max(3.5, 0.45 * len(movies) + 1))
    uy = {u: y for u, y in zip(users, np.linspace(1, 0, len(users)), strict=True)}
    my = {m: y for m, y in zip(movies, np.linspace(1, 0, len(movies)), strict=True)}
    for u, m, r in edges[["user_id", "movie_id", "rating"]].itertuples(index=False):
        ax.plot([0, 1], [uy[u], my[m]], color="grey", linewidth=0.6 + 0.4 * float(r), alpha=0.7, zorder=1)
    ax.scatter([0] * len(users), list(uy.values()), s=300, color="tab:blue", zorder=2, label="user")
    ax.scatter([1] * len(movies), list(my.values()), s=200, color="tab:orange", marker="s", zorder=2,
               label="movie")
    for u, y in uy.items():
        ax.annotate(f"user {u}", (0, y), xytext=(-14, 0), textcoords="offset points", ha="right", va="center")
    for m, y in my.items():
        ax.annotate(f"{titles.get(m, m)}", (1, y), xytext=(14, 0), textcoords="offset points", va="center")
    ax.set_xlim(-0.6, 2.2)
    ax.set_ylim(-0.15, 1.15)
    ax.axis("off")
    ax.legend(loc="upper center", ncol=2, frameon=False)
    ax.set_title(f"A piece of the users-movies graph (edge width = rating): {dataset_label(ml)}")
    return fig


# -- notebook 02: the graph ------------------------------------------------------------------------
def plot_degree_distributions(gd, ml: MovieLens) -> Figure:
    """Two log-log histograms of the training graph (`helpers.graph.build.GraphData`): ratings per user and per
    movie."""
    from helpers.graph.explore import degrees

    fig, axes = _figure(ncols=2, width=11)
    for ax, (kind, degree) in zip(axes, degrees(gd).items(), strict=True):
        nonzero = degree[degree > 0]
        bins = np.unique(np.logspace(np.log10(nonzero.min()), np.log10(nonzero.max() + 1), 30).round())
        ax.hist(nonzero, bins=bins, color="tab:blue" if kind == "user" else "tab:orange")
        without = int((degree == 0).sum())
        ax.set(xscale="log", yscale="log", ylabel=f"number of {kind}s (log scale)",
               xlabel=f"training ratings per {kind} (log scale)"
                      + (f"\n{without:,} {kind}s without training ratings not shown" if without else ""),
               title=f"Ratings per {kind}: median {np.median(nonzero):.0f}, max {nonzero.max():,}")
    fig.suptitle(f"Degree distributions of the training graph: {dataset_label(ml)}")
    return fig


# -- notebook 03: PinSage training -----------------------------------------------------------------
_BASELINE_STYLES = (("--", "tab:gray"), (":", "tab:brown"), ("-.", "tab:olive"), ((0, (5, 5)), "tab:cyan"),
                    ((0, (3, 1, 1, 1)), "tab:pink"), ((0, (1, 3)), "tab:purple"), ("--", "black"))


def plot_training_history(history: list[dict], label: str, baselines: dict[str, float] | None = None,
                          loss_name: str = "training") -> Figure:
    """Per epoch: the mean training loss (`loss_name`, e.g. "softmax"), and validation HR@10 (protocol a: latest
    movie) with `baselines` (name -> validation HR@10, up to 7) as horizontal lines. `label` names the dataset
    (`dataset_label`)."""
    if len(baselines or {}) > len(_BASELINE_STYLES):
        raise PlotError(f"{len(baselines)} baselines: the plot tells at most {len(_BASELINE_STYLES)} apart; pass fewer")
    fig, (loss_ax, hr_ax) = _figure(ncols=2, width=11)
    epochs = [h["epoch"] for h in history]
    loss_ax.plot(epochs, [h["loss"] for h in history], marker="o")
    loss_ax.set(xlabel="epoch", ylabel=f"mean {loss_name} loss", title="Training loss")
    hr_ax.plot(epochs, [h["val_hr@10"] for h in history], marker="o", label="PinSage")
    best = max(history, key=lambda h: h["val_hr@10"])
    hr_ax.scatter([best["epoch"]], [best["val_hr@10"]], s=120, facecolors="none", edgecolors="black",
                  label=f"best epoch ({best['epoch']})", zorder=3)
    for (name, value), (style, colour) in zip((baselines or {}).items(), _BASELINE_STYLES, strict=False):
        hr_ax.axhline(value, linestyle=style, color=colour, label=name)
    hr_ax.set(xlabel="epoch", ylabel="HR@10", title="Validation HR@10 (query: latest training movie)")
    hr_ax.legend(fontsize="small")
    fig.suptitle(f"PinSage training: {label}")
    return fig


def plot_embedding_map(vectors: np.ndarray, gd, label: str, method: str = "pca", seed: int = 0,
                       max_points: int = 4000, top_genres: int = 8) -> Figure:
    """Movies with training ratings as points in 2-D (`method` "pca" or "tsne", from scikit-learn), coloured
    by their most specific genre (the rarest of their genres); genres outside the `top_genres` most common
    are grey."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    if method not in ("pca", "tsne"):
        raise PlotError(f"method={method!r}: use 'pca' or 'tsne'")
    rated = np.flatnonzero(np.bincount(gd.train["movie"].to_numpy(), minlength=len(vectors)) > 0)
    rng = np.random.default_rng(seed)
    if len(rated) > max_points:
        rated = np.sort(rng.choice(rated, max_points, replace=False))
    multi_hot = gd.graph.nodes["movie"].data["genres"].numpy()[rated]
    counts = multi_hot.sum(axis=0)
    rarity = np.where(multi_hot > 0, counts[None, :], np.inf)
    genre = np.where(multi_hot.any(axis=1), rarity.argmin(axis=1), -1)
    if method == "pca":
        xy = PCA(n_components=2, random_state=seed).fit_transform(vectors[rated])
    else:
        tsne = TSNE(n_components=2, random_state=seed, init="pca", perplexity=min(30, len(rated) - 1))
        xy = tsne.fit_transform(vectors[rated])
    fig, ax = _figure(width=9, height=6)
    shown = [g for g in pd.Series(genre[genre >= 0]).value_counts().index[:top_genres]]
    other = ~np.isin(genre, shown)
    ax.scatter(xy[other, 0], xy[other, 1], s=6, color="lightgrey", label="other genres")
    for g in shown:
        mask = genre == g
        ax.scatter(xy[mask, 0], xy[mask, 1], s=8, alpha=0.8, label=gd.genres[g])
    ax.set(xlabel=f"{method.upper()} 1", ylabel=f"{method.upper()} 2")
    ax.legend(markerscale=2, fontsize="small", loc="best")
    ax.set_title(f"PinSage movie embeddings ({method.upper()}, {len(rated):,} rated movies, colour = most specific "
                 f"genre): {label}")
    return fig


def plot_pinsage_pipeline(hood: pd.DataFrame, neighbour_titles: list[str], movie_title: str, label: str,
                          walks: int, hidden: int = 64, layers: int = 2, loss: str = "softmax") -> Figure:
    """PinSage from walks to loss, left to right, for one movie: (1) random walks, (2) the neighbourhood they
    give (`hood` from `helpers.training.sampling.neighbourhood_table`, its rows titled `neighbour_titles`), (3) the
    `layers` convolutions, (4) the movie's vector, (5) the loss. `label` names the dataset."""
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    if len(neighbour_titles) != len(hood):
        raise PlotError(f"{len(neighbour_titles)} titles for {len(hood)} neighbours: give one title per row of hood")
    if hood.empty:
        raise PlotError("hood has no neighbours: the movie has no training ratings; pick a rated movie")
    fig, ax = _figure(width=14, height=5.6)
    ax.set(xlim=(0, 100), ylim=(0, 60))
    ax.axis("off")

    def box(x: float, y: float, w: float, h: float, colour: str, title: str) -> None:
        ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.4", facecolor=colour, edgecolor="grey",
                                    linewidth=1))
        ax.text(x + w / 2, y + h - 1.5, title, ha="center", va="top", fontsize=10, fontweight="bold")

    def arrow(x0: float, y0: float, x1: float, y1: float, width: float = 1.2, colour: str = "black") -> None:
        ax.add_patch(FancyArrowPatch((x0, y0), (x1, y1), arrowstyle="-|>", mutation_scale=12, linewidth=width,
                                     color=colour))

    short = [t if len(t) <= 26 else t[:24] + "…" for t in [movie_title, *neighbour_titles]]
    # (1) random walks: movie -> user -> movie, drawn for the three most visited neighbours
    box(0.5, 4, 19, 50, "#eaf2fb", "1. random walks")
    ax.scatter([3.5], [29], s=260, marker="*", color="tab:red", zorder=3)
    ax.text(3.5, 25, short[0], fontsize=8, ha="left", va="top", rotation=0)
    shown = min(3, len(hood))
    for i in range(shown):
        y = 43 - 14 * i
        ax.scatter([10], [y], s=90, color="tab:blue", zorder=3)
        ax.scatter([17], [y], s=90, marker="s", color="tab:orange", zorder=3)
        arrow(4.2, 29, 9.4, y, 0.8, "grey")
        arrow(10.6, y, 16.4, y, 0.8, "grey")
        ax.text(17, y - 2.5, f"{int(hood['visits'].iloc[i])} visits", fontsize=7, ha="center", va="top")
    ax.text(10, 47.5, "user", fontsize=8, ha="center", color="tab:blue")
    ax.text(17, 47.5, "movie", fontsize=8, ha="center", color="tab:orange")
    ax.text(10, 7.5, f"{walks:,} walks movie → user → movie,\nrestarting now and then", fontsize=8, ha="center")
    arrow(20.3, 29, 22.2, 29)

    # (2) the neighbourhood: the most visited movies, their visits as importance weights
    box(22.8, 4, 22, 50, "#fdf1e4", "2. neighbourhood")
    importance = hood["importance"].to_numpy()
    top = len(hood)
    for i, (title, weight) in enumerate(zip(short[1:], importance, strict=True)):
        y = 46 - i * min(7.0, 38.0 / top)
        ax.barh(y, 9 * weight / importance.max(), left=24, height=2.4, color="tab:orange", alpha=0.8)
        ax.text(24, y + 1.6, title, fontsize=7.5, va="bottom")
        ax.text(24.2 + 9 * weight / importance.max(), y, f"α = {weight:.2f}", fontsize=7.5, va="center")
    ax.text(33.8, 7.5, f"the {top} most visited movies;\nweight α = share of the visits", fontsize=8, ha="center")
    arrow(45.6, 29, 47.5, 29)

    # (3) the convolutions: layer 1 runs on the neighbours (from their own neighbours), the last on the movie
    box(48.1, 4, 19, 50, "#eef7ee", f"3. {layers} PinSage layers")
    names = [f"layer {i + 1}: " + ("neighbours' neighbours\n→ neighbours" if i < layers - 1 else "neighbours → movie")
             for i in range(layers)]
    for i, name in enumerate(names):
        y = 14 + (layers - 1 - i) * (30 / max(layers, 1)) if layers > 1 else 24
        ax.add_patch(FancyBboxPatch((50, y), 15, 10, boxstyle="round,pad=0.3", facecolor="white",
                                    edgecolor="tab:green"))
        ax.text(57.5, y + 7.2, name, fontsize=7.5, ha="center", va="center")
        ax.text(57.5, y + 2.2, r"$\mathrm{ReLU}(W[n_v \Vert h_v])\,/\,\Vert\cdot\Vert$", fontsize=7.5, ha="center",
                va="center")
    for i in range(layers - 1):
        y = 14 + (layers - 1 - i) * (30 / layers)
        arrow(57.5, y - 0.4, 57.5, y - (30 / layers) + 10.6, 1.0, "tab:green")
    ax.text(57.6, 7.5, "pool neighbours weighted by α,\nconcatenate with the movie itself", fontsize=8, ha="center")
    arrow(68, 29, 70, 29)

    # (4) the vector
    box(70.6, 4, 11, 50, "#f3effa", "4. vector")
    cells = np.linspace(46, 19, 12)
    for y in cells:
        ax.add_patch(FancyBboxPatch((74.5, y), 3, 2.1, boxstyle="square,pad=0", facecolor="tab:purple", alpha=0.35,
                                    edgecolor="white"))
    ax.text(76, 11, f"$e_v$: {hidden} numbers,\nfeatures + layers,\nunit length; query $q$\nand candidate $c$ from it",
            fontsize=8, ha="center", va="center")
    arrow(82.4, 29, 84.2, 29)

    # (5) the loss
    box(84.8, 4, 14.7, 50, "#fbeaea", "5. loss")
    ax.text(92.1, 44, "pair (movie, next movie)\nscore $s = q \\cdot c$", fontsize=8, ha="center", va="top")
    ax.text(92.1, 32, "the next movie must\noutscore the negatives\n(other movies)", fontsize=8, ha="center",
            va="top")
    ax.text(92.1, 16, f"loss: {loss}", fontsize=9, ha="center", va="center", fontweight="bold")
    ax.set_title(f"PinSage, from random walks to the loss, for {movie_title}: {label}")
    return fig
