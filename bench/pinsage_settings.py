"""PinSage settings side by side: the same number of training steps for each variant of `TrainConfig`.

    OMP_NUM_THREADS=1 .venv/bin/python -m bench.pinsage_settings --dataset ml-1m \
        --data-dir ../shared/movielens/ml-1m --epochs 6 --steps 500 \
        --variant 'default={}' --variant 'random-walk positives={"positives": "random_walk"}'

Each variant is `name=JSON` with knobs of `TrainConfig` or of its `alternatives` (by name, routed by
`TrainConfig.for_dataset`) that differ from the dataset's defaults, applied over the knobs of `--train-config` that
every variant shares. A fixed number of steps (not a time budget) makes the variants comparable on a shared, noisy
machine; the wall time of each is printed as well. `--time-budget S` trains each variant for S seconds instead (the
10-minute check). Figures: validation and test HR@10 / NDCG@10 (protocol a: the user's latest training movie) of the
best epoch by validation HR@10, recomputed after layer-wise inference with a fixed seed, and validation HR@10 with
the history query (protocol b: the mean of the last 10 movies' query vectors, the picker's query).
`--baselines` adds the baselines' rows (transitions, transitions [after], item-kNN and `next-movie [no graph]`
trained for `--next-movie-steps` steps), so that a run holds its own reference figures; `--no-pinsage` prints only
those. `--seed 1 2 3` repeats everything for each seed, one after the other.
`--draws 1 4` infers each variant's vectors once per value (`infer_movie_vectors(.., draws=N)`: neighbourhood
draws averaged, no retraining), each scored as its own row, `name [draws=4]` (`name` alone for 1).
`--paired` keeps every row's per-user HR@10 and NDCG@10 on val and test (protocol a) and compares each row with
the reference row, the first variant's first `--draws` row (the first baseline with `--no-pinsage`), on every
slice of `helpers.evaluation.slices` with `paired_slices`: n, the paired difference (row minus reference), its 95%
interval, the smallest detectable difference and the verdict at `--margin` (non-inferior when the interval's low
end is above -margin). With several seeds each row's per-user values are averaged over the seeds first.
Artifacts go to a temporary folder that is deleted afterwards; the rows (and the paired records) also go to
`--out` as JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.report import add_out_option, start, write_json

if TYPE_CHECKING:
    import pandas as pd


BASELINES = ["transitions", "transitions [after]", "item-knn", "next-movie [no graph]"]


def parse_variant(text: str) -> tuple[str, dict]:
    name, _, overrides = text.partition("=")
    if not name or not overrides:
        raise SystemExit(f"--variant {text!r}: write it as name=JSON, e.g. 'bigger={{\"hidden\": 128}}'")
    try:
        return name, json.loads(overrides)
    except json.JSONDecodeError as error:
        raise SystemExit(f"--variant {text!r}: the JSON part does not parse ({error})") from None


def row_name(variant: str, draws: int) -> str:
    """The printed name of `variant`'s row whose vectors average `draws` neighbourhood draws."""
    return variant if draws == 1 else f"{variant} [draws={draws}]"


def check_rows(names: list[str], draws: list[int], paired: bool) -> None:
    """Clear errors for rows that `--paired` could not tell apart or pair."""
    if any(d < 1 for d in draws):
        raise SystemExit(f"--draws {' '.join(map(str, draws))}: every value must be at least 1")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise SystemExit(f"rows named twice: {', '.join(repeated)}; give each --variant (and --draws value) "
                         "its own name")
    if paired and len(names) < 2:
        raise SystemExit("--paired needs at least two rows: add a --variant, a --draws value or --baselines")


