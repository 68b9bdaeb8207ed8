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


def test_prose_quotes_measured_quality_only_from_the_benchmarks() -> None:
    """The combinations are measured by the cells; a figure in the text is one quoted from docs/benchmarks.md, in a
    passage that names its dataset and that source, never one that could contradict the cells' own table."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    benchmarks = (PROJECT_ROOT / "docs" / "benchmarks.md").read_text()
    published = {f"{float(x):.3f}" for x in re.findall(r"\d\.\d{3,}", benchmarks)}
    passages = [p for c in nb.cells if c.cell_type == "markdown" for p in re.split(r"\n\s*\n|\n(?=\s*[*-] )", c.source)]
    quoted = 0
    for passage in passages:
        figures = re.findall(r"\d\.\d{2,}|\d+(?:\.\d+)?x\b", passage)
        if not figures:
            continue
        assert "ML-1M" in passage and "docs/benchmarks.md" in passage, \
            f"a figure without its dataset and source: {passage}"
        unknown = [f for f in figures if f"{float(f.rstrip('x')):.3f}" not in published]
        assert not unknown, f"figures {unknown} are not in docs/benchmarks.md: {passage}"
        quoted += len(figures)
    assert quoted, "the default's choice is quoted with its ML-1M figure"
