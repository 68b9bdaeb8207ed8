"""Notebook 07 (the movie picker, interactive): its shape, and what it does when run in Jupyter. Executed with
nbclient over the sample stores. The page that Voila serves is its own notebook (tests/test_movie_picker_page.py)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from helpers.stages import SERIES

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / next(stage.notebook for stage in SERIES if stage.name == "movie_picker")
STATE_CELL = 'import json; print(json.dumps({"liked": picker.liked, "results": len(picker.last_results)}))'


def code_cells(nb: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [cell for cell in nb.cells if cell.cell_type == "code"]


def test_notebook_is_committed_clean_and_shaped_like_the_series():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    cells = code_cells(nb)
    assert cells[0].source == "from helpers.notebook import init_notebook\n\nsettings = init_notebook()"
    assert all(cell.outputs == [] and cell.execution_count is None for cell in cells)
    assert nb.cells[0].cell_type == "markdown" and "Learning objectives" in nb.cells[0].source
    assert nb.cells[0].source.startswith("# 07 · ")
    assert "Recap" in nb.cells[-1].source and "Next steps" in nb.cells[-1].source
    driving = [cell.source for cell in cells if "recommend_button.click()" in cell.source]
    assert len(driving) == 1 and "add_button.click()" in driving[0] and "search_box.value" in driving[0]
    # the interactive notebook only: no branches for Voila (the page is movie_picker_page.ipynb)
    sources = "\n".join(cell.source for cell in cells)
    assert "on_page" not in sources and "running_in_voila" not in sources and "PAGE_WAIT_SECONDS" not in sources


def run_notebook(stores_settings, monkeypatch) -> tuple[list[nbformat.NotebookNode], dict]:
    """Execute notebook 07 (plus one cell that prints the picker's state) in a fresh kernel, as in Jupyter."""
    for key in [k for k in os.environ if k.startswith(("RECSYS_", "VOILA_"))]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("RECSYS_DATASET", "sample")
    monkeypatch.setenv("RECSYS_ARTIFACTS", str(stores_settings.artifacts_root))
    monkeypatch.setenv("RECSYS_CACHE", str(stores_settings.cache_dir))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(STATE_CELL))
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}
                   ).execute()
    cells = code_cells(nb)
    state = json.loads(cells[-1].outputs[0]["text"])
    return cells[:-1], state


@pytest.mark.slow
def test_in_jupyter_the_notebook_drives_the_picker_end_to_end(stores_settings, monkeypatch):
    cells, state = run_notebook(stores_settings, monkeypatch)
    assert len(state["liked"]) == 3 and state["results"] == 10
    printed = "".join(o.get("text", "") for cell in cells for o in cell.outputs)
    assert "10 recommendations for your 3 liked movie(s)" in printed
    assert "No title contains" in printed and "Add at least one movie" in printed  # the bad-input cell
    assert any("image/png" in o.get("data", {}) for cell in cells for o in cell.outputs)  # the plot
