"""docker-compose.yml: exact image tags, a healthcheck on every service, the documented ports, named
volumes, and no password written into the file (only `${VAR:-dev default}`)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from helpers.config import PROJECT_ROOT

COMPOSE = PROJECT_ROOT / "docker-compose.yml"
EXACT_TAG = re.compile(r"^[\w./-]+:(v?\d+\.\d+\.\d+|RELEASE\.[\dT-]+Z)$")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(Path(COMPOSE).read_text())


def test_services_are_milvus_standalone_and_mysql(compose: dict) -> None:
    assert set(compose["services"]) == {"etcd", "minio", "milvus", "mysql"}
    assert compose["services"]["milvus"]["image"].startswith("milvusdb/milvus:v2.6.")
    assert compose["services"]["mysql"]["image"].startswith("mysql:8.")


@pytest.mark.parametrize("service", ["etcd", "minio", "milvus", "mysql"])
def test_image_is_pinned_to_an_exact_tag(compose: dict, service: str) -> None:
    image = compose["services"][service]["image"]
    assert EXACT_TAG.match(image), f"{service}: {image} is not pinned to an exact version"


@pytest.mark.parametrize("service", ["etcd", "minio", "milvus", "mysql"])
def test_every_service_has_a_healthcheck(compose: dict, service: str) -> None:
    check = compose["services"][service]["healthcheck"]
    assert check["test"] and check["interval"] and check["retries"] >= 1


def test_ports_match_the_documented_uris(compose: dict) -> None:
    def published(service: str) -> set[int]:
        return {int(str(p).split(":")[-2]) for p in compose["services"][service]["ports"]}

    assert 19530 in published("milvus")  # RECSYS_MILVUS_URI=http://127.0.0.1:19530
    assert 3306 in published("mysql")  # mysql+pymysql://...@127.0.0.1:3306/movies
    assert compose["services"]["mysql"]["environment"]["MYSQL_DATABASE"] == "movies"


def test_milvus_waits_for_healthy_etcd_and_minio(compose: dict) -> None:
    depends = compose["services"]["milvus"]["depends_on"]
    assert {name: d["condition"] for name, d in depends.items()} == {"etcd": "service_healthy",
                                                                      "minio": "service_healthy"}


def test_data_lives_in_named_volumes(compose: dict) -> None:
    named = set(compose["volumes"])
    for service in ("etcd", "minio", "milvus", "mysql"):
        for volume in compose["services"][service]["volumes"]:
            assert volume.split(":")[0] in named, f"{service} mounts {volume}, not a named volume"


def test_secrets_come_from_the_environment(compose: dict) -> None:
    for service in compose["services"].values():
        for key, value in (service.get("environment") or {}).items():
            if re.search(r"PASSWORD|SECRET|ACCESS_KEY", key):
                assert re.fullmatch(r"\$\{RECSYS_[A-Z_]+:-[^}]+\}", str(value)), f"{key} is hard-coded"
