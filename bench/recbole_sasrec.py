"""RecBole's SASRec on the split that `bench.peer_sasrec` exported; runs in RecBole's own environment, not the
project's (`bench.peer_sasrec` starts it there, one process per seed):

    <RecBole env>/bin/python -m bench.recbole_sasrec WORK

WORK holds `job.json` (seed, budget, threads, the model's settings), `movies/` (RecBole atomic files: the
training transitions, the validation and test rows, every movie) and `queries_val.npy` / `queries_test.npy` (each
evaluated user's last N movies, -1 padded on the left, latest last). Training is RecBole's `Trainer` with SASRec's
full-softmax loss ("CE"), validated every epoch by RecBole; it stops by time: the training loader yields no batch
past the deadline (so the last epoch may be partial), that epoch is validated, and the callback ends `fit`. The best
epoch by RecBole's validation Hit@10 is kept. Writes `scores_val.npy` / `scores_test.npy` (float32, one row per
query, one column per movie in the project's node order) and `result.json` (RecBole's own evaluation included).
Imports only RecBole, PyTorch and NumPy: the project's `helpers` are not installed there.
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

DATASET = "movies"  # the folder and file stem of the atomic files under WORK


class BudgetSpent(Exception):
    """Raised by the validation callback once the training budget is spent: it ends RecBole's `fit`."""


class UntilDeadline:
    """RecBole's training loader, cut at a deadline: each epoch yields at least one batch, none after it."""

    def __init__(self, loader: Any, deadline: float):
        self.loader, self.deadline, self.steps = loader, deadline, 0

    def __iter__(self) -> Iterator[Any]:
        for index, batch in enumerate(self.loader):
            if index and time.perf_counter() >= self.deadline:
                break
            self.steps += 1
            yield batch

    def __len__(self) -> int:
        return len(self.loader)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.loader, name)


def recbole_config(job: dict[str, Any], work: Path) -> dict[str, Any]:
    """RecBole's settings: the pre-built sequences of `work/movies`, SASRec with `job`'s sizes, CPU."""
    model = job["model"]
    return {
        "data_path": str(work), "benchmark_filename": ["train", "valid", "test"],
        "load_col": {"inter": ["user_id", "item_id_list", "item_id"], "item": ["item_id"]},
        "alias_of_item_id": ["item_id_list"],  # the lists' tokens and the targets' share one id space
        "MAX_ITEM_LIST_LENGTH": job["length"], "eval_args": {"order": "TO", "mode": "full", "group_by": "user",
                                                             "split": {"LS": "valid_and_test"}},
        "loss_type": "CE", "train_neg_sample_args": None,
        "hidden_size": model["dim"], "inner_size": 4 * model["dim"], "n_layers": model["blocks"],
        "n_heads": model["heads"], "hidden_dropout_prob": model["dropout"], "attn_dropout_prob": model["dropout"],
        "train_batch_size": job["train_batch_size"], "learning_rate": job["learning_rate"],
        "epochs": 10**6, "stopping_step": 10**6, "eval_step": 1,
        "metrics": ["Hit", "NDCG"], "topk": [10], "valid_metric": "Hit@10",
        "seed": job["seed"], "reproducibility": True, "use_gpu": False, "show_progress": False, "state": "WARNING",
        "repeatable": True,
        "checkpoint_dir": str(work / "saved"),
    }


def node_columns(dataset: Any, n_movies: int) -> np.ndarray:
    """RecBole's internal item id of each movie node index 0..n_movies-1 (the tokens are the node indices)."""
    return np.asarray(dataset.token2id(dataset.iid_field, [str(m) for m in range(n_movies)]), dtype=np.int64)


