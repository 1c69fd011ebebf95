"""The one composition root: picks each adapter from Settings and wires the use cases."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlparse

import redis
from dependency_injector import containers, providers
from sqlalchemy import Engine

from imagify.adapters.local_storage import LocalFolderBlobStorage
from imagify.adapters.pillow import PillowImageInspector, PillowRenderer
from imagify.adapters.redis_links import RedisLinkStore, make_redis
from imagify.adapters.redis_locks import RedisLockManager
from imagify.adapters.s3_storage import S3BlobStorage, make_s3_client, parse_s3_url
from imagify.adapters.security import Argon2PasswordHasher, JwtTokenSigner
from imagify.adapters.sql.migrate import check_schema
from imagify.adapters.sql import (
    SqlAlchemyUnitOfWorkFactory,
    SqlLinkStore,
    make_engine,
)
from imagify.adapters.system import LocalLockManager, SecretsIdGenerator, SystemClock
from imagify.domain.ports import BlobStorage, LinkStore, LockManager, Renderer
from imagify.domain.services.admin import AdminService
from imagify.domain.services.auth import AuthService
from imagify.domain.services.images import ImageService
from imagify.domain.services.links import LinkService
from imagify.settings import Settings, SettingsError, secret_key

log = logging.getLogger(__name__)


def build_blob_storage(settings: Settings) -> BlobStorage:
    url = urlparse(settings.storage_url)
    if url.scheme == "file":
        return LocalFolderBlobStorage(Path(url.netloc + url.path))
    if url.scheme == "s3":
        try:
            bucket, prefix = parse_s3_url(settings.storage_url)
        except ValueError as error:
            raise SettingsError(f"IMAGIFY_STORAGE_URL: {error}") from None
        return S3BlobStorage(make_s3_client(settings.s3_endpoint_url), bucket, prefix)
    raise SettingsError(
        f"IMAGIFY_STORAGE_URL {settings.storage_url!r} is not supported: "
        "use file:///path or s3://bucket/prefix"
    )


def build_redis(settings: Settings) -> redis.Redis | None:
    return make_redis(settings.redis_url) if settings.redis_url else None


def build_link_store(redis_client: redis.Redis | None, engine: Engine) -> LinkStore:
    return RedisLinkStore(redis_client) if redis_client is not None else SqlLinkStore(engine)


def build_locks(settings: Settings, redis_client: redis.Redis | None) -> LockManager:
    """Redis locks across machines in cloud mode; thread and file locks on one machine."""
    if redis_client is not None:
        return RedisLockManager(redis_client)
    return LocalLockManager(settings.data_path / "locks")


def build_renderer(settings: Settings, blobs: BlobStorage) -> Renderer:
    if settings.renderer == "lambda":
        raise SettingsError("IMAGIFY_RENDERER=lambda is not supported yet: use 'local'")
    return PillowRenderer(blobs, settings.render_workers)


class Container(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=Settings)

    engine = providers.Singleton(make_engine, settings.provided.database_url)
    uow = providers.Singleton(SqlAlchemyUnitOfWorkFactory, engine)
    database_check = providers.Callable(check_schema, engine)
    blobs = providers.Singleton(build_blob_storage, settings)
    redis = providers.Singleton(build_redis, settings)
    links = providers.Singleton(build_link_store, redis, engine)
    renderer = providers.Singleton(build_renderer, settings, blobs)
    inspector = providers.Singleton(PillowImageInspector, settings.provided.max_image_pixels)
    locks = providers.Singleton(build_locks, settings, redis)
    clock = providers.Singleton(SystemClock)
    ids = providers.Singleton(SecretsIdGenerator)
    hasher = providers.Singleton(Argon2PasswordHasher)
    signer = providers.Singleton(
        JwtTokenSigner,
        providers.Callable(secret_key, settings),
        providers.Callable(lambda s: timedelta(seconds=s.token_ttl_seconds), settings),
    )

    images = providers.Singleton(
        ImageService, uow, blobs, links, renderer, inspector, locks, clock, ids
    )
    link_service = providers.Singleton(LinkService, uow, links, clock, ids)
    auth = providers.Singleton(AuthService, uow, hasher, signer, clock)
    admin = providers.Singleton(AdminService, uow, hasher, blobs, links)


def shutdown(container: Container) -> None:
    """Release the long-lived clients that were built: render pool, database pool, Redis."""
    for name, release in (
        ("renderer", lambda: getattr(container.renderer(), "close", lambda: None)()),
        ("engine", lambda: container.engine().dispose()),
        ("redis", lambda: (client := container.redis()) is not None and client.close()),
    ):
        try:
            release()
        except Exception:  # one client failing to close must not keep the others open
            log.warning("could not release the %s at shutdown", name, exc_info=True)


def build_container(settings: Settings) -> Container:
    return Container(settings=settings)
