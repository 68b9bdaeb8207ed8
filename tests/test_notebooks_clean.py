"""Every notebook is committed clean; the series (the stage table, `helpers.stages.SERIES`) follows the series'
structure, the Voila page its own; `notebooks/` holds nothing else, and the README, `scripts/run.sh` and
`scripts/test.sh` follow the stage table."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from helpers.stages import PAGE_NOTEBOOK, SERIES, Stage

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / PAGE_NOTEBOOK
NOTEBOOKS = [ROOT / stage.notebook for stage in SERIES] + [PAGE]


def test_notebooks_folder_holds_exactly_the_series_and_the_page() -> None:
    found = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "notebooks").glob("*.ipynb"))
    wanted = sorted([stage.notebook for stage in SERIES] + [PAGE_NOTEBOOK])
    assert found == wanted, ("notebooks/ must hold the stage table's notebooks (helpers/stages.py) and the page, "
                             f"nothing else: stray {sorted(set(found) - set(wanted))}, "
                             f"missing {sorted(set(wanted) - set(found))}")


def test_the_stage_table_is_in_order() -> None:
    numbers = [stage.number for stage in SERIES]
    assert numbers == sorted(set(numbers)), "stage numbers must increase"
    assert len({stage.name for stage in SERIES}) == len(SERIES)
    assert PAGE_NOTEBOOK not in [stage.notebook for stage in SERIES]
    assert not re.match(r"\d", Path(PAGE_NOTEBOOK).name), "the page is not numbered: it is outside the series"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_outputs_or_execution_counts(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    dirty = [i for i, cell in enumerate(nb.cells) if cell.cell_type == "code"
             and (cell.get("outputs") or cell.get("execution_count") is not None)]
    assert not dirty, f"{path.name}: cells {dirty} carry outputs or execution counts; clear them before committing"
    assert "widgets" not in nb.metadata, f"{path.name}: saved widget state in the metadata; clear it"


def _common(path: Path) -> tuple[nbformat.NotebookNode, list[str], list[str]]:
    """The rules every notebook follows: a markdown title first, init_notebook() first, DGL through the helper."""
    nb = nbformat.read(path, as_version=4)
    markdown = [c.source for c in nb.cells if c.cell_type == "markdown"]
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# "), \
        f"{path.name}: the first cell must be a markdown title"
    assert code and "init_notebook()" in code[0], f"{path.name}: first code cell must call init_notebook()"
    direct = [s for s in code if re.search(r"^\s*(import dgl\b|from dgl\b)", s, re.MULTILINE)]
    assert not direct, f"{path.name}: import DGL through `from helpers.dgl_import import dgl`"
    return nb, markdown, code


@pytest.mark.parametrize("stage", SERIES, ids=lambda s: Path(s.notebook).name)
def test_series_structure(stage: Stage) -> None:
    path = ROOT / stage.notebook
    nb, markdown, code = _common(path)
    assert nb.cells[0].source.startswith(f"# {stage.number:02d} · "), \
        f"{path.name}: the title starts with its number, '# {stage.number:02d} · ...'"
    head = " ".join(c.source for c in nb.cells[:3] if c.cell_type == "markdown")
    assert re.search(r"learning objectives", head, re.IGNORECASE), f"{path.name}: learning objectives up front"
    assert re.search(r"\brecap\b", " ".join(markdown[-2:]), re.IGNORECASE), f"{path.name}: a recap at the end"
    assert re.search(r"\bnext\b", " ".join(markdown[-2:]), re.IGNORECASE), f"{path.name}: the next step at the end"
    later = SERIES[SERIES.index(stage) + 1:]
    if later:  # the next step names the next notebook of the series
        assert Path(later[0].notebook).name in " ".join(markdown[-2:]), \
            f"{path.name}: the next step names {Path(later[0].notebook).name}"
    assert "running_in_voila" not in "".join(code) and "on_page" not in "".join(code), \
        f"{path.name}: the series runs in Jupyter; the page is {PAGE_NOTEBOOK}"


def test_page_structure() -> None:
    """The Voila page: a title, init_notebook(), then one cell that opens the engine (waiting for a Milvus Lite
    file a closed page's kernel still holds) and displays the picker. Nothing else runs."""
    nb, _, code = _common(PAGE)
    assert len(code) == 2, f"{PAGE.name}: init_notebook(), then the picker; nothing else"
    picker = code[1]
    assert "open_engine(settings, wait_seconds=PAGE_WAIT_SECONDS)" in picker
    assert "MoviePicker(engine, k=10)" in picker
    assert picker.strip().splitlines()[-1] == "picker", f"{PAGE.name}: the cell ends by displaying the picker"


def test_python_m_helpers_stages_prints_the_series() -> None:
    out = subprocess.run([sys.executable, "-m", "helpers.stages"], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout
    assert out.split() == [stage.notebook for stage in SERIES]


def test_scripts_run_the_series_from_the_stage_table() -> None:
    run = (ROOT / "scripts" / "run.sh").read_text()
    test = (ROOT / "scripts" / "test.sh").read_text()
    page = (ROOT / "scripts" / "page.sh").read_text()
    from_table = 'series="$(.venv/bin/python -m helpers.stages)"'
    assert from_table in run and "for nb in $series; do" in run and "notebooks/[0-9]" not in run
    nbval = re.findall(r"[^\n]*--nbval(?:[^\n]*\\\n)*[^\n]*", test)  # each command, continuation lines joined
    assert from_table in test and len(nbval) == 2 and all(" $series" in command and PAGE_NOTEBOOK not in command
                                                          for command in nbval), \
        "scripts/test.sh runs nbval on the series (from the stage table), not on the page"
    assert sum("RECSYS_SEED=7" in command for command in nbval) == 1, "the series runs at a second seed too"
    assert f"voila {PAGE_NOTEBOOK}" in page


def test_readme_notebook_table_names_the_stage_table() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("<!-- section:notebooks -->")[1].split("<!-- /section:notebooks -->")[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    named = [re.match(r"\| `([^`]+)`", row).group(1) for row in rows]
    assert named == [Path(stage.notebook).name for stage in SERIES] + [Path(PAGE_NOTEBOOK).name]


def test_run_sh_passes_relative_paths_to_the_notebooks_as_absolute_ones(tmp_path) -> None:
    """The notebooks run in notebooks/: `RECSYS_DATA_DIR=../shared/...` must mean relative to where run.sh was
    started. The script's own lines before `cd` are run as they are, and the settings they export are checked."""
    run = (ROOT / "scripts" / "run.sh").read_text()
    prelude = run[run.index("for setting in RECSYS_DATA_DIR"):run.index('cd "$(dirname "$0")/.."')]
    out = subprocess.run(["bash", "-c", prelude + 'echo "$RECSYS_DATA_DIR|$RECSYS_CACHE|${RECSYS_ARTIFACTS:-unset}"'],
                         cwd=tmp_path, env={"PATH": os.environ["PATH"], "RECSYS_DATA_DIR": "../shared/ml-1m",
                                            "RECSYS_CACHE": "cache"}, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"{tmp_path.parent / 'shared' / 'ml-1m'}|{tmp_path / 'cache'}|unset"