def paired_comparisons(per_user: dict[tuple[str, str], list[pd.DataFrame]], gd: Any, reference: str,
                       names: list[str], margin: float) -> list[dict[str, Any]]:
    """Each of `names` minus `reference` on every slice of val and test, HR@10 and NDCG@10 (`paired_slices` at
    `margin`, per-user values averaged over the seeds first): printed, and returned as JSON records."""
    import pandas as pd

    from helpers.evaluation.metrics import K_DEFAULT
    from helpers.evaluation.slices import comparison_records, paired_slices

    means = {key: pd.concat(frames).groupby(level="user", sort=False).mean() for key, frames in per_user.items()}
    metrics = (f"hr@{K_DEFAULT}", f"ndcg@{K_DEFAULT}")
    print(f"\npaired: each row minus {reference!r} per slice (protocol a), 95% interval over users, "
          f"smallest detectable difference, verdict at margin {margin}")
    print(f"{'split':<5} {'row':<28} {'slice':<26} {'n':>5}" + "".join(
        f"  {metric + ' diff [95% interval]':>33} {'detect':>6} {'verdict':<12}" for metric in metrics))
    records: list[dict[str, Any]] = []
    for split in ("val", "test"):
        for name in names:
            if name == reference:
                continue
            tables = {metric: paired_slices(means, gd, name, reference, split, metric, margin=margin)
                      for metric in metrics}
            for slice_name in tables[metrics[0]].index:
                cells = []
                for table in tables.values():
                    r = table.loc[slice_name]
                    cells.append(f"  {r[f'{name} - {reference}']:>+14.4f} [{r['low']:+.4f}, {r['high']:+.4f}] "
                                 f"{r['detectable']:>6.4f} {r['verdict']:<12}")
                n = int(tables[metrics[0]].loc[slice_name, "n"])
                print(f"{split:<5} {name:<28} {slice_name:<26} {n:>5}" + "".join(cells), flush=True)
            for metric, table in tables.items():
                records += comparison_records(table, name, reference, split, metric)
    return records


