"""Budgets by dataset size (helpers.presets, RECSYS_PRESET), `scripts/run.sh --no-serve`, and bench.scale's cost
of the objective (CPU-seconds per 1,000 training pairs).

Cost: about 17 s (the presets are arithmetic; the cost runs 3 x 3 and 2 x 4 steps of 32 pairs on the synthetic sample;
one quality run of `bench.scale` at 2,000 synthetic ratings, about 12 s).
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bench import scale
from helpers.config import PRESET_NAMES, ConfigError, get_settings
from helpers.data.loader import load_movielens
from helpers.graph.build import build_graph
from helpers.presets import (
    PRESETS,
    SAMPLED_POOL_USES,
    SAMPLED_SOFTMAX_ABOVE_MOVIES,
    SAMPLED_UNIFORM_NEGATIVES,
    SEQUENCE_UNIFORM_NEGATIVES,
    PresetError,
    budgets_for,
    next_movie_steps,
    notebook_budgets,
    preset_for,
)
from helpers.sequence.config import SequenceConfig
from helpers.stages import SERIES
from helpers.training.config import TrainConfig
from helpers.training.loop import build_model
from helpers.training.optimiser import build_optimiser
from helpers.training.step import TrainingStep

ROOT = Path(__file__).resolve().parent.parent


def test_the_preset_names_are_the_settings_values():
    assert PRESET_NAMES == ("auto", *(p.name for p in PRESETS))
    by_size = [p for p in PRESETS if p.by_size]
    assert by_size[-1].max_movies is None  # every size has a row
    assert [p.max_movies for p in by_size[:-1]] == sorted(p.max_movies for p in by_size[:-1])


@pytest.mark.parametrize(("movies", "users", "preset"), [
    (500, 600, "small"), (3_706, 6_040, "small"), (9_742, 610, "medium"), (87_584, 200_947, "large")])
def test_the_preset_is_picked_by_catalogue_size(movies, users, preset):
    budgets = budgets_for(get_settings({}), movies, users)
    assert budgets.preset == preset and budgets.chosen_by == "catalogue size"
    assert str(movies // 1000) in budgets.describe() and preset in budgets.describe()


def test_small_datasets_keep_the_budgets_the_notebooks_were_written_with():
    """Nothing sampled, no override: TrainConfig.for_dataset as before, so the notebooks' figures do not move."""
    for movies, users in ((500, 600), (3_706, 6_040)):
        budgets = budgets_for(None, movies, users)
        assert budgets.train_overrides() == {} and budgets.sequence_overrides() == {}
        assert not budgets.sampled and "objective: softmax over all movies" in budgets.describe()
        assert (budgets.val_users, budgets.eval_users, budgets.next_movie_steps, budgets.compare_steps) == (
            None, None, 2_000, 60)
        assert (budgets.hand_step_movies, budgets.knn_recent, budgets.new_movie_users) == (None, None, None)
        assert "also bounded" not in budgets.describe()  # notebook 03's top prints what it did before
    assert TrainConfig.for_dataset("sample", **budgets_for(None, 500, 600).train_overrides()) == \
        TrainConfig.for_dataset("sample")


def test_large_catalogues_sample_users_and_scale_the_baseline_steps():
    budgets = budgets_for(None, 87_584, 200_947)
    assert budgets.val_users == 5_000 and budgets.eval_users == 10_000
    assert budgets.compare_steps == 0 and "section 4: skipped" in budgets.describe()
    overrides = budgets.train_overrides()
    assert overrides == {"time_budget_s": budgets.pinsage_seconds, "val_users": 5_000, "loss": "sampled_softmax",
                         "neighbour_pool_uses": SAMPLED_POOL_USES, "uniform_negatives": SAMPLED_UNIFORM_NEGATIVES}
    config = TrainConfig.for_dataset("synthetic-32m", **overrides)
    assert config.val_users == 5_000 and config.alternatives.neighbour_pool_uses == SAMPLED_POOL_USES
    assert config.alternatives.uniform_negatives == SAMPLED_UNIFORM_NEGATIVES == 256
    assert budgets.sequence_overrides() == {"uniform_negatives": SEQUENCE_UNIFORM_NEGATIVES, "val_users": 5_000}
    assert SequenceConfig.for_dataset("synthetic-32m", **budgets.sequence_overrides()).uniform_negatives > 0
    assert "objective: sampled softmax" in budgets.describe()
    assert next_movie_steps(10_000, 150.0) > next_movie_steps(87_584, 150.0) >= 20
    assert next_movie_steps(100, 1e6) == 2_000
    few = budgets_for(None, 87_584, 3_000)  # fewer users than the sample: all of them
    assert few.val_users is None and few.eval_users is None and few.new_movie_users is None


