"""The servers that benchmarks and tests start: a free port, waiting until an HTTP server or Milvus answers,
stopping a process, and a milvus-server (PyPI `milvus==2.3.5`) on free ports.

milvus-server's embedded etcd always takes the peer port 2380, so only one can run on a machine at a time: the
benchmarks take `--server-lock`, the tests share one server per run (tests/conftest.py).

For a benchmark that takes a server's URI (`bench.recommend_latency --server-uri`, `bench.api_load` with
RECSYS_MILVUS_URI), start one by hand; it runs until Ctrl+C or SIGTERM:

    .venv/bin/python -m bench.servers --data artifacts/bench/milvus-data --uri-file artifacts/bench/milvus.uri \
        --lock artifacts/milvus.lock &
    until [ -s artifacts/bench/milvus.uri ]; do sleep 1; done
    export RECSYS_MILVUS_URI=$(cat artifacts/bench/milvus.uri)
"""
from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

MILVUS_PORT_OPTIONS = ("proxy-port", "proxy-internal-port", "etcd-port", "root-coord-port", "query-coord-port",
                       "query-node-port", "index-coord-port", "index-node-port", "data-coord-port", "data-node-port")
MILVUS_START_SECONDS = 120


class ServerError(RuntimeError):
    """A server exited or did not answer in time (the message ends with the last lines of its log)."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(url: str, process: subprocess.Popen, log: Path, seconds: float = 90,
                  ready: Callable[[Any], bool] = lambda response: True) -> Any:
    """Poll `url` until a response passes `ready` and return that `httpx.Response`; raise ServerError with the
    end of `log` if `process` exits or `seconds` pass first."""
    import httpx

    deadline = time.monotonic() + seconds
    while True:
        if process.poll() is not None:
            raise ServerError(f"{url}: the server exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            response = httpx.get(url, timeout=5)
            if ready(response):
                return response
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise ServerError(f"{url} did not answer within {seconds} s:\n{log.read_text()[-3000:]}")
        time.sleep(0.3)


def wait_for_milvus(uri: str, process: subprocess.Popen, log: Path,
                    seconds: float = MILVUS_START_SECONDS) -> str | None:
    """None once the Milvus server at `uri` answers, else why it did not within `seconds`."""
    from pymilvus import MilvusClient
    from pymilvus.exceptions import MilvusException

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return f"milvus-server exited with {process.returncode}: {log.read_text()[-800:]}"
        try:
            client = MilvusClient(uri=uri, timeout=3)
            client.list_collections()
            client.close()
            return None
        except MilvusException:
            time.sleep(1)
    return f"milvus-server did not answer on {uri} within {seconds} s"


def stop_process(process: subprocess.Popen, seconds: float = 30, sig: int = signal.SIGTERM,
                 group: bool = False) -> None:
    """Stop a process this program started: `sig`, then SIGKILL if it is still running after `seconds`; with
    `group` (it was started with `start_new_session=True`) the SIGKILL goes to its whole process group."""
    if process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        if group:
            os.killpg(process.pid, signal.SIGKILL)
        else:
            process.kill()
        process.wait(timeout=10)


def stop_pid(pid: int, seconds: float = 30) -> None:
    """`stop_process(..., sig=SIGINT, group=True)` for a server another process started (known by its pid)."""
    try:
        os.kill(pid, signal.SIGINT)
        for _ in range(round(seconds * 10)):
            os.kill(pid, 0)
            time.sleep(0.1)
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def milvus_binary() -> Path | None:
    """The `milvus-server` beside this Python, else on PATH; None when it is not installed."""
    beside = Path(sys.executable).with_name("milvus-server")
    if beside.exists():
        return beside
    found = shutil.which("milvus-server")
    return Path(found) if found else None


class MilvusServer:
    """A milvus-server in `folder` on ports of its own (free ones, chosen once, so it can start again on them),
    in a session of its own, its output appended to `folder/server.log`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.ports = {option: free_port() for option in MILVUS_PORT_OPTIONS}
        self.uri = f"http://127.0.0.1:{self.ports['proxy-port']}"
        self.process: subprocess.Popen | None = None

    def start(self, seconds: float = MILVUS_START_SECONDS) -> str | None:
        """Start it and wait until it answers: None, or why it did not (then it is stopped again)."""
        binary = milvus_binary()
        if binary is None:
            return "milvus-server is not installed (pip install milvus==2.3.5)"
        command = [str(binary), "--data", str(self.folder)]
        for option, port in self.ports.items():
            command += [f"--{option}", str(port)]
        log = self.folder / "server.log"
        with open(log, "a") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        problem = wait_for_milvus(self.uri, self.process, log, seconds)
        if problem:
            self.stop()
        return problem

    def stop(self) -> None:
        """SIGINT (milvus-server shuts down cleanly on it), SIGKILL to the server and its child after 30 s."""
        if self.process is not None:
            stop_process(self.process, sig=signal.SIGINT, group=True)
            self.process = None

    def pause(self) -> None:
        """SIGSTOP the server and its child: its ports still accept connections but nothing answers."""
        os.killpg(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.killpg(self.process.pid, signal.SIGCONT)


@contextlib.contextmanager
def milvus_server(folder: Path, seconds: float = 180) -> Iterator[str]:
    """A `MilvusServer` in `folder` for the duration of the block; yields its URI, raises ServerError when it
    does not answer within `seconds`."""
    server = MilvusServer(folder)
    try:
        problem = server.start(seconds)
        if problem:
            raise ServerError(problem)
        yield server.uri
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.servers",
                                     description="Start a milvus-server on free ports, print its URI and keep it "
                                                 "running until Ctrl+C or SIGTERM.")
    parser.add_argument("--data", type=Path, required=True, help="its data folder (made when missing)")
    parser.add_argument("--uri-file", type=Path, help="also write the URI to this file once the server answers")
    parser.add_argument("--lock", type=Path, help="a file to flock while it runs (one milvus-server per machine)")
    args = parser.parse_args(argv)
    args.data.mkdir(parents=True, exist_ok=True)
    if args.uri_file:
        args.uri_file.unlink(missing_ok=True)  # a waiting script must not read the last run's URI
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # leaves the `with` below, which stops the server
    with contextlib.ExitStack() as stack:
        if args.lock:
            fcntl.flock(stack.enter_context(open(args.lock, "a")), fcntl.LOCK_EX)
        uri = stack.enter_context(milvus_server(args.data))
        if args.uri_file:  # written once the server answers, removed when it stops
            args.uri_file.write_text(uri + "\n")
            stack.callback(args.uri_file.unlink, missing_ok=True)
        print(f"RECSYS_MILVUS_URI={uri}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()


if __name__ == "__main__":
    main()
