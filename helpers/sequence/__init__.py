"""The sequence model over the PinSage vectors (notebook 04): a user's last N training movies, in order, through a
small causal transformer whose inputs start as PinSage's movie vectors, to one query vector scored against the
candidate vectors Milvus already holds (so a recommendation stays one inner-product search).

* `helpers.sequence.config`: `SequenceConfig`, the knobs;
* `helpers.sequence.data`: left-padded windows of training movies (padding -1, never a movie index);
* `helpers.sequence.model`: the causal mask, the pre-norm block, `SequenceModel`;
* `helpers.sequence.train`: `train_sequence_model` (full softmax at every position), `sequence_scorer`;
* `helpers.sequence.artifact`: `sequence_model.pt` + manifest (inputs: the embeddings), `SequenceQuery`
  (liked movie ids -> one query vector), which the engine's "sequence" query encoder wraps.
"""
