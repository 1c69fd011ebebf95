"""The `imagify` command: serve, migrate, and manage users and tiers through the use cases."""

from __future__ import annotations

import errno
import functools
import logging
import socket
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import click
from sqlalchemy import make_url
from sqlalchemy.exc import SQLAlchemyError

from imagify.adapters.sql.unit_of_work import sqlite_file
from imagify.domain.errors import DomainError, InvalidInput
from imagify.domain.model import check_password
from imagify.domain.permissions import EXPIRING_LINKS, FORMAT_CODENAMES, ORIGINAL_ACCESS, thumbnail_codename
from imagify.domain.quotas import LIMIT_NAMES, Limits
from imagify.entrypoints.container import Container, build_container
from imagify.logs import configure_logging, uvicorn_log_config
from imagify.settings import Settings, SettingsError, load_settings

CLI_ACTOR = "cli"
# uvicorn's supervisor pings each worker and kills one that does not answer within this
# many seconds. A worker answers only once it has imported the app: about 2 s alone, and
# past uvicorn's default of 5 s when 4 start at once on 2 busy cores, so a worker was
# killed at start-up ("Child process died") and started again.
WORKER_HEALTHCHECK_SECONDS = 60
log = logging.getLogger("imagify.serve")


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
            where = f" on {database_name(_built[-1].settings())}" if _built else ""
            _fail(f"database error{where} ({reason}); is it reachable and migrated (imagify migrate)?")
        finally:
            _built.clear()  # one command's containers, never the next one's

    return wrapper


_built: list[Container] = []  # what this command built, for _warn_if_unpublished


# The data folder `make run` uses: `var` beside pyproject.toml in a source checkout.
CHECKOUT = Path(__file__).resolve().parents[3]
MAKE_RUN_DATA = CHECKOUT / "var" if (CHECKOUT / "pyproject.toml").is_file() else None


def container(creating: bool = False) -> Container:
    """The composition root for one command; only `creating` ones may start a new SQLite file."""
    settings = load_settings()
    _check_data_folder(settings, creating)
    _built.append(build_container(settings))
    return _built[-1]


def database_name(settings: Settings) -> str:
    """The database a command opens, as a person can find it: a file path, or a URL without password."""
    file = sqlite_file(settings.database_url)
    if file is not None:
        return str(file.resolve())
    return make_url(settings.database_url).render_as_string(hide_password=True)


def _check_data_folder(settings: Settings, creating: bool) -> None:
    """Run from another folder, `./var` is not the data `make run` made: say so, never create it silently."""
    file = sqlite_file(settings.database_url)
    if file is None or file.exists():
        return
    hint = f" (`make run` uses {MAKE_RUN_DATA})" if MAKE_RUN_DATA and MAKE_RUN_DATA != file.parent.resolve() else ""
    if not creating:
        raise InvalidInput(
            f"no database at {file.resolve()}{hint}: run imagify from the folder that holds your "
            "data, set IMAGIFY_DATA_DIR, or create one here with imagify migrate"
        )
    if not settings.data_path.exists() and settings.data_path.resolve() != MAKE_RUN_DATA:
        click.echo(f"warning: creating a new, empty data folder {settings.data_path.resolve()}{hint}", err=True)


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


@main.group()
def users() -> None:
    """Inspect and change users."""


PASSWORD_HELP = "the password, or '-' to read one line from stdin; asked for (hidden) when left out on a terminal"


def stdin_is_terminal() -> bool:
    return sys.stdin.isatty()


def read_password(password: str | None) -> str:
    """`--password P`, `--password -` (one line from stdin), or a hidden prompt on a terminal."""
    if password == "-":
        return sys.stdin.readline().rstrip("\r\n")
    if password is not None:
        return password
    if not stdin_is_terminal():
        raise InvalidInput("no terminal to ask for the password: give --password - and pipe it on stdin")
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))


@users.command("create")
@click.argument("name")
@click.option("--password", help=PASSWORD_HELP)
@click.option("--tier", "tiers", multiple=True, help="a tier to hold (repeatable)")
@click.option("--admin", is_flag=True, help="make the user an admin")
@one_line_errors
def users_create(name: str, password: str | None, tiers: tuple[str, ...], admin: bool) -> None:
    """Create a user."""
    user = container().admin().create_user(CLI_ACTOR, name, read_password(password), tiers, admin)
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


