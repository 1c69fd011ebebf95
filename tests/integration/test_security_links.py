"""Link tokens: unguessable, and stored only as their SHA-256 so a dump of the link store
opens nothing (and lookups by hash leak no timing about the clear token)."""

from __future__ import annotations

import hashlib
import math

import redis
from sqlalchemy import create_engine, select

from imagify.adapters.sql.tables import links
from tests.integration.conftest import upload

URLSAFE = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def make_links(client, account, count: int) -> list[str]:
    image_id = upload(client, account).json()["id"]
    tokens = []
    for _ in range(count):
        response = client.post(
            f"/api/v1/images/{image_id}/expiring-links", json={"seconds": 300}, headers=account.headers
        )
        assert response.status_code == 201, response.text
        tokens.append(response.json()["token"])
    return tokens


def test_two_hundred_link_tokens_are_distinct_urlsafe_and_carry_at_least_128_bits(client, make_user):
    tokens = make_links(client, make_user("ann", "enterprise"), 200)
    assert len(set(tokens)) == 200
    for token in tokens:
        assert set(token) <= URLSAFE, token
        assert len(token) * math.log2(len(URLSAFE)) >= 128, token
    # The characters are spread as random ones would be: none of the 64 is missing or dominant.
    seen = "".join(tokens)
    counts = [seen.count(c) for c in URLSAFE]
    assert min(counts) > 0 and max(counts) < 4 * len(seen) / len(URLSAFE)


def stored_link_text(settings) -> str:
    """Everything the link store holds, as text: the SQL table, or every Redis key and value."""
    if settings.redis_url:
        client = redis.Redis.from_url(settings.redis_url)
        parts = []
        for key in client.scan_iter():
            parts.append(key.decode())
            kind = client.type(key).decode()
            if kind == "string":
                parts.append(client.get(key).decode())
            elif kind == "zset":
                parts.extend(m.decode() for m in client.zrange(key, 0, -1))
        client.close()
        return "\n".join(parts)
    engine = create_engine(settings.database_url)
    with engine.connect() as connection:
        rows = connection.execute(select(links)).all()
    engine.dispose()
    return "\n".join(" ".join(str(v) for v in row) for row in rows)


def test_the_link_store_holds_token_hashes_never_the_tokens(client, make_user, settings):
    tokens = make_links(client, make_user("ann", "enterprise"), 3)
    stored = stored_link_text(settings)
    for token in tokens:
        assert token not in stored
        assert hashlib.sha256(token.encode()).hexdigest() in stored
        assert client.get(f"/l/{token}").status_code == 200


def test_a_link_token_differing_by_one_character_opens_nothing(client, make_user):
    token = make_links(client, make_user("ann", "enterprise"), 1)[0]
    for i in (0, len(token) // 2, len(token) - 1):
        near = token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1:]
        assert client.get(f"/l/{near}").status_code == 404
    assert client.get(f"/l/{token[:-1]}").status_code == 404
    assert client.get(f"/l/{token}x").status_code == 404
