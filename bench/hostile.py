"""Hostile uploads against `imagify serve`: peak server memory, and the API's p99 meanwhile.

The payloads are the test suite's hostile corpus (scan, frame and text bombs, size lies) and a
legitimate 7000x7000 lossless WebP of 1 colour (a few KB that a full decode would expand to
196 MB). The server's memory is the sum over all its processes (the API and its decode
workers), sampled every 20 ms.
"""

from __future__ import annotations

import io
import itertools
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
from PIL import Image

from bench.common import SERVER_GROUPS, Options, Report, Target
from bench.fixtures import Deployment
from tests import hostile_images

CONCURRENT = 8
PAGE = 20


def payloads() -> list[tuple[str, bytes]]:
    solid = io.BytesIO()
    Image.new("RGB", (7000, 7000), (10, 20, 30)).save(solid, "WEBP", lossless=True, method=0)
    chosen = ("jpeg-scan-bomb", "jpeg-size-lie", "png-ztxt-bomb", "png-text-flood",
              "png-decompression-bomb", "webp-frame-bomb", "apng-frame-bomb")  # fmt: skip
    corpus = [(h.name, h.data()) for h in hostile_images.CORPUS if h.name in chosen]
    return [*corpus, ("webp-solid-7000", solid.getvalue()), ("webp-vp8l-lie", hostile_images.lying_webp())]


def server_rss(base: str) -> int:
    """Resident bytes of every process of the server at `base`."""
    group, total = SERVER_GROUPS[base], 0
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == group:
                total += int((proc / "statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError):
            continue  # exited meanwhile
    return total


class Sampler(threading.Thread):
    def __init__(self, base: str) -> None:
        super().__init__(daemon=True)
        self.base, self.peak, self.done = base, 0, threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            self.peak = max(self.peak, server_rss(self.base))
            time.sleep(0.02)


def _uploads(base: str, dep: Deployment, files: list[tuple[str, bytes]], count: int) -> list[int]:
    def send(item: tuple[str, bytes]) -> int:
        with httpx.Client(base_url=base, headers=dep.headers, timeout=120) as client:
            return client.post("/api/v1/images", files={"file": (item[0], item[1], "application/octet-stream")}).status_code

    with ThreadPoolExecutor(CONCURRENT) as pool:
        return list(pool.map(send, itertools.islice(itertools.cycle(files), count)))


def run(report: Report, options: Options, dep: Deployment, base: str) -> None:
    files = payloads()
    _uploads(base, dep, files[:1], 1)  # the decode workers are up
    idle = server_rss(base)
    sampler = Sampler(base)
    sampler.start()
    statuses = _uploads(base, dep, files, CONCURRENT * 2)
    sampler.done.set()
    sampler.join()
    assert all(s in (201, 400, 413) for s in statuses), statuses
    budget = int(dep.env.get("IMAGIFY_DECODE_MEMORY_MB", "1024")) * 2**20
    grew = sampler.peak - idle
    report.figure(dep.name, f"server memory (API + decode workers) during {CONCURRENT} concurrent hostile uploads",
                  f"peak {sampler.peak / 2**20:.0f} MiB, idle {idle / 2**20:.0f} MiB",
                  f"{len(statuses)} uploads of {len(files)} kinds: " +
                  ", ".join(f"{s}: {statuses.count(s)}" for s in sorted(set(statuses))))  # fmt: skip
    report.target(Target(
        f"peak server memory, {CONCURRENT} concurrent hostile uploads", "idle server + the decode budget",
        "<= 1.0x", grew / budget, grew <= budget, f"+{grew / 2**20:.0f} MiB vs {budget / 2**20:.0f} MiB budget",
    ))  # fmt: skip

    url = f"/api/v1/images?limit={PAGE}"
    quiet = latencies(base, url, dep.headers, options.duration)
    stop = threading.Event()

    def storm() -> None:
        while not stop.is_set():
            _uploads(base, dep, files, CONCURRENT)

    thread = threading.Thread(target=storm, daemon=True)
    thread.start()
    time.sleep(0.5)
    busy = latencies(base, url, dep.headers, options.duration)
    stop.set()
    thread.join()
    ratio = busy.p99_ms / quiet.p99_ms
    report.figure(dep.name, f"GET /api/v1/images, {CLIENTS} clients, idle", busy_text(quiet))
    report.figure(dep.name, f"the same during a storm of hostile uploads ({CONCURRENT} at a time)", busy_text(busy))
    report.target(Target(
        "API p99 during a storm of hostile uploads", "the same API idle", "<= 3x",
        ratio, ratio <= 3, f"p99 {busy.p99_ms:.1f} ms vs {quiet.p99_ms:.1f} ms",
    ))  # fmt: skip


CLIENTS = 4


@dataclass
class Latency:
    requests: int
    p50_ms: float
    p99_ms: float


def busy_text(load: Latency) -> str:
    return f"p50 {load.p50_ms:.1f} ms, p99 {load.p99_ms:.1f} ms ({load.requests} requests)"


def latencies(base: str, path: str, headers: dict[str, str], seconds: float) -> Latency:
    """CLIENTS keep-alive clients asking in a loop for `seconds`; every answer must be 200.
    (Not wrk: the storm's own clients would share its measurement.)"""
    times: list[float] = []

    def client() -> None:
        with httpx.Client(base_url=base, headers=headers, timeout=60) as http:
            end = time.perf_counter() + seconds
            while (started := time.perf_counter()) < end:
                assert http.get(path).status_code == 200
                times.append(time.perf_counter() - started)

    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(lambda _: client(), range(CLIENTS)))
    times.sort()
    return Latency(len(times), times[len(times) // 2] * 1000, times[int(len(times) * 0.99)] * 1000)


def main() -> None:
    """Just these rows: `python -m bench.hostile` (embedded mode)."""
    import tempfile

    from bench.common import server
    from bench.fixtures import deployment, encode, photo_like, seed
    from bench.http import serve_args

    report, options = Report(), Options()
    with tempfile.TemporaryDirectory() as tmp, deployment("embedded", Path(tmp)) as dep:
        photo = encode(photo_like((800, 600)), "JPEG")
        seed(dep, PAGE + 1, photo, photo)
        with server(serve_args(1), dep.env, "/health/live", Path(tmp) / "server.log") as base:
            run(report, options, dep, base)


if __name__ == "__main__":
    main()
