"""Expiring links in a SQL table, keyed by the token's hash so a database dump opens nothing."""

from __future__ import annotations

import random
from datetime import datetime

from sqlalchemy import Connection, Engine, delete, insert, select

from imagify.adapters.sql.tables import links
from imagify.adapters.sql.unit_of_work import check_database, unreachable_as_unavailable
from imagify.adapters.security import token_hash
from imagify.domain.model import LINK_ID_LENGTH, ExpiringLink, LinkInfo

# On about one resolve in this many, remove a small batch of expired rows.
SWEEP_ONE_IN = 50
SWEEP_BATCH = 100


class SqlLinkStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def add(self, link: ExpiringLink) -> None:
        with unreachable_as_unavailable(), self._engine.begin() as connection:
            connection.execute(
                insert(links).values(
                    token_hash=token_hash(link.token),
                    image_id=link.image_id,
                    expires_at=link.expires_at,
                    owner_id=link.owner_id,
                    created_at=link.created_at,
                )
            )

    def resolve(self, token: str, now: datetime) -> ExpiringLink | None:
        query = select(links.c.image_id, links.c.expires_at, links.c.owner_id).where(
            links.c.token_hash == token_hash(token), links.c.expires_at > now
        )
        with unreachable_as_unavailable(), self._engine.begin() as connection:
            row = connection.execute(query).one_or_none()
            if random.randrange(SWEEP_ONE_IN) == 0:
                _sweep(connection, now)
        return None if row is None else ExpiringLink(token, row.image_id, row.expires_at, row.owner_id)

    def delete_for_image(self, image_id: str) -> None:
        with unreachable_as_unavailable(), self._engine.begin() as connection:
            connection.execute(delete(links).where(links.c.image_id == image_id))

    def list_for_image(self, image_id: str, now: datetime) -> list[LinkInfo]:
        query = (
            select(links.c.token_hash, links.c.created_at, links.c.expires_at)
            .where(links.c.image_id == image_id, links.c.expires_at > now)
            .order_by(links.c.expires_at, links.c.token_hash)
        )
        with unreachable_as_unavailable(), self._engine.begin() as connection:
            rows = connection.execute(query).all()
        return [
            LinkInfo(row.token_hash[:LINK_ID_LENGTH], image_id, row.created_at, row.expires_at)
            for row in rows
        ]

    def revoke(self, image_id: str, link_id: str) -> bool:
        # The id is a prefix of the hash: match it among the image's links only.
        with unreachable_as_unavailable(), self._engine.begin() as connection:
            result = connection.execute(
                delete(links).where(
                    links.c.image_id == image_id, links.c.token_hash.startswith(link_id, autoescape=True)
                )
            )
        return bool(result.rowcount)

    def check(self) -> None:
        check_database(self._engine)


def _sweep(connection: Connection, now: datetime) -> None:
    # Select, then delete by key: MySQL refuses LIMIT in a subquery of DELETE.
    expired = list(
        connection.execute(
            select(links.c.token_hash).where(links.c.expires_at <= now).limit(SWEEP_BATCH)
        ).scalars()
    )
    if expired:
        connection.execute(delete(links).where(links.c.token_hash.in_(expired)))
