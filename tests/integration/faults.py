"""Helpers for the fault tests: a loopback TCP proxy a test can cut, stall and restore,
and real `imagify serve` processes.

The proxy stands in front of a real service (MariaDB, Redis, the moto S3 server), so a
test takes "the service" down for the application without touching the shared server.
"""

from __future__ import annotations

import os
import selectors
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

UP, DOWN, STALL = "up", "down", "stall"


class TcpProxy:
    """Forwards 127.0.0.1:<port> to a target; `down()` resets every connection and each new
    one, `stall()` holds the bytes (a hung service), `up()` restores."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port: int = self._listener.getsockname()[1]
        self._mode = UP
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._budget: int | None = None  # client->service bytes left before going down
        self._closed = False
        self.connections = 0
        self.bytes_up = 0
        self._thread = threading.Thread(target=self._accept, name="tcp-proxy", daemon=True)
        self._thread.start()

    # Control

    @property
    def mode(self) -> str:
        return self._mode

    def up(self) -> None:
        with self._lock:
            self._mode, self._budget = UP, None

    def down(self) -> None:
        """Reset every open connection, and each new one until `up()`."""
        with self._lock:
            self._mode, self._budget = DOWN, None
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            for sock in pair:
                _reset(sock)

    def stall(self) -> None:
        """Accept and keep connections, but forward nothing, until `up()` or `down()`."""
        with self._lock:
            self._mode = STALL

    def down_after(self, nbytes: int) -> None:
        """Forward `nbytes` more from clients to the service, then go down (mid-request)."""
        with self._lock:
            self._budget = nbytes

    def close(self) -> None:
        self._closed = True
        self.down()
        self._thread.join(timeout=2)
        self._listener.close()

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # Forwarding

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            if self._mode == DOWN:
                _reset(client)
                continue
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            service = socket.create_connection(self._target, timeout=5)
        except OSError:
            _reset(client)
            return
        with self._lock:
            if self._mode == DOWN:
                _reset(client)
                _reset(service)
                return
            self._pairs.append((client, service))
        selector = selectors.DefaultSelector()
        selector.register(client, selectors.EVENT_READ, service)
        selector.register(service, selectors.EVENT_READ, client)
        finished = False  # one side closed normally: pass its close on, lose no byte
        try:
            while not self._closed and self._mode != DOWN:
                if self._mode == STALL:
                    time.sleep(0.02)
                    continue
                for key, _ in selector.select(timeout=0.1):
                    source: socket.socket = key.fileobj  # type: ignore[assignment]
                    if self._mode != UP:
                        break
                    data = source.recv(256 * 1024)
                    if not data:
                        finished = True
                        return
                    spent = False
                    if source is client:
                        data, spent = self._spend(data)
                    key.data.sendall(data)
                    if spent:
                        # Down before anyone can see the failure: every connection open
                        # now is reset here, not by a thread that may run after `up()`.
                        self.down()
                        return
                    if self._mode == DOWN:
                        return
        except (OSError, ValueError):  # a socket `down()` closed under us
            return
        finally:
            selector.close()
            with self._lock:
                if (client, service) in self._pairs:
                    self._pairs.remove((client, service))
            # A reset would drop what the kernel has not sent yet (the end of a response
            # whose sender then closed): close normally unless this is a failure.
            reset = not finished or self._mode == DOWN
            _close(client, reset)
            _close(service, reset)

    def _spend(self, data: bytes) -> tuple[bytes, bool]:
        """The part of `data` within the budget, and whether the budget is now spent."""
        with self._lock:
            self.bytes_up += len(data)
            if self._budget is None:
                return data, False
            if len(data) < self._budget:
                self._budget -= len(data)
                return data, False
            data, self._budget = data[: self._budget], None
        return data, True


def _close(sock: socket.socket, reset: bool) -> None:
    """Close with RST, as a crashed or unplugged service looks to its clients, or with FIN
    after the bytes already sent, as one that finished looks."""
    try:
        if reset:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        else:
            sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


def _reset(sock: socket.socket) -> None:
    _close(sock, reset=True)


@contextmanager
def proxy_to(host: str, port: int) -> Iterator[TcpProxy]:
    proxy = TcpProxy(host, port)
    try:
        yield proxy
    finally:
        proxy.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# Real server processes


class Server:
    """One `imagify serve` process on a free loopback port."""

    def __init__(self, env: dict[str, str], folder: Path, workers: int = 1) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = folder / f"serve-{self.port}.log"
        folder.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "imagify.entrypoints.cli", "serve", "--port", str(self.port),
             "--workers", str(workers)],
            env={**os.environ, **env},
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
            cwd=folder,
        )

    def wait_ready(self, seconds: float = 30) -> Server:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"server exited with {self.process.returncode}:\n{self.log.read_text()}")
            try:
                if httpx.get(f"{self.base}/health/ready", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        pytest.fail(f"server at {self.base} not ready after {seconds} s:\n{self.log.read_text()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown hook, no cleanup, as a crashed machine."""
        self.process.kill()
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


@contextmanager
def serving(env: dict[str, str], folder: Path, workers: int = 1) -> Iterator[Server]:
    server = Server(env, folder, workers)
    try:
        yield server.wait_ready()
    finally:
        server.stop()


def run_cli(env: dict[str, str], *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """`imagify <args>` in a subprocess, as an operator runs it."""
    return subprocess.run(
        [sys.executable, "-m", "imagify.entrypoints.cli", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
    )


# In-process apps whose services sit behind proxies


def host_port(url: str) -> tuple[str, int]:
    """The host and port of a service URL (`redis://h:p/11`, `mysql+pymysql://u@h:p/db`, `http://h:p`)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", int(parts.port or 0)


def through(url: str, proxy: TcpProxy) -> str:
    """The same URL, with the proxy's port in place of the service's."""
    host, port = host_port(url)
    return url.replace(f"{host}:{port}", f"127.0.0.1:{proxy.port}", 1)


def count_rows(engine, table: str) -> int:  # type: ignore[no-untyped-def]
    from sqlalchemy import text

    with engine.connect() as connection:
        return int(connection.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one())
