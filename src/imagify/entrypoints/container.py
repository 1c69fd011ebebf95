"""The one composition root: picks each adapter from Settings and wires the use cases."""

from __future__ import annotations

import logging
import os
import threading
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlparse

import redis
from dependency_injector import containers, providers
from sqlalchemy import Engine, make_url

from imagify.adapters.blob_cache import CachedBlobStorage
from imagify.adapters.change_counters import MappedChangeCounters, NoChangeCounters, RedisChangeCounters
from imagify.adapters.lambda_renderer import LambdaRenderer, make_lambda_client
from imagify.adapters.local_storage import LocalFolderBlobStorage
from imagify.adapters.memory_throttle import MemoryLoginThrottle
from imagify.adapters.decode_pool import DecodePool
from imagify.adapters.pillow import PillowImageInspector, PillowRenderer
from imagify.adapters.redis_links import RedisLinkStore, make_async_redis, make_redis
from imagify.adapters.redis_locks import RedisLockManager
from imagify.adapters.redis_throttle import RedisLoginThrottle
from imagify.adapters.s3_storage import S3BlobStorage, make_s3_client, parse_s3_url
from imagify.adapters.security import Argon2PasswordHasher, JwtTokenSigner
from imagify.adapters.sql.migrate import check_schema
from imagify.adapters.sql import (
    SqlAlchemyUnitOfWorkFactory,
    SqlLinkStore,
    make_engine,
    sqlite_file,
)
from imagify.adapters.system import LocalLockManager, SecretsIdGenerator, SystemClock
from imagify.domain.ports import BlobStorage, ChangeCounters, LinkStore, LockManager, LoginThrottle, Presigner, Renderer
from imagify.domain.read_cache import ReadCache
from imagify.domain.services.admin import AdminService
from imagify.domain.services.auth import AuthService
from imagify.domain.services.doctor import DoctorService
from imagify.domain.services.backfills import PlaceholderBackfill, PreviewBackfill
from imagify.domain.services.images import ImageService
from imagify.domain.services.links import LinkService
from imagify.entrypoints.http.observability import MeteredRenderer, Metrics
from imagify.settings import Settings, SettingsError, secret_key

log = logging.getLogger(__name__)


# anyio's default worker threads (its default thread limiter): handlers run with
# sync_to_thread and every to_thread.run_sync without a limiter of its own.
ANYIO_THREADS = 40
# Uploads (their check) and thumbnail renders that miss memory decode in the decode pool's
# worker processes, and wait for them in threads of their own: per kind, at most this many
# per decode worker and at least the floor. More wait on the event loop, holding no thread,
# so a storm of hostile uploads or first GETs queues there instead of taking the default
# threads that logins, listings and token checks need.
DECODE_WAITS_PER_WORKER = 8
DECODE_WAITS_FLOOR = {"render": 64, "upload": 16}


def decode_waits(kind: str, workers: int) -> int:
    """Threads that may wait on the decode pool at once for uploads or for renders."""
    return max(DECODE_WAITS_FLOOR[kind], DECODE_WAITS_PER_WORKER * workers)


def client_threads(settings: Settings) -> int:
    """Threads that may call S3 or Lambda at once: anyio's default ones, the upload and
    render waits. A boto3 pool smaller than this discards a connection each time more
    threads than it holds finish together ("Connection pool is full"), to open it again."""
    workers = settings.render_workers or os.cpu_count() or 1
    return ANYIO_THREADS + decode_waits("upload", workers) + decode_waits("render", workers)


def build_blob_storage(settings: Settings) -> BlobStorage:
    url = urlparse(settings.storage_url)
    if url.scheme == "file":
        return LocalFolderBlobStorage(Path(url.netloc + url.path))
    if url.scheme == "s3":
        try:
            bucket, prefix = parse_s3_url(settings.storage_url)
        except ValueError as error:
            raise SettingsError(f"IMAGIFY_STORAGE_URL: {error}") from None
        client = make_s3_client(settings.s3_endpoint_url, max_connections=client_threads(settings))
        return S3BlobStorage(client, bucket, prefix)
    raise SettingsError(
        f"IMAGIFY_STORAGE_URL {settings.storage_url!r} is not supported: "
        "use file:///path or s3://bucket/prefix"
    )


