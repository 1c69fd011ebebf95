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
from pathlib import Path

import httpx
from PIL import Image

from bench.common import SERVER_GROUPS, Options, Report, Target, wrk
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

    url = f"{base}/api/v1/images?limit={PAGE}"
    quiet = wrk(url, options, dep.headers, connections=4)
    stop = threading.Event()

    def storm() -> None:
        while not stop.is_set():
            _uploads(base, dep, files, CONCURRENT)

    thread = threading.Thread(target=storm, daemon=True)
    thread.start()
    time.sleep(0.5)
    busy = wrk(url, Options(duration=options.duration, warmup=1), dep.headers, connections=4)
    stop.set()
    thread.join()
    ratio = busy.p99_ms / quiet.p99_ms
    report.figure(dep.name, "warm GET /api/v1/images, 4 connections, idle", quiet.text())
    report.figure(dep.name, f"the same during a storm of hostile uploads ({CONCURRENT} at a time)", busy.text())
    report.target(Target(
        "API p99 during a storm of hostile uploads", "the same API idle", "<= 3x",
        ratio, ratio <= 3, f"p99 {busy.p99_ms:.2f} ms vs {quiet.p99_ms:.2f} ms",
    ))  # fmt: skip
