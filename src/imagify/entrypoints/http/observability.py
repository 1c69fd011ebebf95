"""Request ids, one JSON access-log line per request, and Prometheus metrics at /metrics.

The middleware wraps the whole ASGI handler of the app, outside routing, so that 404s,
405s and every error answer get a request id, a log line and a count too (Litestar's own
`middleware=` runs only inside a matched route). Being there, it also answers HEAD as GET
without the body, and makes `Cache-Control: no-store` the default of every answer.
"""

from __future__ import annotations

import logging
import os
import random
import re
import time
from contextvars import ContextVar
from typing import Any

from litestar import Litestar, Response, get
from litestar.datastructures import State
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

from imagify import logs
from imagify.domain.model import RenderedThumbnail
from imagify.domain.ports import Renderer

access_log = logging.getLogger("imagify.access")

REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
UNMATCHED = "<unmatched>"
THUMBNAIL_ROUTE = "/api/v1/images/{image_id}/thumbnails/{height}"
# Paths whose segments are secrets: logged as their route template, never as sent.
SECRET_PATHS = {"/l/": "/l/{token}"}
METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}
MAX_USER_AGENT = 200
MAX_PATH = 300
NO_STORE = (b"cache-control", b"no-store")  # for answers that set no Cache-Control of their own
HEAD = "imagify.head"  # in the scope of a HEAD request, which the app sees as a GET
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
RENDER_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
# Logged and counted for a client that went away before its answer started (nginx's code):
# nobody received what the app then sent, and it is not the server's error.
CLIENT_GONE = 499

# Renders done while serving the current request (a list shared with worker threads).
_renders: ContextVar[list[float] | None] = ContextVar("imagify_renders", default=None)
# Whether the current request's client disconnected before its answer started (one flag).
_gone: ContextVar[list[bool] | None] = ContextVar("imagify_client_gone", default=None)


def client_gone() -> bool:
    """Whether the client of the request being served went away before its answer."""
    gone = _gone.get()
    return bool(gone and gone[0])


class Metrics:
    """The app's Prometheus metrics, in a registry of its own (one per container)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "imagify_http_requests", "HTTP requests by route template, method and status",
            ["route", "method", "status"], registry=r,
        )
        self.latency = Histogram(
            "imagify_http_request_duration_seconds", "Time to answer an HTTP request, by route",
            ["route", "method"], buckets=LATENCY_BUCKETS, registry=r,
        )
        self.renders = Counter(
            "imagify_thumbnail_renders", "Thumbnail renders, by outcome (ok or error)", ["outcome"], registry=r
        )
        self.render_time = Histogram(
            "imagify_thumbnail_render_duration_seconds", "Time to render and store one thumbnail",
            buckets=RENDER_BUCKETS, registry=r,
        )
        self.thumbnail_cache = Counter(
            "imagify_thumbnail_cache",
            "Thumbnails served: hit (already stored) or miss (rendered for this request)",
            ["result"], registry=r,
        )

    def exposition(self) -> bytes:
        """The text exposition; across all workers when PROMETHEUS_MULTIPROC_DIR is set."""
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        return generate_latest(self.registry)


class MeteredRenderer:
    """A Renderer that counts and times renders (a decorator around the real one)."""

    def __init__(self, inner: Renderer, metrics: Metrics) -> None:
        self._inner = inner
        self._metrics = metrics

    def render(self, source_key: str, target_key: str, height: int, format: str | None = None) -> RenderedThumbnail:
        started = time.perf_counter()
        try:
            made = self._inner.render(source_key, target_key, height, format)
        except BaseException:
            self._metrics.renders.labels("error").inc()
            raise
        elapsed = time.perf_counter() - started
        self._metrics.renders.labels("ok").inc()
        self._metrics.render_time.observe(elapsed)
        renders = _renders.get()
        if renders is not None:
            renders.append(elapsed)
        return made

    def close(self) -> None:
        getattr(self._inner, "close", lambda: None)()


def scope_header(scope: Scope, name: bytes) -> str | None:
    """A request header by its lower-case name, straight from the ASGI scope (the first
    one sent): cheaper than building Litestar's Headers when one or two are wanted."""
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")  # type: ignore[no-any-return]
    return None


# Request ids correlate log lines and are no secret (a caller may choose its own): they come
# from a per-process generator seeded from the OS, not from a getrandom() call per request,
# which cost warm requests 9% of their time. Reseeded in a forked child, so two workers
# never share a sequence.
_request_ids = random.Random()
os.register_at_fork(after_in_child=_request_ids.seed)


