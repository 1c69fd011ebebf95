"""A race with thumbor 7.8, side by side on this machine, after imgproxy's image-servers-benchmark.

thumbor comes from PyPI into its own virtualenv under bench/.work/ (never the service's), and
serves the same photo-like sources from disk in its best configuration: the file loader,
result storage on, ENGINE_THREADPOOL_SIZE equal to the cores, the same quality as Imagify
(85). Imagify serves them embedded (`imagify serve`, SQLite, local folder). Each row runs
Imagify, then thumbor: cold rows request distinct URLs (a new image, or a new size/format
of it) at concurrency 4; warm rows one URL at concurrency 16 under wrk. Per side: req/s,
p50/p99, server CPU seconds per request (every process of the server) and output bytes.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from bench.common import BENCH, IMAGIFY, Load, Options, Report, Target, interleaved, server, server_cpu_seconds, wrk
from bench.fixtures import _token, deployment, encode, megapixel_size, photo_like

THUMBOR = "thumbor==7.8.0"
VENV = Path(os.environ.get("BENCH_THUMBOR_VENV") or BENCH / ".work" / "thumbor-venv")  # reused across runs
SOURCES = {"2 MP": 2, "12 MP": 12}
COLD = 32  # distinct sources per size; each cold row requests every one once
QUALITY = 85


def run(report: Report, options: Options, workdir: Path, files: dict[str, bytes]) -> None:
    _avif_cost(report, options, files)
    thumbor = ensure_thumbor()
    if isinstance(thumbor, str):
        report.notes.append(f"thumbor not measured: {thumbor}")
        print(f"  thumbor not measured: {thumbor}", flush=True)
        return
    race = workdir / "race"
    sources = race / "sources"
    sources.mkdir(parents=True)
    data = {name: encode(photo_like(megapixel_size(mp), seed=mp), "JPEG", quality=92) for name, mp in SOURCES.items()}
    for name, body in data.items():
        for n in range(COLD):
            # Distinct bytes per copy (a trailing comment), so no server can share a decode.
            (sources / f"{_slug(name)}-{n}.jpg").write_bytes(body + f"copy {n}".encode())
    with deployment("race", race) as dep, tempfile.TemporaryDirectory() as results:
        ids = _upload(dep, sources)
        conf = _thumbor_conf(race / "thumbor.conf", sources, Path(results))
        thumbor_args = [str(thumbor), "-i", "127.0.0.1", "-p", "{port}", "-c", str(conf), "-l", "warning"]
        serve = [IMAGIFY, "serve", "--host", "127.0.0.1", "--port", "{port}", "--workers", "1"]
        with server(serve, dep.env, "/health/live", race / "imagify.log") as imagify, \
                server(thumbor_args, {}, "/healthcheck", race / "thumbor.log") as thumb:  # fmt: skip
            for base, url, headers in ((imagify, f"{imagify}/api/v1/images/{ids['2 MP'][0]}/thumbnails/200?format=png", dep.headers),
                                       (thumb, f"{thumb}/unsafe/0x100/{_slug('2 MP')}-0.jpg", {})):  # fmt: skip
                httpx.get(url, headers=headers, timeout=120).raise_for_status()  # both warm: workers started, code loaded
            for size in SOURCES:
                for height in (200, 400):
                    for fmt in ("jpeg", "webp"):
                        ours = [f"{imagify}/api/v1/images/{i}/thumbnails/{height}?format={fmt}" for i in ids[size]]
                        theirs = [f"{thumb}/unsafe/0x{height}/filters:format({fmt}):quality({QUALITY})/{_slug(size)}-{n}.jpg"
                                  for n in range(COLD)]  # fmt: skip
                        a = _cold(imagify, "/health/live", ours, dep.headers)
                        b = _cold(thumb, "/healthcheck", theirs, {})
                        _row(report, f"cold {size} -> {height} px {fmt.upper()}, c4", a, b, ">= 1.2x", 1.2, check_bytes=True)
            for fmt in ("jpeg", "webp"):
                ours = f"{imagify}/api/v1/images/{ids['12 MP'][0]}/thumbnails/400?format={fmt}"
                theirs = f"{thumb}/unsafe/0x400/filters:format({fmt}):quality({QUALITY})/{_slug('12 MP')}-0.jpg"
                a = _warm(imagify, ours, dep.headers, options)
                b = _warm(thumb, theirs, {}, options)
                _row(report, f"warm same URL 400 px {fmt.upper()}, c16", a, b, ">= 3x", 3.0)


class Side:
    """One server's figures for one row."""

    def __init__(self, load: Load, cpu_per_request: float, mean_bytes: float) -> None:
        self.load, self.cpu, self.bytes = load, cpu_per_request, mean_bytes

    def text(self) -> str:
        return f"{self.load.text()}, {self.cpu * 1000:.1f} ms CPU/req, {self.bytes:,.0f} B"


def _row(report: Report, what: str, ours: Side, theirs: Side, target: str, ratio_needed: float,
         check_bytes: bool = False) -> None:  # fmt: skip
    ratio = ours.load.rps / theirs.load.rps
    met = ratio >= ratio_needed and (not check_bytes or ours.bytes <= theirs.bytes * 1.02)
    report.figure("thumbor", f"{what}: Imagify", ours.text())
    report.figure("thumbor", f"{what}: thumbor 7.8", theirs.text())
    report.target(Target(what, "thumbor 7.8, same machine, alternated", target + (", bytes <=" if check_bytes else ""),
                         ratio, met, f"{ours.load.rps:,.1f} vs {theirs.load.rps:,.1f} req/s; "
                         f"{ours.bytes:,.0f} vs {theirs.bytes:,.0f} B"))  # fmt: skip


