"""The Voila page (`helpers.stages.PAGE_NOTEBOOK`, served by scripts/page.sh): run as Voila runs it, it shows an
empty picker and nothing else; and `open_engine`, which it calls, when the Milvus Lite file is held or the stores
are missing. Executed with nbclient over the sample stores (tests/test_browser.py serves it with Voila itself)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from helpers.engine.startup import StoresUnavailableError, open_engine
from helpers.stages import PAGE_NOTEBOOK, notebook_for

from conftest import code_cells, run_picker_notebook, sample_settings

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / PAGE_NOTEBOOK
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def test_page_is_committed_clean():
    nb = nbformat.read(PAGE, as_version=4)
    nbformat.validate(nb)
    assert all(cell.outputs == [] and cell.execution_count is None for cell in code_cells(nb))
    assert "PAGE_WAIT_SECONDS" in code_cells(nb)[-1].source  # it waits for a file a closed page still holds


@pytest.mark.slow
def test_served_as_a_page_it_shows_only_an_empty_picker(stores_settings, monkeypatch):
    """The page run as Voila runs it (VOILA_KERNEL_ID in the kernel's environment), plus one cell that prints
    the picker's state: the picker is empty, and it is the page's only output (init_notebook prints nothing)."""
    cells, state = run_picker_notebook(PAGE, stores_settings, monkeypatch, voila=True)
    assert state == {"liked": [], "results": 0}
    widgets = [o for cell in cells for o in cell.outputs if WIDGET_VIEW in o.get("data", {})]
    others = [o for cell in cells for o in cell.outputs if WIDGET_VIEW not in o.get("data", {})]
    assert len(widgets) == 1 and others == []  # the picker, nothing else (not even init_notebook's settings line)


HOLD_FILE = """
import sys, time
from helpers.config import get_settings
from helpers.engine.engine import RecommendationEngine
engine = RecommendationEngine(get_settings())
print("holding", flush=True)
time.sleep(float(sys.argv[1]))
engine.close()
"""


def hold_lite_file(stores_settings, seconds: float) -> subprocess.Popen:
    """Another process (as a notebook kernel or a closed page's kernel would) holding the Milvus Lite file."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECSYS_")}
    env.update(RECSYS_DATASET="sample", RECSYS_ARTIFACTS=str(stores_settings.artifacts_root),
               RECSYS_CACHE=str(stores_settings.cache_dir))
    holder = subprocess.Popen([sys.executable, "-c", HOLD_FILE, str(seconds)], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "holding"
    return holder


def test_a_held_lite_file_gives_a_short_clear_error(stores_settings, capfd):
    holder = hold_lite_file(stores_settings, 60)
    try:
        with pytest.raises(StoresUnavailableError, match="one process per file") as caught:
            open_engine(stores_settings)
        assert "RECSYS_MILVUS_URI=http://127.0.0.1:19530" in str(caught.value)
        assert caught.value._render_traceback_() == [f"StoresUnavailableError: {caught.value}"]  # no stack shown
        assert "Traceback" not in capfd.readouterr().err  # Milvus Lite's own log of the failed open is muted
    finally:
        holder.terminate()
        holder.wait(timeout=30)


def test_the_page_waits_for_a_lite_file_that_is_released_soon(stores_settings):
    holder = hold_lite_file(stores_settings, 4)
    try:
        engine = open_engine(stores_settings, wait_seconds=60, poll_seconds=0.5)
        try:
            assert engine.health()["ok"]
        finally:
            engine.close()
    finally:
        holder.wait(timeout=30)


def test_missing_stores_fail_at_once_and_name_the_stores_notebook(tmp_path):
    start = time.monotonic()
    with pytest.raises(StoresUnavailableError, match=re.escape(notebook_for("vectors"))):
        open_engine(sample_settings(tmp_path), wait_seconds=60)
    assert time.monotonic() - start < 30  # no waiting: the file opened, it is just empty
