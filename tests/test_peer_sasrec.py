"""`bench.peer_sasrec`, our side only (RecBole is never installed here): the split exported as RecBole's atomic
files holds exactly the training transitions and the evaluation queries, and imported scores are ranked by our
code for the queries they were made for. Cost: well under a second (a 3-user split, no training)."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from bench.peer_sasrec import DATASET, export_split, load_scores
from bench.recbole_sasrec import DATASET as WORKER_DATASET
from bench.sequence import per_user
from helpers.evaluation.protocols import prepare_evaluation


def tiny_split() -> SimpleNamespace:
    """3 users, 6 movies; user 0 rates movies 2 and 5 in the same second (the frame's order is the split's)."""
    train = pd.DataFrame({"user": [0, 0, 0, 0, 1, 1, 2], "movie": [2, 5, 0, 3, 1, 2, 4],
                          "timestamp": [10, 11, 11, 12, 5, 6, 1]})
    return SimpleNamespace(train=train, val=pd.DataFrame({"user": [0, 1, 2], "movie": [1, 0, 5]}),
                           test=pd.DataFrame({"user": [0, 1, 2], "movie": [4, 3, 0]}),
                           movie_ids=np.arange(100, 106), user_ids=np.arange(3), dataset="tiny")


def atomic(path) -> list[list[str]]:
    return [line.split("\t") for line in path.read_text().splitlines()]


def test_the_export_holds_the_training_transitions_and_the_queries(tmp_path) -> None:
    gd = tiny_split()
    data = prepare_evaluation(gd)
    queries = export_split(gd, data, 2, tmp_path)  # N = 2: the lists keep the last two movies
    folder = tmp_path / DATASET
    assert DATASET == WORKER_DATASET
    header = ["user_id:token", "item_id_list:token_seq", "item_id:token"]
    assert atomic(folder / f"{DATASET}.train.inter") == [
        header, ["0", "2", "5"], ["0", "2 5", "0"], ["0", "5 0", "3"], ["1", "1", "2"]]  # user 2: no transition
    assert atomic(folder / f"{DATASET}.valid.inter") == [header, ["0", "0 3", "1"], ["1", "1 2", "0"], ["2", "4", "5"]]
    assert atomic(folder / f"{DATASET}.test.inter") == [header, ["0", "3 1", "4"], ["1", "2 0", "3"], ["2", "4 5", "0"]]
    assert (folder / f"{DATASET}.item").read_text().split() == ["item_id:token", *map(str, range(6))]
    for split in ("val", "test"):
        assert np.array_equal(queries[split], data.queries(split, data.targets[split][0], "history", 2))
        assert np.array_equal(np.load(tmp_path / f"queries_{split}.npy"), queries[split])
    assert queries["val"][2].tolist() == [-1, 4]  # padding stays on the left, the latest movie last


def test_imported_scores_are_ranked_by_our_code_for_their_own_queries(tmp_path) -> None:
    gd = tiny_split()
    data = prepare_evaluation(gd)
    queries = export_split(gd, data, 2, tmp_path)
    targets = data.targets["val"][1]
    scores = np.zeros((3, 6), dtype=np.float32)
    scores[0, targets[0]] = 1.0                    # user 0: the target first
    scores[1] = np.arange(6)                       # user 1: target 0 below the 3 unseen movies 3, 4, 5
    scores[2, [0, 1, 2, 3]] = 2.0                  # user 2: target 5 below 4 movies
    np.save(tmp_path / "scores_val.npy", scores)
    got = per_user(load_scores(tmp_path, "val", queries["val"], 6), data, "val", "history", 2)
    assert got["hr"].tolist() == [1.0, 1.0, 1.0]
    assert got["ndcg"][0] == 1.0 and got["ndcg"][1] == pytest.approx(1 / np.log2(5))  # fourth of its 4 candidates
    assert got["ndcg"][2] == pytest.approx(1 / np.log2(6))  # movie 4 is seen: 5 sits behind movies 0-3

    scorer = load_scores(tmp_path, "val", queries["val"], 6)
    assert np.array_equal(scorer(queries["val"][[2, 0]]), scores[[2, 0]])  # looked up by query, not by position
    with pytest.raises(SystemExit, match="not exported"):
        scorer(np.array([[3, 3]]))
    np.save(tmp_path / "scores_val.npy", scores[:2])
    with pytest.raises(SystemExit, match="one row per exported query"):
        load_scores(tmp_path, "val", queries["val"], 6)
    scores[1, 1] = np.nan
    np.save(tmp_path / "scores_val.npy", scores)
    with pytest.raises(SystemExit, match="non-finite"):
        load_scores(tmp_path, "val", queries["val"], 6)
