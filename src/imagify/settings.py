"""Typed settings, read once from the environment (and a `.env` file if present)."""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Mapping
from pathlib import Path

import msgspec

PREFIX = "IMAGIFY_"
MIN_SECRET_LENGTH = 32


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    data_dir: str = "./var"
    database_url: str = ""
    storage_url: str = ""
    s3_endpoint_url: str | None = None
    redis_url: str | None = None
    renderer: str = "local"
    lambda_function: str | None = None
    lambda_endpoint_url: str | None = None
    public_base_url: str | None = None
    admin_password: str | None = None
    secret_key: str = ""
    token_ttl_seconds: int = 3600
    max_upload_bytes: int = 20 * 1024 * 1024
    max_image_pixels: int = 50_000_000
    # Decoding untrusted images: worker processes, the wall-time budget of each decode (the
    # upload check and the render) and the memory all decodes may hold at once.
    render_workers: int = 0
    render_timeout_seconds: int = 60
    decode_memory_mb: int = 1024
    body_idle_timeout_seconds: int = 30
    serve_mode: str = "proxy"
    presigned_url_seconds: int = 60
    login_max_failures: int = 5  # per (username, client address)
    login_max_failures_per_address: int = 50
    login_max_failures_per_username: int = 500
    login_window_seconds: int = 300
    read_cache: str = "on"
    read_cache_mb: int = 64
    blob_cache_mb: int = 64

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir)


_INTS = {
    "token_ttl_seconds",
    "max_upload_bytes",
    "max_image_pixels",
    "render_workers",
    "render_timeout_seconds",
    "decode_memory_mb",
    "body_idle_timeout_seconds",
    "presigned_url_seconds",
    "login_max_failures",
    "login_max_failures_per_address",
    "login_max_failures_per_username",
    "login_window_seconds",
    "blob_cache_mb",
    "read_cache_mb",
}


class SettingsError(ValueError):
    pass


def read_dotenv(path: Path) -> dict[str, str]:
    """KEY=VALUE lines; blank lines and # comments skipped; quotes around values removed."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        values[key.strip()] = value.strip().strip("'\"")
    return values


def load_settings(environ: Mapping[str, str] | None = None, dotenv: Path | None = Path(".env")) -> Settings:
    """Settings from IMAGIFY_* variables; the environment wins over `.env`."""
    env = {**(read_dotenv(dotenv) if dotenv else {}), **(os.environ if environ is None else environ)}
    raw: dict[str, object] = {}
    for field in Settings.__struct_fields__:
        value = env.get(PREFIX + field.upper())
        if value is None or value == "":
            continue
        if field in _INTS:
            try:
                raw[field] = int(value)
            except ValueError:
                raise SettingsError(f"{PREFIX}{field.upper()} must be an integer, got {value!r}") from None
        else:
            raw[field] = value
    settings = Settings(**raw)  # type: ignore[arg-type]
    data = settings.data_path
    if not settings.database_url:
        settings = msgspec.structs.replace(settings, database_url=f"sqlite:///{data / 'imagify.db'}")
    if not settings.storage_url:
        settings = msgspec.structs.replace(settings, storage_url=f"file://{(data / 'blobs').resolve()}")
    if settings.renderer not in ("local", "lambda"):
        raise SettingsError(f"{PREFIX}RENDERER must be 'local' or 'lambda', got {settings.renderer!r}")
    if settings.secret_key and len(settings.secret_key) < MIN_SECRET_LENGTH:
        raise SettingsError(
            f"{PREFIX}SECRET_KEY must be at least {MIN_SECRET_LENGTH} characters "
            "(try: python3 -c 'import secrets; print(secrets.token_urlsafe(48))')"
        )
    if settings.read_cache not in ("on", "off"):
        raise SettingsError(f"{PREFIX}READ_CACHE must be 'on' or 'off', got {settings.read_cache!r}")
    for field in ("blob_cache_mb", "read_cache_mb"):
        if getattr(settings, field) < 0:
            raise SettingsError(f"{PREFIX}{field.upper()} must be 0 (off) or more")
    if settings.serve_mode not in ("proxy", "redirect"):
        raise SettingsError(f"{PREFIX}SERVE_MODE must be 'proxy' or 'redirect', got {settings.serve_mode!r}")
    if settings.serve_mode == "redirect" and not settings.storage_url.startswith("s3://"):
        raise SettingsError(f"{PREFIX}SERVE_MODE=redirect needs S3 storage ({PREFIX}STORAGE_URL=s3://...)")
    for field in (
        "max_upload_bytes",
        "max_image_pixels",
        "token_ttl_seconds",
        "presigned_url_seconds",
        "login_max_failures",
        "login_max_failures_per_address",
        "login_max_failures_per_username",
        "login_window_seconds",
        "render_timeout_seconds",
        "decode_memory_mb",
        "body_idle_timeout_seconds",
    ):
        if getattr(settings, field) <= 0:
            raise SettingsError(f"{PREFIX}{field.upper()} must be positive")
    if settings.login_max_failures_per_username <= settings.login_max_failures_per_address:
        raise SettingsError(
            f"{PREFIX}LOGIN_MAX_FAILURES_PER_USERNAME must be above {PREFIX}LOGIN_MAX_FAILURES_PER_ADDRESS: "
            "else one address alone can lock a user out"
        )
    return settings


def secret_key(settings: Settings) -> str:
    """IMAGIFY_SECRET_KEY, or one generated once into the data dir and reused after.

    Workers starting together race to create it: each writes a whole key to a file of its
    own, then links it into place (a link never replaces an existing file), so a reader
    never sees a half-written key, and every worker ends up with the first one linked.
    """
    if settings.secret_key:
        return settings.secret_key
    path = settings.data_path / "secret_key"
    if not path.is_file():
        settings.data_path.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=settings.data_path, prefix=".secret_key-")
        try:
            os.write(fd, secrets.token_urlsafe(48).encode())
            os.fsync(fd)
            os.close(fd)
            try:
                os.link(tmp, path)
            except FileExistsError:  # another process linked its key first: use that one
                pass
        finally:
            os.unlink(tmp)
    key = path.read_text().strip()
    if len(key) < MIN_SECRET_LENGTH:
        raise SettingsError(
            f"the secret key in {path} is shorter than {MIN_SECRET_LENGTH} characters: "
            "delete the file to generate a new one (every token then ends), or set IMAGIFY_SECRET_KEY"
        )
    return key
