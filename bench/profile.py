"""Profile `imagify serve` under wrk load with py-spy, and print where the time goes.

Run: .venv/bin/python -m bench.profile [thumbnail|list|link|original|create-link ...] [--cloud] [--seconds N]
(`--idle` keeps the threads that wait, e.g. for SQLite's write lock: what a tail is made of).

Seeds a deployment like the HTTP benchmark, starts the server, puts wrk on one endpoint
and samples the server with `py-spy record --format raw` (collapsed stacks, GIL holder and
idle threads excluded). Prints the top frames by inclusive and by own samples, and keeps
the collapsed stacks under var/bench-profiles/ for a flame graph.
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from bench.common import IMAGIFY, ROOT, SERVER_GROUPS, Options, get, server, wrk
from bench.fixtures import deployment, encode, photo_like, seed
from bench.writes import post_script

ENDPOINTS = ("thumbnail", "list", "link", "original", "create-link")
POSTS = {"create-link": (b'{"seconds": 300}', "application/json")}
# The virtualenv's own py-spy (the bench extra) before any on PATH.
PY_SPY = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
# Leaf frames of threads waiting for work: the worker pool's queue, the event loop's poll.
IDLE = ("_worker (concurrent/futures/thread.py:81)", "Runner.run (asyncio/runners.py:118)",
        "Thread.wait (threading.py:327)", "Condition.wait (threading.py:327)")


def urls(base: str, dep) -> dict[str, str]:  # type: ignore[no-untyped-def]
    image = dep.image_ids[-1]
    return {
        "thumbnail": f"{base}/api/v1/images/{image}/thumbnails/200",
        "list": f"{base}/api/v1/images?limit=20",
        "link": f"{base}/l/{dep.link_token}",
        "original": f"{base}/api/v1/images/{image}/original",
        "create-link": f"{base}/api/v1/images/{image}/expiring-links",
    }


def summarize(raw: Path, top: int = 40) -> str:
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or stack.endswith(IDLE):
            continue
        n = int(count)
        frames = stack.split(";")
        total += n
        for frame in set(frames):
            inclusive[frame] += n
        own[frames[-1]] += n
    lines = [f"{total} samples"]
    lines.append("-- inclusive --")
    lines += [f"{100 * n / total:5.1f}%  {f}" for f, n in inclusive.most_common(top)]
    lines.append("-- own --")
    lines += [f"{100 * n / total:5.1f}%  {f}" for f, n in own.most_common(top)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("endpoints", nargs="*", default=list(ENDPOINTS))
    parser.add_argument("--cloud", action="store_true")
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--idle", action="store_true", help="keep waiting threads in the samples")
    args = parser.parse_args()
    if not PY_SPY:
        sys.exit("py-spy is not installed: .venv/bin/pip install py-spy (or make bench)")
    out_dir = ROOT / "var" / "bench-profiles"
    out_dir.mkdir(parents=True, exist_ok=True)
    photo = encode(photo_like((1600, 1200)), "JPEG")
    with tempfile.TemporaryDirectory(prefix="imagify-profile-") as tmp, deployment(
        "cloud" if args.cloud else "embedded", Path(tmp)
    ) as dep:
        seed(dep, 21, photo, photo)
        cmd = [IMAGIFY, "serve", "--host", "127.0.0.1", "--port", "{port}", "--workers", "1"]
        with server(cmd, dep.env, "/health/live", Path(tmp) / "server.log") as base:
            pid = SERVER_GROUPS[base]  # one worker: `imagify serve` serves in its own process
            for name in args.endpoints:
                url = urls(base, dep)[name]
                scripts = None
                if name in POSTS:
                    scripts = (post_script(Path(tmp) / f"{name}.lua", *POSTS[name]),) * 2
                else:
                    status, _, _ = get(url, dep.headers)  # renders the thumbnail once
                    assert status == 200, (name, status)
                raw = out_dir / f"{dep.name}-{name}.txt"
                load = threading.Thread(
                    target=wrk, args=(url, Options(duration=args.seconds + 2, warmup=1), dep.headers),
                    kwargs={"scripts": scripts},
                )
                load.start()
                subprocess.run(
                    [PY_SPY, "record", "--pid", str(pid), "--duration", str(args.seconds),
                     "--format", "raw", "--rate", "250", "--output", str(raw), *(["--idle"] if args.idle else [])],
                    check=True, capture_output=True,
                )  # fmt: skip
                load.join()
                print(f"==== {dep.name} {name}: {url}\n{summarize(raw)}\n", flush=True)


if __name__ == "__main__":
    main()
