"""The PinSage model: a feature projector, weighted-SAGE layers, a query/candidate scoring head and two
losses (softmax over all movies, the paper's max-margin), in plain PyTorch.

Message passing is written with `index_add_` over each hop's edge lists (`helpers.training.sampling.Hop`), so the
model runs on any PyTorch device although DGL's PyPI build is CPU-only. A movie's embedding `h` is its
projected features plus the output of the last convolution, L2-normalised.

Scoring "how likely is movie j to be watched right after movie i" is an inner product of two vectors:
* the candidate vector of j: `[h_j, b_j]`, its embedding and (with `bias`) its bias as one extra dimension,
  read from the embedding (`bias_source` "vector", the default) or a learned value per movie ("table");
  these are what Milvus stores;
* the query vector of i: `[head(h_i) / temperature, 1]`, a small linear query head (with `directed`; else
  the identity; with `query_id` plus a learned per-movie query offset) and a constant 1 that picks up the
  candidate's bias.
So `query_i . candidate_j = head(h_i) . h_j / temperature + b_j` and an exact inner-product search over the
candidate vectors ranks movies exactly as the model scores them. Without `directed` and `bias` both sides
are the unit embedding and the score is the cosine similarity (the original, symmetric model).

Inductive use (issue 17): every id-specific input (the id embedding, the query offset, the bias table) can be
left out per movie (`keep_id`), so the same weights embed a movie from its features and neighbourhood alone;
`bias_source` "vector" or "both" predicts the bias from the embedding (`bias_head`), which a new movie has too.
Training drops ids (DropoutNet; by default 30% of the movies per step, in the first half of the run) and title
tokens (to `<unk>`) at random: `helpers.training.step`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from helpers.graph.features import GraphError
from helpers.training.config import BIAS_SOURCES, TrainConfigError
from helpers.training.sampling import Hop, Neighbourhood, NeighbourhoodSpec

YEAR_BUCKETS = torch.linspace(-3.0, 3.0, 25)  # standardised release year -> 26 buckets (unknown year = 0)
UNK_TOKEN = 1  # title-token id of `<unk>` (helpers.graph.features)


class MovieFeatures(nn.Module):
    """Projects each movie's features into `dim`: genres (linear), release year (bucket embedding),
    title tokens (mean of token embeddings) and a learned per-movie id embedding, summed."""

    def __init__(self, genres: torch.Tensor, year: torch.Tensor, title: torch.Tensor, dim: int,
                 use_id: bool = True):
        super().__init__()
        self.register_buffer("genres", genres.float(), persistent=False)
        self.register_buffer("year_bucket", torch.bucketize(year.float(), YEAR_BUCKETS), persistent=False)
        used = int((title > 0).any(0).nonzero().max()) + 1 if bool((title > 0).any()) else 1
        self.register_buffer("title", title[:, :used].long(), persistent=False)  # drop all-padding columns
        self.genre_proj = nn.Linear(genres.shape[1], dim)
        self.year_emb = nn.Embedding(len(YEAR_BUCKETS) + 1, dim)
        vocab = int(title.max()) + 1 if title.numel() else 1
        self.title_emb = nn.Embedding(vocab, dim, padding_idx=0)
        self.id_emb = nn.Embedding(len(genres), dim) if use_id else None
        for emb in (self.year_emb, self.title_emb, self.id_emb):
            if emb is not None:
                nn.init.normal_(emb.weight, std=0.1)
        with torch.no_grad():
            self.title_emb.weight[0].zero_()

    @property
    def num_movies(self) -> int:
        return len(self.genres)

    def project(self, genres: torch.Tensor, year_bucket: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """The id-free part: genres [B, G], year buckets [B] and title token ids [B, L] (0 padding, 1 `<unk>`)
        of any movies, in the graph or not."""
        tokens = tokens.masked_fill(tokens >= self.title_emb.num_embeddings, UNK_TOKEN)  # beyond the vocabulary
        counts = (tokens > 0).sum(1, keepdim=True).clamp(min=1)
        if self.title_emb.sparse:  # each distinct token looked up once: a sparse gradient of a row per token, not
            used, position = torch.unique(tokens, return_inverse=True)  # per occurrence (costlier to coalesce)
            token_vectors = self.title_emb(used)[position]
        else:
            token_vectors = self.title_emb(tokens)
        return self.genre_proj(genres) + self.year_emb(year_bucket) + token_vectors.sum(1) / counts

    def forward(self, movies: torch.Tensor, keep_id: torch.Tensor | None = None,
                title: torch.Tensor | None = None) -> torch.Tensor:
        """Projected features of graph movies `movies` [B]. `keep_id` [B] bool: rows whose id embedding is added
        (None: all); `title` [B, L]: the rows' token ids replacing the stored ones (token dropout). Both are given
        per row of `movies`, so that a step draws its noise for the movies it embeds, not for the catalogue."""
        tokens = self.title[movies] if title is None else title.to(self.title.device)
        h = self.project(self.genres[movies], self.year_bucket[movies], tokens)
        if self.id_emb is not None:
            ids = self.id_emb(movies)
            h = h + (ids if keep_id is None else ids * keep_id.unsqueeze(1).to(ids.dtype))
        return h


class WeightedSAGELayer(nn.Module):
    """PinSage convolution (paper, Algorithm 1): neighbours' ReLU(Q h) averaged with their visit counts as
    weights (importance pooling), concatenated with the node's own h, then ReLU(W [.]) and L2-normalised."""

    def __init__(self, dim: int, dropout: float = 0.0):
        super().__init__()
        self.Q = nn.Linear(dim, dim)
        self.W = nn.Linear(2 * dim, dim)
        self.dropout = nn.Dropout(dropout)
        gain = nn.init.calculate_gain("relu")
        for lin in (self.Q, self.W):
            nn.init.xavier_uniform_(lin.weight, gain=gain)
            nn.init.zeros_(lin.bias)

    def forward(self, hop: Hop, h_src: torch.Tensor, h_dst: torch.Tensor) -> torch.Tensor:
        messages = F.relu(self.Q(self.dropout(h_src)))[hop.src] * hop.weight.unsqueeze(1)
        pooled = h_dst.new_zeros((hop.num_dst, messages.shape[1])).index_add_(0, hop.dst, messages)
        total = h_dst.new_zeros(hop.num_dst).index_add_(0, hop.dst, hop.weight).clamp(min=1.0)
        z = F.relu(self.W(self.dropout(torch.cat([pooled / total.unsqueeze(1), h_dst], dim=1))))
        return F.normalize(z, dim=1)


