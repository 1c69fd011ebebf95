"""`imagify serve --workers 4`: every worker starts, on a fresh data folder and an existing one.

Workers start at once and share the data folder (SQLite file, change counters, secret key,
locks). On a loaded machine a worker once died at start-up: uvicorn's supervisor pings each
worker and kills one that has not answered within its health-check timeout, and a worker
answers only once it has imported the app (2 s alone, several with 4 at once on 2 busy cores).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.integration.test_two_processes import _free_port

WORKERS = 4
ROUNDS = 2  # per kind of folder: each round is a full start and stop of 4 workers
STARTED = "Application startup complete"
DIED = re.compile(r"Child process \[\d+\] (died|failed)|Traceback|could not start")


def _imagify(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "imagify.entrypoints.cli", *args],
        env={**os.environ, **env}, stdout=log.open("ab"), stderr=subprocess.STDOUT,
        cwd=log.parent, start_new_session=True,
    )  # fmt: skip


def _serve_once(env: dict[str, str], log: Path) -> None:
    """Start 4 workers, wait until all say they started and the API is ready, stop them."""
    log.write_bytes(b"")
    port = _free_port()
    process = _imagify(["serve", "--port", str(port), "--workers", str(WORKERS)], env, log)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert process.poll() is None, f"serve exited with {process.returncode}:\n{log.read_text()}"
            text = log.read_text()
            assert not DIED.search(text), text
            if text.count(STARTED) >= WORKERS:
                break
            time.sleep(0.3)
        else:
            pytest.fail(f"not every worker started within 90 s:\n{log.read_text()}")
        assert httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=10).status_code == 200
        time.sleep(1)  # a worker killed just after its start would show now
        assert not DIED.search(log.read_text()), log.read_text()
        assert log.read_text().count(STARTED) == WORKERS, log.read_text()
    finally:
        os.killpg(process.pid, signal.SIGTERM)  # its own session: uvicorn and its workers
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.mark.parametrize("folder", ["fresh", "existing"])
def test_four_workers_all_start_on_a_fresh_and_on_an_existing_data_folder(tmp_path, folder):
    log = tmp_path / "serve.log"
    for round_ in range(ROUNDS):
        data = tmp_path / (f"data-{round_}" if folder == "fresh" else "data")
        # No IMAGIFY_SECRET_KEY: the workers share the key generated in the data folder.
        env = {"IMAGIFY_DATA_DIR": str(data), "IMAGIFY_ADMIN_PASSWORD": "admin-password-for-the-test"}
        if not data.exists():
            migrate = _imagify(["migrate"], env, tmp_path / "migrate.log")
            assert migrate.wait(timeout=120) == 0, (tmp_path / "migrate.log").read_text()
        _serve_once(env, log)
