"""HTTP targets: `imagify serve` under wrk against a bare Litestar app on the same settings."""

from __future__ import annotations

import os
import statistics
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import httpx

from bench import hostile, writes
from bench.common import IMAGIFY, PYTHON, Load, Options, Report, Target, get, server, server_cpu_seconds, wrk
from bench.fixtures import Deployment, deployment, seed
from imagify.adapters.pillow_render import render_thumbnail

T = TypeVar("T")
ROUNDS = 3  # each pair is measured imagify/bare alternately this many times; best of each kept
PAGE = 20


def serve_args(workers: int) -> list[str]:
    return [IMAGIFY, "serve", "--host", "127.0.0.1", "--port", "{port}", "--workers", str(workers)]


def bare_args(workers: int) -> list[str]:
    return [PYTHON, "-m", "bench.bare_app", "--port", "{port}", "--workers", str(workers)]


def alternately(a: Callable[[], T], b: Callable[[], T], rps: Callable[[T], float]) -> tuple[T, T]:
    """a, then b, ROUNDS times in turn; the run of each with the most req/s."""
    runs_a, runs_b = [], []
    for _ in range(ROUNDS):
        runs_a.append(a())
        runs_b.append(b())
    return max(runs_a, key=rps), max(runs_b, key=rps)


def side_by_side(options: Options, a: tuple[str, dict[str, str]], b: tuple[str, dict[str, str]]) -> tuple[Load, Load]:
    """wrk on a, then b, in turn; the best run of each."""
    return alternately(lambda: wrk(a[0], options, a[1]), lambda: wrk(b[0], options, b[1]), lambda load: load.rps)


def run(report: Report, options: Options, workdir: Path, name: str, files: dict[str, bytes],
        only_writes: bool = False) -> None:  # fmt: skip
    photo, original = files["photo2"], files["photo2"]
    with deployment(name, workdir) as dep:
        seed(dep, PAGE + 1, photo, original)
        log = workdir / f"{name}-server.log"
        with server(serve_args(1), dep.env, "/health/live", log) as base:
            if only_writes:
                writes.run(report, options, workdir, dep, base)
                return
            _throughput(report, options, workdir, dep, base, log)
            writes.run(report, options, workdir, dep, base)
            if name == "embedded":
                _cold_thumbnail(report, options, dep, base, files["jpeg12"])
                _storm(report, options, dep, base, files["jpeg12"])
                hostile.run(report, options, dep, base)
        if name == "embedded":
            _workers(report, options, dep, log)
        else:
            _redirect_mode(report, options, dep, log)


def _urls(base: str, dep: Deployment) -> dict[str, str]:
    image = dep.image_ids[-1]
    return {
        "thumbnail": f"{base}/api/v1/images/{image}/thumbnails/200",
        "list": f"{base}/api/v1/images?limit={PAGE}",
        "link": f"{base}/l/{dep.link_token}",
        "original": f"{base}/api/v1/images/{image}/original",
    }


def _throughput(report: Report, options: Options, workdir: Path, dep: Deployment, base: str, log: Path) -> None:
    urls = _urls(base, dep)
    bare_dir = workdir / f"{dep.name}-bare"
    bare_dir.mkdir(exist_ok=True)
    for url, headers, file in ((urls["thumbnail"], dep.headers, "thumbnail.bin"),
                               (urls["list"], dep.headers, "list.json"),
                               (urls["link"], {}, "original.bin")):  # fmt: skip
        status, response_headers, body = get(url, headers)
        assert status == 200, (url, status, body[:200])
        (bare_dir / file).write_bytes(body)
        (bare_dir / (file + ".type")).write_text(response_headers["content-type"])
    sizes = {f: (bare_dir / f).stat().st_size for f in ("thumbnail.bin", "list.json", "original.bin")}
    with server(bare_args(1), {"BENCH_BARE_DIR": str(bare_dir)}, "/json/list", log) as bare:
        cases = [
            ("warm thumbnail GET", urls["thumbnail"], dep.headers, f"{bare}/bytes/thumbnail", 0.5,
             f"{sizes['thumbnail.bin'] / 1024:.0f} KiB JPEG"),
            (f"GET /api/v1/images ({PAGE} items)", urls["list"], dep.headers, f"{bare}/json/list", 0.4,
             f"{sizes['list.json'] / 1024:.1f} KiB JSON"),
            ("GET /l/{token}", urls["link"], {}, f"{bare}/bytes/original", 0.5,
             f"{sizes['original.bin'] / 1024:.0f} KiB original"),
        ]  # fmt: skip
        for what, url, headers, bare_url, target, detail in cases:
            ours, floor = side_by_side(options, (url, headers), (bare_url, {}))
            ratio = ours.rps / floor.rps
            report.figure(dep.name, f"{what}: imagify", ours.text(), detail)
            report.figure(dep.name, f"{what}: bare Litestar route, from memory", floor.text())
            report.target(Target(
                f"{what}, req/s ({dep.name})", "a bare Litestar route returning the same bytes from memory",
                f">= {target:.0%}", ratio, ratio >= target, f"{ours.rps:,.0f} vs {floor.rps:,.0f} req/s",
            ))  # fmt: skip
        original = wrk(urls["original"], options, dep.headers)
        report.figure(dep.name, "GET original (proxied): imagify", original.text(), f"{sizes['original.bin'] / 1024:.0f} KiB")


