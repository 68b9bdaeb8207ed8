"""Settings read from environment variables, in one place.

| variable              | default                                   | meaning                                        |
| --------------------- | ----------------------------------------- | ---------------------------------------------- |
| `RECSYS_DATASET`      | `ml-1m` (`ml-100k` with the workshop preset) | which MovieLens, `sample` or `synthetic-<size>`|
| `RECSYS_DATA_DIR`     | unset: download from GroupLens            | a folder that already holds the dataset files  |
| `RECSYS_ARTIFACTS`    | `<project>/artifacts`                     | graphs, models, embeddings, metrics, databases |
| `RECSYS_CACHE`        | `~/.cache/movie-graph-recsys`             | downloaded zips and the generated sample       |
| `RECSYS_SEED`         | `42`                                      | every random choice                            |
| `RECSYS_THREADS`      | `1`                                       | CPU threads for PyTorch and DGL                |
| `RECSYS_SEQUENCE_THREADS` | `2`                                   | PyTorch threads while notebook 04's model trains (no DGL there) |
| `RECSYS_MILVUS_URI`   | `<artifacts>/<dataset>/milvus.db` (Lite)  | or `http://host:19530` for a server            |
| `RECSYS_MILVUS_TOKEN` | empty                                     | `user:password` or an API key for a server     |
| `RECSYS_MILVUS_INDEX` | `auto`                                    | `FLAT`/`IVF_FLAT`/`HNSW` (auto: by size)        |
| `RECSYS_CATALOG_URL`  | `sqlite:///<artifacts>/<dataset>/catalog.sqlite` | or `mysql+pymysql://user:pw@host:3306/movies` |
| `RECSYS_QUERY_ENCODER`| `auto`                                    | liked movies -> query vector: `auto` or a name of `QUERY_ENCODERS` |
| `RECSYS_PRESET`       | `auto`                                    | training budgets and sample sizes: `auto` (by catalogue size), `small`, `medium`, `large`, `workshop` (helpers/presets.py) |
| `RECSYS_ADMIN_TOKEN`  | unset                                     | when set, the API has `POST /movies` and `DELETE /movies/{id}` for `Authorization: Bearer <token>` |

`RECSYS_QUERY_ENCODER` picks the engine's query encoder (helpers/engine/query.py): `auto` = the best registered
encoder whose artifact was built from the current embeddings, else `mean` (the mean of the liked movies' query
vectors); `sequence` is notebook 04's model over the last N liked movies; a named encoder whose artifact is missing
or stale falls back to `mean` and says why.
"""  # noqa: E501 (the table's rows cannot wrap)
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from helpers.errors import RecsysError

PROJECT_ROOT = Path(__file__).resolve().parent.parent

DATASETS: tuple[str, ...] = ("ml-1m", "ml-100k", "ml-latest-small", "ml-25m", "ml-32m", "sample")
DEFAULT_DATASET = "ml-1m"
SYNTHETIC_PATTERN = re.compile(r"^synthetic-\d+(?:\.\d+)?[km]?$")  # synthetic-32m: see helpers.data.synthetic
INDEX_TYPES: tuple[str, ...] = ("FLAT", "IVF_FLAT", "HNSW")  # Milvus index types (helpers.stores.milvus_index)
INDEX_SETTINGS: tuple[str, ...] = ("auto", *INDEX_TYPES)
PRESET_NAMES: tuple[str, ...] = ("auto", "small", "medium", "large", "workshop")  # rows of helpers.presets.PRESETS
PRESET_DATASETS: dict[str, str] = {"workshop": "ml-100k"}  # a preset's dataset when RECSYS_DATASET is unset
QUERY_ENCODERS: tuple[str, ...] = ("mean", "sequence")  # the registry of helpers.engine.query.ENCODERS, by name


class ConfigError(RecsysError, ValueError):
    """A setting has a value the project cannot use; the message says how to fix it."""


class UnknownSettingError(ConfigError, TypeError):
    """`get_settings` was given a keyword that is no setting (a TypeError, as for any unknown keyword)."""


def check_dataset_name(name: str) -> str:
    """Return `name` if it is a known dataset, else raise a `ConfigError` listing the valid ones."""
    if name not in DATASETS and not SYNTHETIC_PATTERN.match(name):
        raise ConfigError(
            f"Unknown dataset {name!r}. Valid names: {', '.join(DATASETS)}, or synthetic-<size> "
            "(generated, e.g. synthetic-32m for 32 million ratings). "
            "Set RECSYS_DATASET to one of them."
        )
    return name


@dataclass(frozen=True)
class Settings:
    dataset: str = DEFAULT_DATASET
    data_dir: Path | None = None
    artifacts_root: Path = PROJECT_ROOT / "artifacts"
    cache_dir: Path = Path.home() / ".cache" / "movie-graph-recsys"
    seed: int = 42
    threads: int = 1
    sequence_threads: int = 2
    milvus_uri: str = ""
    milvus_token: str = field(default="", repr=False)
    milvus_index: str = "auto"
    catalog_url: str = field(default="", repr=False)
    query_encoder: str = "auto"
    preset: str = "auto"
    admin_token: str = field(default="", repr=False)

    @property
    def artifacts_dir(self) -> Path:
        """Folder of this dataset's artifacts: `<RECSYS_ARTIFACTS>/<dataset>`."""
        return self.artifacts_root / self.dataset

    @property
    def milvus_is_lite(self) -> bool:
        return not self.milvus_uri.startswith(("http://", "https://", "tcp://", "unix:"))


