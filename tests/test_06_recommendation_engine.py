"""Stage 06 (the recommendation engine): the notebook's shape. The engine itself is tested in tests/test_recommend.py;
scripts/test.sh executes the notebook with nbval on the sample, where its cells hold the engine to
`numpy_recommend` and check the query encoder, the explanations, the filters and the popularity fallback."""
from __future__ import annotations

import re
from pathlib import Path

import nbformat

from helpers.config import PROJECT_ROOT
from helpers.stages import SERIES

STAGE = next(stage for stage in SERIES if stage.name == "recommendation_engine")
NOTEBOOK = PROJECT_ROOT / STAGE.notebook
NEXT = Path(SERIES[SERIES.index(STAGE) + 1].notebook).name  # the picker's notebook


def test_notebook_shape() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    sources = "\n".join(c.source for c in code)
    assert nb.cells[0].cell_type == "markdown" and "Learning objectives" in nb.cells[0].source
    assert nb.cells[0].source.startswith("# 06 · ")
    assert code[0].source.strip() == "from helpers.notebook import init_notebook\n\nsettings = init_notebook()"
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code), "commit without outputs"
    # what the notebook checks by running: the encoder, the engine against brute force, the fallback, the combinations
    assert "engine.encoder.encode(" in sources and "engine.encoder.movie_vectors(" in sources
    assert "numpy_recommend(" in sources and "assert got == want" in sources
    assert "engine.recommend([]" in sources and 'protocol="history"' in sources
    assert ".ingest(" not in sources and "build_stores" not in sources  # the stores are notebook 05's
    assert code[-1].source.strip() == "engine.close()"  # frees the Lite file for the picker's kernel
    assert "Recap" in nb.cells[-1].source and NEXT in nb.cells[-1].source


def test_prose_quotes_no_measured_quality() -> None:
    """The combinations are measured by the cells; the text must not carry figures that could contradict them."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    prose = " ".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert not re.findall(r"\d\.\d{2,}|\d+(?:\.\d+)?x\b", prose), "measured figures in the prose"
