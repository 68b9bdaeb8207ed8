"""Every notebook is committed clean and follows the series' structure."""
from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks() -> None:
    assert NOTEBOOKS, "no notebooks/*.ipynb found"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_outputs_or_execution_counts(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    dirty = [i for i, cell in enumerate(nb.cells) if cell.cell_type == "code"
             and (cell.get("outputs") or cell.get("execution_count") is not None)]
    assert not dirty, f"{path.name}: cells {dirty} carry outputs or execution counts; clear them before committing"
    assert "widgets" not in nb.metadata, f"{path.name}: saved widget state in the metadata; clear it"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_structure(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    markdown = [c.source for c in nb.cells if c.cell_type == "markdown"]
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# "), \
        f"{path.name}: the first cell must be a markdown title"
    head = " ".join(c.source for c in nb.cells[:3] if c.cell_type == "markdown")
    assert re.search(r"learning objectives", head, re.IGNORECASE), f"{path.name}: learning objectives up front"
    assert re.search(r"\brecap\b", " ".join(markdown[-2:]), re.IGNORECASE), f"{path.name}: a recap at the end"
    assert re.search(r"\bnext\b", " ".join(markdown[-2:]), re.IGNORECASE), f"{path.name}: the next step at the end"
    assert code and "init_notebook()" in code[0], f"{path.name}: first code cell must call init_notebook()"
    direct = [s for s in code if re.search(r"^\s*(import dgl\b|from dgl\b)", s, re.MULTILINE)]
    assert not direct, f"{path.name}: import DGL through `from helpers.dgl_import import dgl`"
