"""The `imagify` command: serve, migrate, and manage users and tiers through the use cases."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import click
from sqlalchemy.exc import SQLAlchemyError

from imagify.domain.errors import DomainError
from imagify.entrypoints.container import Container, build_container
from imagify.settings import SettingsError, load_settings

CLI_ACTOR = "cli"


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


def one_line_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Bad input ends with one line on stderr and exit 1, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            result = command(*args, **kwargs)
            _warn_if_unpublished()
            return result
        except (DomainError, SettingsError) as error:
            _fail(getattr(error, "detail", None) or str(error))
        except SQLAlchemyError as error:
            reason = str(error.orig if getattr(error, "orig", None) else error).splitlines()[0]
            _fail(f"database error ({reason}); is it reachable and migrated (imagify migrate)?")
        finally:
            _built.clear()  # one command's containers, never the next one's

    return wrapper


_built: list[Container] = []  # what this command built, for _warn_if_unpublished


def container() -> Container:
    _built.append(build_container(load_settings()))
    return _built[-1]


def _warn_if_unpublished() -> None:
    """A command's change is committed; say so if the servers' caches could not be told."""
    for app in _built:
        flush = getattr(app.change_counters(), "flush", None)  # nothing to do when none waits
        if flush is not None and not flush():
            click.echo(
                "warning: the change is saved, but Redis could not be told of it: running servers "
                "may answer from what they remember for up to 60 s",
                err=True,
            )


def announce_first_admin(app: Container) -> None:
    generated = app.auth().ensure_first_admin(app.settings().admin_password)
    if generated:
        click.echo(
            "Created the first admin. Log in as 'admin' with this password, shown only once:\n"
            f"    {generated}\n"
            "(set IMAGIFY_ADMIN_PASSWORD before the first run to choose it yourself)"
        )


@click.group()
def main() -> None:
    """Imagify: a tier-based image API."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64))
@one_line_errors
def serve(host: str, port: int, workers: int) -> None:
    """Serve the HTTP API with uvicorn."""
    import uvicorn

    app = container()
    announce_first_admin(app)
    click.echo(f"Imagify on http://{host}:{port}  (API docs at /)")
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
    )


@main.command()
@one_line_errors
def migrate() -> None:
    """Apply the database migrations (idempotent), then make sure an admin exists."""
    from imagify.adapters.sql.migrate import upgrade

    app = container()
    upgrade(app.settings().database_url)
    click.echo("database is up to date")
    announce_first_admin(app)


@main.group()
def users() -> None:
    """Inspect and change users."""


@users.command("create")
@click.argument("name")
@click.option("--password", required=True, help="the password, or '-' to read it from stdin")
@click.option("--tier", "tiers", multiple=True, help="a tier to hold (repeatable)")
@click.option("--admin", is_flag=True, help="make the user an admin")
@one_line_errors
def users_create(name: str, password: str, tiers: tuple[str, ...], admin: bool) -> None:
    """Create a user."""
    if password == "-":
        password = sys.stdin.readline().rstrip("\r\n")
    user = container().admin().create_user(CLI_ACTOR, name, password, tiers, admin)
    click.echo(f"created {user.username} (tiers: {', '.join(user.tiers) or 'none'})")


@users.command("list")
@one_line_errors
def users_list() -> None:
    """List users with their tiers."""
    admin = container().admin()
    after, more = None, True
    while more:
        page, more = admin.list_users(after)
        for user in page:
            flag = " [admin]" if user.is_admin else ""
            click.echo(f"{user.username}{flag}\t{', '.join(user.tiers) or '-'}")
        after = page[-1].username if page else None


@users.command("set-tiers")
@click.argument("name")
@click.argument("tiers", nargs=-1)
@one_line_errors
def users_set_tiers(name: str, tiers: tuple[str, ...]) -> None:
    """Replace a user's tiers."""
    user = container().admin().update_user(CLI_ACTOR, name, tiers=tiers)
    click.echo(f"{user.username}: {', '.join(user.tiers) or 'no tiers'}")


@main.group()
def tiers() -> None:
    """Inspect and create tiers."""


@tiers.command("list")
@one_line_errors
def tiers_list() -> None:
    """List tiers with their permissions."""
    for tier in container().admin().list_tiers():
        click.echo(f"{tier.name}\t{' '.join(tier.permissions.sorted()) or '-'}")


@tiers.command("create")
@click.argument("name")
@click.option("--thumbnail", "heights", multiple=True, type=int, help="a thumbnail height (repeatable)")
@click.option("--original", is_flag=True, help="grant access to original images")
@click.option("--expiring-links", is_flag=True, help="grant creating expiring links")
@one_line_errors
def tiers_create(name: str, heights: tuple[int, ...], original: bool, expiring_links: bool) -> None:
    """Create a tier."""
    codenames = [f"thumbnail:{h}" for h in heights]
    codenames += ["can_access_original_image"] if original else []
    codenames += ["can_generate_expiring_link"] if expiring_links else []
    tier = container().admin().create_tier(CLI_ACTOR, name, codenames)
    click.echo(f"created tier {tier.name}: {' '.join(tier.permissions.sorted()) or 'no permissions'}")


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


if __name__ == "__main__":
    main()