def build_presigner(settings: Settings, blobs: BlobStorage) -> Presigner | None:
    """What presigns S3 URLs in redirect mode; None when the API proxies the bytes."""
    if settings.serve_mode != "redirect":
        return None
    if not isinstance(blobs, S3BlobStorage):
        raise SettingsError("IMAGIFY_SERVE_MODE=redirect needs S3 storage (IMAGIFY_STORAGE_URL=s3://...)")
    return blobs


def build_redis(settings: Settings) -> redis.Redis | None:
    return make_redis(settings.redis_url) if settings.redis_url else None


def build_link_store(redis_client: redis.Redis | None, engine: Engine) -> LinkStore:
    return RedisLinkStore(redis_client) if redis_client is not None else SqlLinkStore(engine)


def build_locks(settings: Settings, redis_client: redis.Redis | None) -> LockManager:
    """Redis locks across machines in cloud mode; thread and file locks on one machine."""
    local = LocalLockManager(settings.data_path / "locks")
    if redis_client is not None:
        return RedisLockManager(redis_client, fallback=local)  # Redis down: this machine's locks
    return local


def build_decode_pool(settings: Settings) -> DecodePool:
    """Worker processes for every decode of untrusted bytes, started on first use."""
    return DecodePool(
        settings.render_workers, settings.render_timeout_seconds, settings.decode_memory_mb * 2**20
    )


def build_renderer(settings: Settings, blobs: BlobStorage, pool: DecodePool) -> Renderer:
    if settings.renderer == "lambda":
        if not settings.lambda_function:
            raise SettingsError("IMAGIFY_RENDERER=lambda needs IMAGIFY_LAMBDA_FUNCTION")
        if not settings.storage_url.startswith("s3://"):
            raise SettingsError(
                "IMAGIFY_RENDERER=lambda needs S3 storage (IMAGIFY_STORAGE_URL=s3://...): "
                "the function cannot reach a local folder"
            )
        bucket, prefix = parse_s3_url(settings.storage_url)
        client = make_lambda_client(settings.lambda_endpoint_url, max_connections=client_threads(settings))
        return LambdaRenderer(client, settings.lambda_function, bucket, prefix)
    return PillowRenderer(blobs, pool, settings.max_image_pixels)


def build_change_counters(settings: Settings, redis_client: redis.Redis | None) -> ChangeCounters:
    """What keeps every process's read cache true, chosen by the database, not by whether
    this process caches: a writer with the cache off must still tell the others.

    SQLite lives on one machine, so its counters are a file beside the database file,
    found by every process that opens that database whatever its data folder. A shared
    database server needs Redis, given to every process that writes to it.
    """
    if make_url(settings.database_url).get_backend_name() == "sqlite":
        database = sqlite_file(settings.database_url)  # None: in memory, so this process's own
        path = database.with_name(database.name + "-changes") if database else settings.data_path / "change-counters"
        try:
            return MappedChangeCounters(path)
        except OSError as error:  # the database's folder is unusable: so is the database
            log.warning("read cache off: cannot open the change counters at %s: %s", path, error)
            return NoChangeCounters()
    if redis_client is not None and settings.redis_url:
        return RedisChangeCounters(redis_client, make_async_redis(settings.redis_url))
    # A shared database but no shared counters: another machine's change would go unseen.
    log.info("read cache off: a non-SQLite database without IMAGIFY_REDIS_URL has no shared change counters")
    return NoChangeCounters()


def build_read_cache(settings: Settings, counters: ChangeCounters) -> ReadCache:
    megabytes = 0 if settings.read_cache == "off" else settings.read_cache_mb
    return ReadCache(counters, max_bytes=megabytes * 1024 * 1024)


def build_image_blobs(settings: Settings, blobs: BlobStorage) -> BlobStorage:
    """Small blobs (thumbnails, small originals) kept in memory after their first read."""
    if settings.blob_cache_mb == 0:
        return blobs
    return CachedBlobStorage(blobs, settings.blob_cache_mb * 1024 * 1024)


