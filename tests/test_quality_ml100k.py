"""Real-data quality regression: PinSage on ML-100K against item-kNN, deterministic (fixed steps and seed).

Cost: about STEPS_COST_S seconds on one thread of the 2-core CI machine (load + graph ~3 s, training
EPOCHS x STEPS steps with a validation per epoch, evaluation). Skipped, with the reason, only when the shared
copy of ML-100K is absent (`../shared/movielens/ml-100k` beside the project, or `RECSYS_TEST_ML100K_DIR`).

Why these thresholds: measured with the final defaults on this copy (docs/benchmarks.md, "CI quality
regression test"), PinSage reached val HR@10 MEASURED_PINSAGE with this very run against item-kNN's
MEASURED_KNN (protocol a, 943 users). One standard error of an HR@10 near 0.15 on 943 users is
sqrt(0.15 * 0.85 / 943) = 0.012. The test fails when PinSage falls more than MARGIN below item-kNN: a model
that stops learning (the untrained model scores far lower) or a broken objective fails it; seed noise does not.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from helpers.config import PROJECT_ROOT, get_settings

EPOCHS, STEPS = 4, 250
MARGIN = 0.02
SEED = 42


def ml100k_dir() -> Path:
    return Path(os.environ.get("RECSYS_TEST_ML100K_DIR") or PROJECT_ROOT.parent / "shared" / "movielens" / "ml-100k")


@pytest.fixture(scope="module")
def ml100k_run(tmp_path_factory):
    folder = ml100k_dir()
    if not (folder / "u.data").exists():
        pytest.skip(f"the shared copy of ML-100K is absent ({folder}/u.data): put MovieLens 100K there or point "
                    "RECSYS_TEST_ML100K_DIR at it to run the real-data quality regression test")
    from helpers.data import load_movielens
    from helpers.evaluate import ItemKNNBaseline, evaluate_scores
    from helpers.graph import build_graph
    from helpers.train import TrainConfig, infer_movie_vectors, train_pinsage, validation_metrics

    settings = get_settings({}, dataset="ml-100k", seed=SEED, artifacts_root=tmp_path_factory.mktemp("ml100k"))
    gd = build_graph(load_movielens("ml-100k", folder, cache_dir=settings.cache_dir, seed=SEED))
    config = TrainConfig.for_dataset("ml-100k", max_epochs=EPOCHS, steps_per_epoch=STEPS, time_budget_s=None)
    result = train_pinsage(gd, settings, config, resume=False, progress=False)
    vectors = infer_movie_vectors(result.model, gd, seed=SEED)
    return {"pinsage": validation_metrics(vectors, gd, "val")["hr@10"],
            "item-knn": evaluate_scores(ItemKNNBaseline().fit(gd), gd, "val", "latest")["hr@10"],
            "history": result.history}


@pytest.mark.slow
def test_pinsage_is_not_below_item_knn_on_ml100k(ml100k_run):
    ours, theirs = ml100k_run["pinsage"], ml100k_run["item-knn"]
    assert ours >= theirs - MARGIN, (f"ML-100K val HR@10: PinSage {ours:.4f} fell more than {MARGIN} below item-kNN "
                                     f"{theirs:.4f} ({EPOCHS} x {STEPS} steps, seed {SEED})")
