"""Loading MovieLens: `load_movielens(name, data_dir=None)` and `load_dataset(settings)`.

Every release comes back as a `MovieLens` with three DataFrames in one shape (`helpers.data.movielens`; the file
formats are read by `helpers.data.parsing`). Without `data_dir` the published zip is downloaded from GroupLens into
the cache folder (`RECSYS_CACHE`), checked against its published MD5 and unpacked there (`helpers.data.download`);
`sample` (`helpers.data.sample`) and `synthetic-<size>` (`helpers.data.synthetic`) are generated into the cache and
read through the same readers.
"""
from __future__ import annotations

from pathlib import Path

from helpers.artifacts import holds_files
from helpers.config import ConfigError, Settings, check_dataset_name, get_settings
from helpers.data.download import download
from helpers.data.movielens import CSV_FILES, FILES, DatasetError, DatasetFileError, MovieLens
from helpers.data.parsing import check_consistency, read_csv_dataset, read_dat, read_ml100k
from helpers.data.sample import ensure_sample


def load_dataset(settings: Settings) -> MovieLens:
    """Load the dataset the settings name (`RECSYS_DATASET`, `RECSYS_DATA_DIR`, `RECSYS_CACHE`, `RECSYS_SEED`)."""
    return load_movielens(settings.dataset, settings.data_dir, cache_dir=settings.cache_dir, seed=settings.seed)


def load_movielens(name: str, data_dir: str | Path | None = None, *, cache_dir: Path | None = None,
                   seed: int = 42) -> MovieLens:
    """Load MovieLens `name` from `data_dir`, or (without it) from the cache, downloading it first if needed.

    `sample` is generated into `cache_dir/sample-seed<seed>/`, `synthetic-<size>` (helpers.data.synthetic) into
    `cache_dir/<name>-seed<seed>/` (both reused when complete). `cache_dir` defaults to `RECSYS_CACHE`.
    Raises `DatasetError` (or a subclass) with a message that says what to do.
    """
    from helpers.data import synthetic

    try:
        check_dataset_name(name)
        synthetic.ratings_of(name)
    except (ConfigError, synthetic.SyntheticError) as exc:
        raise DatasetError(str(exc)) from None
    if data_dir is not None:
        source = _resolve_data_dir(name, Path(data_dir).expanduser())
    else:
        cache = Path(cache_dir) if cache_dir is not None else get_settings().cache_dir
        if name == "sample":
            source = ensure_sample(cache, seed)
        elif name.startswith(synthetic.PREFIX):
            source = synthetic.ensure_synthetic(cache, name, seed)
        else:
            source = download(name, cache)
    reader = {"ml-100k": read_ml100k, "ml-1m": read_dat, "sample": read_dat}.get(name, read_csv_dataset)
    ratings, movies, users = reader(source)
    ml = MovieLens(name=name, ratings=ratings, movies=movies, users=users, source_dir=source)
    check_consistency(ml)
    return ml


def _resolve_data_dir(name: str, data_dir: Path) -> Path:
    """The folder holding `name`'s files: `data_dir` itself or `data_dir/<name>` (the zip's folder)."""
    expected = FILES.get(name, CSV_FILES)  # synthetic-<size>: the CSV release format
    if not data_dir.is_dir():
        raise DatasetFileError(
            f"Data folder {data_dir} does not exist. Point RECSYS_DATA_DIR (or data_dir=) at a folder holding "
            f"the {name} files ({', '.join(expected)}), or unset it to download {name} from GroupLens."
        )
    for candidate in (data_dir, data_dir / name):
        if holds_files(candidate, expected):
            return candidate
    missing = [f for f in expected if not (data_dir / f).is_file()]
    raise DatasetFileError(
        f"{data_dir} is missing {', '.join(missing)} for dataset {name}: the folder must hold "
        f"{', '.join(expected)} (as unpacked from {name}.zip). Point RECSYS_DATA_DIR at the unpacked folder, "
        f"or check that RECSYS_DATASET={name} is the dataset that folder holds."
    )

