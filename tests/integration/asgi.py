"""Drive the ASGI app by hand: header bytes exactly as sent (a real server passes them
through as latin-1, the test client re-encodes them as UTF-8) and a body that can stall."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

import anyio


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    received: int = 0  # body bytes the app read
    messages: list[dict] = field(default_factory=list)

    def json(self) -> dict:
        return json.loads(self.body)


def call(
    app,
    method: str,
    path: str,
    headers: Iterable[tuple[bytes, bytes]] = (),
    chunks: Iterable[bytes] = (),
    stall: Callable[[], Awaitable[None]] | None = None,
    query: bytes = b"",
) -> Answer:
    """One request through `app`; after the last chunk, `stall` is awaited (a client gone quiet)."""
    pending = list(chunks)
    received = 0

    async def receive() -> dict:
        nonlocal received
        if pending:
            chunk = pending.pop(0)
            received += len(chunk)
            return {"type": "http.request", "body": chunk, "more_body": bool(pending) or stall is not None}
        if stall is not None:
            await stall()
        return {"type": "http.request", "body": b"", "more_body": False}

    messages: list[dict] = []

    async def send(message: dict) -> None:
        messages.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
        "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "", "query_string": query,
        "headers": [(b"host", b"testserver.local"), *headers], "client": ("127.0.0.1", 1234),
        "server": ("testserver.local", 80), "state": {},
    }
    anyio.run(app, scope, receive, send)
    start = next(m for m in messages if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.response.body")
    names = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in start["headers"]}
    return Answer(start["status"], names, body, received, messages)
