"""Notebook 07 (the movie picker, interactive): its shape, and what it does when run in Jupyter. Executed with
nbclient over the sample stores. The page that Voila serves is its own notebook (tests/test_movie_picker_page.py)."""
from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from helpers.stages import SERIES

from conftest import code_cells, run_picker_notebook

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / next(stage.notebook for stage in SERIES if stage.name == "movie_picker")


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


@pytest.mark.slow
def test_in_jupyter_the_notebook_drives_the_picker_end_to_end(stores_settings, monkeypatch):
    cells, state = run_picker_notebook(NOTEBOOK, stores_settings, monkeypatch)
    assert len(state["liked"]) == 3 and state["results"] == 10
    printed = "".join(o.get("text", "") for cell in cells for o in cell.outputs)
    assert "10 recommendations for your 3 liked movie(s)" in printed
    assert "No title contains" in printed and "Add at least one movie" in printed  # the bad-input cell
    assert any("image/png" in o.get("data", {}) for cell in cells for o in cell.outputs)  # the plot
