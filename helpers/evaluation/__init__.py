"""Offline evaluation, below training (the training loop validates with it). `metrics` (HR/NDCG/Recall@K), `protocols`
(the held-out split, the latest and history protocols), `scorers` (vectors as scorers), `baselines` (popularity,
item-kNN, transitions), `report` (metrics.json: write, read, its table)."""
