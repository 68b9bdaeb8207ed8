"""bench.compare: a previous commit checked out beside this tree and removed afterwards, the stage table's sums,
and api_load's plan sent to another server (issue 20's tooling; no timing is checked)."""
from __future__ import annotations

import numpy as np
import pytest

from bench.api_load import on, pin_cores
from bench.compare import (
    ROOT,
    THIS_TREE,
    CompareError,
    checkout,
    describe,
    git,
    stage_table,
    tree_env,
)


def test_checkout_gives_the_revision_in_a_worktree_and_removes_it() -> None:
    with checkout("HEAD") as tree:  # HEAD: a shallow clone has no parent
        assert (tree / "helpers" / "engine" / "engine.py").exists() and (tree / ".venv").is_symlink()
        assert git("rev-parse", "HEAD", cwd=tree) == git("rev-parse", "HEAD")
        assert describe(tree).startswith(git("rev-parse", "--short", "HEAD"))
    assert not tree.exists() and str(tree) not in git("worktree", "list")
    with pytest.raises(CompareError, match="rev-parse"), checkout("no-such-revision-xyz"):
        pass
    assert THIS_TREE and ROOT.joinpath("bench", "compare.py").exists()


def test_the_stage_table_splits_the_total_and_the_rest_is_http(capsys) -> None:
    rows = stage_table([{"search": 2.0, "validation": 0.5}, {"search": 4.0, "validation": 0.5}], [4.0, 6.0],
                       title="test")
    by_stage = {row["stage"]: row for row in rows}
    assert [row["stage"] for row in rows] == ["validation", "search", "HTTP and the rest"]  # the engine's order
    assert by_stage["search"]["mean_ms"] == 3.0 and by_stage["HTTP and the rest"]["mean_ms"] == 1.5
    np.testing.assert_allclose(sum(row["share"] for row in rows), 1.0)
    assert "HTTP and the rest" in capsys.readouterr().out


def test_a_plan_is_sent_to_the_other_server() -> None:
    plan = [("GET /movies?q=", "GET", "http://127.0.0.1:1/movies?q=toy", None)]
    assert on(plan, "http://127.0.0.1:1", "http://127.0.0.1:2") == [
        ("GET /movies?q=", "GET", "http://127.0.0.1:2/movies?q=toy", None)]


def test_the_other_tree_reads_this_trees_data_and_artifacts(monkeypatch, tmp_path) -> None:
    """Relative path settings would resolve inside the other tree's folder: they go over absolute, and the
    artifacts default to this tree's."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RECSYS_DATA_DIR", "data/ml-1m")
    monkeypatch.delenv("RECSYS_ARTIFACTS", raising=False)
    monkeypatch.delenv("RECSYS_CACHE", raising=False)
    env = tree_env(tmp_path / "other")
    assert env["RECSYS_DATA_DIR"] == str(tmp_path / "data" / "ml-1m")
    assert env["RECSYS_ARTIFACTS"] == str(ROOT / "artifacts")
    assert "RECSYS_CACHE" not in env and env["PYTHONPATH"] == str(tmp_path / "other")


def test_pinning_gives_the_client_one_core_and_the_api_the_rest() -> None:
    assert pin_cores({0, 1}) == ({0}, {1})
    assert pin_cores({2, 5, 7}) == ({2}, {5, 7})
    with pytest.raises(SystemExit, match="at least 2 CPU cores"):
        pin_cores({3})