def test_large_catalogues_bound_notebook_03_beside_training_and_say_so():
    """Section 3's step by hand, item-kNN's fit and the new-movie demo: bounded on `large` only, each bound printed
    at the top; a bound the dataset does not reach is None (every movie, every user). Instant."""
    budgets = budgets_for(None, 87_584, 200_947)
    assert (budgets.hand_step_movies, budgets.knn_recent, budgets.new_movie_users) == (2_048, 100, 6_000)
    assert ("also bounded: section 3's step by hand on 2,048 of 87,584 movies | item-kNN on each user's latest 100 "
            "training ratings | new-movie demo on 6,000 of 200,947 users") in budgets.describe()
    for movies, users in ((9_742, 610), (10_425, 18_840)):  # medium: unbounded, as before
        medium = budgets_for(None, movies, users)
        assert (medium.hand_step_movies, medium.knn_recent, medium.new_movie_users) == (None, None, None)
    on_sample = budgets_for(None, 420, 600, preset="large")  # RECSYS_PRESET=large on the sample: only item-kNN bites
    assert (on_sample.hand_step_movies, on_sample.knn_recent, on_sample.new_movie_users) == (None, 100, None)
    assert on_sample.describe().endswith("also bounded: item-kNN on each user's latest 100 training ratings")


def test_the_objective_follows_one_catalogue_threshold():
    """Sampled softmax above SAMPLED_SOFTMAX_ABOVE_MOVIES movies (picked by size), or with a named preset for
    larger catalogues than that; the small preset keeps the full softmax."""
    assert not budgets_for(None, SAMPLED_SOFTMAX_ABOVE_MOVIES, 1_000).sampled
    assert budgets_for(None, SAMPLED_SOFTMAX_ABOVE_MOVIES + 1, 1_000).sampled
    assert budgets_for(None, 500, 600, preset="large").sampled
    assert budgets_for(None, 500, 600, preset="medium").sampled
    assert not budgets_for(None, 87_584, 200_947, preset="small").sampled


def test_recsys_preset_overrides_the_size(monkeypatch):
    settings = get_settings({"RECSYS_PRESET": " Large "})
    assert settings.preset == "large"
    budgets = budgets_for(settings, 500, 600)
    assert budgets.preset == "large" and budgets.chosen_by == "RECSYS_PRESET"
    assert budgets_for(settings, 500, 600, preset="small").preset == "small"
    with pytest.raises(ConfigError, match=r"RECSYS_PRESET='huge' is not a preset: use one of auto, small"):
        get_settings({"RECSYS_PRESET": "huge"})
    with pytest.raises(PresetError, match="use one of auto, small, medium, large, workshop"):
        preset_for(100, "huge")


def test_the_workshop_preset_is_ml_100k_in_under_4_minutes_and_labels_its_figures():
    """Only by name; ML-100K unless RECSYS_DATASET says otherwise; a budget for every notebook of the series, 240 s
    in all at most; short PinSage, comparison, baseline and sequence budgets; figures marked."""
    settings = get_settings({"RECSYS_PRESET": "workshop"})
    assert settings.dataset == "ml-100k" and get_settings({}).dataset == "ml-1m"
    assert get_settings({"RECSYS_PRESET": "workshop", "RECSYS_DATASET": "sample"}).dataset == "sample"
    assert all(budgets_for(None, movies, 600).preset != "workshop" for movies in (500, 9_742, 87_584))
    budgets = budgets_for(settings, 1_682, 943)
    assert budgets.preset == "workshop" and budgets.chosen_by == "RECSYS_PRESET"
    assert budgets.train_overrides()["time_budget_s"] <= 60 and budgets.compare_steps <= 20
    assert budgets.next_movie_steps <= 300 and budgets.sequence_overrides() == {"time_budget_s": 20.0}
    assert budgets.label("ML-100K") == "ML-100K [workshop budgets]" and budgets_for(None, 500, 600).label("x") == "x"
    per_notebook = notebook_budgets(settings)
    assert list(per_notebook) == [stage.notebook for stage in SERIES] and sum(per_notebook.values()) < 240
    assert "budget per notebook" in budgets.describe() and notebook_budgets(get_settings({})) == {}
    shown = subprocess.run([sys.executable, "-m", "helpers.presets"], check=True, capture_output=True, text=True,
                           timeout=60, cwd=ROOT, env={**os.environ, "RECSYS_PRESET": "workshop", "RECSYS_DATASET": ""})
    assert shown.stdout.splitlines()[0] == "ml-100k" and "notebooks/03_pinsage_training.ipynb\t100.0" in shown.stdout


def test_run_sh_takes_no_serve_and_refuses_what_it_does_not_know():
    script = ROOT / "scripts" / "run.sh"
    text = script.read_text()
    assert "--no-serve" in text and "timings.tsv" in text
    shown = subprocess.run(["bash", str(script), "--help"], capture_output=True, text=True, timeout=30,
                           check=False)
    assert shown.returncode == 0 and "--no-serve" in shown.stdout
    wrong = subprocess.run(["bash", str(script), "--serve-not"], capture_output=True, text=True, timeout=30,
                           check=False)
    assert wrong.returncode == 2 and "--no-serve" in wrong.stderr


