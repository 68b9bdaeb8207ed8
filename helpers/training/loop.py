"""Training PinSage: epochs of `TrainingStep`s (helpers.training.step) with a tqdm bar, validation after each
epoch, the best checkpoint, and an exact resume. The learning rate follows `alternatives.schedule` (warm-up +
cosine over the whole run by default; see `helpers.training.config`).

Artifacts under `RECSYS_ARTIFACTS/<dataset>/`, each written atomically:
* `model.pt` (+ manifest, stage "model"): the best epoch's weights by validation HR@10, with its config;
* `history.json` (+ manifest): one dict per epoch (epoch, loss, val_hr@10 with its standard error and the
  number of validation users, val_ndcg@10, seconds, ...);
* `train_state.pt`: the last epoch's model and optimizer (`helpers.training.optimiser`), to resume an interrupted
  run.

Every epoch starts from RNG seeds derived from `(RECSYS_SEED, epoch)`, so a run resumed after epoch n
continues exactly as the uninterrupted run would have (same batches, same walks, same negatives). With a
time budget the cosine schedule follows the elapsed time, so a resumed run is close to, not identical with,
the uninterrupted one.

Validation ranks every movie for the validation users, or, with `TrainConfig.val_users`, for a fixed sample of
them drawn once with `RECSYS_SEED` (`helpers.evaluation.protocols.sample_rows`): the same users every epoch, so
the curve and the best checkpoint compare like with like, at a cost that no longer grows with the users (at
ML-32M size all 200,947 users x 87,584 movies would be ranked after every epoch). The history records the
sample's size and the standard error, which also covers the choice of users.

`train_aside` trains a trial run in a temporary folder (the real run's artifacts untouched); `compare_configs`
trains and validates several configs that way, side by side, each paired with a reference user by user (notebook
03's loss comparison).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from helpers.artifacts import atomic_path, manifest_path, require, write_manifest
from helpers.config import Settings
from helpers.dgl_import import dgl
from helpers.errors import RecsysError
from helpers.training.config import LATER_KNOBS, TrainConfig
from helpers.training.inference import MovieVectors, infer_movie_embeddings, infer_movie_vectors
from helpers.training.model import PinSage
from helpers.training.optimiser import build_optimiser, sparse_tables
from helpers.training.step import TrainingStep

MODEL_FILE, HISTORY_FILE, STATE_FILE = "model.pt", "history.json", "train_state.pt"
VAL_SCORES_PER_BATCH = 16_000_000  # users x movies scored at once in validation: 512 users up to 31,250 movies


class TrainingError(RecsysError, RuntimeError):
    """Training ran but produced no model; the message says which setting to change."""


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
    alt = config.alternatives
    return PinSage.from_graph(gd.graph, dim=config.hidden, layers=config.layers, dropout=config.dropout,
                              use_id=config.use_id_embedding, spec=config.spec, directed=alt.directed,
                              bias=alt.movie_bias, temperature=config.temperature, query_id=alt.query_id_embedding,
                              bias_source=alt.bias_source)


def _run_key(gd, settings: Settings, config: TrainConfig) -> str:
    """Identifies a run: same graph, seed and config -> a checkpoint can be resumed. The config enters flat (the
    format before the split), so a state saved then still resumes."""
    train = gd.train
    ident = {"dataset": gd.dataset, "seed": settings.seed, "movies": int(gd.graph.num_nodes("movie")),
             "users": int(gd.graph.num_nodes("user")), "edges": int(len(train)),
             "train_sum": int(train["movie"].sum() * 7 + train["user"].sum()),
             # knobs added later, at their defaults: the key of the runs before them
             "config": {k: v for k, v in config.flat_dict().items()
                        if k not in ("device", "time_budget_s", "max_epochs") and LATER_KNOBS.get(k, object()) != v}}
    if sparse_tables(config):  # a state saved by the dense optimiser (before the sparse tables) is another run's
        ident["sparse_tables"] = True
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
    try:  # a damaged file makes torch.load raise almost anything (UnpicklingError, EOFError, RuntimeError, KeyError)
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:  # only that one call: start cleanly, the file is replaced after the first epoch
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
    from helpers.evaluation.protocols import prepare_evaluation
    from helpers.runtime import set_threads

    config = config or TrainConfig.for_dataset(gd.dataset)
    set_threads(settings.threads)
    device = pick_device(config)
    out_dir = settings.artifacts_dir
    model_path, state_path = out_dir / MODEL_FILE, out_dir / STATE_FILE
    key = _run_key(gd, settings, config)

    torch.manual_seed(settings.seed)
    model = build_model(gd, config).to(device)
    optimizer = build_optimiser(model, config)
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
            optimizer = build_optimiser(model, config)
            print(f"{model_path.name} is missing; training from scratch.")
        elif progress:
            print(f"Found the state of this run: {len(history)} epochs, {elapsed:.0f} s.")

    alt = config.alternatives
    train_step = TrainingStep(gd, config, model, optimizer)
    eval_data = prepare_evaluation(gd)
    start_epoch = len(history)
    last_val_s = history[-1]["val_seconds"] if history else 0.0

    def out_of_time() -> bool:
        return config.time_budget_s is not None and elapsed + last_val_s >= config.time_budget_s

    uses_hard = train_step.uses_hard_negatives
    step = sum(int(h.get("steps", 0)) for h in history)
    if 0 < start_epoch < config.max_epochs and not out_of_time() and uses_hard and alt.hard_share(start_epoch) > 0:
        # rebuild the hard-negative bank exactly as the uninterrupted run had it after the last epoch
        train_step.negatives.set_hard_bank(torch.from_numpy(
            infer_movie_embeddings(model, gd, seed=_epoch_seed(settings.seed, start_epoch - 1, 1))))
    for epoch in range(start_epoch, config.max_epochs):
        if out_of_time():
            break
        started = time.perf_counter()
        seed = _epoch_seed(settings.seed, epoch)
        generator = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)
        dgl.seed(seed)
        train_step.sampler.refresh()
        hard = alt.hard_share(epoch) if uses_hard else 0.0
        model.train()
        losses: list[float] = []
        bar = tqdm(range(config.steps_per_epoch), desc=f"epoch {epoch}", disable=not progress, leave=False)
        for _ in bar:
            done = step / config.total_steps  # share of the run done: steps or budget, whichever is further
            if config.time_budget_s is not None:
                done = max(done, (elapsed + time.perf_counter() - started) / config.time_budget_s)
            for group in optimizer.param_groups:
                group["lr"] = config.learning_rate(epoch, done)
            losses.append(train_step(generator, hard, done))
            step += 1
            bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}", hard=f"{hard:.2f}")
            spent = elapsed + time.perf_counter() - started
            if config.time_budget_s is not None and spent + last_val_s >= config.time_budget_s:
                break
        bar.close()
        train_s = time.perf_counter() - started
        val_started = time.perf_counter()
        vectors = infer_movie_vectors(model, gd, seed=_epoch_seed(settings.seed, epoch, 1))
        metrics = validate(vectors, eval_data, config.val_users, settings.seed)
        last_val_s = time.perf_counter() - val_started
        elapsed += time.perf_counter() - started
        record = {"epoch": epoch, "loss": float(np.mean(losses)), "val_hr@10": metrics["hr@10"],
                  "val_hr@10_stderr": metrics["hr@10_stderr"], "val_users": int(metrics["n_users"]),
                  "val_ndcg@10": metrics["ndcg@10"], "seconds": round(train_s + last_val_s, 2),
                  "val_seconds": round(last_val_s, 2), "steps": len(losses), "hard_share": hard,
                  "lr": optimizer.param_groups[0]["lr"],
                  "elapsed": round(elapsed, 2)}
        history.append(record)
        if progress:
            print(f"epoch {epoch}: loss {record['loss']:.4f}  val HR@10 {record['val_hr@10']:.4f} "
                  f"± {record['val_hr@10_stderr']:.4f} ({record['val_users']:,} users)  "
                  f"NDCG@10 {record['val_ndcg@10']:.4f}  hard {hard:.2f}  {record['seconds']:.0f} s "
                  f"(total {elapsed:.0f} s)")
        if metrics["hr@10"] > best_hr:
            best_hr, best_epoch = metrics["hr@10"], epoch
            _save_torch({"model": model.state_dict(), "config": config.to_dict(), "epoch": epoch,
                         "metrics": record, "dataset": gd.dataset, "seed": settings.seed}, model_path)
            write_manifest(model_path, "model", settings, inputs=_graph_inputs(settings),
                           extra={"train_config": config.to_dict(), "best_epoch": epoch})
        if uses_hard and alt.hard_share(epoch + 1) > 0:
            train_step.negatives.set_hard_bank(torch.from_numpy(vectors.candidate))
        _write_history(history, settings, config)
        _save_torch({"key": key, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                     "history": history, "best_epoch": best_epoch, "best_hr": best_hr, "elapsed": elapsed},
                    state_path)

    if best_epoch < 0:
        raise TrainingError("No epoch finished: give a larger time_budget_s or max_epochs (TrainConfig).")
    if state is not None:  # the run key matched the graph's data; a graph saved again since gets a new fingerprint
        write_manifest(model_path, "model", settings, inputs=_graph_inputs(settings),
                       extra={"train_config": config.to_dict(), "best_epoch": best_epoch})
    best = torch.load(model_path, map_location="cpu", weights_only=False)
    model.load_state_dict(best["model"])
    model.eval()
    return TrainResult(model, history, best_epoch, model_path, config)


def validate(vectors: MovieVectors, eval_data: Any, val_users: int | None, seed: int) -> dict[str, float]:
    """The epoch's validation: HR/NDCG@10 with protocol (a) ("latest"), against every movie, for all validation
    users or a fixed sample of `val_users` of them (the same `seed`, the same users), ranked in batches so
    that memory stays at a batch of users x the catalogue. Adds `n_users` and the standard errors."""
    from helpers.evaluation.protocols import summarise

    return summarise(validation_hits(vectors, eval_data, val_users, seed))


def validation_hits(vectors: MovieVectors, eval_data: Any, val_users: int | None, seed: int) -> pd.DataFrame:
    """What `validate` averages: each validation user's HR/NDCG/Recall@10 (rows: user node indices)."""
    from helpers.evaluation.protocols import per_user_values
    from helpers.evaluation.scorers import query_candidate_scorer

    scorer = query_candidate_scorer(vectors.query, vectors.candidate)
    batch = max(16, min(512, VAL_SCORES_PER_BATCH // max(vectors.query.shape[0], 1)))
    return per_user_values(scorer, eval_data, "val", "latest", sample=val_users, seed=seed, batch_size=batch)


def train_aside(gd, settings: Settings, config: TrainConfig) -> TrainResult:
    """`config` trained from scratch in a temporary artifacts folder, deleted afterwards: the model comes back in
    memory and `settings`' own model, history and metrics are not touched. For trials beside the real run."""
    with tempfile.TemporaryDirectory(prefix="pinsage-aside-") as scratch:
        return train_pinsage(gd, dataclasses.replace(settings, artifacts_root=Path(scratch)), config, resume=False,
                             progress=False)


def compare_configs(gd, settings: Settings, configs: Mapping[str, TrainConfig], reference: str | None = None,
                    val_users: int | None = None) -> pd.DataFrame:
    """Each of `configs` trained aside (`train_aside`) and validated on the same users (`validation_hits`, the
    settings' seed): rows by name, columns `val HR@10`, `± stderr`, `val NDCG@10`, `n` (the users), `train
    seconds` (the epochs' training steps, their validation left out) and `eval seconds` (every movie's vectors
    inferred and the users ranked). With `reference` (one of the names), also the paired comparison of each row
    with it, user by user (MEASURING.md): `difference` (mean per-user HR@10 minus the reference's), `low` and
    `high` (its 95% interval, `helpers.evaluation.slices.paired_difference`) and `verdict` ("above", "tie",
    "below"; "reference" on its own row)."""
    from helpers.evaluation.protocols import prepare_evaluation, summarise
    from helpers.evaluation.slices import paired_difference

    if reference is not None and reference not in configs:
        raise TrainingError(f"reference={reference!r} is none of the configs: {', '.join(configs)}")
    eval_data = prepare_evaluation(gd)
    rows, hits = {}, {}
    for name, config in configs.items():
        run = train_aside(gd, settings, config)
        train_seconds = sum(h["seconds"] - h["val_seconds"] for h in run.history)  # the steps, not their validation
        started = time.perf_counter()
        vectors = infer_movie_vectors(run.model, gd, seed=settings.seed)
        per_user = validation_hits(vectors, eval_data, val_users, settings.seed)
        val, hits[name] = summarise(per_user), per_user["hr@10"]
        rows[name] = {"val HR@10": val["hr@10"], "± stderr": val["hr@10_stderr"], "val NDCG@10": val["ndcg@10"],
                      "n": int(val["n_users"]), "train seconds": train_seconds,
                      "eval seconds": time.perf_counter() - started}
    table = pd.DataFrame.from_dict(rows, orient="index")
    if reference is not None:
        paired = {name: paired_difference(hits[name], hits[reference]) for name in table.index}  # user by user
        for column in ("difference", "low", "high", "verdict"):
            table[column] = [getattr(paired[name], column) for name in table.index]
        table.loc[reference, "verdict"] = "reference"
    return table


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

