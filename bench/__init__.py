"""Benchmarks of the series, each run as `python -m bench.<name>` from the project root (`--help` for its options).

Each prints its table and writes its figures as JSON (`--out`, default `artifacts/bench/<name>.json`) through
`bench.report`; `bench.servers` starts and stops the servers that benchmarks and tests need.
"""
