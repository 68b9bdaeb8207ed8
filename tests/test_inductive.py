"""helpers.training.inductive and the model's inductive knobs (issue 17): a movie outside the graph, by hand.

Cost: about 4 s (the sample graph is built once; no training)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from helpers.data.loader import load_movielens
from helpers.dgl_import import dgl
from helpers.graph.build import build_graph
from helpers.graph.features import GraphError, year_scale
from helpers.training.config import LATER_KNOBS, TrainConfig, TrainConfigError
from helpers.training.inductive import RaterWalks, embed_from_hops, embed_new_movies, new_movie_inputs
from helpers.training.inference import infer_layer_vectors, infer_movie_embeddings
from helpers.training.loop import build_model
from helpers.training.sampling import Hop, NeighbourhoodSpec, NeighbourSampler, SamplingError
from helpers.training.step import TrainingStep

INDUCTIVE = {"hidden": 8, "layers": 2, "neighbours": 3, "walks": 20, "id_dropout": 0.3, "title_token_dropout": 0.2,
             "bias_source": "both", "directed": True, "query_id_embedding": True}
# the knobs that make the model inductive (on by default), each with its own value in LATER_KNOBS
INDUCTIVE_KNOBS = ("id_dropout", "id_dropout_until", "title_token_dropout", "bias_source")


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    ml = load_movielens("sample", cache_dir=tmp_path_factory.mktemp("cache"))
    return ml, build_graph(ml)


def model_for(gd, **overrides):
    torch.manual_seed(0)
    sizes = ("hidden", "layers", "neighbours", "walks")
    config = TrainConfig(**{k: v for k, v in INDUCTIVE.items() if k in sizes})
    model = build_model(gd, config.replace(**{k: v for k, v in INDUCTIVE.items() if k not in sizes}, **overrides))
    with torch.no_grad():  # non-zero heads, so that every id-specific input matters
        for p in model.parameters():
            if p.abs().sum() == 0:
                p.normal_(std=0.1)
    return model.eval()


def test_the_default_model_is_inductive_and_its_knobs_are_checked():
    alt = TrainConfig().alternatives
    assert (alt.id_dropout, alt.id_dropout_until, alt.title_token_dropout, alt.bias_source) == (0.3, 0.5, 0.1, "vector")
    for bad in ({"id_dropout": 1.0}, {"title_token_dropout": -0.1}, {"bias_source": "free"}):
        with pytest.raises(TrainConfigError):
            TrainConfig().replace(**bad)


def test_a_new_movie_without_ratings_is_its_features_through_empty_neighbourhoods(sample):
    ml, gd = sample
    model = model_for(gd)
    movies = pd.DataFrame({"movie_id": [10**6], "title": ["Zzyzx Story of a Brand New Token"], "year": [1999],
                           "genres": [["Comedy", "No Such Genre"]]})
    scale = year_scale(ml.movies.sort_values("movie_id")["year"])
    layers = infer_layer_vectors(model, gd, seed=0)
    vectors = embed_new_movies(model, gd, movies, pd.DataFrame(columns=["user_id", "movie_id"]), layers,
                               year_scale=scale, seed=0)
    genres, bucket, title = new_movie_inputs(gd, movies, scale)
    assert title[0, 0] == 1 and genres.sum() == 1  # an unknown token is <unk>; an unknown genre is ignored
    f = model.features
    with torch.no_grad():  # by hand: projection, then each layer with nothing to pool
        p = f.genre_proj(genres) + f.year_emb(bucket) + f.title_emb(title).sum(1) / (title > 0).sum(1, keepdim=True)
        h = p
        for conv in model.convs:
            h = F.normalize(F.relu(conv.W(torch.cat([torch.zeros_like(h), h], 1))), dim=1)
        e = F.normalize(p + h, dim=1)
        query = torch.cat([model.query_head(e) / model.temperature, torch.ones(1, 1)], 1)
        candidate = torch.cat([e, model.bias_head(e)], 1)  # no table row: the bias comes from the vector
    np.testing.assert_allclose(vectors.query, query.numpy(), atol=1e-5)
    np.testing.assert_allclose(vectors.candidate, candidate.numpy(), atol=1e-5)


def test_the_neighbourhood_is_found_through_the_raters(sample):
    _, gd = sample
    train = gd.train
    user = int(train["user"].value_counts().index[-1])  # a user with few movies
    theirs = set(train.loc[train["user"] == user, "movie"])
    walks = RaterWalks(gd.graph, NeighbourhoodSpec(neighbours=1000, walks=200, walk_length=1, restart_prob=0.5),
                       torch.Generator().manual_seed(0))
    hop = walks.hop([np.array([user]), np.zeros(0, np.int64)])
    assert set(hop.src.tolist()) == theirs and set(hop.dst.tolist()) == {0}  # one traversal: the rater's movies
    assert hop.weight.sum() == 200 and hop.num_dst == 2


def test_a_graph_movie_through_the_new_movie_path_equals_the_id_less_forward_pass(sample):
    ml, gd = sample
    model = model_for(gd)
    m = int(gd.train["movie"].value_counts().index[0])
    keep = torch.ones(gd.n_movies, dtype=torch.bool)
    keep[m] = False
    sampler = NeighbourSampler(gd.graph, 1, model.spec, generator=torch.Generator().manual_seed(0))
    everything = torch.arange(gd.n_movies)
    hops = [sampler.hop(everything)[0] for _ in model.convs]  # all movies in index order: src = movie index
    with torch.no_grad():
        outputs = model.layer_outputs(hops, keep)
        expected = model.combine(outputs[0], outputs[-1])[m:m + 1]
        own = [Hop(h.src[h.dst == m], torch.zeros(int((h.dst == m).sum()), dtype=torch.long), h.weight[h.dst == m], 1)
               for h in hops]
        f = model.features
        projected = f.project(f.genres[[m]], f.year_bucket[[m]], f.title[[m]])
        ours = embed_from_hops(model, projected, own, outputs)
        assert torch.allclose(ours, expected, atol=1e-6)
        # without its id the movie's candidate bias is the vector's alone, and its query has no offset
        assert torch.allclose(model.candidate_vectors(ours, None), model.candidate_vectors(expected, torch.tensor([m]),
                                                                                            torch.tensor([False])))
    # the library's features of the catalogue row are the graph's
    row = ml.movies.sort_values("movie_id").iloc[[m]]
    genres, bucket, title = new_movie_inputs(gd, row, year_scale(ml.movies.sort_values("movie_id")["year"]))
    assert torch.equal(genres, f.genres[[m]]) and torch.equal(bucket, f.year_bucket[[m]])
    width = title.shape[1]
    assert torch.equal(title, f.title[[m], :width]) and not f.title[m, width:].any()


def test_embed_new_movies_checks_and_the_default_model_still_infers(sample):
    ml, gd = sample
    model = model_for(gd)
    layers = infer_layer_vectors(model, gd, seed=1)
    np.testing.assert_allclose(model.combine(layers[0], layers[-1]).numpy(), infer_movie_embeddings(model, gd, seed=1),
                               atol=1e-6)
    movies = ml.movies.iloc[:2]
    ratings = gd.train.head(5).assign(user_id=lambda t: gd.user_ids[t["user"]], movie_id=movies["movie_id"].iloc[0])
    v = embed_new_movies(model, gd, movies, ratings, layers, year_scale=(1990.0, 10.0), seed=0)
    assert v.query.shape == v.candidate.shape == (2, model.vector_dim) and np.isfinite(v.candidate).all()
    with pytest.raises(GraphError, match="infer_layer_vectors"):
        embed_new_movies(model, gd, movies, ratings, layers[:1], year_scale=(1990.0, 10.0))
    with pytest.raises(GraphError, match="not in `movies`"):
        embed_new_movies(model, gd, movies, ratings.assign(movie_id=-5), layers, year_scale=(1990.0, 10.0))


def test_a_training_step_with_the_inductive_knobs_reaches_every_head(sample):
    _, gd = sample
    config = TrainConfig(hidden=8, batch_size=16, neighbours=3, walks=10).replace(
        id_dropout=0.5, title_token_dropout=0.3, bias_source="both")
    torch.manual_seed(0)
    model = build_model(gd, config)
    step = TrainingStep(gd, config, model, torch.optim.Adam(model.parameters(), lr=1e-2))
    keep, title = step.dropped(torch.Generator().manual_seed(0), step.all_movies)
    assert 0.3 < keep.float().mean() < 0.7 and (title == 1).sum() > (model.features.title == 1).sum()
    loss = step.loss(torch.Generator().manual_seed(1))
    loss.backward()
    assert model.bias_head.weight.grad.abs().sum() > 0 and model.movie_bias.weight.grad.abs().sum() > 0


def test_ids_are_dropped_only_within_the_first_share_of_the_run(sample):
    _, gd = sample
    config = TrainConfig(hidden=8, batch_size=16, neighbours=3, walks=10).replace(id_dropout=0.5,
                                                                                  id_dropout_until=0.7)
    model = build_model(gd, config)
    step = TrainingStep(gd, config, model, torch.optim.Adam(model.parameters(), lr=1e-2))
    for done, dropping in ((0.0, True), (0.69, True), (0.7, False), (1.0, False)):
        step(torch.Generator().manual_seed(0), done=done)
        keep, _ = step.dropped(torch.Generator().manual_seed(0), step.all_movies)
        assert (keep is not None and not keep.all()) == dropping, done
    for bad in (0.0, 1.5):
        with pytest.raises(TrainConfigError, match="id_dropout_until"):
            config.replace(id_dropout_until=bad)


def test_a_checkpoint_from_before_the_inductive_knobs_loads_as_the_model_it_was(sample):
    """A config saved before the knobs existed (the transductive default of its day: a bias table, no dropout) is
    read with those knobs at the values its run had, not at today's inductive defaults, so its weights load."""
    _, gd = sample
    transductive = TrainConfig().replace(**{k: LATER_KNOBS[k] for k in INDUCTIVE_KNOBS})
    saved = transductive.to_dict()
    saved["alternatives"] = {k: v for k, v in saved["alternatives"].items() if k not in INDUCTIVE_KNOBS}
    config = TrainConfig.from_dict(saved)  # a config written before
    assert config == transductive and config != TrainConfig()
    state = build_model(gd, transductive).state_dict()
    assert "movie_bias.weight" in state and not any(key.startswith("bias_head") for key in state)
    build_model(gd, config).load_state_dict(state)  # strict: the same keys and shapes
    with pytest.raises(RuntimeError):  # read at today's default, the bias would be a head the checkpoint lacks
        build_model(gd, TrainConfig()).load_state_dict(state)
    default = build_model(gd, TrainConfig()).state_dict()
    assert "bias_head.weight" in default and "movie_bias.weight" not in default