def _cold(base: str, ready: str, urls: list[str], headers: dict[str, str], concurrency: int = 4) -> Side:
    """Each URL once, `concurrency` at a time: latency of each, req/s over the whole run.
    The clients connect before the clock starts (an httpx client takes milliseconds to make,
    which both sides would otherwise pay inside the run)."""
    pending, lock = list(urls), threading.Lock()
    latencies: list[float] = []
    sizes: list[int] = []
    clients = [httpx.Client(headers=headers, timeout=120) for _ in range(concurrency)]
    for client in clients:
        client.get(f"{base}{ready}").raise_for_status()  # the connection, opened
    start = threading.Barrier(concurrency + 1)

    def worker(client: httpx.Client) -> None:
        start.wait()
        while True:
            with lock:
                if not pending:
                    return
                url = pending.pop()
            started = time.perf_counter()
            response = client.get(url)
            elapsed = time.perf_counter() - started
            if response.status_code != 200:
                raise RuntimeError(f"{url}: {response.status_code} {response.text[:200]}")
            with lock:
                latencies.append(elapsed)
                sizes.append(len(response.content))

    try:
        with ThreadPoolExecutor(concurrency) as pool:
            futures = [pool.submit(worker, client) for client in clients]
            cpu = server_cpu_seconds(base)
            started = time.perf_counter()
            start.wait()
            for future in futures:
                future.result()
            wall = time.perf_counter() - started
            cpu = server_cpu_seconds(base) - cpu
    finally:
        for client in clients:
            client.close()
    ordered = sorted(latencies)
    load = Load(len(urls) / wall, statistics.median(ordered) * 1000,
                ordered[min(len(ordered) - 1, round(0.99 * len(ordered)))] * 1000, len(urls), 0, 0)  # fmt: skip
    return Side(load, cpu / len(urls), statistics.mean(sizes))


def _warm(base: str, url: str, headers: dict[str, str], options: Options) -> Side:
    body = httpx.get(url, headers=headers, timeout=120)  # renders it (and fills every cache)
    body.raise_for_status()
    cpu = server_cpu_seconds(base)
    load = wrk(url, options, headers, connections=16)
    cpu = server_cpu_seconds(base) - cpu
    # wrk's warm-up run used CPU too: count its requests at the measured rate.
    requests = load.requests + load.rps * max(1, round(options.warmup))
    return Side(load, cpu / requests, len(body.content))


def _avif_cost(report: Report, options: Options, files: dict[str, bytes]) -> None:
    from imagify.adapters.pillow_render import render_thumbnail

    data = files.get("jpeg12") or encode(photo_like(megapixel_size(12)), "JPEG")
    times = interleaved(
        {out: (lambda out=out: render_thumbnail(data, 400, out)) for out in ("jpeg", "webp", "avif")},  # type: ignore[misc]
        options.runs * 2,
    )
    for out, seconds in times.items():
        report.figure("thumbor", f"cold render 12 MP JPEG -> 400 px {out.upper()} (in process)", f"{seconds * 1000:.1f} ms")
    ratio = times["avif"] / times["jpeg"]
    report.target(Target("cold AVIF render, 12 MP JPEG -> 400 px", "the JPEG render of the same", "<= 2.5x",
                         ratio, ratio <= 2.5, f"{times['avif'] * 1000:.1f} ms vs {times['jpeg'] * 1000:.1f} ms"))  # fmt: skip


def ensure_thumbor() -> str | Path:
    """The thumbor executable of a virtualenv of its own, made on first use; else why not."""
    binary = VENV / "bin" / "thumbor"
    if binary.exists():
        return binary
    python = shutil.which("python3") or sys.executable
    steps = [[python, "-m", "venv", str(VENV)], [str(VENV / "bin" / "pip"), "install", "--quiet", THUMBOR]]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            shutil.rmtree(VENV, ignore_errors=True)
            return f"`{' '.join(step[-2:])}` failed: {done.stderr.strip().splitlines()[-1:]}"
    return binary


def _thumbor_conf(path: Path, sources: Path, results: Path) -> Path:
    path.write_text(
        "LOADER = 'thumbor.loaders.file_loader'\n"
        f"FILE_LOADER_ROOT_PATH = {str(sources)!r}\n"
        "STORAGE = 'thumbor.storages.no_storage'\n"
        "RESULT_STORAGE = 'thumbor.result_storages.file_storage'\n"
        f"RESULT_STORAGE_FILE_STORAGE_ROOT_PATH = {str(results)!r}\n"
        "RESULT_STORAGE_STORES_UNSAFE = True\n"
        "ALLOW_UNSAFE_URL = True\n"
        f"ENGINE_THREADPOOL_SIZE = {os.cpu_count() or 1}\n"
        f"QUALITY = {QUALITY}\n"
        f"WEBP_QUALITY = {QUALITY}\n"
        "RESPECT_ORIENTATION = True\n"
        "MAX_AGE = 86400\n"
    )
    return path


def _upload(dep, sources: Path) -> dict[str, list[str]]:  # type: ignore[no-untyped-def]
    from imagify.entrypoints.container import build_container, shutdown

    container = build_container(dep.settings())
    try:
        container.admin().create_user("bench", "race", "bench-password-1234", ["enterprise"], False)
        token = _token(container, "race")
        user = container.auth().authenticate(token)
        ids: dict[str, list[str]] = {}
        for size in SOURCES:
            for n in range(COLD):
                path = sources / f"{_slug(size)}-{n}.jpg"
                with path.open("rb") as f:
                    ids.setdefault(size, []).append(container.images().upload(user, path.name, f, path.stat().st_size).id)
        dep.headers = {"Authorization": f"Bearer {token}"}
        return ids
    finally:
        shutdown(container)


def _slug(size: str) -> str:
    return size.replace(" ", "").lower()



