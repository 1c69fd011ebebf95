"""What every `imagify` command shares: one-line errors, the composition root, the password prompt."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from sqlalchemy import make_url
from sqlalchemy.exc import SQLAlchemyError

from imagify.adapters.sql.unit_of_work import sqlite_file
from imagify.domain.errors import DomainError, InvalidInput
from imagify.entrypoints.container import Container, build_container
from imagify.settings import Settings, SettingsError, load_settings

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
            where = f" on {database_name(_built[-1].settings())}" if _built else ""
            _fail(f"database error{where} ({reason}); is it reachable and migrated (imagify migrate)?")
        finally:
            _built.clear()  # one command's containers, never the next one's

    return wrapper


_built: list[Container] = []  # what this command built, for _warn_if_unpublished


# The data folder `make run` uses: `var` beside pyproject.toml in a source checkout.
CHECKOUT = Path(__file__).resolve().parents[4]
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

