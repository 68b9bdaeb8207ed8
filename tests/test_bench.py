"""The benchmarks' plumbing (about 10 s): every `bench` module answers `--help` as `python -m bench.<name>`, the
JSON beside each table records the command, the machine and the date, and the server helpers that the tests and
benchmarks share start, wait for and stop processes as they say."""
from __future__ import annotations

import importlib
import json
import pkgutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import bench
from bench.report import add_out_option, start, write_json
from bench.servers import ServerError, free_port, stop_pid, stop_process, wait_for_http

MODULES = sorted(m.name for m in pkgutil.iter_modules(bench.__path__))


@pytest.mark.parametrize("name", MODULES)
def test_every_module_answers_help_as_python_m(name, capsys):
    module = importlib.import_module(f"bench.{name}")
    with pytest.raises(SystemExit) as exited:
        module.main(["--help"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: python -m bench.{name} ")


def test_the_json_records_the_command_machine_and_date(tmp_path, monkeypatch):
    import argparse

    monkeypatch.setenv("RECSYS_DATASET", "sample")
    monkeypatch.setenv("RECSYS_CATALOG_URL", "mysql+pymysql://recsys:secret@127.0.0.1:3306/movies")
    monkeypatch.setenv("RECSYS_MILVUS_TOKEN", "root:Milvus")
    run = start("bench.example", ["--label", "ML-1M, users 1-2999"])
    parser = argparse.ArgumentParser()
    add_out_option(parser, "example")
    assert parser.parse_args([]).out.parts[-3:] == ("artifacts", "bench", "example.json")
    path = write_json(tmp_path / "deep" / "example.json", {"p50_ms": 7.4}, run)
    saved = json.loads(path.read_text())
    assert saved["figures"] == {"p50_ms": 7.4}
    recorded = saved["run"]
    assert recorded["command"].endswith("-m bench.example --label 'ML-1M, users 1-2999'")
    assert "RECSYS_DATASET=sample" in recorded["command"] and "secret" not in json.dumps(saved)
    assert "RECSYS_MILVUS_TOKEN" not in recorded["environment"]
    assert recorded["cores"] >= 1 and len(recorded["load_average_at_start"]) == 3
    assert recorded["started"] <= recorded["finished"]


def test_the_json_is_strict_nan_written_as_null(tmp_path):
    import numpy as np

    run = start("bench.example", [])
    figures = {"rate": float("nan"), "rows": [np.float64("nan"), np.float32(0.5), np.inf],
               "array": np.array([1.0, np.nan]), "n": np.int64(3), "nested": ({"x": -np.inf},)}
    text = write_json(tmp_path / "nan.json", figures, run).read_text()
    assert "NaN" not in text and "Infinity" not in text
    saved = json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in the JSON"))["figures"]
    assert saved == {"rate": None, "rows": [None, 0.5, None], "array": [1.0, None], "n": 3, "nested": [{"x": None}]}


def test_free_port_is_free():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", free_port()))


def python(code: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code], **kwargs)


def test_stop_process_terminates_and_kills_what_ignores_the_signal():
    polite = python("import time; time.sleep(60)")
    stop_process(polite)
    assert polite.returncode == -signal.SIGTERM
    stubborn = python("import signal, sys, time; signal.signal(signal.SIGINT, signal.SIG_IGN); "
                      "print(flush=True); time.sleep(60)", stdout=subprocess.PIPE, start_new_session=True)
    stubborn.stdout.readline()  # its handler is in place
    started = time.monotonic()
    stop_process(stubborn, seconds=0.5, sig=signal.SIGINT, group=True)
    assert stubborn.returncode == -signal.SIGKILL and time.monotonic() - started < 5
    stubborn.stdout.close()


def test_stop_pid_stops_a_server_it_did_not_start():
    import threading

    # a server answers SIGINT; a child of a shell's background job would inherit it ignored, so the handler is set
    server = python("import signal, time; signal.signal(signal.SIGINT, signal.default_int_handler); "
                    "print(flush=True); time.sleep(60)", stdout=subprocess.PIPE, start_new_session=True)
    server.stdout.readline()  # its handler is in place
    reaper = threading.Thread(target=server.wait)  # as its real parent would, so no zombie is left behind
    reaper.start()
    stop_pid(server.pid)
    reaper.join(timeout=5)
    assert server.returncode == -signal.SIGINT
    server.stdout.close()


def test_wait_for_http_returns_the_ready_answer_or_says_why_not(tmp_path):
    log = tmp_path / "server.log"
    port = free_port()
    with open(log, "w") as out:
        server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
                                  cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT)
    try:
        response = wait_for_http(f"http://127.0.0.1:{port}/", server, log, 30, ready=lambda r: r.status_code == 200)
        assert "server.log" in response.text
        with pytest.raises(ServerError, match="did not answer within 0.5 s"):
            wait_for_http(f"http://127.0.0.1:{port}/", server, log, 0.5, ready=lambda r: False)
    finally:
        stop_process(server)
    with open(log, "w") as out:
        crashed = python("import sys; print('no such store', flush=True); sys.exit(3)", stdout=out,
                         stderr=subprocess.STDOUT)
    crashed.wait(timeout=30)
    with pytest.raises(ServerError, match="exited with 3:\nno such store"):
        wait_for_http(f"http://127.0.0.1:{free_port()}/", crashed, log)


