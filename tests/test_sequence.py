"""helpers.sequence: the windows and their padding, the causal mask, the block against plain attention, training
on the sample, the artifact, and the engine's "sequence" query encoder (used while its artifact matches the
embeddings, the mean otherwise; the engine's results equal `numpy_recommend` over the same query vector).
Cost: about 8 s (one 30-step training run on the sample graph, one Milvus Lite build)."""
from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pandas as pd
import pytest
import torch

from helpers.engine.engine import RecommendationEngine
from helpers.engine.inputs import RecommendError
from helpers.engine.query import (
    MeanQueryEncoder,
    MovieVectorLookup,
    SequenceQueryEncoder,
    load_query_encoder,
)
from helpers.engine.reference import numpy_recommend
from helpers.errors import RecsysError
from helpers.graph.build import build_graph
from helpers.sequence.artifact import (
    SequenceArtifactError,
    SequenceQuery,
    load_sequence_model,
    save_sequence_model,
)
from helpers.sequence.config import SequenceConfig, SequenceConfigError
from helpers.sequence.data import PAD, pad_left, training_windows
from helpers.sequence.model import (
    SequenceModel,
    SequenceModelError,
    allowed_keys,
    masked_attention,
    target_shares,
)
from helpers.sequence.train import (
    build_sequence_model,
    sequence_scorer,
    train_sequence_model,
)
from helpers.stores.build import build_stores
from helpers.stores.milvus_client import disconnect
from helpers.training.embeddings import (
    MovieEmbeddings,
    load_movie_embeddings,
    save_movie_embeddings,
)

from conftest import make_test_directed_embeddings, sample_settings

TINY = SequenceConfig(length=6, dim=8, blocks=2, heads=2, dropout=0.0)


def tiny_model(n_movies: int = 12, width: int = 5, seed: int = 0) -> SequenceModel:
    torch.manual_seed(seed)
    return SequenceModel(torch.randn(n_movies, width), torch.randn(n_movies, width), TINY).eval()


# -- the data: windows and padding ---------------------------------------------------------------------------
def test_windows_predict_every_training_transition_once_and_padding_is_no_movie() -> None:
    train = pd.DataFrame({"user": [0] * 7 + [1] * 2 + [2], "movie": [0, 1, 2, 3, 4, 5, 6, 7, 0, 3]})
    windows = training_windows(train, length=3)
    assert windows.shape[1] == 4 and PAD == -1 and not (windows[:, :-1] == PAD).all(axis=1).any()
    pairs = sorted((int(a), int(b)) for w in windows for a, b in itertools.pairwise(w) if a != PAD and b != PAD)
    assert pairs == [(0, 1), (1, 2), (2, 3), (3, 4), (4, 5), (5, 6), (7, 0)]  # user 2's one movie: no window
    assert pad_left([4, 5], 4).tolist() == [-1, -1, 4, 5] and pad_left(range(9), 3).tolist() == [6, 7, 8]


def test_padding_changes_nothing_and_fully_padded_rows_stay_finite() -> None:
    model = tiny_model()
    movies = torch.tensor([[3, 0, 7]])
    padded = torch.tensor([[PAD, PAD, PAD, 3, 0, 7]])
    torch.testing.assert_close(model(padded)[:, 3:], model(movies))  # 0 (a real movie) is not padding
    empty = model(torch.full((2, TINY.length), PAD))
    assert torch.isfinite(empty).all()
    for bad in (torch.tensor([[PAD - 1, 2]]), torch.tensor([[12]]), torch.zeros(1, TINY.length + 1, dtype=torch.long)):
        with pytest.raises(SequenceModelError):
            model(bad)


# -- the causal mask ------------------------------------------------------------------------------------------
def test_a_later_movie_never_changes_an_earlier_position() -> None:
    model = tiny_model()
    movies = torch.tensor([[PAD, 1, 2, 3, 4, 5]])
    base = model(movies)
    for later in range(1, TINY.length):
        changed = movies.clone()
        changed[0, later] = 11
        out = model(changed)
        torch.testing.assert_close(out[:, :later], base[:, :later])
        assert not torch.allclose(out[:, later:], base[:, later:])


def test_the_mask_and_the_attention_against_plain_tensors() -> None:
    valid = torch.tensor([[False, True, True]])
    assert allowed_keys(valid)[0].int().tolist() == [[1, 0, 0], [0, 1, 0], [0, 1, 1]]
    q, k, v = (torch.randn(1, 2, 3, 4) for _ in range(3))
    mask = allowed_keys(valid)
    reference = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask[:, None])
    torch.testing.assert_close(masked_attention(q, k, v, mask), reference)