def recbole_sequences(queries: np.ndarray, columns: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Queries `[n, N]` (node indices, -1 left padding, latest last) as RecBole holds them: internal ids from
    column 0 on, 0-padded after, `width` wide, and their lengths."""
    valid = queries >= 0
    internal = np.where(valid, columns[np.maximum(queries, 0)], 0)
    order = np.argsort(~valid, axis=1, kind="stable")
    sequences = np.take_along_axis(internal, order, axis=1)
    sequences = np.pad(sequences, ((0, 0), (0, max(0, width - sequences.shape[1]))))[:, :width]
    return sequences, valid.sum(axis=1)


def score_queries(model: Any, queries: np.ndarray, columns: np.ndarray, batch_size: int = 512) -> np.ndarray:
    """SASRec's scores of every movie (node order) after each query."""
    import torch
    from recbole.data.interaction import Interaction

    sequences, lengths = recbole_sequences(queries, columns, model.max_seq_length)
    out = []
    model.eval()
    with torch.no_grad():
        for start in range(0, len(queries), batch_size):
            rows = slice(start, start + batch_size)
            batch = Interaction({model.ITEM_SEQ: torch.from_numpy(sequences[rows]),
                                 model.ITEM_SEQ_LEN: torch.from_numpy(lengths[rows])})
            out.append(model.full_sort_predict(batch).numpy()[:, columns])
    return np.concatenate(out).astype(np.float32)


def check_reading(dataset: Any, loaders: dict[str, Any], queries: dict[str, np.ndarray], columns: np.ndarray,
                  job: dict[str, Any], work: Path) -> None:
    """RecBole read what was exported: every movie, every training row, and validation / test sequences equal to
    our queries once converted (so the scores below answer exactly the queries our evaluation asks)."""
    with open(work / DATASET / f"{DATASET}.train.inter") as rows:
        exported = {"movies": job["n_movies"], "train": sum(1 for _ in rows) - 1}
    read = {"movies": dataset.item_num - 1, "train": len(loaders["train"]._dataset)}
    for split, loader in loaders.items():
        if split == "train":
            continue
        feat = loader._dataset.inter_feat
        sequences = feat[dataset.item_id_list_field].numpy()
        ours = recbole_sequences(queries[split], columns, sequences.shape[1])
        exported[split] = read[split] = len(queries[split])
        if not (np.array_equal(sequences, ours[0]) and np.array_equal(feat[dataset.item_list_length_field].numpy(),
                                                                      ours[1])):
            raise SystemExit(f"RecBole's {split} sequences differ from the exported queries: the export and "
                             "bench.recbole_sasrec disagree on the format")
    if read != exported:
        raise SystemExit(f"RecBole read {read}, the export holds {exported}: it filtered rows or movies")


def run(work: Path) -> dict[str, Any]:
    import recbole
    import torch
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.model.sequential_recommender.sasrec import SASRec
    from recbole.trainer import Trainer
    from recbole.utils import init_seed

    job = json.loads((work / "job.json").read_text())
    torch.set_num_threads(job["threads"])
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"recbole\.")  # its pandas / torch.cuda.amp calls
    started = time.perf_counter()
    config = Config(model="SASRec", dataset=DATASET, config_dict=recbole_config(job, work))
    init_seed(config["seed"], config["reproducibility"])
    dataset = create_dataset(config)
    train, valid, test = data_preparation(config, dataset)
    columns = node_columns(dataset, job["n_movies"])
    queries = {split: np.load(work / f"queries_{split}.npy") for split in ("val", "test")}
    check_reading(dataset, {"train": train, "val": valid, "test": test}, queries, columns, job, work)
    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
    model = SASRec(config, train._dataset).to(config["device"])
    trainer = Trainer(config, model)
    load_seconds = time.perf_counter() - started

    curve: list[dict[str, Any]] = []
    best: dict[str, Any] = {}
    start = time.perf_counter()
    cut = UntilDeadline(train, start + job["budget"])

    def after_validation(epoch: int, score: float) -> None:
        curve.append({"epoch": epoch, "steps": cut.steps, "val_hit@10 (recbole)": score,
                      "loss": trainer.train_loss_dict[epoch], "elapsed": time.perf_counter() - start})
        print(f"  SASRec epoch {epoch}: {cut.steps} steps, {curve[-1]['elapsed']:.1f} s, loss "
              f"{curve[-1]['loss']:.2f}, RecBole's val Hit@10 {score:.4f}", flush=True)
        if trainer.cur_step == 0:  # RecBole's early_stopping just took this epoch as the best
            best.update(epoch=epoch, state=copy.deepcopy(model.state_dict()), result=dict(trainer.best_valid_result))
        if time.perf_counter() >= start + job["budget"]:
            raise BudgetSpent

    try:
        trainer.fit(cut, valid, verbose=False, saved=False, callback_fn=after_validation)
    except BudgetSpent:
        pass
    seconds = time.perf_counter() - start
    model.load_state_dict(best["state"])
    recbole_test = dict(trainer.evaluate(test, load_best_model=False))
    for split, asked in queries.items():
        np.save(work / f"scores_{split}.npy", score_queries(model, asked, columns))
    result = {"recbole": recbole.__version__, "torch": torch.__version__, "numpy": np.__version__,
              "epochs": len(curve), "steps": cut.steps, "best_epoch": best["epoch"], "seconds": round(seconds, 1),
              "load_seconds": round(load_seconds, 1), "max_seq_length": model.max_seq_length,
              "n_items": dataset.item_num - 1, "training_rows": len(train._dataset), "curve": curve,
              "recbole_own": {"val": {k: float(v) for k, v in best["result"].items()},
                              "test": {k: float(v) for k, v in recbole_test.items()}}}
    (work / "result.json").write_text(json.dumps(result, indent=1))
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.recbole_sasrec", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("work", type=Path, help="the folder bench.peer_sasrec wrote")
    work = parser.parse_args(argv).work.resolve()
    sys.argv = sys.argv[:1]  # RecBole's Config reads `--key=value` settings from the command line
    run(work)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