def test_commands_in_the_docs_run_benchmarks_as_modules():
    root = Path(__file__).resolve().parent.parent
    for doc in [root / "README.md", *sorted((root / "docs").glob("*.md"))]:
        assert "python bench/" not in doc.read_text(), f"{doc.name}: run benchmarks as `python -m bench.<name>`"


def test_pinsage_settings_pairs_every_row_with_the_first_on_every_slice(tmp_path, monkeypatch):
    """`bench.pinsage_settings --draws 1 2 --paired` on the sample: two variants trained for 5 steps, each
    scored at 1 and 2 draws, each row paired with the first on every slice of val and test (about 6 s)."""
    from bench.pinsage_settings import main
    from helpers.evaluation.slices import SLICES

    monkeypatch.setenv("RECSYS_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "settings.json"
    main(["--dataset", "sample", "--epochs", "1", "--steps", "5", "--seed", "1",
          "--train-config", '{"batch_size": 64, "hidden": 16}', "--variant", "default={}",
          "--variant", 'vector={"bias_source": "vector", "id_dropout": 0.3}', "--draws", "1", "2", "--paired",
          "--out", str(out)])
    figures = json.loads(out.read_text())["figures"]
    names = ["default", "default [draws=2]", "vector", "vector [draws=2]"]
    assert [r["variant"] for r in figures["rows"]] == names and figures["draws"] == [1, 2]
    paired = figures["paired"]
    assert paired["reference"] == "default" and paired["margin"] == 0.005
    found = {(c["a"], c["b"], c["split"], c["slice"], c["metric"]) for c in paired["comparisons"]}
    assert found == {(name, "default", split, slice_name, metric) for name in names[1:] for split in ("val", "test")
                     for slice_name in SLICES for metric in ("hr@10", "ndcg@10")}
    everyone = [c for c in paired["comparisons"] if c["slice"] == "all" and c["split"] == "val"]
    assert all(c["n_users"] == 600 and c["low"] <= c["difference"] <= c["high"] for c in everyone)
    assert {c["verdict"] for c in paired["comparisons"]} <= {"above", "below", "non-inferior", "tie", "no users"}


def test_pinsage_settings_refuses_rows_it_could_not_tell_apart():
    from bench.pinsage_settings import main

    with pytest.raises(SystemExit, match="rows named twice: a"):
        main(["--dataset", "sample", "--variant", "a={}", "--variant", 'a={"hidden": 16}', "--paired"])
    with pytest.raises(SystemExit, match="--paired needs at least two rows"):
        main(["--dataset", "sample", "--paired"])


def test_recommend_latency_checks_the_encoders_before_building_anything(tmp_path, monkeypatch, capsys, sample_ml):
    """`--encoders mean sequence` with no sequence model: the error naming notebook 04 comes in a second, before the
    dataset is loaded or a store built (both replaced by stand-ins that fail the test)."""
    import bench.recommend_latency as latency
    from helpers.config import get_settings
    from helpers.sequence.artifact import STAGE
    from helpers.stages import notebook_for
    from helpers.training.embeddings import load_movie_embeddings, save_movie_embeddings

    from conftest import make_test_directed_embeddings

    monkeypatch.setenv("RECSYS_DATASET", "sample")
    monkeypatch.setenv("RECSYS_ARTIFACTS", str(tmp_path / "artifacts"))
    monkeypatch.setenv("RECSYS_CACHE", str(tmp_path / "cache"))
    settings = get_settings()
    movie_ids, candidate, query = make_test_directed_embeddings(sample_ml.movies)
    save_movie_embeddings(settings, movie_ids, candidate, query_vectors=query)
    monkeypatch.setattr(latency, "load_dataset", lambda *args, **kwargs: pytest.fail("the dataset was loaded first"))
    monkeypatch.setattr(latency, "build_stores", lambda *args, **kwargs: pytest.fail("a store was built first"))
    with pytest.raises(SystemExit) as exited:
        latency.main(["--encoders", "mean", "sequence", "--out", str(tmp_path / "latency.json")])
    assert exited.value.code == 2
    error = capsys.readouterr().err
    assert "--encoders sequence: the engine answers with the mean encoder" in error and notebook_for(STAGE) in error
    latency.check_encoders(settings, load_movie_embeddings(settings), ["mean"])  # the mean needs no artifact
