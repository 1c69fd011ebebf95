"""CPU per request inside one process: the ASGI app called directly, no sockets, no wrk.

Run: .venv/bin/python -m bench.asgi [--cloud] [--requests N]

Not a target of issue 6 (those are measured over HTTP by bench.run): a steadier
instrument for comparing changes to the hot path, since it leaves out the kernel, the
load generator and the other processes on the machine. Prints microseconds of CPU per
request (best of several batches) for the warm routes, and the same for the bare app.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import tempfile
import time
from pathlib import Path

from bench.fixtures import deployment, encode, photo_like, seed

BATCHES = 15


def scope(path: str, headers: dict[str, str]) -> dict[str, object]:
    raw_path, _, query = path.partition("?")
    return {
        "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
        "method": "GET", "scheme": "http", "path": raw_path, "raw_path": raw_path.encode(),
        "query_string": query.encode(), "root_path": "",
        "headers": [(b"host", b"127.0.0.1:8000"), (b"user-agent", b"bench"),
                    *((k.lower().encode(), v.encode()) for k, v in headers.items())],
        "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000), "state": {},
    }  # fmt: skip


async def call(app, path: str, headers: dict[str, str]) -> int:  # type: ignore[no-untyped-def]
    status = 0

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, object]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]  # type: ignore[assignment]

    await app(scope(path, headers), receive, send)
    return status


async def per_request(app, path: str, headers: dict[str, str], n: int, concurrency: int = 16) -> float:  # type: ignore[no-untyped-def]
    assert await call(app, path, headers) == 200, path
    best = float("inf")
    for _ in range(BATCHES):
        started = time.process_time()

        async def client() -> None:
            for _ in range(n // concurrency):
                await call(app, path, headers)

        await asyncio.gather(*(client() for _ in range(concurrency)))
        best = min(best, (time.process_time() - started) / (n // concurrency * concurrency))
    return best * 1e6


async def lifespan(app, event: str) -> None:  # type: ignore[no-untyped-def]
    sent = False

    async def receive() -> dict[str, str]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": f"lifespan.{event}"}
        await asyncio.sleep(3600)
        return {}

    done = asyncio.Event()

    async def send(message: dict[str, str]) -> None:
        done.set()

    task = asyncio.ensure_future(app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, receive, send))
    await done.wait()
    task.cancel()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cloud", action="store_true")
    parser.add_argument("--requests", type=int, default=4000)
    args = parser.parse_args()
    import uvloop

    photo = encode(photo_like((1600, 1200)), "JPEG")
    with tempfile.TemporaryDirectory(prefix="imagify-asgi-") as tmp, deployment(
        "cloud" if args.cloud else "embedded", Path(tmp)
    ) as dep:
        seed(dep, 21, photo, photo)
        os.environ.update(dep.env)
        from imagify.entrypoints.http.app import create_app_from_env

        image = dep.image_ids[-1]
        paths = {
            "thumbnail": f"/api/v1/images/{image}/thumbnails/200",
            "list": "/api/v1/images?limit=20",
            "link": f"/l/{dep.link_token}",
            "me": "/api/v1/me",
        }

        async def run() -> None:
            app = create_app_from_env()
            # The access log goes to a file as under a process manager, not to this terminal.
            handler = logging.getLogger("imagify").handlers[0]
            handler.setStream(open(Path(tmp) / "server.log", "w"))  # type: ignore[attr-defined]
            await lifespan(app, "startup")
            for name, path in paths.items():
                headers = {} if name == "link" else dep.headers
                micros = await per_request(app, path, headers, args.requests)
                print(f"{dep.name:<9} {name:<10} {micros:7.1f} us CPU per request", flush=True)

        uvloop.run(run())


if __name__ == "__main__":
    main()
