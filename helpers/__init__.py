"""movie-graph-recsys: the library the notebooks call. Importing it does no work; each module is imported on use."""
__version__ = "0.1.0"
