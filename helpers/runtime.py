"""The process's random seeds and CPU threads: what every notebook, training run and benchmark sets first."""
from __future__ import annotations

import random

import numpy as np


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy, PyTorch and DGL so a re-run gives the same numbers."""
    import torch

    from helpers.dgl_import import dgl

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    dgl.seed(seed)


def set_threads(threads: int) -> None:
    """Use `threads` CPU threads in PyTorch. DGL ships its own OpenMP runtime; two runtimes spinning on
    the same cores made a training step ~10x slower here, so the default (`RECSYS_THREADS`) is 1."""
    import torch

    torch.set_num_threads(threads)
