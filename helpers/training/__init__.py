"""Stage 03: PinSage. `config` (TrainConfig: the default objective's knobs; its Alternatives), `sampling` (pairs,
negatives, neighbourhoods), `model` (layers and losses), `step` (one training step), `loop` (train_pinsage,
checkpoints, resume), `inference` (layer-wise movie vectors), `embeddings` (the movie_embeddings.npz artifact),
`baselines` (next-movie [no graph], every baseline fitted), `showcase` (nearest movies)."""
