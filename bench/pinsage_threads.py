"""CPU threads for PinSage training: milliseconds per training step with 1 or 2 OpenMP / PyTorch threads.

    OMP_NUM_THREADS=1 .venv/bin/python -m bench.pinsage_threads --dataset ml-1m --data-dir ../shared/movielens/ml-1m

DGL's wheel links its own OpenMP runtime next to PyTorch's; OMP_NUM_THREADS is read when the libraries load, so
each setting runs in a fresh subprocess, one after the other, the same steps with the same seed. Each prints
the time of sampling (DGL walks, or the neighbourhood pool) and of the model step (forward, backward, Adam)
separately. The machine's load average is printed too: on a shared machine only ratios within one run mean much.
The rows also go to `--out` as JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from bench.report import add_out_option, start, write_json

SETTINGS = [(1, 1), (2, 2), (1, 2), (2, 1)]  # (OMP_NUM_THREADS, torch.set_num_threads)


def measure(dataset: str, data_dir: str | None, steps: int, warmup: int, pool: int, threads: int) -> dict:
    """Runs inside the subprocess: time `steps` training steps of the default TrainConfig."""
    import torch

    from helpers.config import get_settings
    from helpers.data.loader import load_movielens
    from helpers.graph.build import build_graph
    from helpers.runtime import seed_everything
    from helpers.training.config import TrainConfig
    from helpers.training.loop import build_model
    from helpers.training.model import max_margin_loss
    from helpers.training.optimiser import build_optimiser
    from helpers.training.sampling import EngagementPositives, NegativeSampler, NeighbourSampler, pair_batch

    torch.set_num_threads(threads)
    settings = get_settings(dataset=dataset)
    seed_everything(settings.seed)
    gd = build_graph(load_movielens(dataset, data_dir, cache_dir=settings.cache_dir))
    config = TrainConfig.for_dataset(dataset, neighbour_pool=pool)
    model = build_model(gd, config)
    optimizer = build_optimiser(model, config)
    positives = EngagementPositives(gd.train)
    negatives = NegativeSampler(gd.n_movies, config.alternatives.hard_ranks)
    sampler = NeighbourSampler(gd.graph, config.layers, config.spec, draws=config.neighbour_pool)
    sampler.refresh()
    generator = torch.Generator().manual_seed(0)
    sample_s = model_s = 0.0
    for step in range(warmup + steps):
        t0 = time.perf_counter()
        heads, tails = positives.sample(config.batch_size, generator)
        negs = negatives.sample(heads, config.alternatives.negatives, 0.0, generator)
        batch = pair_batch(sampler, heads, tails, negs)
        t1 = time.perf_counter()
        h = model(batch.neighbourhood)
        loss = max_margin_loss(h, batch.heads, batch.tails, batch.negatives, config.alternatives.margin,
                               config.alternatives.in_batch_negatives)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        t2 = time.perf_counter()
        if step >= warmup:
            sample_s += t1 - t0
            model_s += t2 - t1
    return {"sample_ms": 1000 * sample_s / steps, "model_ms": 1000 * model_s / steps}


def main(argv: list[str] | None = None) -> None:
    record = start("bench.pinsage_threads", argv)
    parser = argparse.ArgumentParser(prog="python -m bench.pinsage_threads", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="ml-1m")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--pool", type=int, default=None, help="neighbour_pool (default: TrainConfig's)")
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    add_out_option(parser, "pinsage_threads")
    args = parser.parse_args(argv)
    if args.pool is None:
        from helpers.training.config import TrainConfig

        args.pool = TrainConfig.for_dataset(args.dataset).neighbour_pool
    if args.child is not None:
        print(json.dumps(measure(args.dataset, args.data_dir, args.steps, args.warmup, args.pool, args.child)))
        return
    print(f"dataset {args.dataset}, {args.steps} steps after {args.warmup} warm-up, neighbour_pool={args.pool}, "
          f"load average before: {os.getloadavg()[0]:.2f}")
    print(f"{'OMP_NUM_THREADS':>15} {'torch threads':>13} {'sampling ms':>11} {'model ms':>9} {'step ms':>8}")
    base = None
    rows = []
    for omp, threads in SETTINGS:
        env = {**os.environ, "OMP_NUM_THREADS": str(omp), "DGLBACKEND": "pytorch"}
        command = [sys.executable, "-m", "bench.pinsage_threads", "--dataset", args.dataset, "--steps", str(args.steps),
                   "--warmup", str(args.warmup), "--pool", str(args.pool), "--child", str(threads)]
        if args.data_dir:
            command += ["--data-dir", args.data_dir]
        out = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout
        result = json.loads(out.strip().splitlines()[-1])
        step = result["sample_ms"] + result["model_ms"]
        base = base or step
        rows.append({"omp_num_threads": omp, "torch_threads": threads, **result, "step_ms": step})
        print(f"{omp:>15} {threads:>13} {result['sample_ms']:>11.1f} {result['model_ms']:>9.1f} {step:>8.1f}"
              f"  ({step / base:.2f}x the first row)")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    write_json(args.out, {"dataset": args.dataset, "steps": args.steps, "warmup": args.warmup, "pool": args.pool,
                          "rows": rows, "load_average_after": os.getloadavg()[0]}, record)


if __name__ == "__main__":
    main()