def request_id_of(scope: Scope) -> str:
    """The caller's X-Request-ID when it is sane, else a new random one."""
    text = scope_header(scope, b"x-request-id")
    if text is not None and REQUEST_ID.fullmatch(text):
        return text
    return f"{_request_ids.getrandbits(128):032x}"


def is_head(scope: Scope) -> bool:
    """True for a HEAD request (routed as a GET): a handler may skip producing the body."""
    return HEAD in scope


def with_defaults(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    for name, _ in headers:
        if name.lower() == b"cache-control":
            return headers
    return [*headers, NO_STORE]


def loggable_path(path: str, route: str) -> str:
    for prefix, template in SECRET_PATHS.items():
        if path.startswith(prefix) or route.startswith(prefix):
            return template
    return path[:MAX_PATH]



class ObservabilityMiddleware:
    """Pure ASGI: request id in and out, one access-log line and the metrics per request;
    HEAD answered as GET without the body, and no-store unless the answer says otherwise."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self._app = app
        self._metrics = metrics
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}  # labelled metrics
        self._cache_hit = metrics.thumbnail_cache.labels("hit")
        self._cache_miss = metrics.thumbnail_cache.labels("miss")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = request_id_of(scope)
        header = (b"x-request-id", request_id.encode())
        path, method = scope["path"], scope["method"]
        status = 500  # what the client gets if the app fails before answering
        renders: list[float] = []
        head = method == "HEAD"
        if head:  # the same status and headers as a GET (Content-Length too), no body.
            # A copy: the server's own scope still says HEAD, so it expects no body either.
            scope = {**scope, "method": "GET", HEAD: True}
        gone, answered = [False], [False]

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status, answered[0] = message["status"], True
                message["headers"] = [*with_defaults(message.get("headers", [])), header]
            elif head and message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        async def receive_watched() -> Message:
            message = await receive()
            if message["type"] == "http.disconnect" and not answered[0]:
                gone[0] = True
            return message  # type: ignore[no-any-return]

        id_token, renders_token = logs.request_id.set(request_id), _renders.set(renders)
        gone_token = _gone.set(gone)
        try:
            await self._app(scope, receive_watched, send_with_id)
        finally:
            _renders.reset(renders_token)
            _gone.reset(gone_token)
            if gone[0]:
                status = CLIENT_GONE
            route = scope.get("path_template") or UNMATCHED
            elapsed = time.perf_counter() - started
            self._record(scope, method, route, path, status, elapsed, renders)  # stamped with the id
            logs.request_id.reset(id_token)

    def _record(
        self,
        scope: Scope,
        method: str,
        route: str,
        path: str,
        status: int,
        elapsed: float,
        renders: list[float],
    ) -> None:
        label = method if method in METHODS else "OTHER"
        key = (route, label, status)  # finite: route templates, known methods, status codes
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (
                self._metrics.requests.labels(route, label, str(status)),
                self._metrics.latency.labels(route, label),
            )
        children[0].inc()
        children[1].observe(elapsed)
        if route == THUMBNAIL_ROUTE and status in (200, 304):
            (self._cache_miss if renders else self._cache_hit).inc()
        level = logging.WARNING if status >= 500 else logging.INFO
        if not access_log.isEnabledFor(level):
            return
        client = scope.get("client")
        fields = {
            "method": method[:16],
            "route": route,
            "path": loggable_path(path, route),
            "status": status,
            "duration_ms": round(elapsed * 1000, 2),
            "user_agent": (scope_header(scope, b"user-agent") or "")[:MAX_USER_AGENT],
            "client": client[0] if client else None,
        }
        # makeRecord + handle is Logger.log without its stack walk for the caller's file
        # and line (always this line): a tenth of a cached request's cost otherwise.
        access_log.handle(access_log.makeRecord(
            access_log.name, level, "", 0, "request", (), None, extra=fields
        ))  # fmt: skip


@get("/metrics", include_in_schema=False, sync_to_thread=False)
def metrics_endpoint(state: State) -> Response[bytes]:
    """Prometheus text exposition of this process's metrics."""
    body = state.container.metrics().exposition()
    # Litestar appends "; charset=utf-8" to text/* itself: name it once, not twice.
    return Response(body, media_type=CONTENT_TYPE_LATEST.replace("; charset=utf-8", ""))


def instrument(app: Litestar, metrics: Metrics) -> Litestar:
    """Wrap the app's whole ASGI handler (routing included) in the observability middleware."""
    logs.stamp_request_ids()
    app.asgi_handler = ObservabilityMiddleware(app.asgi_handler, metrics)
    return app

