"""Training PinSage (tqdm bar, per-epoch validation, best checkpoint, resume) and layer-wise inference.

Each step with a softmax loss embeds every movie with the graph layers (`PinSage.embed_all`) and scores the
batch's query vectors against all candidate vectors; with `loss="max_margin"` only the batch's neighbourhoods
are embedded. The learning rate follows `TrainConfig.schedule` (warm-up + cosine over the whole run by default).

Artifacts under `RECSYS_ARTIFACTS/<dataset>/`, each written atomically:
* `model.pt` (+ manifest, stage "model"): the best epoch's weights by validation HR@10, with its config;
* `history.json` (+ manifest): one dict per epoch (epoch, loss, val_hr@10, val_ndcg@10, seconds, ...);
* `train_state.pt`: the last epoch's model and optimizer, to resume an interrupted run.

Every epoch starts from RNG seeds derived from `(RECSYS_SEED, epoch)`, so a run resumed after epoch n
continues exactly as the uninterrupted run would have (same batches, same walks, same negatives). With a
time budget the cosine schedule follows the elapsed time, so a resumed run is close to, not identical with,
the uninterrupted one.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from helpers.artifacts import atomic_path, manifest_path, require, write_manifest
from helpers.config import Settings
from helpers.dgl_import import dgl
from helpers.model import PinSage, max_margin_loss, softmax_loss
from helpers.sampling import (EngagementPositives, NegativeSampler, NeighbourhoodSpec, NeighbourSampler,
                              RandomWalkPositives, pair_batch)

MODEL_FILE, HISTORY_FILE, STATE_FILE = "model.pt", "history.json", "train_state.pt"
POSITIVES = ("engagement", "random_walk")
LOSSES = ("softmax", "sampled_softmax", "max_margin")
SCHEDULES = ("cosine", "epoch_decay")


@dataclass
class TrainConfig:
    """Everything that shapes a training run. The defaults are the best setting measured on ML-1M (users 1-2999):
    objective, scoring and schedule side by side at a fixed number of steps (docs/benchmarks.md, "PinSage against
    what people watched next"), the neighbourhood settings within 10 minutes on 2 CPU cores ("PinSage training
    (stage 03)")."""

    positives: str = "engagement"          # "engagement" (paper: next movie rated) or "random_walk" (DGL example)
    engagement_window: int = 1             # engagement: pair a movie with the next `window` movies rated
    hidden: int = 64                       # embedding size
    layers: int = 2
    dropout: float = 0.0
    use_id_embedding: bool = True          # learn a free vector per movie besides its features
    neighbours: int = 5                    # top-visited movies kept as a movie's neighbourhood
    walks: int = 100                       # random walks per movie to find them
    walk_length: int = 2                   # movie -> user -> movie hops per walk before a restart
    restart_prob: float = 0.5
    neighbour_pool: int = 4                # >0: draw this many neighbourhoods per movie each epoch and pick from them
    batch_size: int = 256                  # positive pairs per step
    loss: str = "softmax"                  # "softmax" (all movies compete), "sampled_softmax", "max_margin"
    directed: bool = True                  # a linear query head: the query side differs from the candidate side
    query_id_embedding: bool = False       # softmax losses: a learned per-movie offset on the query side
    movie_bias: bool = True                # a learned per-movie bias, one extra vector dimension
    temperature: float = 0.1               # softmax losses: score = query . candidate / temperature (+ bias)
    uniform_negatives: int = 1024          # sampled_softmax: shared uniform negatives besides the in-batch tails
    negatives: int = 2                     # max_margin: negatives per positive pair
    in_batch_negatives: bool = False       # max_margin: also use the other pairs' tails as negatives
    margin: float = 0.2                    # max_margin: margin on cosine similarities
    lr: float = 3e-3
    schedule: str = "cosine"               # "cosine": warm-up then cosine decay over the whole run (steps or budget)
    warmup: float = 0.05                   # cosine: share of the run spent warming the learning rate up
    lr_decay: float = 0.95                 # epoch_decay: the learning rate is lr * lr_decay ** epoch
    weight_decay: float = 0.0
    hard_fraction: float = 0.5             # share of negatives taken from the model's own ranks `hard_ranks`
    hard_ranks: tuple[int, int] = (50, 500)
    hard_start_epoch: int = 1              # curriculum: uniform negatives only before this epoch...
    hard_ramp_epochs: int = 2              # ...then the hard share grows linearly to `hard_fraction`
    steps_per_epoch: int = 500             # hard negatives are refreshed after every epoch
    max_epochs: int = 100
    time_budget_s: float | None = 600.0    # stop after this much wall time (training + validation)
    device: str | None = None              # None: CUDA when available, else CPU

    def __post_init__(self) -> None:
        if self.positives not in POSITIVES:
            raise ValueError(f"positives={self.positives!r}: use one of {', '.join(POSITIVES)}")
        if self.loss not in LOSSES:
            raise ValueError(f"loss={self.loss!r}: use one of {', '.join(LOSSES)}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule={self.schedule!r}: use one of {', '.join(SCHEDULES)}")
        if not 0.0 <= self.warmup < 1.0:
            raise ValueError(f"warmup={self.warmup}: give the share of the run to warm up in, in [0, 1)")
        if self.temperature <= 0:
            raise ValueError(f"temperature={self.temperature}: it must be positive (e.g. 0.1)")
        if not 0.0 < self.lr_decay <= 1.0:
            raise ValueError(f"lr_decay={self.lr_decay}: it must be in (0, 1] (1 = constant learning rate)")
        if not 0.0 <= self.hard_fraction <= 1.0:
            raise ValueError(f"hard_fraction={self.hard_fraction}: it must be between 0 and 1")
        for name in ("hidden", "layers", "batch_size", "negatives", "steps_per_epoch", "max_epochs"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}={getattr(self, name)}: it must be at least 1")
        if self.time_budget_s is not None and self.time_budget_s <= 0:
            raise ValueError(f"time_budget_s={self.time_budget_s}: give a positive number of seconds or None")
        self.hard_ranks = tuple(self.hard_ranks)
        self.spec  # validates the neighbourhood settings

    @classmethod
    def for_dataset(cls, name: str, **overrides: Any) -> TrainConfig:
        """The configuration to use for dataset `name`: the tiny synthetic `sample` trains for a few seconds
        (so notebooks and tests stay fast); real datasets get the defaults. `overrides` win."""
        if name == "sample":
            base: dict[str, Any] = dict(batch_size=128, steps_per_epoch=40, max_epochs=6, time_budget_s=60.0,
                                        hard_ranks=(10, 100), lr=1e-2)
        else:
            base = {}
        return cls(**{**base, **overrides})

    @property
    def spec(self) -> NeighbourhoodSpec:
        return NeighbourhoodSpec(self.neighbours, self.walks, self.walk_length, self.restart_prob)

    def hard_share(self, epoch: int) -> float:
        """Share of hard negatives in `epoch` (0-based): the curriculum."""
        if epoch < self.hard_start_epoch or self.hard_fraction == 0:
            return 0.0
        ramp = min(1.0, (epoch - self.hard_start_epoch + 1) / max(self.hard_ramp_epochs, 1))
        return self.hard_fraction * ramp

    @property
    def total_steps(self) -> int:
        return self.max_epochs * self.steps_per_epoch

    def learning_rate(self, epoch: int, progress: float) -> float:
        """The learning rate at `progress` (share of the run done, 0..1: steps done / `total_steps`, or the
        share of `time_budget_s` spent, whichever is larger) of `epoch`."""
        if self.schedule == "epoch_decay":
            return self.lr * self.lr_decay ** epoch
        return self.lr * one_cycle(progress, self.warmup)

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def one_cycle(progress: float, warmup: float = 0.05) -> float:
    """Learning-rate factor at `progress` (0..1) of a run: linear warm-up over the first `warmup` share,
    then cosine decay to 0 at the end, so that the whole run (budget or steps) is used."""
    progress = min(max(progress, 0.0), 1.0)
    if progress < warmup:
        return max(progress / warmup, 0.01)
    return 0.5 * (1.0 + math.cos(math.pi * (progress - warmup) / (1.0 - warmup)))


@dataclass
class TrainResult:
    model: PinSage                          # with the best epoch's weights, in eval mode
    history: list[dict[str, float]]         # per epoch: epoch, loss, val_hr@10, val_ndcg@10, seconds, ...
    best_epoch: int
    checkpoint_path: Path                   # artifacts_dir / "model.pt"
    config: TrainConfig = field(default_factory=TrainConfig)

    @property
    def best(self) -> dict[str, float]:
        return next(h for h in self.history if h["epoch"] == self.best_epoch)


def pick_device(config: TrainConfig) -> torch.device:
    if config.device:
        return torch.device(config.device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def build_model(gd, config: TrainConfig) -> PinSage:
    return PinSage.from_graph(gd.graph, dim=config.hidden, layers=config.layers, dropout=config.dropout,
                              use_id=config.use_id_embedding, spec=config.spec, directed=config.directed,
                              bias=config.movie_bias, temperature=config.temperature,
                              query_id=config.query_id_embedding)


@torch.no_grad()
def infer_movie_embeddings(model: PinSage, gd, batch_size: int = 1024, seed: int | None = None) -> np.ndarray:
    """Every movie's embedding ([n_movies, dim] float32, unit rows), computed layer by layer as in the paper's
    MapReduce inference: layer-1 representations of all movies first, then layer 2 from those, so each
    movie's lower-layer vector is computed once instead of once per neighbourhood it appears in.
    `seed` fixes the random walks (DGL's global RNG) for a reproducible result."""
    generator = None
    if seed is not None:
        dgl.seed(seed)
        generator = torch.Generator().manual_seed(seed)
    was_training = model.training
    model.eval()
    device = model.device
    n = gd.graph.num_nodes("movie")
    if n != model.features.num_movies:
        raise ValueError(f"the model was built for {model.features.num_movies} movies but the graph has {n}: "
                         "train it on this graph (notebook 03)")
    movies = torch.arange(n)
    batches = [movies[i:i + batch_size] for i in range(0, n, batch_size)]
    projected = torch.cat([model.features(b.to(device)) for b in batches])
    sampler = NeighbourSampler(gd.graph, 1, model.spec, generator=generator)
    h = projected
    for conv in model.convs:
        parts = []
        for batch in batches:
            hop, inputs = sampler.hop(batch)
            parts.append(conv(hop.to(device), h[inputs.to(device)], h[batch.to(device)]))
        h = torch.cat(parts)
    out = model.combine(projected, h)
    model.train(was_training)
    return out.float().cpu().numpy()


@dataclass(frozen=True)
class MovieVectors:
    """Every movie's query and candidate vectors (row i = movie node i, float32): movie i's query vector
    dotted with movie j's candidate vector is the model's score of j as the next movie after i."""

    query: np.ndarray
    candidate: np.ndarray

    @property
    def dim(self) -> int:
        return int(self.candidate.shape[1])


@torch.no_grad()
def infer_movie_vectors(model: PinSage, gd, batch_size: int = 1024, seed: int | None = None) -> MovieVectors:
    """`infer_movie_embeddings`, then the model's query and candidate sides of every movie (see
    `helpers.model`): what notebook 03 saves, Milvus stores (candidates) and the engine queries with."""
    h = torch.from_numpy(infer_movie_embeddings(model, gd, batch_size, seed)).to(model.device)
    movies = torch.arange(len(h), device=model.device)
    return MovieVectors(query=model.query_vectors(h, movies).float().cpu().numpy(),
                        candidate=model.candidate_vectors(h, movies).float().cpu().numpy())


def validation_metrics(vectors: MovieVectors | np.ndarray, gd, split: str = "val", k: int = 10) -> dict[str, float]:
    """HR@k and NDCG@k with protocol (a): the query is the user's latest training movie. `vectors` are a
    model's `MovieVectors` (inner product of query and candidate) or one array of movie vectors (cosine).
    `gd` may be a `GraphData` or the `helpers.evaluate.prepare_evaluation` of one (faster every epoch)."""
    from helpers.evaluate import embedding_scorer, evaluate_scores, query_candidate_scorer

    scorer = (query_candidate_scorer(vectors.query, vectors.candidate) if isinstance(vectors, MovieVectors)
              else embedding_scorer(vectors))
    return evaluate_scores(scorer, gd, split=split, protocol="latest", k=k)


def _run_key(gd, settings: Settings, config: TrainConfig) -> str:
    """Identifies a run: same graph, seed and config -> a checkpoint can be resumed."""
    train = gd.train
    ident = {"dataset": gd.dataset, "seed": settings.seed, "movies": int(gd.graph.num_nodes("movie")),
             "users": int(gd.graph.num_nodes("user")), "edges": int(len(train)),
             "train_sum": int(train["movie"].sum() * 7 + train["user"].sum()),
             "config": {k: v for k, v in config.to_dict().items() if k not in ("device", "time_budget_s", "max_epochs")}}
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]


def _epoch_seed(seed: int, epoch: int, salt: int = 0) -> int:
    return (seed * 1_000_003 + epoch * 7_919 + salt) % (2**31 - 1)


def _save_torch(obj: Any, path: Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def _graph_inputs(settings: Settings) -> dict[str, Path]:
    graph_path = settings.artifacts_dir / "graph"
    return {"graph": graph_path} if manifest_path(graph_path).exists() else {}


def _load_state(path: Path, key: str) -> dict[str, Any] | None:
    """The saved state of this run, or None (with the reason printed) when there is none to resume."""
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:  # a damaged file: start cleanly, it is replaced after the first epoch
        print(f"Ignoring unreadable {path.name} ({error.__class__.__name__}); training from scratch.")
        return None
    if state.get("key") != key:
        print(f"{path.name} belongs to another run (different data, seed or settings); training from scratch.")
        return None
    return state


def train_pinsage(gd, settings: Settings, config: TrainConfig | None = None, *, resume: bool = True,
                  progress: bool = True) -> TrainResult:
    """Train PinSage on `gd`'s training edges; validate each epoch (HR@10, protocol (a)); keep the best
    checkpoint in `model.pt`. With `resume`, an interrupted run continues after its last finished epoch and a
    finished one returns at once; a state from another run is ignored."""
    from helpers.evaluate import prepare_evaluation
    from helpers.notebook import set_threads

    config = config or TrainConfig.for_dataset(gd.dataset)
    set_threads(settings.threads)
    device = pick_device(config)
    out_dir = settings.artifacts_dir
    model_path, state_path = out_dir / MODEL_FILE, out_dir / STATE_FILE
    key = _run_key(gd, settings, config)

    torch.manual_seed(settings.seed)
    model = build_model(gd, config).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    history: list[dict[str, float]] = []
    best_epoch, best_hr, elapsed = -1, -1.0, 0.0
    state = _load_state(state_path, key) if resume else None
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        history, best_epoch, best_hr = state["history"], state["best_epoch"], state["best_hr"]
        elapsed = state["elapsed"]
        if not model_path.exists() or not manifest_path(model_path).exists():
            state, history, best_epoch, best_hr, elapsed = None, [], -1, -1.0, 0.0
            torch.manual_seed(settings.seed)
            model = build_model(gd, config).to(device)
            optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
            print(f"{model_path.name} is missing; training from scratch.")
        elif progress:
            print(f"Found the state of this run: {len(history)} epochs, {elapsed:.0f} s.")

    positives = (EngagementPositives(gd.train, config.engagement_window) if config.positives == "engagement"
                 else RandomWalkPositives(gd.graph))
    n_movies = gd.graph.num_nodes("movie")
    negatives = NegativeSampler(n_movies, config.hard_ranks)
    sampler = NeighbourSampler(gd.graph, config.layers, config.spec, draws=config.neighbour_pool)
    all_movies = torch.arange(n_movies)
    tail_share = None
    if config.loss == "sampled_softmax":  # how often each movie is an in-batch tail, for the logQ correction
        tail_share = torch.bincount(positives.pairs[:, 1], minlength=n_movies).double() / len(positives.pairs) \
            if isinstance(positives, EngagementPositives) else torch.full((n_movies,), 1.0 / n_movies, dtype=torch.float64)
    eval_data = prepare_evaluation(gd)
    start_epoch = len(history)
    last_val_s = history[-1]["val_seconds"] if history else 0.0

    def out_of_time() -> bool:
        return config.time_budget_s is not None and elapsed + last_val_s >= config.time_budget_s

    uses_hard = config.loss == "max_margin"
    step = sum(int(h.get("steps", 0)) for h in history)
    if 0 < start_epoch < config.max_epochs and not out_of_time() and uses_hard and config.hard_share(start_epoch) > 0:
        # rebuild the hard-negative bank exactly as the uninterrupted run had it after the last epoch
        negatives.set_hard_bank(torch.from_numpy(
            infer_movie_embeddings(model, gd, seed=_epoch_seed(settings.seed, start_epoch - 1, 1))))
    for epoch in range(start_epoch, config.max_epochs):
        if out_of_time():
            break
        started = time.perf_counter()
        seed = _epoch_seed(settings.seed, epoch)
        generator = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)
        dgl.seed(seed)
        sampler.refresh()
        hard = config.hard_share(epoch) if uses_hard else 0.0
        model.train()
        losses: list[float] = []
        bar = tqdm(range(config.steps_per_epoch), desc=f"epoch {epoch}", disable=not progress, leave=False)
        for _ in bar:
            done = step / config.total_steps  # share of the run done: steps or budget, whichever is further
            if config.time_budget_s is not None:
                done = max(done, (elapsed + time.perf_counter() - started) / config.time_budget_s)
            for group in optimizer.param_groups:
                group["lr"] = config.learning_rate(epoch, done)
            heads, tails = positives.sample(config.batch_size, generator)
            if config.loss == "max_margin":
                negs = negatives.sample(heads, config.negatives, hard, generator)
                batch = pair_batch(sampler, heads, tails, negs).to(device)
                h = model(batch.neighbourhood)
                loss = max_margin_loss(h, batch.heads, batch.tails, batch.negatives, config.margin,
                                       config.in_batch_negatives)
            else:  # every movie embedded at once; the pairs' own edges left out of the neighbourhoods
                hops = [sampler.hop(all_movies, exclude=(heads, tails))[0].to(device) for _ in range(config.layers)]
                h = model.embed_all(hops)
                heads_d, tails_d = heads.to(device), tails.to(device)
                queries = model.query_vectors(h[heads_d], heads_d)
                candidates = model.candidate_vectors(h, all_movies.to(device))
                if config.loss == "softmax":
                    loss = softmax_loss(queries, candidates, tails_d, heads_d)
                else:
                    uniform = torch.randint(n_movies, (config.uniform_negatives,), generator=generator)
                    columns = torch.unique(torch.cat([tails, uniform]))
                    expected = len(tails) * tail_share[columns] + config.uniform_negatives / n_movies
                    loss = softmax_loss(queries, candidates, tails_d, heads_d, columns.to(device),
                                        torch.log(expected).float().to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            losses.append(loss.item())
            bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}", hard=f"{hard:.2f}")
            spent = elapsed + time.perf_counter() - started
            if config.time_budget_s is not None and spent + last_val_s >= config.time_budget_s:
                break
        bar.close()
        train_s = time.perf_counter() - started
        val_started = time.perf_counter()
        vectors = infer_movie_vectors(model, gd, seed=_epoch_seed(settings.seed, epoch, 1))
        metrics = validation_metrics(vectors, eval_data, "val")
        last_val_s = time.perf_counter() - val_started
        elapsed += time.perf_counter() - started
        record = {"epoch": epoch, "loss": float(np.mean(losses)), "val_hr@10": metrics["hr@10"],
                  "val_ndcg@10": metrics["ndcg@10"], "seconds": round(train_s + last_val_s, 2),
                  "val_seconds": round(last_val_s, 2), "steps": len(losses), "hard_share": hard, "lr": optimizer.param_groups[0]["lr"],
                  "elapsed": round(elapsed, 2)}
        history.append(record)
        if progress:
            print(f"epoch {epoch}: loss {record['loss']:.4f}  val HR@10 {record['val_hr@10']:.4f}  "
                  f"NDCG@10 {record['val_ndcg@10']:.4f}  hard {hard:.2f}  {record['seconds']:.0f} s "
                  f"(total {elapsed:.0f} s)")
        if metrics["hr@10"] > best_hr:
            best_hr, best_epoch = metrics["hr@10"], epoch
            _save_torch({"model": model.state_dict(), "config": config.to_dict(), "epoch": epoch,
                         "metrics": record, "dataset": gd.dataset, "seed": settings.seed}, model_path)
            write_manifest(model_path, "model", settings, inputs=_graph_inputs(settings),
                           extra={"train_config": config.to_dict(), "best_epoch": epoch})
        if uses_hard and config.hard_share(epoch + 1) > 0:
            negatives.set_hard_bank(torch.from_numpy(vectors.candidate))
        _write_history(history, settings, config)
        _save_torch({"key": key, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                     "history": history, "best_epoch": best_epoch, "best_hr": best_hr, "elapsed": elapsed},
                    state_path)

    if best_epoch < 0:
        raise RuntimeError("No epoch finished: give a larger time_budget_s or max_epochs.")
    best = torch.load(model_path, map_location="cpu", weights_only=False)
    model.load_state_dict(best["model"])
    model.eval()
    return TrainResult(model, history, best_epoch, model_path, config)


def _write_history(history: list[dict[str, float]], settings: Settings, config: TrainConfig) -> Path:
    path = settings.artifacts_dir / HISTORY_FILE
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps({"dataset": settings.dataset, "seed": settings.seed,
                                   "config": config.to_dict(), "history": history}, indent=1))
    write_manifest(path, "model", settings, inputs=_graph_inputs(settings))
    return path


def load_trained_model(gd, settings: Settings) -> tuple[PinSage, TrainConfig]:
    """The best model `train_pinsage` saved for `settings` (checks dataset, seed and graph version)."""
    path = settings.artifacts_dir / MODEL_FILE
    require(path, "model", settings, inputs=_graph_inputs(settings))
    saved = torch.load(path, map_location="cpu", weights_only=False)
    config = TrainConfig.from_dict(saved["config"])
    model = build_model(gd, config)
    model.load_state_dict(saved["model"])
    model.eval()
    return model.to(pick_device(config)), config


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
    movie node i): columns query, rank, title, year, genres, similarity. Unknown ids raise a ValueError that
    names them."""
    unknown = [m for m in movie_ids if m not in set(gd.movie_ids.tolist())]
    if unknown:
        raise ValueError(f"Unknown movie id(s) {unknown}: they are not in the {gd.dataset} graph. "
                         "Pick ids from the movies table (e.g. ml.movies.movie_id).")
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
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
