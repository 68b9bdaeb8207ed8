"""Stage 06: the recommendation engine. `query` (the query-encoder contract: liked movies in order -> one query vector,
through a lookup of movie vectors; the registry and `load_query_encoder`), `inputs` (checks and limits), `engine`
(RecommendationEngine), `reference` (the same ranking by brute force)."""
