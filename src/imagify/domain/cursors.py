"""Pages and their opaque cursors: the text a listing continues after, base64url without
padding."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import UTC, datetime

from imagify.domain.errors import InvalidInput
from imagify.domain.model import Image
from imagify.domain.ports import Cursor


def encode_cursor_text(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor_text(cursor: str) -> str:
    """The text inside a cursor; InvalidInput when it is not one this API handed out."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        text = base64.b64decode(padded, altchars=b"-_", validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    if not text:
        raise invalid_cursor()
    return text


def invalid_cursor() -> InvalidInput:
    return InvalidInput("'cursor' is not valid: pass the next_cursor of a previous page unchanged")


@dataclass(frozen=True)
class Page:
    items: list[Image]
    next_cursor: str | None


def encode_cursor(image: Image) -> str:
    return encode_cursor_text(f"{image.created_at.isoformat()}|{image.id}")


def decode_cursor(cursor: str) -> Cursor:
    text = decode_cursor_text(cursor)
    try:
        created_at, image_id = text.split("|", 1)
        when = datetime.fromisoformat(created_at)
        if when.tzinfo is None:  # every cursor handed out is in UTC
            raise ValueError(created_at)
        return Cursor(when.astimezone(UTC), image_id)
    except (ValueError, OverflowError):  # year 1 or 9999 with an offset leaves the calendar
        raise invalid_cursor() from None
