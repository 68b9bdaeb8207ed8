"""The JSON file every benchmark writes beside its printed table: its figures, the command that produced them,
the machine (cores, load average at the start) and the date."""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import shlex
import sys
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

PROJECT = Path(__file__).resolve().parent.parent
ENVIRONMENT = ("OMP_NUM_THREADS", "DGLBACKEND")  # recorded with every RECSYS_* variable
SECRET = re.compile(r"(://[^:/@]+:)[^@]+@")  # the password of a URL such as mysql+pymysql://user:pw@host


def default_out(name: str) -> Path:
    """`artifacts/bench/<name>.json` in the project."""
    return PROJECT / "artifacts" / "bench" / f"{name}.json"


def add_out_option(parser: argparse.ArgumentParser, name: str) -> None:
    """`--out FILE`: where the figures go, by default `artifacts/bench/<name>.json` in the project."""
    default = default_out(name)
    parser.add_argument("--out", type=Path, default=default, metavar="FILE",
                        help=f"JSON file for the figures (default {shown(default)})")


def shown(path: Path) -> str:
    """`path` relative to the project when it lies inside it."""
    path = path.resolve()
    return str(path.relative_to(PROJECT)) if path.is_relative_to(PROJECT) else str(path)


@dataclass(frozen=True)
class Run:
    """What a benchmark run records about itself, taken when it starts."""

    command: str
    environment: dict[str, str]
    started: str
    cores: int | None
    load_average_at_start: list[float]
    platform: str
    python: str


def start(module: str, argv: list[str] | None = None) -> Run:
    """Call first thing in `main`: the command line of `python -m <module>`, the machine and the date, now."""
    environment = {k: SECRET.sub(r"\1***@", v) for k, v in sorted(os.environ.items())
                   if (k.startswith("RECSYS_") or k in ENVIRONMENT) and not k.endswith(("TOKEN", "PASSWORD"))}
    arguments = sys.argv[1:] if argv is None else argv
    command = " ".join([*(f"{k}={shlex.quote(v)}" for k, v in environment.items()), ".venv/bin/python", "-m",
                        module, *(shlex.quote(SECRET.sub(r"\1***@", a)) for a in arguments)])
    return Run(command=command, environment=environment, started=datetime.now(UTC).isoformat(timespec="seconds"),
               cores=os.cpu_count(), load_average_at_start=[round(x, 2) for x in os.getloadavg()],
               platform=platform.platform(), python=platform.python_version())


def _plain(value: Any) -> Any:
    """NumPy scalars and arrays as numbers and lists; anything else JSON does not know (paths) as text."""
    return value.tolist() if hasattr(value, "tolist") else str(value)


def _finite(value: Any) -> Any:
    """`value` with every NaN or infinity (a rate over no events, an interval of one user) as None: strict JSON,
    which `json.loads` elsewhere, JavaScript and `jq` all read."""
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    if hasattr(value, "tolist") and not isinstance(value, float):  # NumPy arrays and scalars, NaN included
        return _finite(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(path: Path, figures: Any, record: Run) -> Path:
    """Write `{"run": ..., "figures": ...}` to `path` (folders made as needed; NaN written as null); print and
    return where."""
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {"run": {**asdict(record), "finished": datetime.now(UTC).isoformat(timespec="seconds")},
                "figures": _finite(figures)}
    path.write_text(json.dumps(document, indent=1, default=_plain, allow_nan=False) + "\n")
    print(f"figures: {shown(path)}")
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.report",
                                     description="Say which command, machine and date produced saved figures.")
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE", help="JSON files written by benchmarks")
    for path in parser.parse_args(argv).files:
        run = json.loads(path.read_text())["run"]
        print(f"{path}: {run['started']}, {run['cores']} cores, load average {run['load_average_at_start']} "
              f"at the start\n  $ {run['command']}")


if __name__ == "__main__":
    main()
