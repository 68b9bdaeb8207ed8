"""helpers.training.loop on the synthetic sample (real loader and graph): checkpoints, exact resume, inference."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import helpers.training.loop as train_module
from helpers.artifacts import require, write_manifest
from helpers.config import get_settings
from helpers.data.loader import load_movielens
from helpers.dgl_import import dgl
from helpers.graph.build import build_graph
from helpers.graph.features import GraphError
from helpers.training.config import LATER_KNOBS, Alternatives, TrainConfig
from helpers.training.inference import infer_movie_embeddings
from helpers.training.loop import build_model, load_trained_model, train_pinsage
from helpers.training.sampling import NeighbourSampler

from conftest import paired_movies

TINY = dict(batch_size=32, steps_per_epoch=6, max_epochs=3, time_budget_s=None, hard_start_epoch=1,
            hard_ramp_epochs=1, hard_ranks=(5, 50))


def tiny(**changes) -> TrainConfig:
    """The tests' short run: TINY with `changes`, knobs of either part by name."""
    return TrainConfig().replace(**{**TINY, **changes})


@pytest.fixture(scope="module")
def sample_gd(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    return build_graph(load_movielens("sample", cache_dir=cache))


def settings_in(folder: Path):
    return get_settings(env={"RECSYS_DATASET": "sample", "RECSYS_ARTIFACTS": str(folder), "RECSYS_SEED": "7"})


def comparable(history: list[dict]) -> list[dict]:
    """History without the wall-clock fields."""
    return [{k: v for k, v in h.items() if k not in ("seconds", "val_seconds", "elapsed")} for h in history]


def test_config_checks_and_curriculum():
    with pytest.raises(ValueError, match="positives"):
        Alternatives(positives="clicks")
    with pytest.raises(ValueError, match="positives"):
        TrainConfig.for_dataset("sample", positives="clicks")
    with pytest.raises(ValueError, match="hard_fraction"):
        TrainConfig().replace(hard_fraction=1.5)
    with pytest.raises(ValueError, match="time_budget_s"):
        TrainConfig(time_budget_s=0)
    with pytest.raises(ValueError, match="restart_prob"):
        TrainConfig(restart_prob=0)
    with pytest.raises(ValueError, match=r"unknown training setting\(s\) \['hiden'\].*hidden"):
        TrainConfig.for_dataset("sample", hiden=8)
    config = TrainConfig().replace(hard_fraction=0.5, hard_start_epoch=2, hard_ramp_epochs=2)
    assert [config.alternatives.hard_share(e) for e in range(5)] == [0.0, 0.0, 0.25, 0.5, 0.5]
    assert TrainConfig.for_dataset("sample").time_budget_s < TrainConfig.for_dataset("ml-1m").time_budget_s
    assert TrainConfig.for_dataset("sample", lr=0.5).lr == 0.5
    routed = TrainConfig.for_dataset("sample", loss="max_margin", hidden=8)
    assert (routed.alternatives.loss, routed.hidden, routed.alternatives.hard_ranks) == ("max_margin", 8, (10, 100))


def test_config_round_trips_nested_and_reads_the_old_flat_format():
    config = TrainConfig.for_dataset("sample", hard_ranks=(3, 9), loss="sampled_softmax", walks=7)
    saved = json.loads(json.dumps(config.to_dict()))
    assert saved["alternatives"]["hard_ranks"] == [3, 9] and "loss" not in saved and saved["walks"] == 7
    assert TrainConfig.from_dict(saved) == config and TrainConfig(**saved) == config
    flat = json.loads(json.dumps(config.flat_dict()))  # how checkpoints were written before the split
    assert "alternatives" not in flat and flat["loss"] == "sampled_softmax"
    assert TrainConfig.from_dict({**flat, "a_knob_since_removed": 1}) == config
    table = config.table()
    assert list(table.columns) == ["value", "what it does"] and table.index.name == "knob"
    assert table.at["walks", "value"] == 7 and "loss" not in table.index and len(table) < 20
    assert table["what it does"].str.len().gt(0).all()


def test_the_run_key_depends_on_the_settings_not_on_their_format(sample_gd, tmp_path):
    settings, config = settings_in(tmp_path), tiny()
    key = train_module._run_key(sample_gd, settings, config)
    assert key == train_module._run_key(sample_gd, settings, TrainConfig.from_dict(config.to_dict()))
    assert key == train_module._run_key(sample_gd, settings, TrainConfig.from_dict(config.flat_dict()))
    assert key == train_module._run_key(sample_gd, settings, config.replace(max_epochs=9, time_budget_s=5.0))
    assert key != train_module._run_key(sample_gd, settings, config.replace(margin=0.3))
    assert key != train_module._run_key(sample_gd, settings, config.replace(walks=7))
    assert key != train_module._run_key(sample_gd, settings, config.replace(id_dropout=0.2))
    # knobs added later leave the key of a run at their old value unchanged: its saved state still resumes (today's
    # defaults differ from those values: the inductive knobs)
    old = config.replace(**LATER_KNOBS)
    train = sample_gd.train
    before = {"dataset": sample_gd.dataset, "seed": settings.seed, "movies": sample_gd.n_movies,
              "users": sample_gd.n_users, "edges": len(train),
              "train_sum": int(train["movie"].sum() * 7 + train["user"].sum()),
              "config": {k: v for k, v in old.flat_dict().items()
                         if k not in ("device", "time_budget_s", "max_epochs", *LATER_KNOBS)}}
    assert train_module._run_key(sample_gd, settings, old) == hashlib.sha256(
        json.dumps(before, sort_keys=True).encode()).hexdigest()[:16]


def test_training_writes_best_checkpoint_and_history(sample_gd, tmp_path):
    settings = settings_in(tmp_path)
    result = train_pinsage(sample_gd, settings, tiny(), progress=False)
    assert [h["epoch"] for h in result.history] == [0, 1, 2]
    assert set(result.history[0]) >= {"epoch", "loss", "val_hr@10", "val_ndcg@10", "seconds"}
    best = max(result.history, key=lambda h: h["val_hr@10"])
    assert result.best_epoch == best["epoch"] and result.best == best
    assert result.checkpoint_path == settings.artifacts_dir / "model.pt"
    manifest = require(result.checkpoint_path, "model", settings)
    assert manifest["settings"]["best_epoch"] == result.best_epoch
    assert (settings.artifacts_dir / "history.json").exists()
    assert not list(settings.artifacts_dir.glob("*.partial"))
    loaded, config = load_trained_model(sample_gd, settings)
    assert config == tiny()
    for name, value in result.model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[name])
    # a checkpoint written before the config was split (one flat dict) still loads
    saved = torch.load(result.checkpoint_path, weights_only=False)
    train_module._save_torch({**saved, "config": tiny().flat_dict()}, result.checkpoint_path)
    write_manifest(result.checkpoint_path, "model", settings, inputs=train_module._graph_inputs(settings),
                   extra={"best_epoch": result.best_epoch})
    assert load_trained_model(sample_gd, settings)[1] == tiny()