def test_the_loss_ignores_padding_and_knobs_are_checked() -> None:
    model = tiny_model()
    windows = torch.tensor([[PAD, PAD, PAD, PAD, 1, 2, 3]])
    scores = model.scores(model(windows[:, :-1]))[0, -2:]
    expected = torch.nn.functional.cross_entropy(scores, torch.tensor([2, 3]))
    torch.testing.assert_close(model.loss(windows), expected)
    with pytest.raises(SequenceConfigError, match="heads"):
        SequenceConfig(dim=10, heads=3)
    with pytest.raises(SequenceConfigError, match="unknown"):
        SequenceConfig().replace(layers=3)


def test_the_candidate_vectors_move_only_when_tune_outputs_asks() -> None:
    windows = torch.tensor([[PAD, PAD, 1, 2, 3, 4, 5]])
    for tune_outputs in (False, True):
        torch.manual_seed(0)
        inputs, candidates = torch.randn(12, 5), torch.randn(12, 5)
        model = SequenceModel(inputs, candidates, TINY.replace(tune_outputs=tune_outputs))
        optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
        model.loss(windows).backward()
        optimizer.step()
        assert torch.equal(model.candidates, candidates) is not tune_outputs
        assert set(model.state_dict()) >= {"candidates", "table"}


def test_the_sampled_loss_scores_the_targets_and_uniform_negatives_with_logq() -> None:
    """Large catalogues (helpers.presets): the batch's targets plus shared uniform negatives, logQ-corrected."""
    torch.manual_seed(0)
    config = dataclasses.replace(TINY, uniform_negatives=3)
    model = SequenceModel(torch.randn(40, 5), torch.randn(40, 5), config).eval()
    windows = torch.tensor([[PAD, PAD, PAD, 4, 7, 9, 4], [1, 2, 3, 5, 8, 13, 21]])
    share = target_shares(windows, 40)
    assert share.sum().item() == pytest.approx(1.0) and share[4] == 1 / 9 and share[1] == 0  # 9 targets
    loss = model.loss(windows, share, torch.Generator().manual_seed(5))
    uniform = torch.randint(40, (3,), generator=torch.Generator().manual_seed(5))
    inputs, targets = windows[:, :-1], windows[:, 1:]
    keep = (inputs != PAD) & (targets != PAD)
    columns = torch.unique(torch.cat([targets[keep], uniform]))
    assert len(columns) < 40
    logits = model(inputs)[keep] @ model.candidates[columns].T - torch.log(9 * share[columns] + 3 / 40).float()
    expected = torch.nn.functional.cross_entropy(logits, torch.searchsorted(columns, targets[keep]))
    torch.testing.assert_close(loss, expected)
    with pytest.raises(SequenceModelError, match="target_share"):
        model.loss(windows)
    with pytest.raises(SequenceConfigError, match="uniform_negatives"):
        SequenceConfig(uniform_negatives=-1)


def test_training_with_the_sampled_loss_and_a_validation_sample(sample_ml, tmp_path) -> None:
    settings = sample_settings(tmp_path)
    movie_ids, candidate, query = make_test_directed_embeddings(sample_ml.movies)
    save_movie_embeddings(settings, movie_ids, candidate, query_vectors=query)
    gd = build_graph(sample_ml)
    config = SequenceConfig.for_dataset("sample", steps=30, eval_every=15, length=10, uniform_negatives=64,
                                        val_users=100)
    result = train_sequence_model(gd, load_movie_embeddings(settings), config, seed=1, progress=False)
    assert [row["step"] for row in result.history] == [15, 30]
    assert all(np.isfinite(row["loss"]) and 0 <= row["val_hr@10"] <= 1 for row in result.history)


# -- training, the artifact and the encoder on the sample ----------------------------------------------------
@pytest.fixture(scope="module")
def trained_once(sample_ml, tmp_path_factory):
    """One 30-step run on the sample graph over stand-in directed embeddings (trained once per module)."""
    settings = sample_settings(tmp_path_factory.mktemp("sequence"))
    movie_ids, candidate, query = make_test_directed_embeddings(sample_ml.movies)
    save_movie_embeddings(settings, movie_ids, candidate, query_vectors=query)
    gd = build_graph(sample_ml)
    config = SequenceConfig.for_dataset("sample", steps=30, eval_every=15, length=10)
    result = train_sequence_model(gd, load_movie_embeddings(settings), config, seed=1, progress=False)
    return gd, result


@pytest.fixture
def trained(trained_once, sample_ml, tmp_path):
    """Settings of a fresh folder holding the embeddings and the trained model's artifact (tests may spoil it)."""
    gd, result = trained_once
    settings = sample_settings(tmp_path)
    movie_ids, candidate, query = make_test_directed_embeddings(sample_ml.movies)
    save_movie_embeddings(settings, movie_ids, candidate, query_vectors=query)
    save_sequence_model(settings, result.model, gd.movie_ids, result.history, result.best_step)
    return settings, gd, result