def main(argv: list[str] | None = None) -> None:
    record = start("bench.pinsage_settings", argv)
    parser = argparse.ArgumentParser(prog="python -m bench.pinsage_settings", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="ml-1m")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--steps", type=int, default=500, help="steps per epoch")
    parser.add_argument("--variant", action="append", default=[], help="name=JSON overrides (repeatable)")
    parser.add_argument("--train-config", type=json.loads, default={}, metavar="JSON",
                        help="TrainConfig fields that every variant starts from, e.g. '{\"loss\": \"max_margin\"}'")
    parser.add_argument("--time-budget", type=float, default=None,
                        help="train each variant for this many seconds (up to 100 epochs) instead of --epochs")
    parser.add_argument("--seed", type=int, nargs="+", default=[42], help="one or more seeds, run one after the other")
    parser.add_argument("--baselines", action="store_true", help="also print the baselines' rows")
    parser.add_argument("--no-pinsage", action="store_true", help="only the baselines (with --baselines)")
    parser.add_argument("--next-movie-steps", type=int, default=None,
                        help="training steps of next-movie [no graph] (default: fit_baselines' for the dataset)")
    parser.add_argument("--draws", type=int, nargs="+", default=[1],
                        help="neighbourhood draws averaged at inference: one row per value for each variant")
    parser.add_argument("--paired", action="store_true",
                        help="per slice, each row against the first variant's first --draws row: paired intervals")
    parser.add_argument("--margin", type=float, default=0.005,
                        help="non-inferiority margin of --paired's verdicts (default 0.005)")
    add_out_option(parser, "pinsage_settings")
    args = parser.parse_args(argv)
    variants = [] if args.no_pinsage else [parse_variant(v) for v in args.variant] or [("default", {})]
    variants = [(name, {**args.train_config, **overrides}) for name, overrides in variants]
    baseline_names = BASELINES if args.baselines else []
    pinsage_names = [row_name(name, d) for name, _ in variants for d in args.draws]
    check_rows([*baseline_names, *pinsage_names], args.draws, args.paired)
    if args.margin < 0:
        raise SystemExit(f"--margin {args.margin}: give a margin of 0 or more")

    from helpers.config import get_settings
    from helpers.data.loader import load_movielens
    from helpers.evaluation.baselines import ItemKNNBaseline, TransitionsBaseline
    from helpers.evaluation.protocols import (
        evaluate_scores,
        per_user_values,
        prepare_evaluation,
        summarise,
    )
    from helpers.evaluation.scorers import query_candidate_scorer
    from helpers.graph.build import build_graph
    from helpers.plots import dataset_label
    from helpers.runtime import seed_everything, set_threads
    from helpers.training.baselines import NextMovieBaseline, next_movie_steps_for
    from helpers.training.config import TrainConfig
    from helpers.training.inference import infer_movie_vectors
    from helpers.training.loop import train_pinsage

    with tempfile.TemporaryDirectory(prefix="pinsage-settings-") as folder:
        settings = get_settings(dataset=args.dataset, seed=args.seed[0], artifacts_root=Path(folder))
        set_threads(settings.threads)
        ml = load_movielens(args.dataset, args.data_dir, cache_dir=settings.cache_dir, seed=args.seed[0])
        gd = build_graph(ml)
        length = f"{args.time_budget:.0f} s" if args.time_budget else f"{args.epochs} epochs x {args.steps} steps"
        print(f"{dataset_label(ml)}: {length} per variant, seed(s) {' '.join(map(str, args.seed))}, "
              f"threads {settings.threads}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}; "
              "HR@10 +- standard error over users")
        header = f"{'variant':<28} {'seed':>4} {'val HR@10':>15} {'val NDCG':>8} {'test HR@10':>15} {'test NDCG':>9} " \
                 f"{'hist val HR@10':>15} {'best ep':>7} {'steps':>6} {'seconds':>7} {'ms/step':>7} {'load':>5}"
        print(header, flush=True)
        rows: list[str] = []
        figures: list[dict[str, Any]] = []
        data = prepare_evaluation(gd)
        per_user: dict[tuple[str, str], list[pd.DataFrame]] = {}

        def row(name: str, seed: int, scorer, best: str, steps: int, seconds: float) -> None:
            per_split = {split: per_user_values(scorer, data, split, "latest") for split in ("val", "test")}
            if args.paired:
                for split, values in per_split.items():
                    per_user.setdefault((name, split), []).append(values)
            val, test = (summarise(values) for values in per_split.values())
            history = evaluate_scores(scorer, data, "val", "history")
            hr = [f"{m['hr@10']:.4f} ± {m['hr@10_stderr']:.4f}" for m in (val, test, history)]
            load = os.getloadavg()[0]
            figures.append({"variant": name, "seed": seed, "val": val, "test": test, "history_val": history,
                            "best_epoch": best, "steps": steps, "seconds": seconds, "load_average": load})
            rows.append(f"{name:<28} {seed:>4} {hr[0]:>15} {val['ndcg@10']:>8.4f} {hr[1]:>15} {test['ndcg@10']:>9.4f} "
                        f"{hr[2]:>15} {best:>7} {steps:>6} {seconds:>7.0f} {1000 * seconds / max(steps, 1):>7.1f} "
                        f"{load:>5.1f}")
            print(rows[-1], flush=True)

        for seed in args.seed:
            settings = get_settings(dataset=args.dataset, seed=seed, artifacts_root=Path(folder))
            if args.baselines:
                for name, baseline in zip(BASELINES[:3], (TransitionsBaseline(), TransitionsBaseline(direction="after"),
                                                          ItemKNNBaseline()), strict=True):
                    row(name, seed, baseline.fit(gd), "-", 0, 0.0)
                steps = args.next_movie_steps or next_movie_steps_for(args.dataset)
                next_movie = NextMovieBaseline(steps=steps, seed=seed).fit(gd)
                row(BASELINES[3], seed, next_movie, "-", next_movie.steps, next_movie.seconds)
            for name, overrides in variants:
                seed_everything(seed)
                budget = {"max_epochs": 100, "time_budget_s": args.time_budget} if args.time_budget else \
                    {"max_epochs": args.epochs, "time_budget_s": None}
                config = TrainConfig.for_dataset(args.dataset, **{**overrides, **budget, "steps_per_epoch": args.steps})
                started = time.perf_counter()
                result = train_pinsage(gd, settings, config, resume=False, progress=False)
                seconds = time.perf_counter() - started
                steps = sum(h["steps"] for h in result.history)
                for draws in args.draws:
                    vectors = infer_movie_vectors(result.model, gd, seed=seed, draws=draws)
                    row(row_name(name, draws), seed, query_candidate_scorer(vectors.query, vectors.candidate),
                        str(result.best_epoch), steps, seconds)
        print("\n" + header + "\n" + "\n".join(rows))
        if args.paired:
            names = [*baseline_names, *pinsage_names]
            reference = pinsage_names[0] if pinsage_names else names[0]
            paired = {"reference": reference, "margin": args.margin, "seeds": args.seed,
                      "comparisons": paired_comparisons(per_user, gd, reference, names, args.margin)}
    figures_json = {"dataset": args.dataset, "variants": [{"name": n, "overrides": o} for n, o in variants],
                    "rows": figures}
    if args.draws != [1]:
        figures_json["draws"] = args.draws
    if args.paired:
        figures_json["paired"] = paired
    write_json(args.out, figures_json, record)


if __name__ == "__main__":
    main()
