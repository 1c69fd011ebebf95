"""Whole numbers in paths and headers: ASCII digits only, and not too many of them.

`str.isdigit()` is true for '²', Arabic-Indic and full-width digits, which `int()` then
refuses or reads, and `int()` refuses more than 4300 digits: neither may reach a handler.
"""

from __future__ import annotations

MAX_DIGITS = 18  # below 2**63; more than any size or height this API handles


def ascii_int(text: str, max_digits: int = MAX_DIGITS) -> int | None:
    """The number `text` spells in 1 to `max_digits` ASCII digits, else None."""
    if 0 < len(text) <= max_digits and text.isascii() and text.isdigit():
        return int(text)
    return None
