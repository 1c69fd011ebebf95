"""HTTP: health checks, the offline docs page, the OpenAPI document, and the error shape."""

from __future__ import annotations

import re

import pytest
from litestar.testing import TestClient

from imagify.entrypoints.container import build_container, shutdown
from imagify.entrypoints.http.app import create_app
from tests.integration.conftest import assert_error, embedded_settings, running_app

CONTRACT = {
    "/api/v1/auth/token": {"post", "delete"},
    "/api/v1/me": {"get"},
    "/api/v1/images": {"get", "post"},
    "/api/v1/images/{image_id}": {"get", "delete"},
    "/api/v1/images/{image_id}/thumbnails/{height}": {"get"},
    "/api/v1/images/{image_id}/original": {"get"},
    "/api/v1/images/{image_id}/expiring-links": {"post"},
    "/l/{token}": {"get"},
    "/health/live": {"get"},
    "/health/ready": {"get"},
}
ASSET_TYPES = {".css": "text/css", ".js": "javascript", ".png": "image/png", ".html": "text/html"}


def test_liveness_answers_200(client):
    response = client.get("/health/live")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_readiness_checks_database_storage_and_link_store(client):
    response = client.get("/health/ready")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "checks": {"database": "ok", "storage": "ok", "link_store": "ok"},
    }


def test_readiness_is_503_naming_storage_when_the_blob_folder_is_unusable(tmp_path):
    (tmp_path / "afile").write_text("a regular file, not a folder")
    settings = embedded_settings(tmp_path, IMAGIFY_STORAGE_URL=f"file://{tmp_path}/afile/blobs")
    with running_app(settings) as (_, client):
        response = client.get("/health/ready")
    detail = assert_error(response, 503)
    assert "storage" in detail
    checks = response.json()["checks"]
    assert checks["database"] == checks["link_store"] == "ok"
    assert checks["storage"] != "ok" and "afile" in checks["storage"]


def broken_database_settings(tmp_path):
    (tmp_path / "afile").write_text("a regular file, not a folder")
    return embedded_settings(tmp_path, IMAGIFY_DATABASE_URL=f"sqlite:///{tmp_path}/afile/imagify.db")


def test_readiness_is_503_naming_the_database_when_it_cannot_be_opened(tmp_path):
    container = build_container(broken_database_settings(tmp_path))
    client = TestClient(create_app(container))  # no lifespan: see the shutdown test below
    response = client.get("/health/ready")
    assert "database" in assert_error(response, 503)
    checks = response.json()["checks"]
    assert checks["database"] != "ok" and checks["storage"] == "ok"


def test_an_app_whose_database_never_opened_still_shuts_down_cleanly(tmp_path):
    container = build_container(broken_database_settings(tmp_path))
    with TestClient(create_app(container)) as client:
        assert client.get("/health/live").status_code == 200
    shutdown(container)


def test_readiness_is_503_asking_for_a_migration_when_the_schema_is_not_at_head(tmp_path):
    container = build_container(embedded_settings(tmp_path))  # never migrated
    try:
        with TestClient(create_app(container)) as client:
            response = client.get("/health/ready")
        assert "imagify migrate" in assert_error(response, 503)
        assert "imagify migrate" in response.json()["checks"]["database"]
    finally:
        shutdown(container)


def test_the_docs_page_uses_only_local_assets_that_load(client):
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    refs = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", page)
    assert refs, "the page loads its scripts and styles"
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", page)
    assert all(ref.startswith("/docs/static/") for ref in refs), refs
    assert {ref.rsplit(".", 1)[-1] for ref in refs} >= {"js", "css"}
    for ref in refs + ["/docs/static/oauth2-redirect.html"]:
        asset = client.get(ref)
        assert asset.status_code == 200, ref
        assert ASSET_TYPES["." + ref.rsplit(".", 1)[-1]] in asset.headers["content-type"], ref
        assert len(asset.content) > 100


@pytest.fixture
def spec(client) -> dict:
    response = client.get("/schema/openapi.json")
    assert response.status_code == 200
    assert "json" in response.headers["content-type"]
    return response.json()


def test_the_openapi_document_is_3_1_with_every_route_of_the_contract(spec):
    assert spec["openapi"].startswith("3.1")
    for path, methods in CONTRACT.items():
        assert path in spec["paths"], path
        assert methods <= set(spec["paths"][path]), (path, set(spec["paths"][path]))


