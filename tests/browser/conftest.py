"""A real `imagify serve` on a loopback port, and one headless Chromium for the session."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from PIL import Image as PILImage

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
ADMIN_PASSWORD = "admin-password-for-the-browser"
SOURCE = Path(__file__).resolve().parents[2] / "src"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 860}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="package")
def server(tmp_path_factory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("console")
    env = {**os.environ, "IMAGIFY_DATA_DIR": str(folder / "var"), "IMAGIFY_ADMIN_PASSWORD": ADMIN_PASSWORD,
           "IMAGIFY_SECRET_KEY": "a-secret-for-the-console-browser-tests-0123"}
    env.pop("IMAGIFY_REDIS_URL", None)
    # This checkout's code, whatever the venv has installed and wherever the server runs.
    env["PYTHONPATH"] = os.pathsep.join([str(SOURCE), *filter(None, [os.environ.get("PYTHONPATH")])])
    subprocess.run([sys.executable, "-m", "imagify.entrypoints.cli", "migrate"], env=env, cwd=folder,
                   check=True, capture_output=True)
    port, log = _free_port(), folder / "server.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "imagify.entrypoints.cli", "serve", "--port", str(port)],
        env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=folder,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                pytest.fail(f"server exited with {process.returncode}:\n{log.read_text()}")
            try:
                if httpx.get(f"{base}/health/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"server not ready after 30 s:\n{log.read_text()}")
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="package")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Chromium is not installed at {CHROMIUM} (.ci/run installs it)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def new_page(browser, server):
    """A fresh browser context (no cookies) with one page on the server, per call."""
    contexts = []

    def make(viewport: dict[str, int] = DESKTOP):
        context = browser.new_context(base_url=server, viewport=viewport)
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


def log_in(page, username: str, password: str) -> None:
    page.goto("/console/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/console/")


def image_file(fmt: str = "PNG", size: tuple[int, int] = (640, 480), color=(40, 120, 200)) -> bytes:
    buffer = io.BytesIO()
    PILImage.new("RGB", size, color).save(buffer, fmt)
    return buffer.getvalue()


def shot(page, name: str) -> None:
    """A screenshot into $IMAGIFY_CONSOLE_SCREENSHOTS, when set (to look at the pages)."""
    folder = os.environ.get("IMAGIFY_CONSOLE_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=f"{folder}/{name}.png", full_page=True)
