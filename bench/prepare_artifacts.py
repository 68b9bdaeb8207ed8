"""The artifacts of notebooks 02-04 (graph, PinSage embeddings, sequence model) without running the notebooks.

Each step makes the library calls its notebook makes and saves what it saves, with a manifest: notebook 02's
`build_graph` + `save_graph`, notebook 03's `train_pinsage` + `infer_movie_vectors` + `save_movie_embeddings`
(without its evaluation, baselines and plots) and notebook 04's `train_sequence_model` + `save_sequence_model`,
each model trained for the budget given (default: the preset's, as in the notebooks). Everything goes under
RECSYS_ARTIFACTS, where the engine and `bench.recommend_latency` read it; minutes on ML-1M, not the notebooks'
time. For the latency bench on ML-1M:

    .venv/bin/python -m bench.prepare_artifacts --dataset ml-1m --data-dir ../shared/movielens/ml-1m \\
        --pinsage-budget 90 --sequence-budget 60
"""
from __future__ import annotations

import argparse
import time

from helpers.config import get_settings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.prepare_artifacts", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", help="sample, ml-100k or ml-1m (default: RECSYS_DATASET)")
    parser.add_argument("--data-dir", help="the MovieLens folder (default: RECSYS_DATA_DIR)")
    parser.add_argument("--pinsage-budget", type=float, help="PinSage training seconds (default: the preset's)")
    parser.add_argument("--sequence-budget", type=float,
                        help="sequence model training seconds (default: the preset's)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)
    for name in ("pinsage_budget", "sequence_budget"):
        if getattr(args, name) is not None and getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be a positive number of seconds")

    from helpers.data.loader import load_dataset
    from helpers.graph.build import build_graph, graph_path, save_graph
    from helpers.presets import budgets_for
    from helpers.runtime import seed_everything, set_threads
    from helpers.sequence.artifact import save_sequence_model
    from helpers.sequence.config import SequenceConfig
    from helpers.sequence.train import train_sequence_model
    from helpers.training.config import TrainConfig
    from helpers.training.embeddings import load_movie_embeddings, save_movie_embeddings
    from helpers.training.inference import infer_movie_vectors
    from helpers.training.loop import train_pinsage

    settings = get_settings(dataset=args.dataset, data_dir=args.data_dir)
    set_threads(settings.threads)
    seed_everything(settings.seed)
    settings.artifacts_dir.mkdir(parents=True, exist_ok=True)
    print(f"dataset={settings.dataset} seed={settings.seed} threads={settings.threads} "
          f"artifacts={settings.artifacts_dir}")

    started = time.perf_counter()  # notebook 02
    gd = build_graph(load_dataset(settings))
    print(f"graph: {gd.n_users:,} users, {gd.n_movies:,} movies, {len(gd.train):,} training ratings -> "
          f"{save_graph(gd, settings)} ({time.perf_counter() - started:.0f} s)")
    budgets = budgets_for(settings, gd.n_movies, gd.n_users)

    started = time.perf_counter()  # notebook 03
    overrides = budgets.train_overrides()
    if args.pinsage_budget is not None:
        overrides["time_budget_s"] = args.pinsage_budget
    config = TrainConfig.for_dataset(settings.dataset, **overrides)
    result = train_pinsage(gd, settings, config, resume=False, progress=not args.quiet)
    vectors = infer_movie_vectors(result.model, gd, seed=settings.seed)
    saved = save_movie_embeddings(settings, gd.movie_ids, vectors.candidate, query_vectors=vectors.query,
                                  inputs={"graph": graph_path(settings)},
                                  extra={"best_epoch": result.best_epoch, "train_config": config.to_dict()})
    print(f"PinSage: best epoch {result.best_epoch}, budget {config.time_budget_s} s -> {saved} "
          f"({time.perf_counter() - started:.0f} s)")

    started = time.perf_counter()  # notebook 04
    sequence_overrides = budgets.sequence_overrides()
    if args.sequence_budget is not None:
        sequence_overrides["time_budget_s"] = args.sequence_budget
    sequence_config = SequenceConfig.for_dataset(settings.dataset, **sequence_overrides)
    set_threads(settings.sequence_threads)  # notebook 04 trains it so (no DGL there)
    sequence = train_sequence_model(gd, load_movie_embeddings(settings), sequence_config, seed=settings.seed,
                                    progress=not args.quiet)
    saved = save_sequence_model(settings, sequence.model, gd.movie_ids, sequence.history, sequence.best_step,
                                inputs={"graph": graph_path(settings)})
    print(f"sequence model: best step {sequence.best_step}, val HR@10 {sequence.best['val_hr@10']:.3f}, budget "
          f"{sequence_config.time_budget_s} s -> {saved} ({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