def _cold_thumbnail(report: Report, options: Options, dep: Deployment, base: str, data: bytes) -> None:
    """Upload, then time the first GET of its thumbnail; against render_thumbnail alone and
    against the physical floor, libjpeg's 1/8-scale decode of the same file."""
    from bench.render import draft_decode

    http_times, render_times, floor_times = [], [], []
    with httpx.Client(base_url=base, headers=dep.headers, timeout=120) as client:
        for n in range(2 * options.runs):  # the first round warms up; the median of the rest
            created = client.post("/api/v1/images", files={"file": (f"cold-{n}.jpg", data, "image/jpeg")})
            assert created.status_code == 201, created.text
            start = time.perf_counter()
            response = client.get(f"/api/v1/images/{created.json()['id']}/thumbnails/200")
            elapsed = time.perf_counter() - start
            assert response.status_code == 200, response.text
            start = time.perf_counter()
            render_thumbnail(data, 200)
            rendered = time.perf_counter() - start
            start = time.perf_counter()
            draft_decode(data)
            decoded = time.perf_counter() - start
            if n:  # the first round warms everything up
                http_times.append(elapsed)
                render_times.append(rendered)
                floor_times.append(decoded)
    ours, render, floor = (statistics.median(t) for t in (http_times, render_times, floor_times))
    report.figure(dep.name, "cold thumbnail: first GET after upload (12 MP JPEG)", f"{ours * 1000:.1f} ms",
                  f"median of {len(http_times)}")  # fmt: skip
    report.figure(dep.name, "cold thumbnail: render_thumbnail alone, same file", f"{render * 1000:.1f} ms")
    report.figure(dep.name, "cold thumbnail: Pillow draft (1/8 DCT) decode alone, same file", f"{floor * 1000:.1f} ms")
    report.target(Target(
        "cold thumbnail over HTTP (upload, then first GET)", "the render alone", "<= 1.3x",
        ours / render, ours / render <= 1.3, f"{ours * 1000:.1f} ms vs {render * 1000:.1f} ms",
    ))  # fmt: skip
    report.target(Target(
        "cold thumbnail over HTTP (upload, then first GET), embedded", "Pillow draft (1/8 scale) decode of the same file",
        "<= 1.2x", ours / floor, ours / floor <= 1.2, f"{ours * 1000:.1f} ms vs {floor * 1000:.1f} ms",
    ))  # fmt: skip


STORM_IMAGES = 24  # 12 MP JPEGs, each asked for at two heights at once: 48 first renders
STORM_CLIENTS = 48


