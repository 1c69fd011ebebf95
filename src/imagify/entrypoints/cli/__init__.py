"""The `imagify` command: serve, migrate, check storage, and manage users and tiers
(`accounts.py`) through the use cases."""

from __future__ import annotations

import errno
import logging
import socket
import sys
from datetime import timedelta

import click

from imagify.domain.errors import InvalidInput
from imagify.domain.model import check_password
from imagify.entrypoints.cli.accounts import tiers, users
from imagify.entrypoints.cli.common import container, database_name, one_line_errors
from imagify.entrypoints.container import Container
from imagify.logs import configure_logging, uvicorn_log_config

# uvicorn's supervisor pings each worker and kills one that does not answer within this
# many seconds. A worker answers only once it has imported the app: about 2 s alone, and
# past uvicorn's default of 5 s when 4 start at once on 2 busy cores, so a worker was
# killed at start-up ("Child process died") and started again.
WORKER_HEALTHCHECK_SECONDS = 60
log = logging.getLogger("imagify.serve")


@click.group()
def main() -> None:
    """Imagify: a tier-based image API."""


main.add_command(users)
main.add_command(tiers)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64))
@one_line_errors
def serve(host: str, port: int, workers: int) -> None:
    """Serve the HTTP API with uvicorn."""
    import uvicorn

    check_port_free(host, port)
    app = container(creating=True)
    announce_first_admin(app)
    configure_logging()
    log.info("Imagify on http://%s:%s  (API docs at /)", host, port)
    uvicorn.run(
        "imagify.entrypoints.http.app:create_app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        # The app logs one JSON line per request itself, without tokens in paths
        # (/l/{token} is logged as its route); uvicorn's own line would repeat it raw.
        access_log=False,
        log_config=uvicorn_log_config(),
        timeout_worker_healthcheck=WORKER_HEALTHCHECK_SECONDS,
    )


def check_port_free(host: str, port: int) -> None:
    """Fail before uvicorn starts (and says "startup complete") when the port is taken."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as error:
        raise InvalidInput(f"cannot serve on host {host!r}: {error.strerror}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind(address)
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise InvalidInput(
                    f"port {port} on {host} is already in use (another Imagify?): stop that "
                    f"server, or pick another port: make run PORT={port + 1}, or "
                    f"imagify serve --port {port + 1}"
                ) from None
            raise InvalidInput(f"cannot serve on {host}:{port}: {error.strerror}") from None


@main.command()
@one_line_errors
def migrate() -> None:
    """Apply the database migrations (idempotent), then make sure an admin exists."""
    from imagify.adapters.sql.migrate import upgrade

    app = container(creating=True)
    applied, now = upgrade(app.settings().database_url)
    where = database_name(app.settings())
    if applied:
        click.echo(f"applied {', '.join(applied)}; the database {where} is at {now}")
    else:
        click.echo(f"the database {where} is already at {now}; nothing to apply")
    announce_first_admin(app)



def announce_first_admin(app: Container) -> None:
    chosen = app.settings().admin_password
    if chosen:
        try:
            check_password(chosen)
        except InvalidInput as error:
            raise InvalidInput(f"IMAGIFY_ADMIN_PASSWORD: {error.detail}") from None
        if app.auth().has_admin():
            click.echo(
                "note: IMAGIFY_ADMIN_PASSWORD is ignored: an admin exists already "
                "(change a password with: imagify users set-password NAME)",
                err=True,
            )
            return
    generated = app.auth().ensure_first_admin(chosen)
    if generated:
        click.echo(
            "Created the first admin. Log in as 'admin' with this password, shown only once:\n"
            f"    {generated}\n"
            "(set IMAGIFY_ADMIN_PASSWORD before the first run to choose it yourself)"
        )



@main.command()
@click.option("--fix", is_flag=True, help="remove orphaned blobs, and rows whose blob is missing")
@click.option(
    "--min-age-seconds",
    default=3600,
    show_default=True,
    type=click.IntRange(min=0),
    help="only a blob older than this counts as orphaned (younger ones may be uploads in flight)",
)
@one_line_errors
def doctor(fix: bool, min_age_seconds: int) -> None:
    """Find blobs no row names and rows whose blob is missing; exit 1 if any is left."""
    app = container()
    min_age = timedelta(seconds=min_age_seconds)
    report = app.doctor().examine(
        fix=fix, min_age=min_age, on_finding=lambda finding: click.echo(finding.line())
    )
    click.echo(report.summary())
    if report.unfixed:
        sys.exit(1)


@main.command("backfill-placeholders")
@one_line_errors
def backfill_placeholders() -> None:
    """Make the placeholder (ThumbHash, colour, aspect ratio) of every image that has none."""
    _backfill("placeholder_backfill")


@main.command("backfill-previews")
@one_line_errors
def backfill_previews() -> None:
    """Make the preview of every JPEG large enough to have one, uploaded before previews
    (or before 2 MP photos got theirs); its thumbnails up to 400 px then render from it."""
    _backfill("preview_backfill")


def _backfill(provider: str) -> None:
    """Run the container's `provider` backfill, an error line per image it could not do."""
    app = container()

    def each(image: object, error: str | None) -> None:
        if error is not None:
            click.echo(f"{image.id}: {error}", err=True)  # type: ignore[attr-defined]

    try:
        report = getattr(app, provider)().run(each)
    finally:
        app.decode_pool().close()
    click.echo(report.summary())