@pytest.fixture(scope="module")
def sample_graph(tmp_path_factory):
    return build_graph(load_movielens("sample", cache_dir=tmp_path_factory.mktemp("cache")))


def _training_step(gd, **overrides):
    config = TrainConfig.for_dataset("sample", batch_size=32, steps_per_epoch=2, **overrides)
    torch.manual_seed(0)
    model = build_model(gd, config)
    optimizer = build_optimiser(model, config)
    return TrainingStep(gd, config, model, optimizer), config


@pytest.fixture(scope="module")
def sample_step(sample_graph):
    return _training_step(sample_graph)


def test_the_cost_is_cpu_seconds_per_thousand_pairs_with_its_spread(sample_step):
    step, config = sample_step
    before = {k: v.clone() for k, v in step.model.state_dict().items()}
    cost = scale.measure_cost(step, config, repeats=3, steps=3, seed=1)
    assert len(cost["per_repeat"]) == 3 and cost["repeats"] == 3 and cost["steps"] == 3
    assert 0 < cost["cpu_min"] <= cost["cpu_s_per_1000_pairs"] <= cost["cpu_max"]
    assert cost["redraw_cpu_s"] > 0 and 0 < cost["redraw_share"] < 1  # 3 steps, a redraw every 2: two redraws
    assert cost["objective"] == config.alternatives.loss and cost["batch_size"] == 32
    for name, value in step.model.state_dict().items():  # the weights are put back
        assert torch.equal(value, before[name])
    assert 0 < cost["walked_per_epoch"] <= config.neighbour_pool * step.n_movies  # the pool fills as asked
    assert not cost["whole_epochs"] and "upper bound" in scale.cost_line(cost)  # 3 steps: one epoch and a half
    assert "CPU-s / 1,000 pairs" in scale.cost_line(cost)
    run = {"ratings": 1000, "stages": {"cost": {"seconds": 1.0, "stage_peak_mb": 1.0, "maxrss_mb": 1.0, **cost}}}
    assert "CPU-s per 1,000 pairs" in scale.table({"runs": {"1000": run}})


def test_with_a_lifetime_in_uses_the_cost_is_the_steady_state_and_the_first_fill_apart(sample_graph):
    """Every movie walked once before the repeats (its CPU time apart), each movie's uses spread over 1..N: the
    repeats walk what a long run's steps walk, only movies past their N uses."""
    step, config = _training_step(sample_graph, loss="sampled_softmax", neighbour_pool_uses=12)
    cost = scale.measure_cost(step, config, repeats=2, steps=4, seed=1)
    assert cost["pool_uses"] == 12 and cost["first_fill_cpu_s"] > 0
    assert bool(step.sampler.pool.filled.all())
    # a step asks for every one of the 420 movies (1,024 negatives), twice (two hops): 4 uses a movie an epoch
    assert 0 < cost["walked_per_epoch"] < config.neighbour_pool * step.n_movies / 2  # re-walks, not a refill
    assert "pool of 12 uses" in scale.cost_line(cost) and "upper bound" not in scale.cost_line(cost)


def test_cost_only_needs_repeats():
    with pytest.raises(SystemExit):
        scale.main(["--cost-only", "--repeats", "0", "--ratings", "1000"])


def test_the_workshop_preset_keeps_the_full_softmax_on_small_catalogues():
    """`workshop` is named, not picked by size, yet its catalogues are small: the objective follows the size."""
    assert not budgets_for(None, 1_682, 943, preset="workshop").sampled
    assert budgets_for(None, SAMPLED_SOFTMAX_ABOVE_MOVIES + 1, 943, preset="workshop").sampled
    assert budgets_for(None, 1_682, 943, preset="large").sampled


def test_a_quality_run_chooses_pinsage_history_combination_on_validation(tmp_path):
    """`bench.scale --no-ingest` at 2,000 synthetic ratings, 1 s of training (about 15 s: a child process): PinSage's
    history is scored with the combination that wins on validation, its "latest" protocol beside."""
    import json

    out = tmp_path / "scale.json"
    scale.main(["--ratings", "2000", "--no-ingest", "--repeats", "0", "--train-seconds", "1", "--cache",
                str(tmp_path / "cache"), "--results", str(tmp_path / "results.json"), "--out", str(out)])
    metrics = json.loads(out.read_text())["figures"]["runs"][0]["metrics"]
    pinsage, by_combine = metrics["pinsage"], metrics["pinsage"]["val_hr@10_by_combine"]
    assert set(by_combine) == {name for name, _ in scale.COMBINATIONS}
    assert by_combine[pinsage["combine"]] == max(by_combine.values())
    assert {"pinsage [latest]", "popularity", "item_knn", "transitions"} <= set(metrics)
    assert all(0 <= m["hr@10"] <= 1 and m["n_users"] > 0 for m in metrics.values())