def build_login_throttle(settings: Settings, redis_client: redis.Redis | None) -> LoginThrottle:
    """Counters shared through Redis in cloud mode (memory if it fails); memory on one machine."""
    memory = MemoryLoginThrottle(settings.login_window_seconds)
    if redis_client is None:
        return memory
    return RedisLoginThrottle(redis_client, settings.login_window_seconds, fallback=memory)


class Container(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=Settings)

    engine = providers.Singleton(make_engine, settings.provided.database_url)
    uow = providers.Singleton(SqlAlchemyUnitOfWorkFactory, engine)
    database_check = providers.Callable(check_schema, engine)
    blobs = providers.Singleton(build_blob_storage, settings)
    redis = providers.Singleton(build_redis, settings)
    links = providers.Singleton(build_link_store, redis, engine)
    decode_pool = providers.Singleton(build_decode_pool, settings)
    renderer = providers.Singleton(build_renderer, settings, blobs, decode_pool)
    metrics = providers.Singleton(Metrics)
    metered_renderer = providers.Singleton(MeteredRenderer, renderer, metrics)
    inspector = providers.Singleton(PillowImageInspector, settings.provided.max_image_pixels, decode_pool)
    locks = providers.Singleton(build_locks, settings, redis)
    clock = providers.Singleton(SystemClock)
    ids = providers.Singleton(SecretsIdGenerator)
    hasher = providers.Singleton(Argon2PasswordHasher)
    signer = providers.Singleton(
        JwtTokenSigner,
        providers.Callable(secret_key, settings),
        providers.Callable(lambda s: timedelta(seconds=s.token_ttl_seconds), settings),
    )

    change_counters = providers.Singleton(build_change_counters, settings, redis)
    read_cache = providers.Singleton(build_read_cache, settings, change_counters)
    image_blobs = providers.Singleton(build_image_blobs, settings, blobs)
    presigner = providers.Singleton(build_presigner, settings, blobs)

    images = providers.Singleton(
        ImageService, uow, image_blobs, links, metered_renderer, inspector, locks, clock, ids, read_cache
    )
    link_service = providers.Singleton(LinkService, uow, links, clock, ids, read_cache)
    auth = providers.Singleton(AuthService, uow, hasher, signer, clock, read_cache)
    admin = providers.Singleton(
        AdminService, uow, hasher, blobs, links, read_cache, settings.provided.max_upload_bytes
    )
    doctor = providers.Factory(DoctorService, uow, blobs, links, clock, read_cache)
    placeholder_backfill = providers.Factory(PlaceholderBackfill, uow, blobs, inspector, read_cache)
    preview_backfill = providers.Factory(PreviewBackfill, uow, blobs, inspector, read_cache)
    login_throttle = providers.Singleton(build_login_throttle, settings, redis)


def warm_decode_pool(container: Container) -> None:
    """Start the decode workers in the background, so the first upload does not wait for them."""

    def start() -> None:
        try:
            container.decode_pool().start()
        except Exception:  # the first decode will try again, and say why if it cannot
            log.warning("could not start the decode workers", exc_info=True)

    threading.Thread(target=start, name="imagify-decode-warmup", daemon=True).start()


def shutdown(container: Container) -> None:
    """Release the long-lived clients that were built: render pool, database pool, Redis."""
    for name, release in (
        ("renderer", lambda: getattr(container.renderer(), "close", lambda: None)()),
        ("decode pool", lambda: container.decode_pool().close()),
        ("engine", lambda: container.engine().dispose()),
        ("redis", lambda: (client := container.redis()) is not None and client.close()),
    ):
        try:
            release()
        except Exception:  # one client failing to close must not keep the others open
            log.warning("could not release the %s at shutdown", name, exc_info=True)


async def close_async_clients(container: Container) -> None:
    """Close what belongs to the serving event loop (the change counters' Redis client)."""
    try:
        aclose = getattr(container.change_counters(), "aclose", None)
        if aclose is not None:
            await aclose()
    except Exception:
        log.warning("could not close the change counters' Redis client", exc_info=True)


def build_container(settings: Settings) -> Container:
    return Container(settings=settings)
