"""`init_notebook()`: the one set-up call at the top of every notebook (settings, seeds, threads, display)."""
from __future__ import annotations

import os
import random

import numpy as np

from helpers.config import Settings, get_settings


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


def running_in_voila() -> bool:
    """True when this kernel was started by Voila to serve a notebook as a page.
    Voila puts `VOILA_KERNEL_ID` (and `VOILA_SERVER_URL`) into the environment of the kernels it starts."""
    return bool(os.environ.get("VOILA_KERNEL_ID") or os.environ.get("VOILA_SERVER_URL"))


def init_notebook(**overrides: object) -> Settings:
    """Read settings, seed everything, set threads and plotting/display defaults; return the settings."""
    import matplotlib
    import pandas as pd

    settings = get_settings(**overrides)
    set_threads(settings.threads)
    seed_everything(settings.seed)
    pd.set_option("display.max_columns", 20)
    pd.set_option("display.width", 120)
    matplotlib.rcParams.update({"figure.figsize": (8, 4), "figure.dpi": 100, "axes.grid": True,
                                "axes.spines.top": False, "axes.spines.right": False})
    settings.artifacts_dir.mkdir(parents=True, exist_ok=True)
    if not running_in_voila():  # a page shows only the picker
        print(f"dataset={settings.dataset} seed={settings.seed} threads={settings.threads} "
              f"artifacts={settings.artifacts_dir}")
    return settings
