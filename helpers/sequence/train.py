"""Training the sequence model: a softmax over all movies at every position (or, on large catalogues, a sampled
softmax over the batch's targets and shared uniform negatives, `SequenceConfig.uniform_negatives`), warm-up + cosine
schedule, gradient clipping, a tqdm bar, a validation point every `eval_every` steps (the curve), the best point kept.

Honest split: the windows hold training movies only (`GraphData.train`); validation asks with the last N training
movies (protocol "history" of `helpers.evaluation`), test with those plus the validation movie, without retraining.
"""
from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from helpers.evaluation.protocols import (
    EvaluationData,
    evaluate_scores,
    prepare_evaluation,
)
from helpers.sequence.config import SequenceConfig
from helpers.sequence.data import training_windows
from helpers.sequence.model import SequenceModel, SequenceModelError, target_shares
from helpers.training.embeddings import MovieEmbeddings


def warmup_cosine(progress: float, warmup: float) -> float:
    """Learning-rate factor at `progress` (0..1): linear warm-up over `warmup`, then cosine decay to 0."""
    progress = min(max(progress, 0.0), 1.0)
    if progress < warmup:
        return max(progress / warmup, 0.01)
    return 0.5 * (1.0 + math.cos(math.pi * (progress - warmup) / (1.0 - warmup)))


def aligned_vectors(embeddings: MovieEmbeddings, movie_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(query, candidate) vectors of the embeddings artifact in the order of `movie_ids` (graph node order)."""
    row = {int(m): i for i, m in enumerate(embeddings.movie_ids)}
    missing = [int(m) for m in movie_ids if int(m) not in row]
    if missing:
        raise SequenceModelError(f"the embeddings lack movie ids {missing[:10]}: they were made from another graph; "
                                 "re-run notebook 03 before notebook 04")
    rows = np.array([row[int(m)] for m in movie_ids])
    return embeddings.query_vectors[rows], embeddings.vectors[rows]


def build_sequence_model(embeddings: MovieEmbeddings, movie_ids: np.ndarray, config: SequenceConfig,
                         seed: int = 42) -> SequenceModel:
    """A fresh model over `movie_ids` (node order): inputs from `config.init`, output side = the candidates."""
    query, candidate = aligned_vectors(embeddings, movie_ids)
    torch.manual_seed(seed)
    if config.init == "random":
        inputs = torch.randn(len(movie_ids), candidate.shape[1]) / math.sqrt(candidate.shape[1])
    else:
        inputs = torch.from_numpy(candidate if config.init == "candidate" else query)
    return SequenceModel(inputs, torch.from_numpy(candidate), config)


def sequence_scorer(model: SequenceModel, batch_size: int = 512) -> Callable[[np.ndarray], np.ndarray]:
    """`helpers.evaluation`'s scorer: queries `[B, n]` (-1 padded, latest last) -> `[B, n_movies]` scores of
    the query vector after the latest movie (the last `config.length` movies are read)."""
    def score(queries: np.ndarray) -> np.ndarray:
        model.eval()
        out = []
        with torch.no_grad():
            for start in range(0, len(queries), batch_size):
                chunk = torch.as_tensor(queries[start:start + batch_size, -model.config.length:], dtype=torch.int64)
                out.append(model.scores(model.encode_last(chunk)).numpy())
        scores = np.concatenate(out) if out else np.zeros((0, model.n_movies), dtype=np.float32)
        if not np.isfinite(scores).all():
            raise SequenceModelError("the sequence model gave non-finite scores: retrain with a lower lr or clip")
        return scores
    return score


@dataclass
class SequenceResult:
    model: SequenceModel          # the best point's weights, in eval mode
    history: list[dict[str, Any]]  # step, loss, val_hr@10, val_ndcg@10, lr, elapsed
    best_step: int
    config: SequenceConfig
    seconds: float
    windows: int
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def best(self) -> dict[str, Any]:
        return next(row for row in self.history if row["step"] == self.best_step)


def validation_point(model: SequenceModel, data: EvaluationData, history: int, users: int | None = None,
                     seed: int = 0) -> dict[str, float]:
    """Val HR@10 and NDCG@10 (protocol "history"), on every validation user or a fixed sample of `users`."""
    metrics = evaluate_scores(sequence_scorer(model), data, "val", "history", history=history, sample=users,
                              seed=seed)
    model.train()
    return {"val_hr@10": metrics["hr@10"], "val_ndcg@10": metrics["ndcg@10"]}


def train_sequence_model(gd: Any, embeddings: MovieEmbeddings, config: SequenceConfig | None = None,
                         seed: int = 42, progress: bool = True) -> SequenceResult:
    """Train on `gd.train` windows until `config.steps` or `config.time_budget_s` (the schedule follows whichever
    is further along), validating every `config.eval_every` steps; returns the best point by val HR@10."""
    config = config or SequenceConfig.for_dataset(getattr(gd, "dataset", ""))
    model = build_sequence_model(embeddings, gd.movie_ids, config, seed)
    windows = torch.from_numpy(training_windows(gd.train, config.length))
    data = prepare_evaluation(gd, max_history=max(50, config.length))
    history_length = min(config.length, data.histories["val"].shape[1])
    share = target_shares(windows, model.n_movies) if config.uniform_negatives else None
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    generator = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    history: list[dict[str, Any]] = []
    best: tuple[float, int, dict[str, torch.Tensor]] = (-1.0, 0, copy.deepcopy(model.state_dict()))
    losses: list[float] = []
    bar = tqdm(total=config.steps, desc="sequence model", disable=not progress, leave=False)
    model.train()
    step = 0
    while True:
        elapsed = time.perf_counter() - start
        done = max(step / config.steps, elapsed / config.time_budget_s)
        if done >= 1.0:
            break
        lr = config.lr * warmup_cosine(done, config.warmup)
        for group in optimizer.param_groups:
            group["lr"] = lr
        batch = windows[torch.randint(len(windows), (config.batch_size,), generator=generator)]
        loss = model.loss(batch, share, generator)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, config.clip)
        optimizer.step()
        losses.append(loss.item())
        step += 1
        bar.update(1)
        if step % config.eval_every == 0:
            point = {"step": step, "loss": float(np.mean(losses)),
                     **validation_point(model, data, history_length, config.val_users, seed),
                     "lr": lr, "elapsed": time.perf_counter() - start}
            history.append(point)
            losses = []
            bar.set_postfix(loss=f"{point['loss']:.3f}", val_hr=f"{point['val_hr@10']:.3f}")
            if point["val_hr@10"] > best[0]:
                best = (point["val_hr@10"], step, copy.deepcopy(model.state_dict()))
    bar.close()
    if losses or not history:  # the last point, when the run did not end on one
        history.append({"step": step, "loss": float(np.mean(losses)) if losses else float("nan"),
                        **validation_point(model, data, history_length, config.val_users, seed), "lr": 0.0,
                        "elapsed": time.perf_counter() - start})
        if history[-1]["val_hr@10"] > best[0]:
            best = (history[-1]["val_hr@10"], step, copy.deepcopy(model.state_dict()))
    model.load_state_dict(best[2])
    model.eval()
    return SequenceResult(model, history, best[1], config, time.perf_counter() - start, len(windows))