class PinSage(nn.Module):
    """Projector + `layers` convolutions; `forward(neighbourhood)` embeds the neighbourhood's seeds.
    `spec` says how its neighbourhoods are sampled, in training and in inference alike."""

    def __init__(self, genres: torch.Tensor, year: torch.Tensor, title: torch.Tensor, dim: int = 64,
                 layers: int = 2, dropout: float = 0.0, use_id: bool = True,
                 spec: NeighbourhoodSpec = NeighbourhoodSpec(), directed: bool = False, bias: bool = False,
                 temperature: float = 1.0, query_id: bool = False, bias_source: str = "table"):
        super().__init__()
        if temperature <= 0:
            raise TrainConfigError(f"temperature={temperature}: it must be positive (e.g. 0.1)")
        if bias_source not in BIAS_SOURCES:
            raise TrainConfigError(f"bias_source={bias_source!r}: use one of {', '.join(BIAS_SOURCES)}")
        self.dim = dim
        self.spec = spec
        self.temperature = temperature
        self.features = MovieFeatures(genres, year, title, dim, use_id)
        self.convs = nn.ModuleList(WeightedSAGELayer(dim, dropout) for _ in range(layers))
        self.query_head = nn.Linear(dim, dim) if directed else None
        if self.query_head is not None:  # starts as the identity: the symmetric score
            nn.init.eye_(self.query_head.weight)
            nn.init.zeros_(self.query_head.bias)
        self.query_id = nn.Embedding(len(genres), dim) if query_id else None
        if self.query_id is not None:  # starts at 0: the query side starts as the movie's embedding
            nn.init.zeros_(self.query_id.weight)
        self.movie_bias = nn.Embedding(len(genres), 1) if bias and bias_source != "vector" else None
        if self.movie_bias is not None:
            nn.init.zeros_(self.movie_bias.weight)
        self.bias_head = nn.Linear(dim, 1) if bias and bias_source != "table" else None
        if self.bias_head is not None:  # starts at 0 like the table
            nn.init.zeros_(self.bias_head.weight)
            nn.init.zeros_(self.bias_head.bias)

    @classmethod
    def from_graph(cls, graph, **kwargs) -> PinSage:
        """Build from a `GraphData.graph`'s movie features (`genres`, `year`, `title`)."""
        data = graph.nodes["movie"].data
        missing = {"genres", "year", "title"} - set(data.keys())
        if missing:
            raise GraphError(f"movie nodes lack feature(s) {sorted(missing)}: build the graph with helpers.graph "
                             "(notebook 02)")
        return cls(data["genres"], data["year"], data["title"], **kwargs)

    @property
    def device(self) -> torch.device:
        return self.features.genre_proj.weight.device

    def forward(self, neighbourhood: Neighbourhood, keep_id: torch.Tensor | None = None,
                title: torch.Tensor | None = None) -> torch.Tensor:
        """Embeddings of the neighbourhood's seeds; `keep_id` [I] and `title` [I, L] per input node
        (`neighbourhood.input_nodes`), as in `MovieFeatures.forward`."""
        h = self.features(neighbourhood.input_nodes, keep_id, title)
        projected = h[:len(neighbourhood.seeds)]  # every hop lists its output nodes first, so the seeds lead
        for conv, hop in zip(self.convs, neighbourhood.hops, strict=True):
            h = conv(hop, h, h[:hop.num_dst])
        return self.combine(projected, h)

    @staticmethod
    def combine(projected: torch.Tensor, convolved: torch.Tensor) -> torch.Tensor:
        """Final embedding: skip connection from the projected features, then unit length."""
        return F.normalize(projected + convolved, dim=1)

    def layer_outputs(self, hops: list[Hop], keep_id: torch.Tensor | None = None,
                      title: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Every movie's representation after each layer ([projected, conv 1, ..., conv L], each [n_movies, dim]),
        `hops[l]` a hop whose output and input nodes are all movies in index order; `keep_id` [n_movies] and
        `title` [n_movies, L] per movie."""
        outputs = [self.features(torch.arange(self.features.num_movies, device=self.device), keep_id, title)]
        for conv, hop in zip(self.convs, hops, strict=True):
            outputs.append(conv(hop, outputs[-1], outputs[-1]))
        return outputs

    def embed_all(self, hops: list[Hop], keep_id: torch.Tensor | None = None,
                  title: torch.Tensor | None = None) -> torch.Tensor:
        """Embeddings of every movie at once ([n_movies, dim]), each layer over all movies: `hops[l]` is a
        hop whose output and input nodes are all movies in index order (`NeighbourSampler.hop(arange(n))`).
        Used for the softmax over all movies in training; inference does the same layer by layer in batches."""
        outputs = self.layer_outputs(hops, keep_id, title)
        return self.combine(outputs[0], outputs[-1])

    def catalogue_tables(self) -> list[nn.Embedding]:
        """The tables with a row per movie (id embedding, query offset, bias) or per title token: they grow with
        the catalogue, and `helpers.training.optimiser` gives them sparse gradients for the sampled softmax."""
        tables = (self.features.id_emb, self.features.title_emb, self.query_id, self.movie_bias)
        return [table for table in tables if table is not None]

    @property
    def has_bias(self) -> bool:
        return self.movie_bias is not None or self.bias_head is not None

    @property
    def vector_dim(self) -> int:
        """Length of the query and candidate vectors: the embedding, plus one with a per-movie bias."""
        return self.dim + self.has_bias

    @staticmethod
    def _by_id(table: nn.Embedding | None, movies: torch.Tensor | None, keep: torch.Tensor | None
               ) -> torch.Tensor | None:
        """Rows of an id-specific `table` for `movies`, zero where `keep` [B] is False or `movies` is None."""
        if table is None or movies is None:
            return None
        rows = table(movies)
        return rows if keep is None else rows * keep.unsqueeze(1).to(rows.dtype)

    def query_vectors(self, h: torch.Tensor, movies: torch.Tensor | None, keep: torch.Tensor | None = None
                      ) -> torch.Tensor:
        """Query side of embeddings `h` [B, dim] of movie indices `movies` [B]: `[head(h) / temperature, 1]`
        (see the module docstring). `movies` None or `keep` [B] False: without the movie's own query offset."""
        q = self.query_head(h) if self.query_head is not None else h
        offset = self._by_id(self.query_id, movies, keep)
        if offset is not None:
            q = q + offset
        q = q / self.temperature
        if self.has_bias:
            q = torch.cat([q, q.new_ones((len(q), 1))], dim=1)
        return q

    def candidate_vectors(self, h: torch.Tensor, movies: torch.Tensor | None, keep: torch.Tensor | None = None
                          ) -> torch.Tensor:
        """Candidate side of embeddings `h` [B, dim] of movie indices `movies` [B]: `[h, bias]`, the bias from
        the table (not for `movies` None or `keep` False), from `bias_head(h)`, or their sum."""
        if not self.has_bias:
            return h
        bias = h.new_zeros((len(h), 1))
        table = self._by_id(self.movie_bias, movies, keep)
        if table is not None:
            bias = bias + table
        if self.bias_head is not None:
            bias = bias + self.bias_head(h)
        return torch.cat([h, bias], dim=1)


def softmax_loss(queries: torch.Tensor, candidates: torch.Tensor, tails: torch.Tensor,
                 heads: torch.Tensor | None = None, columns: torch.Tensor | None = None,
                 log_q: torch.Tensor | None = None) -> torch.Tensor:
    """Cross-entropy of the true next movie: mean over pairs of -log softmax(q_i . c)[tail_i].

    `queries` [B, d] are the pairs' query vectors, `candidates` [n_movies, d] every movie's candidate vector,
    `tails` [B] the movie indices watched next. Full softmax by default: every movie competes. The head movie
    itself is masked (a user does not watch the same movie next). Sampled softmax: `columns` [S] restricts
    the competitors to those movie indices (the tails must be among them) and `log_q` [S] subtracts the log of
    how often each was expected in the sample (logQ correction), so that the sampled loss estimates the full
    one instead of punishing popular movies (`sampled_softmax_loss` on `candidates[columns]`)."""
    if columns is not None:
        return sampled_softmax_loss(queries, candidates[columns], tails, columns, heads, log_q)
    logits = queries @ candidates.T
    if heads is not None:
        logits = logits.masked_fill(F.one_hot(heads, len(candidates)).bool(), float("-inf"))
    return F.cross_entropy(logits, tails)


def sampled_softmax_loss(queries: torch.Tensor, column_candidates: torch.Tensor, tails: torch.Tensor,
                         columns: torch.Tensor, heads: torch.Tensor | None = None,
                         log_q: torch.Tensor | None = None) -> torch.Tensor:
    """The sampled softmax of `softmax_loss` from the candidate vectors of the sampled movies only:
    `column_candidates` [S, d] are those of movie indices `columns` [S] (sorted, unique, the tails among them),
    so a step that embeds only the batch's movies never builds a row per catalogue movie."""
    logits = queries @ column_candidates.T
    if log_q is not None:
        logits = logits - log_q
    if heads is not None:
        logits = logits.masked_fill(columns.unsqueeze(0) == heads.unsqueeze(1), float("-inf"))
    return F.cross_entropy(logits, torch.searchsorted(columns, tails))


def max_margin_loss(h: torch.Tensor, heads: torch.Tensor, tails: torch.Tensor, negatives: torch.Tensor,
                    margin: float, in_batch: bool = False) -> torch.Tensor:
    """Paper's loss: mean over pairs and negatives of max(0, s(head, neg) - s(head, tail) + margin), where s is
    the inner product of unit embeddings. `heads`, `tails` [B] and `negatives` [B, N] index rows of `h`.
    With `in_batch`, the other pairs' tails count as negatives too (free: they are embedded anyway)."""
    positive = (h[heads] * h[tails]).sum(1, keepdim=True)
    negative = (h[heads].unsqueeze(1) * h[negatives]).sum(2)
    losses = F.relu(negative - positive + margin)
    if not in_batch:
        return losses.mean()
    others = h[heads] @ h[tails].T  # [B, B]; a tail equal to the pair's own tail is not a negative
    valid = tails.unsqueeze(0) != tails.unsqueeze(1)
    batch_losses = F.relu(others - positive + margin) * valid
    return (losses.sum() + batch_losses.sum()) / (losses.numel() + valid.sum())