def test_training_learns_and_the_artifact_round_trips(trained) -> None:
    settings, gd, result = trained
    assert [row["step"] for row in result.history] == [15, 30] and result.best_step in (15, 30)
    assert result.history[-1]["loss"] < np.log(gd.n_movies)  # below the uniform guess
    assert result.history[-1]["val_hr@10"] > 0.1
    model, movie_ids, state = load_sequence_model(settings)
    np.testing.assert_array_equal(movie_ids, gd.movie_ids)
    queries = np.array([[-1, 3, 5], [1, 2, 4]])
    np.testing.assert_allclose(sequence_scorer(model)(queries), sequence_scorer(result.model)(queries), rtol=1e-5)
    assert state["config"]["length"] == 10


def test_the_engine_picks_the_sequence_encoder_while_its_artifact_matches(trained, sample_ml) -> None:
    settings, gd, _ = trained
    encoder = load_query_encoder(settings)  # auto
    assert isinstance(encoder, SequenceQueryEncoder) and encoder.fallback_reason is None
    ids = [int(m) for m in gd.movie_ids[[4, 9, 2]]]
    assert not np.allclose(encoder.encode(ids), encoder.encode(ids[::-1]))  # order matters
    np.testing.assert_allclose(encoder.movie_vectors(ids), load_movie_embeddings(settings).query_vectors[
        [int(np.flatnonzero(load_movie_embeddings(settings).movie_ids == m)[0]) for m in ids]])  # one-movie path
    with pytest.raises(SequenceArtifactError, match="none of the liked movies"):
        encoder.sequence.encode([10**9])
    assert isinstance(load_query_encoder(settings, "mean"), MeanQueryEncoder)
    # notebook 03 again: new embeddings, the sequence model is now stale -> the mean answers and says why
    movie_ids, candidate, query = make_test_directed_embeddings(sample_ml.movies, seed=99)
    save_movie_embeddings(settings, movie_ids, candidate, query_vectors=query)
    for name in ("auto", "sequence"):
        stale = load_query_encoder(settings, name)
        assert isinstance(stale, MeanQueryEncoder) and "the sequence encoder is not used" in stale.fallback_reason
        assert "older embeddings" in stale.fallback_reason and "04_sequence_model" in stale.fallback_reason
    (settings.artifacts_dir / "sequence_model.pt").unlink()
    assert load_query_encoder(settings).fallback_reason is None  # auto: never trained here is no fallback
    assert "No sequence artifact" in load_query_encoder(settings, "sequence").fallback_reason


def sequence_encoder(embeddings: MovieEmbeddings) -> SequenceQueryEncoder:
    """The "sequence" encoder over `embeddings`, with an untrained tiny model (its vectors differ from the mean's)."""
    model = build_sequence_model(embeddings, embeddings.movie_ids, dataclasses.replace(TINY, length=4))
    return SequenceQueryEncoder(MovieVectorLookup.from_embeddings(embeddings),
                                SequenceQuery(model.eval(), embeddings.movie_ids))


def test_brute_force_over_the_encoders_vector(tmp_path, sample_ml) -> None:
    """numpy_recommend(query=): the ranking by the one vector given, explained by the liked movies' own vectors.
    Cost: well under a second (no store)."""
    settings = sample_settings(tmp_path)
    movie_ids, candidate, query_vectors = make_test_directed_embeddings(sample_ml.movies)
    save_movie_embeddings(settings, movie_ids, candidate, query_vectors=query_vectors)
    embeddings = load_movie_embeddings(settings)
    encoder = sequence_encoder(embeddings)
    ids = [int(m) for m in embeddings.movie_ids]
    liked = [ids[5], ids[1], ids[8]]
    query = encoder.encode(liked)
    got = numpy_recommend(embeddings.movie_ids, embeddings.vectors, liked, 10, query_vectors=embeddings.query_vectors,
                          query=query)
    scores = embeddings.vectors @ (query / np.linalg.norm(query))
    scores[[ids.index(m) for m in liked]] = -np.inf
    best = np.argsort(-scores, kind="stable")[:10]
    assert [m for m, _, _ in got] == [ids[i] for i in best]
    np.testing.assert_allclose([s for _, s, _ in got], scores[best], rtol=1e-5)
    because = embeddings.query_vectors[[ids.index(m) for m in liked]] @ embeddings.vectors[best].T
    assert [b for _, _, b in got] == [liked[i] for i in because.argmax(axis=0)]
    mean = numpy_recommend(embeddings.movie_ids, embeddings.vectors, liked, 10, query_vectors=embeddings.query_vectors)
    by_mean = numpy_recommend(embeddings.movie_ids, embeddings.vectors, liked, 10,
                              query_vectors=embeddings.query_vectors,
                              query=MeanQueryEncoder(encoder.lookup).encode(liked))
    assert [(m, b) for m, _, b in by_mean] == [(m, b) for m, _, b in mean]  # the default is the mean's vector
    np.testing.assert_allclose([s for _, s, _ in by_mean], [s for _, s, _ in mean], rtol=1e-5)
    assert [m for m, _, _ in mean] != [m for m, _, _ in got]  # else this test could not tell the two apart
    with pytest.raises(RecommendError, match="leave query out"):
        numpy_recommend(embeddings.movie_ids, embeddings.vectors, liked, 10, "max", query=query)
    with pytest.raises(RecommendError, match="one vector of length"):
        numpy_recommend(embeddings.movie_ids, embeddings.vectors, liked, 10, query=np.stack([query, query]))


