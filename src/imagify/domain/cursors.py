"""Opaque page cursors: the text a listing continues after, base64url without padding."""

from __future__ import annotations

import base64
import binascii

from imagify.domain.errors import InvalidInput


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