@users.command("show")
@click.argument("name")
@one_line_errors
def users_show(name: str) -> None:
    """Show a user's tiers and the permissions they add up to."""
    user = container().admin().get_user(name)
    click.echo(f"user:        {user.username}{' [admin]' if user.is_admin else ''}")
    click.echo(f"tiers:       {', '.join(user.tiers) or 'none'}")
    click.echo(f"permissions: {' '.join(user.permissions.sorted()) or 'none'}")
    click.echo(f"usage:       {user.usage.images} images, {user.usage.storage_bytes} bytes")
    click.echo(f"limits:      {_limits_text(user.limits)}")


def _limits_text(limits: Limits) -> str:
    return " ".join(f"{name}={'unlimited' if v is None else v}" for name, v in limits.as_dict().items())


@users.command("set-tiers")
@click.argument("name")
@click.argument("tiers", nargs=-1)
@click.option("--none", "no_tiers", is_flag=True, help="remove every tier from the user")
@one_line_errors
def users_set_tiers(name: str, tiers: tuple[str, ...], no_tiers: bool) -> None:
    """Replace a user's tiers (--none to remove them all)."""
    if not tiers and not no_tiers:
        raise InvalidInput("name the tiers the user should hold, or give --none to remove every tier")
    if tiers and no_tiers:
        raise InvalidInput("give either tiers or --none, not both")
    user = container().admin().update_user(CLI_ACTOR, name, tiers=tiers)
    click.echo(f"{user.username}: {', '.join(user.tiers) or 'no tiers'}")


@users.command("set-password")
@click.argument("name")
@click.option("--password", help=PASSWORD_HELP)
@one_line_errors
def users_set_password(name: str, password: str | None) -> None:
    """Set a user's password (asked for without echo on a terminal)."""
    user = container().admin().update_user(CLI_ACTOR, name, password=read_password(password))
    click.echo(f"{user.username}: password changed")


@users.command("delete")
@click.argument("name")
@one_line_errors
def users_delete(name: str) -> None:
    """Delete a user with their images, thumbnails and links."""
    container().admin().delete_user(CLI_ACTOR, name)
    click.echo(f"deleted user {name} and their images")


@main.group()
def tiers() -> None:
    """Inspect and change tiers."""


@tiers.command("list")
@one_line_errors
def tiers_list() -> None:
    """List tiers with their permissions."""
    for tier in container().admin().list_tiers():
        click.echo(f"{tier.name}\t{' '.join(tier.permissions.sorted()) or '-'}")


@tiers.command("show")
@click.argument("name")
@one_line_errors
def tiers_show(name: str) -> None:
    """Show what a tier grants."""
    tier = container().admin().get_tier(name)
    p = tier.permissions
    click.echo(f"tier:           {tier.name}")
    click.echo(f"thumbnails:     {', '.join(map(str, p.thumbnail_heights)) or 'none'}")
    click.echo(f"original:       {'yes' if p.original_access else 'no'}")
    click.echo(f"expiring links: {'yes' if p.expiring_links else 'no'}")
    click.echo(f"formats:        {', '.join(['jpeg', 'png', *p.formats])}")
    click.echo(f"permissions:    {' '.join(p.sorted()) or 'none'}")
    click.echo(f"limits:         {_limits_text(tier.limits)}")


THUMBNAIL_HELP = "a thumbnail height in pixels, 1 to 4096 (repeatable)"


# The on/off options of `tiers create` and `tiers edit`: option name -> the codename it grants.
SWITCHES = {"original": ORIGINAL_ACCESS, "expiring_links": EXPIRING_LINKS,
            "webp": FORMAT_CODENAMES[0], "avif": FORMAT_CODENAMES[1]}  # fmt: skip