# ids dropped for the whole run: `id_dropout_until` would stop the dropping at another step in a run of 2 epochs
# than in one of 3, so the extended run below could not equal the whole one
INDUCTIVE = {"id_dropout": 0.3, "title_token_dropout": 0.2, "bias_source": "both", "id_dropout_until": 1.0}
TRANSDUCTIVE = {"id_dropout": 0.0, "title_token_dropout": 0.0, "bias_source": "table"}


@pytest.mark.parametrize(("loss", "val_users"), [("softmax", None), ("max_margin", None), ("softmax", 50),
                                                 ("softmax+inductive", None), ("max_margin+inductive", None),
                                                 ("sampled_softmax", 50)])
def test_resume_continues_exactly_like_an_uninterrupted_run(sample_gd, tmp_path, loss, val_users):
    """A run stopped after 2 of 3 epochs and resumed equals the uninterrupted run, validated on every user or on
    a fixed sample of 50, the sampled softmax with its sparse optimiser included. The per-epoch decay schedule is
    exact even when the run is extended (max_epochs 2, then 3); the cosine schedule spans the whole run, so it is
    stopped by a crash instead. The inductive knobs draw their noise from the step's generator, so they resume
    exactly too."""
    loss, _, inductive = loss.partition("+")
    config = tiny(loss=loss, schedule="epoch_decay", val_users=val_users, **(INDUCTIVE if inductive else TRANSDUCTIVE))
    whole = train_pinsage(sample_gd, settings_in(tmp_path / "a"), config, progress=False)
    settings = settings_in(tmp_path / "b")
    first = train_pinsage(sample_gd, settings, TrainConfig(**{**config.to_dict(), "max_epochs": 2}), progress=False)
    assert len(first.history) == 2
    resumed = train_pinsage(sample_gd, settings, config, progress=False)
    assert comparable(resumed.history) == comparable(whole.history)
    again = train_pinsage(sample_gd, settings, config, progress=False)  # finished: nothing to do
    assert again.history == resumed.history