def test_the_upload_route_declares_a_multipart_body_with_a_binary_file(spec):
    body = spec["paths"]["/api/v1/images"]["post"]["requestBody"]
    schema = body["content"]["multipart/form-data"]["schema"]
    assert schema["properties"]["file"] == {**schema["properties"]["file"], "type": "string", "format": "binary"}
    assert "file" in schema["required"]


def test_the_token_route_accepts_json_and_the_oauth2_password_form(spec):
    content = spec["paths"]["/api/v1/auth/token"]["post"]["requestBody"]["content"]
    assert {"application/json", "application/x-www-form-urlencoded"} <= set(content)
    for media in content.values():
        assert {"username", "password"} <= set(media["schema"]["properties"])


def test_the_link_route_declares_seconds_between_300_and_30000(spec):
    content = spec["paths"]["/api/v1/images/{image_id}/expiring-links"]["post"]["requestBody"]["content"]
    seconds = content["application/json"]["schema"]["properties"]["seconds"]
    assert (seconds["type"], seconds["minimum"], seconds["maximum"]) == ("integer", 300, 30000)


def test_an_oauth2_password_scheme_points_at_the_token_route_and_guards_the_api(spec):
    scheme = spec["components"]["securitySchemes"]["OAuth2PasswordBearer"]
    assert scheme["type"] == "oauth2"
    assert scheme["flows"]["password"]["tokenUrl"] == "/api/v1/auth/token"
    for path in ("/api/v1/me", "/api/v1/images/{image_id}"):
        assert {"OAuth2PasswordBearer": []} in spec["paths"][path]["get"]["security"]
    assert "security" not in spec["paths"]["/l/{token}"]["get"]


def test_the_authorize_dialog_offers_one_way_to_log_in(spec, client):
    assert list(spec["components"]["securitySchemes"]) == ["OAuth2PasswordBearer"]
    page = client.get("/").text
    assert 'client_id' in page and "display: none" in page  # client fields and scopes hidden
    assert "responseInterceptor" in page and ".detail" in page  # a failed login shows the server's words


def test_every_json_request_body_has_a_description_and_a_real_example(spec):
    bodies = [
        (path, method, operation["requestBody"])
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if isinstance(operation, dict) and "requestBody" in operation
    ]
    assert len(bodies) >= 7
    for path, method, body in bodies:
        assert body.get("description"), (path, method)
        for media_type, media in body["content"].items():
            if media_type == "application/json":
                assert media.get("example"), (path, method)
    tier = spec["paths"]["/api/v1/admin/tiers"]["post"]["requestBody"]["content"]["application/json"]
    assert tier["example"]["permissions"] == ["thumbnail:100", "thumbnail:600", "can_generate_expiring_link"]
    assert "can_access_original_image" in tier["schema"]["properties"]["permissions"]["description"]
    user = spec["paths"]["/api/v1/admin/users"]["post"]["requestBody"]["content"]["application/json"]
    assert user["example"]["tiers"] == ["premium"]
    link = spec["paths"]["/api/v1/images/{image_id}/expiring-links"]["post"]["requestBody"]
    assert "300 to 30000" in link["description"] and link["content"]["application/json"]["example"] == {"seconds": 600}


def test_error_examples_read_like_real_errors(spec):
    responses = spec["paths"]["/api/v1/admin/tiers"]["post"]["responses"]
    for code in ("400", "401", "409"):
        example = next(iter(responses[code]["content"]["application/json"]["examples"].values()))["value"]
        assert example["status_code"] == int(code) and " " in example["detail"], example


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/no/such/route", 404), ("PUT", "/api/v1/me", 405), ("DELETE", "/health/live", 405)],
)
def test_framework_errors_have_the_same_json_shape(client, method, path, status):
    assert_error(client.request(method, path), status)


def test_the_s3_and_lambda_clients_pool_a_connection_for_every_thread_that_may_call_them(tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    from imagify.entrypoints.container import build_blob_storage, build_renderer, client_threads, decode_waits

    settings = embedded_settings(
        tmp_path, IMAGIFY_STORAGE_URL="s3://bucket/images", IMAGIFY_RENDERER="lambda",
        IMAGIFY_LAMBDA_FUNCTION="thumbs", IMAGIFY_RENDER_WORKERS="8",
    )  # fmt: skip
    threads = client_threads(settings)
    assert threads == 40 + decode_waits("upload", 8) + decode_waits("render", 8) == 40 + 64 + 64
    blobs = build_blob_storage(settings)
    renderer = build_renderer(settings, blobs, None)  # type: ignore[arg-type]
    assert blobs._client.meta.config.max_pool_connections == threads
    assert renderer._client.meta.config.max_pool_connections == threads