def _switch_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--original/--no-original, --expiring-links/..., --webp/..., --avif/...: None when not given."""
    for name, codename in reversed(SWITCHES.items()):
        flag = name.replace("_", "-")
        command = click.option(f"--{flag}/--no-{flag}", name, default=None, help=f"grant or withdraw {codename}")(
            command
        )
    return command


class LimitValue(click.ParamType):
    """A limit on the command line: a non-negative integer, or 'none' for unlimited."""

    name = "N|none"

    def convert(self, value: object, param: click.Parameter | None, ctx: click.Context | None) -> object:
        if isinstance(value, int) or value is None:
            return value
        text = str(value).strip().lower()
        if text in ("none", "unlimited"):
            return UNLIMITED
        if not text.isdigit():
            self.fail(f"{value!r} is not a non-negative integer or 'none'", param, ctx)
        return int(text)


UNLIMITED = "unlimited"  # what LimitValue gives for 'none': remove the limit
LIMIT_HELP = "a limit (a non-negative integer, or 'none' to remove it)"


def _limit_options(command: Callable[..., Any]) -> Callable[..., Any]:
    for limit in reversed(LIMIT_NAMES):
        flag = "--" + limit.replace("_", "-")
        command = click.option(flag, limit, type=LimitValue(), default=None, help=LIMIT_HELP)(command)
    return command


def _limits_given(options: dict[str, object]) -> dict[str, object]:
    return {n: (None if v == UNLIMITED else v) for n, v in options.items() if n in LIMIT_NAMES and v is not None}


@tiers.command("create")
@click.argument("name")
@click.option("--thumbnail", "heights", multiple=True, type=int, help=THUMBNAIL_HELP)
@_switch_options
@_limit_options
@one_line_errors
def tiers_create(name: str, heights: tuple[int, ...], **options: Any) -> None:
    """Create a tier (unlimited unless limits are given)."""
    codenames = [thumbnail_codename(h) for h in heights]  # one message for 0 and -5 alike
    codenames += [codename for option, codename in SWITCHES.items() if options[option]]
    tier = container().admin().create_tier(CLI_ACTOR, name, codenames, _limits_given(options))
    click.echo(f"created tier {tier.name}: {' '.join(tier.permissions.sorted()) or 'no permissions'}")


@tiers.command("edit")
@click.argument("name")
@click.option("--thumbnail", "heights", multiple=True, type=int, help=THUMBNAIL_HELP + "; replaces the heights")
@_switch_options
@_limit_options
@one_line_errors
def tiers_edit(name: str, heights: tuple[int, ...], **options: Any) -> None:
    """Change a tier's permissions or limits; what is not given stays as it is."""
    given = _limits_given(options)
    add = [thumbnail_codename(h) for h in heights]
    add += [codename for option, codename in SWITCHES.items() if options[option]]
    remove = [codename for option, codename in SWITCHES.items() if options[option] is False]
    if not heights and not add and not remove and not given:
        raise InvalidInput(
            "nothing to change: give --thumbnail, --original/--no-original, --expiring-links/"
            "--no-expiring-links, --webp/--no-webp, --avif/--no-avif or a limit (--max-images N ...)"
        )
    admin = container().admin()
    if heights:  # the heights given replace the tier's: the others go
        shown = admin.get_tier(name).permissions.thumbnail_heights
        remove += [thumbnail_codename(h) for h in shown if h not in heights]
    # Added and removed in one transaction: what is not named here stays as it is.
    tier = admin.patch_tier(CLI_ACTOR, name, add=add, remove=remove, limits=given or None)
    click.echo(f"tier {tier.name}: {' '.join(tier.permissions.sorted()) or 'no permissions'}")
    click.echo(f"limits: {_limits_text(tier.limits)}")


@tiers.command("delete")
@click.argument("name")
@one_line_errors
def tiers_delete(name: str) -> None:
    """Delete a tier no user holds."""
    container().admin().delete_tier(CLI_ACTOR, name)
    click.echo(f"deleted tier {name}")


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
    app = container()

    def each(image: object, error: str | None) -> None:
        if error is not None:
            click.echo(f"{image.id}: {error}", err=True)  # type: ignore[attr-defined]

    try:
        report = app.placeholder_backfill().run(each)
    finally:
        app.decode_pool().close()
    click.echo(report.summary())


if __name__ == "__main__":
    main()
