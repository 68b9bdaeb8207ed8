"""helpers.config: defaults, parsing, overrides and clear errors."""
from __future__ import annotations

from pathlib import Path

import pytest

from helpers.config import DATASETS, PROJECT_ROOT, ConfigError, UnknownSettingError, check_dataset_name, get_settings


def test_defaults_without_any_variable() -> None:
    settings = get_settings({})
    assert settings.dataset == "ml-1m" and settings.data_dir is None
    assert settings.seed == 42 and settings.threads == 1 and settings.sequence_threads == 2
    assert settings.artifacts_root == (PROJECT_ROOT / "artifacts").resolve()
    assert settings.artifacts_dir == settings.artifacts_root / "ml-1m"
    assert settings.cache_dir == (Path.home() / ".cache" / "movie-graph-recsys").resolve()
    assert settings.milvus_uri == str(settings.artifacts_dir / "milvus.db") and settings.milvus_is_lite
    assert settings.catalog_url == f"sqlite:///{settings.artifacts_dir / 'catalog.sqlite'}"
    assert settings.query_encoder == "auto"


def test_environment_is_read(tmp_path: Path) -> None:
    env = {"RECSYS_DATASET": "sample", "RECSYS_DATA_DIR": str(tmp_path / "d"), "RECSYS_ARTIFACTS": str(tmp_path / "a"),
           "RECSYS_CACHE": str(tmp_path / "c"), "RECSYS_SEED": "7", "RECSYS_THREADS": "2",
           "RECSYS_SEQUENCE_THREADS": "1", "RECSYS_MILVUS_URI": "http://localhost:19530",
           "RECSYS_MILVUS_TOKEN": "root:Milvus",
           "RECSYS_CATALOG_URL": "mysql+pymysql://u:pw@localhost:3306/movies", "RECSYS_QUERY_ENCODER": "Mean"}
    settings = get_settings(env)
    assert settings.dataset == "sample" and settings.data_dir == tmp_path / "d"
    assert settings.artifacts_dir == tmp_path / "a" / "sample" and settings.cache_dir == tmp_path / "c"
    assert (settings.seed, settings.threads, settings.sequence_threads) == (7, 2, 1)
    assert not settings.milvus_is_lite and settings.milvus_token == "root:Milvus"
    assert settings.catalog_url.startswith("mysql+pymysql://") and settings.query_encoder == "mean"
    # secrets stay out of the repr that notebooks print
    assert "Milvus" not in repr(settings) and "pw@" not in repr(settings)


def test_overrides_win_and_are_parsed(tmp_path: Path) -> None:
    settings = get_settings({"RECSYS_DATASET": "ml-100k", "RECSYS_SEED": "1"}, dataset="sample", seed=5,
                            artifacts_root=tmp_path, cache_dir=tmp_path / "c")
    assert (settings.dataset, settings.seed) == ("sample", 5)
    assert settings.artifacts_root == tmp_path and settings.cache_dir == tmp_path / "c"
    with pytest.raises(ConfigError, match="Unknown dataset"):
        get_settings({}, dataset="nope")
    with pytest.raises(UnknownSettingError, match="Unknown setting.*colour.*The settings are dataset"):
        get_settings({}, colour="blue")


def test_blank_values_mean_default() -> None:
    settings = get_settings({"RECSYS_DATASET": "  ", "RECSYS_SEED": "", "RECSYS_DATA_DIR": " "})
    assert settings.dataset == "ml-1m" and settings.seed == 42 and settings.data_dir is None


@pytest.mark.parametrize("key, value, message", [
    ("RECSYS_SEED", "abc", "is not a whole number"),
    ("RECSYS_SEED", "-1", "must be at least 0"),
    ("RECSYS_THREADS", "0", "must be at least 1"),
    ("RECSYS_SEQUENCE_THREADS", "0", "must be at least 1"),
    ("RECSYS_DATASET", "ml-2m", "Valid names: ml-1m, ml-100k"),
    ("RECSYS_QUERY_ENCODER", "recency",
     r"'recency' is not a query encoder: use one of auto, mean, sequence .*or unset it"),
])
def test_bad_values_say_how_to_fix(key: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        get_settings({key: value})


def test_check_dataset_name() -> None:
    for name in DATASETS:
        assert check_dataset_name(name) == name
    with pytest.raises(ConfigError) as info:
        check_dataset_name("ML-1M")
    assert all(name in str(info.value) for name in DATASETS)
    assert issubclass(ConfigError, ValueError)
