"""The project passes `ruff check` with the rules of pyproject.toml's `[tool.ruff]`, notebooks included.

Cost: about 1 s (ruff's version, then one `ruff check` over the project without its cache). ruff is pinned in
requirements-test.txt: a new ruff brings new rules, so it is upgraded on purpose, with its findings fixed.
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def ruff(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ruff", *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_ruff_is_the_pinned_version() -> None:
    pinned = re.search(r"^ruff==(\S+)$", (ROOT / "requirements-test.txt").read_text(), re.MULTILINE)
    assert pinned, "requirements-test.txt must pin ruff (ruff==<version>)"
    found = ruff("--version")
    assert found.returncode == 0 and found.stdout.split() == ["ruff", pinned[1]], (
        f"ruff {pinned[1]} is pinned, found {found.stdout.strip() or found.stderr.strip()!r}: "
        "run `bash scripts/setup.sh --test`")


def test_ruff_check_passes() -> None:
    done = ruff("check", "--no-cache", ".")
    assert done.returncode == 0, ("ruff check found problems: `.venv/bin/ruff check --fix` fixes the safe ones, "
                                  f"fix the rest by hand\n{done.stdout}{done.stderr}")
