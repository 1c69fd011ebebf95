"""Thumbnail output formats: the original's default, and what a request negotiates.

A thumbnail is JPEG, PNG, WebP or AVIF. Without a choice it keeps the original's format
(JPEG stays JPEG, PNG stays PNG, WebP stays WebP; HEIC and AVIF become JPEG, GIF becomes
PNG). WebP and AVIF are served when the caller's tiers grant them (`format:webp`,
`format:avif`) and the request admits them: by name in `Accept`, or `?format=`.
"""

from __future__ import annotations

from collections.abc import Collection

from imagify.domain.errors import Forbidden, InvalidInput

FORMATS = ("jpeg", "png", "webp", "avif")
GRANTED = ("webp", "avif")  # the formats a tier must grant; JPEG and PNG are everyone's
CONTENT_TYPES = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp", "avif": "image/avif"}
FORMAT_OF = {content_type: name for name, content_type in CONTENT_TYPES.items()}
_DEFAULT = {"image/png": "png", "image/webp": "webp", "image/gif": "png"}
_ALIASES = {"jpg": "jpeg"}


def default_format(original_content_type: str) -> str:
    """The thumbnail format of an original when nothing better is negotiated."""
    return _DEFAULT.get(original_content_type, "jpeg")


def accept_bucket(accept: str | None) -> tuple[str, ...]:
    """The granted-by-tier formats an `Accept` header names with q > 0, best first.

    Only a format named outright counts: `*/*` and `image/*` are what every client sends,
    including those that cannot decode AVIF. The answer is one of a handful of buckets, so
    whatever caches on it is not split per browser.
    """
    if not accept:
        return ()
    weights: dict[str, float] = {}
    for part in accept.split(","):
        media, *params = part.split(";")
        name = media.strip().lower().removeprefix("image/")
        if name not in GRANTED or not media.strip().lower().startswith("image/"):
            continue
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = 0.0
        weights[name] = max(q, weights.get(name, 0.0))
    # Ties go to AVIF: smaller at the same quality.
    return tuple(sorted((n for n, q in weights.items() if q > 0), key=lambda n: (-weights[n], n != "avif")))


def negotiate(
    original_content_type: str, granted: Collection[str], accept: str | None, explicit: str | None
) -> str:
    """The thumbnail format for this request; raise InvalidInput or Forbidden for a bad `?format=`."""
    if explicit is not None:
        name = _ALIASES.get(explicit.strip().lower(), explicit.strip().lower())
        if name not in FORMATS:
            raise InvalidInput(f"'format' must be one of {', '.join(FORMATS)}, got {explicit!r}")
        if name in GRANTED and name not in granted:
            raise Forbidden(
                f"your tiers do not include {name.upper()} thumbnails "
                f"(granted: {', '.join(sorted(granted)) or 'none'}, besides jpeg and png)"
            )
        return name
    for name in accept_bucket(accept):
        if name in granted:
            return name
    return default_format(original_content_type)
