"""What can go wrong in the domain, each kind carrying a message a person can act on."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error the use cases raise on purpose."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InvalidInput(DomainError):
    """The request is malformed or a value is out of range (400)."""


class NotAnImage(InvalidInput):
    """The upload is empty, truncated or not an image at all (400)."""


class Unauthorized(DomainError):
    """Missing, wrong or expired credentials (401)."""


class Forbidden(DomainError):
    """Authenticated, but the user's tiers do not grant this (403)."""


class QuotaExceeded(Forbidden):
    """The upload would take the user past one of their tiers' limits (403)."""


class NotFound(DomainError):
    """No such thing, or it belongs to someone else (404)."""


class Conflict(DomainError):
    """The change clashes with what exists (409)."""


class TooLarge(DomainError):
    """Too many bytes or too many pixels (413)."""


class UnsupportedFormat(DomainError):
    """An image, but not JPEG, PNG, WebP, GIF, HEIC or AVIF (415)."""


class RenderFailed(DomainError):
    """The thumbnail renderer failed or timed out (502)."""


class RenderTimedOut(RenderFailed):
    """The render ran past its time budget (502): trying another source would only wait again."""


class Unavailable(DomainError):
    """A backing service (database, storage, link store) cannot be reached (503)."""
