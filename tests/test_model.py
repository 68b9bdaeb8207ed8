"""helpers.training.model: the plain-PyTorch convolution against DGL's own message passing, the projector, the loss."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from helpers.dgl_import import dgl
from helpers.graph.features import GraphError
from helpers.training.config import TrainConfigError
from helpers.training.model import MovieFeatures, PinSage, WeightedSAGELayer, max_margin_loss, softmax_loss
from helpers.training.sampling import Hop, Neighbourhood


def features(n: int = 6) -> dict[str, torch.Tensor]:
    genres = torch.zeros(n, 3)
    genres[torch.arange(n), torch.arange(n) % 3] = 1
    title = torch.tensor([[1, 2, 0], [3, 0, 0], [0, 0, 0], [4, 5, 6], [2, 0, 0], [1, 1, 0]])[:n]
    return {"genres": genres, "year": torch.linspace(-2, 2, n), "title": title}


def test_weighted_sage_layer_matches_dgl_message_passing():
    torch.manual_seed(0)
    src, dst = torch.tensor([2, 3, 4, 2, 0]), torch.tensor([0, 0, 0, 1, 1])
    weight = torch.tensor([5.0, 1.0, 2.0, 3.0, 7.0])
    h_src = torch.randn(5, 8)
    layer = WeightedSAGELayer(8)
    ours = layer(Hop(src, dst, weight, num_dst=2), h_src, h_src[:2])

    block = dgl.create_block((src, dst), num_src_nodes=5, num_dst_nodes=2)
    block.srcdata["n"] = F.relu(layer.Q(h_src))
    block.edata["w"] = weight
    block.update_all(dgl.function.u_mul_e("n", "w", "m"), dgl.function.sum("m", "n"))
    block.update_all(dgl.function.copy_e("w", "m"), dgl.function.sum("m", "ws"))
    pooled = block.dstdata["n"] / block.dstdata["ws"].unsqueeze(1)
    reference = F.normalize(F.relu(layer.W(torch.cat([pooled, h_src[:2]], 1))), dim=1)
    assert torch.allclose(ours, reference, atol=1e-6)


def test_importance_pooling_is_a_visit_count_weighted_mean():
    layer = WeightedSAGELayer(2)
    with torch.no_grad():
        layer.Q.weight.copy_(torch.eye(2))
        layer.Q.bias.zero_()
        layer.W.weight.copy_(torch.cat([torch.eye(2), torch.zeros(2, 2)], 1))  # output = pooled neighbours
        layer.W.bias.zero_()
    h_src = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    out = layer(Hop(torch.tensor([1, 2]), torch.tensor([0, 0]), torch.tensor([3.0, 1.0]), 1), h_src, h_src[:1])
    assert torch.allclose(out, F.normalize(torch.tensor([[0.75, 0.25]]), dim=1))


def test_a_movie_without_neighbours_keeps_its_own_features():
    torch.manual_seed(0)
    layer = WeightedSAGELayer(4)
    h = torch.randn(3, 4)
    empty = Hop(torch.tensor([], dtype=torch.long), torch.tensor([], dtype=torch.long), torch.tensor([]), 3)
    out = layer(empty, h, h)
    assert torch.isfinite(out).all() and out.shape == (3, 4)


def test_model_embeds_seeds_with_unit_length_and_gradients_reach_every_input():
    torch.manual_seed(0)
    model = PinSage(**features(), dim=8, layers=2)
    hop0 = Hop(torch.tensor([3, 4, 5, 2]), torch.tensor([0, 1, 2, 2]), torch.tensor([1.0, 2.0, 1.0, 4.0]), 3)
    hop1 = Hop(torch.tensor([1, 2]), torch.tensor([0, 1]), torch.tensor([2.0, 3.0]), 2)
    hood = Neighbourhood(torch.tensor([0, 1, 2, 3, 4, 5]), [hop0, hop1], torch.tensor([0, 1]))
    h = model(hood)
    assert h.shape == (2, 8)
    assert torch.allclose(h.norm(dim=1), torch.ones(2), atol=1e-6)
    h.sum().backward()
    assert model.features.id_emb.weight.grad[[0, 1, 2, 3, 4, 5]].abs().sum(1).gt(0).all()
    assert model.features.title_emb.weight.grad[0].abs().sum() == 0  # padding token stays zero


def test_title_tokens_are_averaged_ignoring_padding():
    f = MovieFeatures(**features(), dim=4, use_id=False)
    with torch.no_grad():
        f.genre_proj.weight.zero_()
        f.genre_proj.bias.zero_()
        f.year_emb.weight.zero_()
    emb = f.title_emb.weight
    assert torch.allclose(f(torch.tensor([0]))[0], (emb[1] + emb[2]) / 2)
    assert torch.allclose(f(torch.tensor([2]))[0], torch.zeros(4))  # no tokens, nothing else


def test_max_margin_loss():
    h = F.normalize(torch.tensor([[1.0, 0.0], [1.0, 0.1], [0.0, 1.0], [-1.0, 0.0]]), dim=1)
    heads, tails = torch.tensor([0]), torch.tensor([1])
    assert max_margin_loss(h, heads, tails, torch.tensor([[2, 3]]), margin=0.1).item() == 0.0
    close = max_margin_loss(h, heads, tails, torch.tensor([[1]]), margin=0.1).item()
    assert close == pytest.approx(0.1)  # a negative as similar as the positive costs exactly the margin
    # in-batch: pair (0 -> 1) also gets pair (2 -> 3)'s tail as a negative, and (2 -> 3) gets 1
    two = max_margin_loss(h, torch.tensor([0, 2]), torch.tensor([1, 3]), torch.tensor([[3], [0]]), 0.1, in_batch=True)
    s = h @ h.T
    expected = [max(0.0, float(s[0, 3] - s[0, 1] + 0.1)), max(0.0, float(s[2, 0] - s[2, 3] + 0.1)),
                max(0.0, float(s[0, 3] - s[0, 1] + 0.1)), max(0.0, float(s[2, 1] - s[2, 3] + 0.1))]
    assert two.item() == pytest.approx(sum(expected) / 4)


def test_from_graph_needs_movie_features():
    graph = dgl.heterograph({("user", "watched", "movie"): ([0], [0]), ("movie", "watched-by", "user"): ([0], [0])})
    with pytest.raises(GraphError, match="genres"):
        PinSage.from_graph(graph)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (the DGL wheel itself is CPU-only)")
def test_model_runs_on_gpu():
    model = PinSage(**features(), dim=8).cuda()
    hop0 = Hop(torch.tensor([1, 2]), torch.tensor([0, 1]), torch.tensor([1.0, 2.0]), 2)
    hop1 = Hop(torch.tensor([1]), torch.tensor([0]), torch.tensor([3.0]), 1)
    hood = Neighbourhood(torch.tensor([0, 1, 2]), [hop0, hop1], torch.tensor([0])).to("cuda")
    assert model(hood).device.type == "cuda"


# -- the softmax objective and the query / candidate sides (well under a second) ------------------------
def test_softmax_loss_is_cross_entropy_over_all_movies_without_the_head():
    torch.manual_seed(0)
    queries, candidates = torch.randn(4, 5), torch.randn(7, 5)
    heads, tails = torch.tensor([0, 1, 2, 3]), torch.tensor([1, 2, 6, 0])
    logits = queries @ candidates.T
    logits[torch.arange(4), heads] = float("-inf")
    expected = -torch.log_softmax(logits, dim=1)[torch.arange(4), tails].mean()
    assert torch.allclose(softmax_loss(queries, candidates, tails, heads), expected)
    assert softmax_loss(queries, candidates, tails, heads) < softmax_loss(queries, candidates, tails)  # fewer rivals
    # sampled: all movies as columns and no correction is the full softmax; a correction changes it
    columns = torch.arange(7)
    assert torch.allclose(softmax_loss(queries, candidates, tails, heads, columns), expected)
    log_q = torch.log(torch.linspace(0.1, 1.0, 7))
    assert not torch.allclose(softmax_loss(queries, candidates, tails, heads, columns, log_q), expected)
    subset = torch.tensor([0, 1, 2, 6])  # the tails plus one other movie: fewer competitors, a smaller loss
    assert softmax_loss(queries, candidates, tails, heads, subset) < expected


def test_query_dot_candidate_is_head_score_over_temperature_plus_bias():
    torch.manual_seed(0)
    model = PinSage(**features(), dim=4, layers=1, directed=True, bias=True, temperature=0.5, query_id=True)
    with torch.no_grad():
        model.query_head.weight.add_(torch.randn(4, 4))
        model.movie_bias.weight.normal_()
        model.query_id.weight.normal_()
    h = F.normalize(torch.randn(6, 4), dim=1)
    movies = torch.arange(6)
    q, c = model.query_vectors(h, movies), model.candidate_vectors(h, movies)
    assert q.shape == c.shape == (6, model.vector_dim) and model.vector_dim == 5
    expected = (model.query_head(h) + model.query_id(movies)) @ h.T / 0.5 + model.movie_bias.weight.T
    assert torch.allclose(q @ c.T, expected, atol=1e-5)
    plain = PinSage(**features(), dim=4, layers=1)  # symmetric: both sides are the unit embedding
    assert torch.equal(plain.query_vectors(h, movies), h) and torch.equal(plain.candidate_vectors(h, movies), h)
    with pytest.raises(TrainConfigError, match="temperature"):
        PinSage(**features(), dim=4, temperature=0)


def test_embed_all_equals_the_batched_forward_on_the_same_hops():
    torch.manual_seed(0)
    model = PinSage(**features(), dim=4, layers=2)
    src, dst = torch.tensor([1, 2, 0, 3, 4, 5, 0]), torch.tensor([0, 0, 1, 2, 3, 4, 5])
    hop = Hop(src, dst, torch.ones(7), num_dst=6)
    everything = model.embed_all([hop, hop])
    batched = model(Neighbourhood(torch.arange(6), [hop, hop], torch.arange(6)))
    assert torch.allclose(everything, batched, atol=1e-6)