def _storm(report: Report, options: Options, dep: Deployment, base: str, data: bytes) -> None:
    """The warm listing's latency alone, then while a storm of first thumbnail GETs renders."""
    with httpx.Client(base_url=base, headers=dep.headers, timeout=120) as client:
        ids = []
        for n in range(STORM_IMAGES):
            created = client.post("/api/v1/images", files={"file": (f"storm-{n}.jpg", data, "image/jpeg")})
            assert created.status_code == 201, created.text
            ids.append(created.json()["id"])
    url = f"{base}/api/v1/images?limit={PAGE}"
    get(url, dep.headers)
    quiet = wrk(url, options, dep.headers, connections=4)
    paths = [f"/api/v1/images/{i}/thumbnails/{h}" for i in ids for h in (200, 400)]
    statuses: list[int] = []
    timing: dict[str, float] = {}

    def storm() -> None:
        def first_get(path: str) -> int:
            with httpx.Client(base_url=base, headers=dep.headers, timeout=120) as client:
                return client.get(path).status_code

        started = time.perf_counter()
        with ThreadPoolExecutor(STORM_CLIENTS) as pool:
            statuses.extend(pool.map(first_get, paths))
        timing["storm"] = time.perf_counter() - started

    def ready_ms() -> float:  # a route that needs a worker thread and the database
        started = time.perf_counter()
        assert get(f"{base}/health/ready")[0] == 200
        return (time.perf_counter() - started) * 1000

    idle_ready = [ready_ms() for _ in range(10)]
    thread = threading.Thread(target=storm)
    thread.start()
    time.sleep(0.3)
    storm_ready = []
    while thread.is_alive() and len(storm_ready) < 10:
        storm_ready.append(ready_ms())
    # wrk's warm-up overlaps the storm's start; its measured seconds fall inside the storm
    busy = wrk(url, Options(duration=2, warmup=1), dep.headers, connections=4)
    thread.join()
    assert statuses == [200] * len(paths), statuses
    report.figure(dep.name, "warm GET /api/v1/images, 4 connections, idle", quiet.text())
    report.figure(dep.name, f"the same during {len(paths)} concurrent first thumbnail GETs", busy.text(),
                  f"all {len(paths)} answered 200 in {timing['storm']:.1f} s; renders run in a pool of one thread per core")  # fmt: skip
    report.figure(dep.name, "GET /health/ready (a worker thread and a query), idle",
                  f"p50 {statistics.median(idle_ready):.1f} ms, max {max(idle_ready):.1f} ms")  # fmt: skip
    report.figure(dep.name, "GET /health/ready during the storm",
                  f"p50 {statistics.median(storm_ready):.1f} ms, max {max(storm_ready):.1f} ms" if storm_ready else "storm over first",
                  f"{len(storm_ready)} sequential calls")  # fmt: skip


def _workers(report: Report, options: Options, dep: Deployment, log: Path) -> None:
    """One worker against two, as shipped and on the database path; with the CPU each used."""
    url = f"/api/v1/images?limit={PAGE}"
    for label, env in (("", dep.env), (", IMAGIFY_READ_CACHE=off", {**dep.env, "IMAGIFY_READ_CACHE": "off"})):
        with server(serve_args(1), env, "/health/live", log) as one, \
                server(serve_args(2), env, "/health/live", log) as two:  # fmt: skip
            for base in (one, two):  # each worker of the pair warms its connections up
                for _ in range(4):
                    get(base + url, dep.headers)

            def measured(base: str) -> tuple[Load, float]:  # the load, and the cores the server used
                cpu, started = server_cpu_seconds(base), time.monotonic()
                load = wrk(base + url, options, dep.headers, connections=32)
                return load, (server_cpu_seconds(base) - cpu) / (time.monotonic() - started)

            (w1, cores1), (w2, cores2) = alternately(lambda: measured(one), lambda: measured(two), lambda r: r[0].rps)
        ratio = w2.rps / w1.rps
        for workers, load, cores in ((1, w1, cores1), (2, w2, cores2)):
            report.figure(dep.name, f"GET /api/v1/images, --workers {workers}{label} (32 connections)", load.text(),
                          f"server used {cores:.2f} of {os.cpu_count()} cores; {load.rps / cores:,.0f} req per server CPU-second")  # fmt: skip
        if not label:
            report.target(Target(
                "imagify serve --workers 2, list endpoint", "--workers 1", ">= 1.7x", ratio, ratio >= 1.7,
                f"{w2.rps:,.0f} vs {w1.rps:,.0f} req/s", f"the two workers used {cores2:.2f} cores, one {cores1:.2f}",
            ))  # fmt: skip
        else:
            report.figure(dep.name, f"--workers 2 against 1{label}", f"{ratio:.2f}x")


def _redirect_mode(report: Report, options: Options, dep: Deployment, log: Path) -> None:
    env = {**dep.env, "IMAGIFY_SERVE_MODE": "redirect"}
    with server(serve_args(1), env, "/health/live", log) as base:
        url = _urls(base, dep)["thumbnail"]
        status, headers, _ = get_no_redirect(url, dep.headers)
        assert status == 302, status
        load = wrk(url, options, dep.headers)
    report.figure(dep.name, "warm thumbnail GET, IMAGIFY_SERVE_MODE=redirect (302)", load.text())


def get_no_redirect(url: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    response = httpx.get(url, headers=headers, follow_redirects=False)
    return response.status_code, dict(response.headers), response.content