def _int_env(env: dict[str, str], key: str, default: int, minimum: int) -> int:
    raw = env.get(key, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{key}={raw!r} is not a whole number; unset it or give e.g. {key}={default}") from None
    if value < minimum:
        raise ConfigError(f"{key}={value} must be at least {minimum}")
    return value


def check_index_setting(value: str) -> str:
    """The canonical spelling of a `RECSYS_MILVUS_INDEX` value (see helpers/stores/milvus_index.py);
    anything else raises a `ConfigError`."""
    canonical = value.strip().upper() if value.strip().lower() != "auto" else "auto"
    if canonical not in INDEX_SETTINGS:
        raise ConfigError(f"RECSYS_MILVUS_INDEX={value!r}: use one of {', '.join(INDEX_SETTINGS)} "
                          "(auto = FLAT up to a size measured per backend, HNSW above)")
    return canonical


def check_query_encoder_setting(value: str) -> str:
    """The canonical spelling of a `RECSYS_QUERY_ENCODER` value ("auto" or a name in `QUERY_ENCODERS`);
    anything else raises a `ConfigError`."""
    canonical = value.strip().lower()
    if canonical not in ("auto", *QUERY_ENCODERS):
        raise ConfigError(f"RECSYS_QUERY_ENCODER={value!r} is not a query encoder: use one of "
                          f"{', '.join(('auto', *QUERY_ENCODERS))} (auto = the best encoder whose artifact matches "
                          "the current embeddings, else mean), or unset it")
    return canonical


def check_preset_setting(value: str) -> str:
    """The canonical spelling of a `RECSYS_PRESET` value (one of `PRESET_NAMES`); anything else raises a
    `ConfigError`."""
    canonical = value.strip().lower()
    if canonical not in PRESET_NAMES:
        raise ConfigError(f"RECSYS_PRESET={value!r} is not a preset: use one of {', '.join(PRESET_NAMES)} "
                          "(auto = by catalogue size, see helpers/presets.py), or unset it")
    return canonical


def get_settings(env: dict[str, str] | None = None, **overrides: object) -> Settings:
    """Read the settings from `env` (default: `os.environ`); keyword `overrides` win over the environment."""
    env = dict(os.environ if env is None else env)
    unknown = set(overrides) - {f for f in Settings.__dataclass_fields__}
    if unknown:
        raise UnknownSettingError(f"Unknown setting(s): {', '.join(sorted(unknown))}. The settings are "
                                  f"{', '.join(Settings.__dataclass_fields__)}.")
    for key, value in overrides.items():  # overrides go through the same parsing as the environment
        if value is not None:
            env[f"RECSYS_{key.upper()}" if key != "artifacts_root" else "RECSYS_ARTIFACTS"] = str(value)
    if "cache_dir" in overrides and overrides["cache_dir"] is not None:
        env["RECSYS_CACHE"] = str(overrides["cache_dir"])

    preset = check_preset_setting(env.get("RECSYS_PRESET", "").strip() or "auto")
    dataset = check_dataset_name(env.get("RECSYS_DATASET", "").strip() or PRESET_DATASETS.get(preset, DEFAULT_DATASET))
    data_dir_raw = env.get("RECSYS_DATA_DIR", "").strip()
    artifacts_root = Path(env.get("RECSYS_ARTIFACTS", "").strip() or PROJECT_ROOT / "artifacts").expanduser().resolve()
    cache_dir = Path(env.get("RECSYS_CACHE", "").strip()
                     or Path.home() / ".cache" / "movie-graph-recsys").expanduser().resolve()
    return Settings(
        dataset=dataset,
        data_dir=Path(data_dir_raw).expanduser().resolve() if data_dir_raw else None,
        artifacts_root=artifacts_root,
        cache_dir=cache_dir,
        seed=_int_env(env, "RECSYS_SEED", 42, 0),
        threads=_int_env(env, "RECSYS_THREADS", 1, 1),
        sequence_threads=_int_env(env, "RECSYS_SEQUENCE_THREADS", 2, 1),
        milvus_uri=env.get("RECSYS_MILVUS_URI", "").strip() or str(artifacts_root / dataset / "milvus.db"),
        milvus_token=env.get("RECSYS_MILVUS_TOKEN", ""),
        milvus_index=check_index_setting(env.get("RECSYS_MILVUS_INDEX", "").strip() or "auto"),
        catalog_url=(env.get("RECSYS_CATALOG_URL", "").strip()
                     or f"sqlite:///{artifacts_root / dataset / 'catalog.sqlite'}"),
        query_encoder=check_query_encoder_setting(env.get("RECSYS_QUERY_ENCODER", "").strip() or "auto"),
        preset=preset,
        admin_token=env.get("RECSYS_ADMIN_TOKEN", "").strip(),
    )