def test_the_engine_with_the_sequence_encoder_equals_brute_force(tmp_path, sample_ml) -> None:
    """The engine's top 10 with the "sequence" encoder equals `numpy_recommend` over the vector that encoder makes
    (as bench.recommend_latency checks it), with and without a genre filter."""
    settings = sample_settings(tmp_path)
    movie_ids, candidate, query = make_test_directed_embeddings(sample_ml.movies)
    save_movie_embeddings(settings, movie_ids, candidate, query_vectors=query)
    build_stores(settings, ml=sample_ml, progress=False)
    embeddings: MovieEmbeddings = load_movie_embeddings(settings)
    encoder = sequence_encoder(embeddings)
    ids = [int(m) for m in embeddings.movie_ids]
    genres = dict(zip(sample_ml.movies["movie_id"].astype(int), sample_ml.movies["genres"], strict=True))
    genre = sample_ml.movies["genres"].explode().value_counts().index[1]
    try:
        with RecommendationEngine(settings, encoder=encoder) as engine:
            for liked, wanted in (([ids[3]], None), ([ids[5], ids[1], ids[8]], None), (ids[10:30], None),
                                  ([ids[5], ids[1], ids[8]], genre)):
                got = engine.recommend(liked, k=10, genres=None if wanted is None else [wanted])
                allowed = None if wanted is None else np.array([wanted in genres[m] for m in ids])
                want = numpy_recommend(embeddings.movie_ids, embeddings.vectors, liked, 10,
                                       query_vectors=embeddings.query_vectors, query=encoder.encode(liked),
                                       allowed=allowed)
                assert [(r.movie_id, r.because_of) for r in got] == [(m, b) for m, _, b in want]
                assert got.encoder == "sequence"
                np.testing.assert_allclose([r.score for r in got], [s for _, s, _ in want], rtol=1e-4, atol=1e-4)
    finally:
        disconnect(settings.milvus_uri)


def test_sequence_errors_are_project_errors() -> None:
    for error in (SequenceModelError, SequenceArtifactError, SequenceConfigError):
        assert issubclass(error, RecsysError)


def test_pinsage_sequence_joins_metrics_json_with_its_own_history_length(trained) -> None:
    from helpers.evaluation.baselines import PopularityBaseline
    from helpers.evaluation.protocols import evaluate_models
    from helpers.evaluation.report import read_metrics, write_metrics
    from helpers.sequence.evaluate import MODEL_NAME, add_to_metrics, evaluate_sequence

    settings, gd, result = trained
    popularity = PopularityBaseline().fit(gd)
    write_metrics(settings, evaluate_models({"popularity": popularity}, gd), extra={"popularity": {"note": 1}})
    table, per_user = evaluate_sequence({MODEL_NAME: sequence_scorer(result.model), "popularity": popularity}, gd, 10)
    own = per_user[(MODEL_NAME, "history-10", "val")]
    assert len(own) == table[MODEL_NAME]["history-10"]["val"]["n_users"]
    assert own["hr@10"].mean() == pytest.approx(table[MODEL_NAME]["history-10"]["val"]["hr@10"])
    for _ in range(2):  # a re-run replaces its own records
        add_to_metrics(settings, table, 10, extra={MODEL_NAME: {"history": 10}})
    document = read_metrics(settings)
    assert document["protocols"]["history-10"]["history"] == 10 and document["protocols"]["history"]["history"] == 10
    keys = sorted((r["model"], r["protocol"], r["split"]) for r in document["results"])
    assert keys == sorted([("popularity", p, s) for p in ("latest", "history", "history-10") for s in ("val", "test")]
                          + [(MODEL_NAME, p, s) for p in ("history", "history-10") for s in ("val", "test")])
    assert document["popularity"] == {"note": 1} and document[MODEL_NAME] == {"history": 10}
    assert all(np.isfinite(r["metrics"]["hr@10"]) for r in document["results"])
