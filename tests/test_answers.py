"""The exercises' answers (`docs/answers/<notebook stem>.md`) run, and every notebook of the series has exercises.

Each answers file's ```python blocks run in order in one fresh namespace on the synthetic sample (the answers
load through `helpers`, as a learner would); their own asserts are the checks. Every notebook of the series ends
with a heading that says "Exercises" and has an answers file with `## Exercise N` headings and a
`## Questionnaire`.

Cost: about 15 s (notebook 03's answers train two short models on the sample; the rest is instant).
"""
from __future__ import annotations

import contextlib
import io
import json
import re
import tempfile
from pathlib import Path

import pytest

from helpers.stages import SERIES

ROOT = Path(__file__).resolve().parent.parent
ANSWERS = ROOT / "docs" / "answers"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.MULTILINE | re.DOTALL)


def answers_file(notebook: str) -> Path:
    return ANSWERS / f"{Path(notebook).stem}.md"


@pytest.mark.parametrize("notebook", [stage.notebook for stage in SERIES])
def test_every_notebook_has_exercises_and_answers(notebook):
    cells = json.loads((ROOT / notebook).read_text())["cells"]
    headings = [line for cell in cells if cell["cell_type"] == "markdown"
                for line in "".join(cell["source"]).splitlines() if line.startswith("#")]
    assert any("Exercises" in line for line in headings), f"{notebook} has no heading that says 'Exercises'"
    path = answers_file(notebook)
    assert path.exists(), f"{notebook}: write its answers to {path.relative_to(ROOT)}"
    text = path.read_text()
    exercises = re.findall(r"^## Exercise (\d+)$", text, re.MULTILINE)
    assert 3 <= len(exercises) <= 5 and exercises == [str(n) for n in range(1, len(exercises) + 1)], exercises
    assert re.search(r"^## Questionnaire$", text, re.MULTILINE), f"{path.name} has no '## Questionnaire'"


@pytest.mark.parametrize("path", sorted(ANSWERS.glob("*.md")), ids=lambda path: path.name)
def test_the_code_answers_run(path, monkeypatch, tmp_path, sample_cache):
    blocks = BLOCK.findall(path.read_text())
    if not blocks:
        pytest.skip(f"{path.name} has no code answers")
    monkeypatch.setenv("RECSYS_DATASET", "sample")
    monkeypatch.setenv("RECSYS_ARTIFACTS", str(tmp_path / "artifacts"))
    monkeypatch.setenv("RECSYS_CACHE", str(sample_cache))
    for name in ("RECSYS_SEED", "RECSYS_DATA_DIR", "RECSYS_PRESET", "RECSYS_MILVUS_URI", "RECSYS_CATALOG_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    namespace: dict[str, object] = {"__name__": "__answers__"}
    with contextlib.redirect_stdout(io.StringIO()):
        for index, source in enumerate(blocks, start=1):
            try:
                exec(compile(source, f"{path.name} [block {index}]", "exec"), namespace)
            except Exception as error:
                raise AssertionError(f"{path.name}, python block {index}: {error!r}") from error


@pytest.fixture(scope="module")
def sample_cache(tmp_path_factory) -> Path:
    """One cache folder for the generated sample, shared by the answers files."""
    return tmp_path_factory.mktemp("answers-cache")
