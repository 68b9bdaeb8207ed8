"""Stage 01: MovieLens in one shape. `loader` (load_movielens, load_dataset), `movielens` (the MovieLens tables,
errors), `parsing` (the file formats), `download` (zips with MD5 checks), `sample` and `synthetic` (generated
datasets), `fit` (the synthetic generator's exponents re-measured)."""
