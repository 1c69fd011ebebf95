"""The README's quick start, pasted block by block, works against a fresh server.

The blocks are read from README.md itself (the ```sh blocks under "## Quick start"), so
what a newcomer pastes is what is tested.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def quick_start_blocks() -> list[str]:
    section = re.search(r"^## Quick start.*?$(.*?)(?=^## )", README, re.M | re.S)
    assert section, "the README has no '## Quick start' section"
    return re.findall(r"^```sh\n(.*?)^```", section.group(1), re.M | re.S)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_readme_stands_alone():
    assert "../" not in README and "DESIGN.md" not in README


def test_every_quick_start_block_runs_in_order_against_a_fresh_server(tmp_path):
    blocks = quick_start_blocks()
    assert len(blocks) >= 5
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
        "IMAGIFY_DATA_DIR": str(tmp_path / "var"),
        "IMAGIFY_ADMIN_PASSWORD": "",
    }
    for name in list(env):
        if name.startswith("IMAGIFY_") and name not in ("IMAGIFY_DATA_DIR", "IMAGIFY_ADMIN_PASSWORD"):
            del env[name]  # the embedded defaults, as on a fresh clone
    cli = [sys.executable, "-m", "imagify.entrypoints.cli"]
    migrated = subprocess.run([*cli, "migrate"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert migrated.returncode == 0, migrated.stderr
    password = migrated.stdout.split("shown only once:")[1].split()[0]  # as a newcomer copies it

    port = free_port()
    log = tmp_path / "server.log"
    server = subprocess.Popen(
        [*cli, "serve", "--port", str(port)], env=env, cwd=tmp_path,
        stdout=subprocess.DEVNULL, stderr=log.open("wb"),
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert server.poll() is None, log.read_text()
            try:
                if httpx.get(f"{base}/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)

        # The blocks run in one shell, in a folder holding the repository's samples, as if
        # pasted one after the other; any failing command stops the run.
        work = tmp_path / "work"
        work.mkdir()
        (work / "samples").symlink_to(ROOT / "samples")
        script = "set -eo pipefail\n" + "".join(
            f"echo '>>> block {n}' >&2\n{block}" for n, block in enumerate(blocks, 1)
        )
        result = subprocess.run(
            ["bash", "-c", script],
            input=password + "\n",
            env={**env, "IMAGIFY_URL": base},
            cwd=work,
            capture_output=True,
            text=True,
            timeout=120,
        )
        last = re.findall(r">>> block (\d+)", result.stderr)
        assert result.returncode == 0, (
            f"block {last[-1] if last else '?'} failed:\n{blocks[int(last[-1]) - 1] if last else ''}\n"
            f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        )
        assert (work / "thumb-200.jpg").read_bytes()[:2] == b"\xff\xd8"
        assert (work / "from-link.jpg").read_bytes() == (ROOT / "samples" / "sample.jpg").read_bytes()
        assert '"username":"ann"' in result.stdout.replace(" ", "")
    finally:
        server.terminate()
        server.wait(timeout=15)

    lines = log.read_text().splitlines()
    assert lines, "the server logged nothing"
    for line in lines:  # one JSON format for every line while serving: uvicorn's, libraries', ours
        assert isinstance(json.loads(line), dict), line


def test_a_wrong_password_prints_the_servers_message_not_a_traceback(tmp_path):
    """The login block, given a wrong password against a server that says 401."""
    login = next(block for block in quick_start_blocks() if "access_token" in block)
    from http.server import BaseHTTPRequestHandler, HTTPServer
    from threading import Thread

    class Refuse(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            self.rfile.read(int(self.headers.get("content-length", 0)))
            body = b'{"status_code": 401, "detail": "wrong username or password"}'
            self.send_response(401)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Refuse)
    Thread(target=server.serve_forever, daemon=True).start()
    try:
        first_lines = "\n".join(line for line in login.splitlines() if "/api/v1/me" not in line)
        result = subprocess.run(
            ["bash", "-c", "ADMIN_PASSWORD=wrong\n" + first_lines],
            env={**os.environ, "IMAGIFY_URL": f"http://127.0.0.1:{server.server_port}"},
            capture_output=True, text=True, timeout=30,
        )
    finally:
        server.shutdown()
    assert "error: wrong username or password" in result.stderr
    assert "Traceback" not in result.stderr
