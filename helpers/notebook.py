"""`init_notebook()`: the one set-up call at the top of every notebook (settings, seeds, threads, display)."""
from __future__ import annotations

import os

from helpers.config import Settings, get_settings
from helpers.runtime import seed_everything, set_threads


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
