"""No password, bearer token, link token or secret key in any log line, through a session
that logs in, fails, gets throttled, uploads, links, administers and crashes a handler."""

from __future__ import annotations

import json
import logging

from dependency_injector import providers

from imagify.domain.services.links import LinkService
from imagify.logs import JsonFormatter
from tests.integration.conftest import PASSWORD, image_bytes, upload

# The test client's own logger prints the URLs it requests: that is the client's log, not
# the server's, and a link URL carries its token by design.
CLIENT_SIDE = ("httpx", "httpcore")


class BrokenLinks(LinkService):
    def __init__(self) -> None:  # nothing to wire: it only fails
        pass

    def begin_request(self) -> None:
        pass

    async def known(self, token: str):
        return None  # nothing in memory: the route goes on to resolve()

    def resolve(self, token: str):
        raise RuntimeError("the link service broke")


def all_log_text(records: list[logging.LogRecord]) -> str:
    formatter = JsonFormatter()
    lines = []
    for record in records:
        if record.name.startswith(CLIENT_SIDE):
            continue
        lines.append(formatter.format(record))  # the JSON line, with every extra field
        lines.append(record.getMessage())
        lines.append(repr(record.args))
    return "\n".join(lines)


def test_no_secret_reaches_any_log_line(client, make_user, container, settings, caplog):
    caplog.set_level(logging.DEBUG)  # the root logger and everything under it
    for name in ("imagify", "litestar", "uvicorn"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    secrets: list[str] = [PASSWORD, settings.secret_key]

    root = make_user("root", is_admin=True)
    new_password, changed_password, wrong_password = "Cr3ated-by-admin-pw", "Ch4nged-pw-later", "Wr0ng-guess-pw"
    secrets += [new_password, changed_password, wrong_password]
    created = client.post("/api/v1/admin/users", headers=root.headers,
                          json={"username": "ann", "password": new_password, "tiers": ["enterprise"]})
    assert created.status_code == 201, created.text
    response = client.post("/api/v1/auth/token", json={"username": "ann", "password": new_password})
    token = response.json()["access_token"]
    form = client.post("/api/v1/auth/token", data={"username": "ann", "password": new_password})
    ann = {"Authorization": f"Bearer {token}"}
    secrets += [token, token.split(".")[2], form.json()["access_token"], root.headers["Authorization"][7:]]

    image_id = upload(client, type("A", (), {"headers": ann})(), image_bytes()).json()["id"]
    assert client.get(f"/api/v1/images/{image_id}/thumbnails/200", headers=ann).status_code == 200
    assert client.get(f"/api/v1/images/{image_id}/original", headers=ann).status_code == 200
    link = client.post(f"/api/v1/images/{image_id}/expiring-links", json={"seconds": 300}, headers=ann).json()
    secrets.append(link["token"])
    assert client.get(f"/l/{link['token']}").status_code == 200
    assert client.get(f"/l/{link['token']}/more").status_code == 404  # an unmatched path holding a token
    assert client.get("/api/v1/me", params={"token": token, "access_token": token}, headers=ann).status_code == 200
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}x"}).status_code == 401
    assert client.patch("/api/v1/admin/users/ann", headers=root.headers,
                        json={"password": changed_password}).status_code == 200
    for _ in range(6):  # failures, then the throttle
        client.post("/api/v1/auth/token", json={"username": "ann", "password": wrong_password})
    assert client.post("/api/v1/auth/token", json={"username": "ann", "password": changed_password}).status_code == 429
    container.link_service.override(providers.Object(BrokenLinks()))
    assert client.get(f"/l/{link['token']}").status_code == 500
    container.link_service.reset_override()

    text = all_log_text(caplog.records)
    assert "unhandled error on GET /l/{token}" in text  # the crash was logged, by route
    formatter = JsonFormatter()
    lines = [json.loads(formatter.format(r)) for r in caplog.records if not r.name.startswith(CLIENT_SIDE)]
    assert {"logger": "imagify.access", "status": 429} in [
        {"logger": line.get("logger"), "status": line.get("status")} for line in lines
    ]  # the JSON lines were read: an empty text would pass the checks below
    leaked = [s for s in secrets if s in text]
    assert not leaked, [s[:12] + "…" for s in leaked]
    assert "bearer ey" not in text.lower()  # no Authorization header of ours, in any form
    # (botocore at DEBUG prints the AWS request signature: AWS's credentials, not ours, and
    # only when someone turns botocore's debug logging on.)
