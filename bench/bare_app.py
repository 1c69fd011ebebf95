"""The floor for the HTTP targets: a bare Litestar app serving the same bytes from memory.

Run by the benchmark as `python -m bench.bare_app --port P --workers N`, with the same
uvicorn settings as `imagify serve`. BENCH_BARE_DIR holds thumbnail.bin, list.json and
original.bin (with their content types in *.type), read once at start.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from litestar import Litestar, Response, get


def create_app() -> Litestar:
    folder = Path(os.environ["BENCH_BARE_DIR"])
    blobs = {
        name: (folder.joinpath(name).read_bytes(), folder.joinpath(name + ".type").read_text())
        for name in ("thumbnail.bin", "list.json", "original.bin")
    }

    def route(path: str, name: str):  # type: ignore[no-untyped-def]
        data, media_type = blobs[name]

        @get(path, name=name)
        async def handler() -> Response:
            return Response(data, media_type=media_type)

        return handler

    return Litestar(
        route_handlers=[
            route("/bytes/thumbnail", "thumbnail.bin"),
            route("/json/list", "list.json"),
            route("/bytes/original", "original.bin"),
        ],
        openapi_config=None,
    )


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    # The settings of `imagify serve` (src/imagify/entrypoints/cli/__init__.py).
    uvicorn.run("bench.bare_app:create_app", factory=True, host="127.0.0.1", port=args.port,
                workers=args.workers, log_level="info")  # fmt: skip


if __name__ == "__main__":
    main()
