"""Request ids, the one JSON access-log line per request, and the Prometheus metrics."""

from __future__ import annotations

import json
import logging
import os
import re

import pytest
from dependency_injector import providers
from prometheus_client.parser import text_string_to_metric_families

from imagify.domain.errors import RenderFailed
from imagify.domain.services.images import ImageService
from imagify.entrypoints.http.observability import request_id_of
from imagify.logs import JsonFormatter
from tests.integration.conftest import blob_files, image_bytes, upload

GENERATED = re.compile(r"[0-9a-f]{32}")
THUMBNAIL_ROUTE = "/api/v1/images/{image_id}/thumbnails/{height}"


class AccessLog(logging.Handler):
    """The imagify.access lines, as the JSON formatter writes them."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[dict] = []
        self.setFormatter(JsonFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


@pytest.fixture
def access_log():
    handler = AccessLog()
    logger = logging.getLogger("imagify.access")
    logger.addHandler(handler)
    level, logger.level = logger.level, logging.INFO
    yield handler.lines
    logger.removeHandler(handler)
    logger.setLevel(level)


def metrics(client) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/health/live", 200), ("GET", "/api/v1/me", 401), ("GET", "/no/such/route", 404),
     ("DELETE", "/health/live", 405), ("POST", "/api/v1/auth/token", 400)],
)
def test_every_answer_carries_a_generated_request_id(client, method, path, status):
    first, second = (client.request(method, path) for _ in range(2))
    assert first.status_code == status
    assert GENERATED.fullmatch(first.headers["X-Request-ID"])
    assert first.headers["X-Request-ID"] != second.headers["X-Request-ID"]


def test_a_forked_worker_never_repeats_its_parents_request_ids():
    # uvicorn's workers and any forked helper would otherwise draw the same sequence.
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next id, to the parent
        os.write(write, request_id_of({"headers": []}).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    childs = os.read(read, 64).decode()
    os.close(read)
    parents = request_id_of({"headers": []})
    assert GENERATED.fullmatch(childs) and GENERATED.fullmatch(parents)
    assert childs != parents


@pytest.mark.parametrize(
    ("sent", "kept"),
    [("abc-123_X.y", True), ("a" * 128, True), ("a" * 129, False), ("", False), ("has space", False),
     ("new\\nline", False), ("<script>", False), ("ünï", False)],
)
def test_a_sane_incoming_request_id_is_kept_and_anything_else_replaced(client, sent, kept):
    response = client.get("/health/live", headers={"X-Request-ID": sent.encode("utf-8")})
    returned = response.headers["X-Request-ID"]
    assert (returned == sent) if kept else GENERATED.fullmatch(returned)


def test_one_json_access_line_per_request_with_the_route_template(client, make_user, access_log):
    ann = make_user("ann", "enterprise")
    image_id = upload(client, ann).json()["id"]
    access_log.clear()
    headers = {**ann.headers, "X-Request-ID": "req-42", "User-Agent": "curl/8 " + "x" * 500}
    response = client.get(f"/api/v1/images/{image_id}/thumbnails/200", headers=headers, params={"token": "s3cret"})
    assert response.status_code == 200 and response.headers["X-Request-ID"] == "req-42"
    [line] = access_log
    assert line["logger"] == "imagify.access" and line["level"] == "info"
    assert line["request_id"] == "req-42"
    assert (line["method"], line["route"], line["status"]) == ("GET", THUMBNAIL_ROUTE, 200)
    assert line["path"] == f"/api/v1/images/{image_id}/thumbnails/200"  # no query string
    assert isinstance(line["duration_ms"], float) and 0 < line["duration_ms"] < 60_000
    assert line["user_agent"].startswith("curl/8 ") and len(line["user_agent"]) == 200
    text = json.dumps(line)
    assert "s3cret" not in text and "Bearer" not in text and "token=" not in text


def test_link_paths_are_logged_as_their_template_never_with_the_token(client, make_user, access_log):
    ann = make_user("ann", "enterprise")
    image_id = upload(client, ann).json()["id"]
    token = client.post(f"/api/v1/images/{image_id}/expiring-links", json={"seconds": 300},
                        headers=ann.headers).json()["token"]
    access_log.clear()
    for path, status in ((f"/l/{token}", 200), (f"/l/{token}x", 404), (f"/l/{token}/deeper", 404)):
        assert client.get(path).status_code == status
    assert [(line["path"], line["status"]) for line in access_log] == [
        ("/l/{token}", 200), ("/l/{token}", 404), ("/l/{token}", 404)
    ]
    assert token not in json.dumps(access_log)


def test_lines_logged_while_serving_a_request_carry_its_id(client, make_user, caplog):
    ann = make_user("ann", "basic")
    image_id = upload(client, ann).json()["id"]
    caplog.set_level(logging.INFO)
    client.get(f"/api/v1/images/{image_id}/thumbnails/200", headers={**ann.headers, "X-Request-ID": "render-1"})
    [rendered] = [r for r in caplog.records if r.getMessage() == "thumbnail rendered"]
    assert json.loads(JsonFormatter().format(rendered))["request_id"] == "render-1"


class FailingImages(ImageService):
    def __init__(self) -> None:  # nothing to wire: it only fails
        pass

    def list(self, owner, cursor, limit):
        raise RuntimeError("a bug")


def test_a_crash_still_gets_a_request_id_an_access_line_and_a_count(client, make_user, container, access_log):
    ann = make_user("ann", "basic")
    container.images.override(providers.Object(FailingImages()))
    response = client.get("/api/v1/images", headers={**ann.headers, "X-Request-ID": "crash-1"})
    container.images.reset_override()
    assert response.status_code == 500 and response.headers["X-Request-ID"] == "crash-1"
    [line] = [line for line in access_log if line["request_id"] == "crash-1"]
    assert (line["status"], line["level"], line["route"]) == (500, "warning", "/api/v1/images")
    assert value(metrics(client), "imagify_http_requests_total", route="/api/v1/images", method="GET",
                 status="500") == 1


def test_metrics_count_requests_by_route_method_and_status_with_latency(client, make_user):
    ann = make_user("ann", "basic")
    for _ in range(3):
        client.get("/api/v1/me", headers=ann.headers)
    client.get("/api/v1/me")
    client.get("/api/v1/images/abc", headers=ann.headers)
    client.get("/no/such/route")
    client.request("FROBNICATE", "/api/v1/me")
    samples = metrics(client)
    counted = {("/api/v1/me", "GET", "200"): 3, ("/api/v1/me", "GET", "401"): 1,
               ("/api/v1/images/{image_id}", "GET", "404"): 1, ("<unmatched>", "GET", "404"): 1,
               ("<unmatched>", "OTHER", "405"): 1}
    for (route, method, status), count in counted.items():
        assert value(samples, "imagify_http_requests_total", route=route, method=method, status=status) == count
    assert value(samples, "imagify_http_request_duration_seconds_count", route="/api/v1/me", method="GET") == 4
    assert value(samples, "imagify_http_request_duration_seconds_bucket", route="/api/v1/me", method="GET",
                 le="+Inf") == 4
    assert not any("/api/v1/images/abc" in str(key) for key in samples)  # templates only


def test_metrics_count_renders_render_time_and_thumbnail_cache_hits_and_misses(client, make_user):
    ann = make_user("ann", "premium")
    image_id = upload(client, ann).json()["id"]
    for height in (200, 200, 200, 400):
        assert client.get(f"/api/v1/images/{image_id}/thumbnails/{height}", headers=ann.headers).status_code == 200
    etag = client.get(f"/api/v1/images/{image_id}/thumbnails/400", headers=ann.headers).headers["ETag"]
    client.get(f"/api/v1/images/{image_id}/thumbnails/400", headers={**ann.headers, "If-None-Match": etag})
    client.get(f"/api/v1/images/{image_id}/thumbnails/800", headers=ann.headers)  # 403: not counted
    samples = metrics(client)
    assert value(samples, "imagify_thumbnail_renders_total", outcome="ok") == 2
    assert value(samples, "imagify_thumbnail_render_duration_seconds_count") == 2
    assert value(samples, "imagify_thumbnail_render_duration_seconds_sum") > 0
    assert value(samples, "imagify_thumbnail_cache_total", result="miss") == 2
    assert value(samples, "imagify_thumbnail_cache_total", result="hit") == 4


class ExplodingRenderer:
    def render(self, source_key, target_key, height, format=None):
        raise RenderFailed("the renderer crashed")


def test_a_failed_render_is_counted_as_an_error(client, make_user, container):
    container.renderer.override(providers.Object(ExplodingRenderer()))  # before the image service exists
    ann = make_user("ann", "basic")
    image_id = upload(client, ann).json()["id"]
    assert client.get(f"/api/v1/images/{image_id}/thumbnails/200", headers=ann.headers).status_code == 502
    samples = metrics(client)
    assert value(samples, "imagify_thumbnail_renders_total", outcome="error") == 1
    assert value(samples, "imagify_thumbnail_cache_total", result="miss") == 0


def test_metrics_are_left_out_of_the_openapi_document(client):
    assert "/metrics" not in client.get("/schema/openapi.json").json()["paths"]


def test_with_prometheus_multiproc_dir_metrics_add_up_across_worker_processes(tmp_path):
    """`imagify serve --workers N`: each worker writes its samples to the shared folder, and
    whichever worker answers /metrics reports the sum (prometheus_client reads the variable
    at import, hence the fresh interpreters)."""
    import os
    import subprocess
    import sys

    script = (
        "from imagify.entrypoints.http.observability import Metrics\n"
        "m = Metrics()\n"
        "m.requests.labels('/api/v1/me', 'GET', '200').inc(3)\n"
        "print(m.exposition().decode())\n"
    )
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    outputs = [
        subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True).stdout
        for _ in range(2)
    ]
    families = {s.name: s.value for f in text_string_to_metric_families(outputs[-1]) for s in f.samples
                if s.name == "imagify_http_requests_total"}
    assert families == {"imagify_http_requests_total": 6.0}


def test_metrics_name_their_content_type_once(client):
    response = client.get("/metrics")
    content_type = response.headers["content-type"]
    assert content_type.startswith("text/plain; version=") and content_type.count("charset") == 1, content_type



def asgi_call(client, method: str, path: str, headers: dict[str, str], body_parts: list[bytes]) -> list[dict]:
    """Call the app as a server would for a client that sends `body_parts`, then disconnects."""
    messages = [{"type": "http.request", "body": part, "more_body": True} for part in body_parts]
    answers: list[dict] = []
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
        "client": ("127.0.0.1", 1), "server": ("testserver.local", 80),
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }  # fmt: skip

    async def receive():
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message):
        answers.append(message)

    with client.portal() as portal:
        portal.call(client.app, scope, receive, send)
    return answers


LINKS_ROUTE = "/api/v1/images/{image_id}/expiring-links"


def test_a_client_gone_before_its_link_body_is_logged_and_counted_as_499_without_a_traceback(
    client, make_user, access_log, caplog
):
    ann = make_user("ann", "enterprise")
    image_id = upload(client, ann).json()["id"]
    caplog.set_level(logging.INFO)
    access_log.clear()
    headers = {**ann.headers, "Content-Type": "application/json", "Content-Length": "16"}
    asgi_call(client, "POST", f"/api/v1/images/{image_id}/expiring-links", headers, [])
    [line] = access_log
    assert (line["status"], line["level"], line["route"]) == (499, "info", LINKS_ROUTE)
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.WARNING]
    samples = metrics(client)
    assert value(samples, "imagify_http_requests_total", route=LINKS_ROUTE, method="POST", status="499") == 1
    assert value(samples, "imagify_http_requests_total", route=LINKS_ROUTE, method="POST", status="500") == 0


def test_an_upload_cut_off_midway_is_a_499_and_stores_nothing(client, make_user, settings, access_log, caplog):
    ann = make_user("ann", "enterprise")
    boundary = "cut-off"
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.jpg"\r\n'
            f"Content-Type: image/jpeg\r\n\r\n").encode()  # fmt: skip
    headers = {**ann.headers, "Content-Type": f"multipart/form-data; boundary={boundary}", "Content-Length": "900000"}
    caplog.set_level(logging.INFO)
    access_log.clear()
    asgi_call(client, "POST", "/api/v1/images", headers, [head, image_bytes()[:5000]])
    [line] = access_log
    assert (line["status"], line["level"]) == (499, "info")
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.WARNING]
    assert client.get("/api/v1/images", headers=ann.headers).json()["items"] == []
    assert blob_files(settings) == []