def test_resume_of_a_cosine_run_after_a_crash_is_exact(sample_gd, tmp_path, monkeypatch):
    config = tiny(schedule="cosine")
    whole = train_pinsage(sample_gd, settings_in(tmp_path / "a"), config, progress=False)
    settings = settings_in(tmp_path / "b")
    real, calls = train_module.validate, []

    def crash_in_third_epoch(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(train_module, "validate", crash_in_third_epoch)
    with pytest.raises(KeyboardInterrupt):
        train_pinsage(sample_gd, settings, config, progress=False)
    monkeypatch.setattr(train_module, "validate", real)
    resumed = train_pinsage(sample_gd, settings, config, progress=False)
    assert comparable(resumed.history) == comparable(whole.history)
    assert [h["lr"] for h in whole.history][-1] < config.lr / 2  # the cosine really decayed


def test_an_interrupted_epoch_leaves_the_last_checkpoint_usable(sample_gd, tmp_path, monkeypatch):
    settings = settings_in(tmp_path)
    real = train_module.validate
    calls = []

    def crash_in_second_epoch(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(train_module, "validate", crash_in_second_epoch)
    with pytest.raises(KeyboardInterrupt):
        train_pinsage(sample_gd, settings, tiny(), progress=False)
    monkeypatch.setattr(train_module, "validate", real)
    assert require(settings.artifacts_dir / "model.pt", "model", settings)["settings"]["best_epoch"] == 0
    assert not list(settings.artifacts_dir.glob("*.partial"))
    resumed = train_pinsage(sample_gd, settings, tiny(), progress=False)
    whole = train_pinsage(sample_gd, settings_in(tmp_path / "whole"), tiny(), progress=False)
    assert comparable(resumed.history) == comparable(whole.history)


def test_a_damaged_or_foreign_state_starts_cleanly(sample_gd, tmp_path, capsys):
    settings = settings_in(tmp_path)
    settings.artifacts_dir.mkdir(parents=True)
    (settings.artifacts_dir / "train_state.pt").write_bytes(b"not a checkpoint")
    result = train_pinsage(sample_gd, settings, tiny(max_epochs=1), progress=False)
    assert len(result.history) == 1 and "unreadable" in capsys.readouterr().out
    other = train_pinsage(sample_gd, settings, tiny(max_epochs=1, lr=0.5), progress=False)
    assert len(other.history) == 1 and "another run" in capsys.readouterr().out


def test_time_budget_stops_training(sample_gd, tmp_path):
    config = tiny(time_budget_s=1e-3, max_epochs=50)
    result = train_pinsage(sample_gd, settings_in(tmp_path), config, progress=False)
    assert len(result.history) == 1 and result.history[0]["steps"] == 1


def test_random_walk_positives_train_too(sample_gd, tmp_path):
    config = tiny(positives="random_walk", max_epochs=1)
    result = train_pinsage(sample_gd, settings_in(tmp_path), config, progress=False)
    assert np.isfinite(result.history[0]["loss"])


def test_layerwise_inference_equals_the_sampled_forward_pass():
    gd = paired_movies()
    torch.manual_seed(0)
    config = TrainConfig(hidden=8, layers=2, neighbours=3, walks=64)
    model = build_model(gd, config).eval()
    layerwise = infer_movie_embeddings(model, gd, batch_size=3, seed=0)
    dgl.seed(1)
    with torch.no_grad():
        direct = model(NeighbourSampler(gd.graph, 2, config.spec).sample(torch.arange(gd.n_movies))).numpy()
    assert layerwise.shape == (10, 8)
    np.testing.assert_allclose(np.linalg.norm(layerwise, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(layerwise, direct, atol=1e-5)


def test_inference_is_reproducible_with_a_seed_and_checks_the_graph(sample_gd):
    torch.manual_seed(0)
    model = build_model(sample_gd, TrainConfig(hidden=8))
    a = infer_movie_embeddings(model, sample_gd, seed=3)
    b = infer_movie_embeddings(model, sample_gd, seed=3)
    assert np.array_equal(a, b) and a.dtype == np.float32
    with pytest.raises(GraphError, match="movies"):
        infer_movie_embeddings(model, paired_movies())


def test_validation_on_a_fixed_sample_of_users(sample_gd, tmp_path):
    """`val_users`: each epoch ranks the same seeded sample of validation users against every movie; the
    history records its size and standard error. Without it every user counts, as `validation_metrics` does
    (so the notebooks' figures do not change). Cost: about 2 s (two 3-epoch runs of 6 steps)."""
    from helpers.evaluation.protocols import prepare_evaluation
    from helpers.training.inference import infer_movie_vectors, validation_metrics

    settings = settings_in(tmp_path / "sampled")
    sampled = train_pinsage(sample_gd, settings, tiny(val_users=50), progress=False)
    assert {h["val_users"] for h in sampled.history} == {50}
    assert all(0 < h["val_hr@10_stderr"] < 0.2 for h in sampled.history)
    vectors = infer_movie_vectors(sampled.model, sample_gd, seed=1)
    data = prepare_evaluation(sample_gd)
    once, twice = (train_module.validate(vectors, data, 50, settings.seed) for _ in range(2))
    assert once == twice  # the same users each time
    other = train_module.validate(vectors, data, 50, settings.seed + 1)
    assert other["n_users"] == 50 and other != once
    every = train_module.validate(vectors, data, None, settings.seed)
    assert every["n_users"] == len(sample_gd.val)
    assert every["hr@10"] == pytest.approx(validation_metrics(vectors, data)["hr@10"], abs=1e-12)
    key = train_module._run_key(sample_gd, settings, tiny())
    assert key != train_module._run_key(sample_gd, settings, tiny(val_users=50))
    with pytest.raises(ValueError, match="val_users"):
        tiny(val_users=1)


def test_runs_trained_aside_leave_the_real_run_alone_and_compare_side_by_side(sample_gd, tmp_path):
    """`train_aside` trains in a temporary folder (nothing under the settings' artifacts); `compare_configs`
    validates each config on the same users, pairs each with the reference user by user, and times training and
    evaluation apart. Cost: about 2 s (three runs of 6 steps)."""
    from helpers.training.loop import TrainingError, compare_configs, train_aside

    settings = settings_in(tmp_path)
    result = train_aside(sample_gd, settings, tiny(max_epochs=1))
    assert len(result.history) == 1 and not settings.artifacts_dir.exists()
    configs = {"one layer": tiny(max_epochs=1, layers=1), "two layers": tiny(max_epochs=1)}
    table = compare_configs(sample_gd, settings, configs, reference="one layer")
    assert table.index.tolist() == ["one layer", "two layers"] and not settings.artifacts_dir.exists()
    assert list(table.columns) == ["val HR@10", "± stderr", "val NDCG@10", "n", "train seconds", "eval seconds",
                                   "difference", "low", "high", "verdict"]
    assert (table["n"] == len(sample_gd.val)).all() and (table[["train seconds", "eval seconds"]] > 0).all().all()
    assert table.loc["one layer", ["difference", "low", "high"]].tolist() == [0.0, 0.0, 0.0]
    assert table.at["one layer", "verdict"] == "reference"
    row = table.loc["two layers"]
    assert row["difference"] == pytest.approx(row["val HR@10"] - table.at["one layer", "val HR@10"])
    assert row["low"] <= row["difference"] <= row["high"] and row["verdict"] in ("above", "tie", "below")
    assert list(compare_configs(sample_gd, settings, {"only": tiny(max_epochs=1)}).columns)[-1] == "eval seconds"
    with pytest.raises(TrainingError, match="reference='three layers'"):
        compare_configs(sample_gd, settings, configs, reference="three layers")


def test_compare_configs_pairs_the_users(sample_gd, tmp_path, monkeypatch):
    """Two configs whose per-user hits differ on 6 of 400 users: the paired interval is the bootstrap of those
    differences (narrow, above 0), where standard errors added in quadrature (about 0.032 here) would call it a
    tie; a config with the reference's very hits ties at exactly 0. No training: the runs are stand-ins."""
    from types import SimpleNamespace

    from helpers.evaluation.slices import paired_interval
    from helpers.training.loop import compare_configs

    users = np.arange(400)
    reference = (np.random.default_rng(0).random(len(users)) < 0.3).astype(float)
    better = reference.copy()
    better[np.flatnonzero(reference == 0)[:6]] = 1.0
    hits = {"reference": reference, "same": reference, "better": better}
    runs = {name: SimpleNamespace(model=name, history=[{"seconds": 1.5, "val_seconds": 0.5}]) for name in hits}
    monkeypatch.setattr(train_module, "train_aside", lambda gd, settings, config: runs[config])
    monkeypatch.setattr(train_module, "infer_movie_vectors", lambda model, gd, seed: model)
    monkeypatch.setattr(train_module, "validation_hits", lambda vectors, data, val_users, seed: pd.DataFrame(
        {"hr@10": hits[vectors], "ndcg@10": hits[vectors] / 2}, index=pd.Index(users[::-1], name="user")))
    table = compare_configs(sample_gd, settings_in(tmp_path), {name: name for name in hits}, reference="reference")
    assert table["train seconds"].tolist() == [1.0, 1.0, 1.0] and (table["n"] == 400).all()
    assert table.loc["same", ["difference", "low", "high", "verdict"]].tolist() == [0.0, 0.0, 0.0, "tie"]
    low, high = paired_interval(better - reference)
    assert table.loc["better", ["low", "high"]].tolist() == [low, high]
    assert table.at["better", "difference"] == pytest.approx(6 / 400) and 0 < low < high < 0.04
    assert table.at["better", "verdict"] == "above"
    unpaired = 1.96 * np.hypot(*table.loc[["better", "reference"], "± stderr"])
    assert table.at["better", "difference"] - unpaired < 0 < low  # the old interval held 0


def test_a_finished_run_resumed_on_a_graph_saved_again_passes_the_model_check(sample_gd, tmp_path):
    """Re-running notebook 02 saves the same graph with a new fingerprint; notebook 03 then finds its finished run
    (same data, seed and config) and must leave `model.pt` valid for that graph, or notebook 06 refuses it."""
    from helpers.artifacts import StaleArtifactError
    from helpers.graph.build import STAGE as GRAPH_STAGE, save_graph

    settings = settings_in(tmp_path)
    graph = save_graph(sample_gd, settings)
    first = train_pinsage(sample_gd, settings, tiny(max_epochs=1), progress=False)
    (graph / "saved-again.txt").write_text("a second save of the same graph")  # a new fingerprint, same data
    write_manifest(graph, GRAPH_STAGE, settings)
    with pytest.raises(StaleArtifactError, match="older graph"):
        require(first.checkpoint_path, "model", settings, inputs={"graph": graph})
    again = train_pinsage(sample_gd, settings, tiny(max_epochs=1), progress=False)
    assert again.history == first.history  # nothing retrained
    require(again.checkpoint_path, "model", settings, inputs={"graph": graph})