def test_degree_alpha_divides_the_visits_by_the_degree_before_picking_neighbours(sample):
    _, gd = sample
    seeds = torch.arange(0, gd.n_movies, 7)

    def walk(spec: NeighbourhoodSpec):
        dgl.seed(5)
        return NeighbourSampler(gd.graph, 1, spec, generator=torch.Generator().manual_seed(5)).hop(seeds)

    wide, wide_inputs = walk(NeighbourhoodSpec(neighbours=20, walks=50))  # the candidates the reweighted one walks
    hop, inputs = walk(NeighbourhoodSpec(neighbours=5, walks=50, degree_alpha=1.0))
    degree = torch.bincount(torch.tensor(gd.train["movie"].to_numpy()), minlength=gd.n_movies).clamp(min=1)
    changed = 0
    for row in range(len(seeds)):
        candidates = {int(wide_inputs[s]): float(w) / float(degree[wide_inputs[s]])
                      for s, w in zip(wide.src[wide.dst == row], wide.weight[wide.dst == row], strict=True)}
        ours = {int(inputs[s]): float(w)
                for s, w in zip(hop.src[hop.dst == row], hop.weight[hop.dst == row], strict=True)}
        assert len(ours) == min(5, len(candidates))
        assert all(candidates[m] == pytest.approx(w) for m, w in ours.items())
        if len(candidates) > 5:
            assert min(ours.values()) >= sorted(candidates.values())[-5] - 1e-9
        plain = wide.weight[wide.dst == row]
        most_visited = wide.src[wide.dst == row][torch.argsort(-plain, stable=True)[:5]]
        changed += set(ours) != {int(wide_inputs[s]) for s in most_visited}
    assert changed > 0  # hubs gave way somewhere
    with pytest.raises(SamplingError, match="degree_alpha"):
        NeighbourhoodSpec(degree_alpha=-1)
    assert TrainConfig().replace(neighbour_degree_alpha=0.5).spec.degree_alpha == 0.5


def test_several_neighbourhood_draws_average_to_unit_vectors(sample):
    _, gd = sample
    model = model_for(gd)
    one = [infer_movie_embeddings(model, gd, seed=s) for s in (3, 4)]
    both = infer_movie_embeddings(model, gd, seed=3, draws=2)
    mean = (one[0] + one[1]) / np.linalg.norm(one[0] + one[1], axis=1, keepdims=True)
    np.testing.assert_allclose(both, mean, atol=1e-5)
    np.testing.assert_array_equal(infer_movie_embeddings(model, gd, seed=3, draws=1), one[0])
    with pytest.raises(GraphError, match="draws"):
        infer_movie_embeddings(model, gd, draws=0)
