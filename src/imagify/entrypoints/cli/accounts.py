"""`imagify users ...` and `imagify tiers ...`: the admin use cases from the command line."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from imagify.domain.errors import InvalidInput
from imagify.domain.permissions import EXPIRING_LINKS, FORMAT_CODENAMES, ORIGINAL_ACCESS, thumbnail_codename
from imagify.domain.quotas import LIMIT_NAMES, Limits
from imagify.entrypoints.cli.common import CLI_ACTOR, PASSWORD_HELP, container, one_line_errors, read_password


@click.group()
def users() -> None:
    """Inspect and change users."""


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


@click.group()
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
