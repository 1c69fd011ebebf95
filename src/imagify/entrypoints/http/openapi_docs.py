"""OpenAPI details Litestar cannot infer: bodies the routes read themselves, error codes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import msgspec
from litestar import Request
from litestar.openapi import ResponseSpec
from litestar.openapi.spec import Example, OpenAPIMediaType, OpenAPIResponse, Operation, RequestBody, Schema
from litestar.openapi.spec.enums import OpenAPIType

from imagify.domain.errors import InvalidInput
from imagify.entrypoints.http.schemas import ErrorOut

T = TypeVar("T")
IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp", "image/avif", "image/gif", "image/heic")

WHY = {
    400: "Bad input: the detail says which value and why",
    401: "Missing, invalid, expired or logged-out bearer token",
    403: "Your tiers do not grant this",
    404: "No such thing, or it belongs to someone else",
    408: "The body stopped arriving before it was whole; send it again without pausing",
    409: "Conflicts with what exists",
    413: "Too many bytes (the body or the image) or pixels",
    415: "Not JPEG, PNG, WebP, GIF, HEIC or AVIF, or not multipart/form-data",
    502: "The thumbnail renderer failed; try again",
    503: "A backing service is unavailable; try again",
}


# What each error looks like, so the examples read like real answers.
ERROR_EXAMPLES = {
    400: "thumbnail height must be between 1 and 4096, got 5000",
    401: "the bearer token has expired; log in again",
    403: "your tiers do not include 400px thumbnails (allowed heights: 200)",
    404: "no image with id '0f8e3c5a9b7d4e21a6c3f0b2d8e1a7c4'",
    408: "the upload sent nothing for 30 seconds; send the whole body without pausing",
    409: "a tier named 'photographers' already exists",
    413: "the upload is larger than the limit of 20971520 bytes",
    415: "not a JPEG, PNG, WebP, GIF, HEIC or AVIF image",
    502: "the thumbnail could not be rendered; try again",
    503: "storage is unavailable; try again",
}


def errors(*codes: int) -> dict[int, ResponseSpec]:
    return {
        c: ResponseSpec(
            ErrorOut,
            description=WHY[c],
            generate_examples=False,
            examples=[Example(summary=WHY[c], value={"status_code": c, "detail": ERROR_EXAMPLES[c]})],
        )
        for c in codes
    }


def declared_body(
    content: Callable[[], dict[str, Any]], description: str | None = None, example: Any = None
) -> type[Operation]:
    """An Operation whose request body is declared by hand (the route reads the body itself)."""

    @dataclass
    class DeclaredBodyOperation(Operation):
        def __post_init__(self) -> None:
            if self.request_body is None:
                media = {k: OpenAPIMediaType(schema=v, example=example) for k, v in content().items()}
                self.request_body = RequestBody(required=True, content=media, description=description)

    return DeclaredBodyOperation


def _object(required: list[str], **properties: Schema) -> Schema:
    return Schema(type=OpenAPIType.OBJECT, required=required, properties=properties)


def _string(description: str | None = None, **kwargs: Any) -> Schema:
    return Schema(type=OpenAPIType.STRING, description=description, **kwargs)


UploadOperation = declared_body(
    lambda: {
        "multipart/form-data": _object(
            ["file"], file=_string("a JPEG, PNG, WebP, GIF, HEIC or AVIF image", format="binary")  # type: ignore[arg-type]
        )
    },
    "The image as the form field 'file'",
)

TokenOperation = declared_body(
    lambda: {
        "application/json": _object(["username", "password"], username=_string(), password=_string()),
        "application/x-www-form-urlencoded": _object(
            ["username", "password"],
            username=_string(),
            password=_string(),
            grant_type=_string("'password' (optional)"),
        ),
    },
    "Your username and password; the answer's access_token goes in 'Authorization: Bearer <token>'",
    {"username": "admin", "password": "the-admin-password"},
)

LinkOperation = declared_body(
    lambda: {
        "application/json": _object(
            ["seconds"],
            seconds=Schema(
                type=OpenAPIType.INTEGER,
                minimum=300,
                maximum=30000,
                description="how long the link works, in seconds: 300 (5 minutes) to 30000 (about 8 hours)",
            ),
        )
    },
    "How long the link works: 300 to 30000 seconds",
    {"seconds": 600},
)


BODY_EXAMPLES: dict[str, Any] = {
    "TierIn": {"name": "photographers", "permissions": ["thumbnail:100", "thumbnail:600", "can_generate_expiring_link"]},
    "TierReplace": {"permissions": ["thumbnail:200", "thumbnail:400", "can_access_original_image"]},
    "TierPatch": {"add": ["thumbnail:800"], "remove": ["thumbnail:100"]},
    "UserIn": {"username": "ann", "password": "a-long-password", "tiers": ["premium"], "is_admin": False},
    "UserPatch": {"tiers": ["enterprise"]},
    "PasswordIn": {"current_password": "a-long-password", "new_password": "a-brand-new-password"},
}


def json_body_operation(struct: type) -> type[Operation]:
    """Declare `struct` as the JSON body of a route that decodes it with strict_json."""
    schema = msgspec.json.schema(struct)
    inline = schema.get("$defs", {}).get(struct.__name__, schema)
    return declared_body(
        lambda: {"application/json": inline}, inline.get("description"), BODY_EXAMPLES.get(struct.__name__)
    )


async def strict_json(request: Request, struct: type[T], example: str) -> T:
    """Decode the body as `struct` with no coercion ("300" is not 300, "yes" is not true)."""
    try:
        return msgspec.json.decode(await request.body(), type=struct, strict=True)
    except msgspec.DecodeError as error:
        raise InvalidInput(f"send JSON like {example}: {error}") from None


NEGOTIATED = (
    "The thumbnail in the best format Accept names (image/avif, image/webp, by q; */* names "
    "none) and your tiers grant (format:webp, format:avif), else the original's format (JPEG "
    "for HEIC and AVIF, PNG for GIF); ?format= overrides. Negotiated answers carry Vary: Accept "
    "and each format has its own ETag"
)


def image_bytes_operation(*, ranges: bool = False, redirects: bool = False, negotiated: bool = False) -> type[Operation]:
    """An Operation documenting image bytes: 200 (and 206) in any image type, 304, 302."""

    @dataclass
    class ImageBytesOperation(Operation):
        def __post_init__(self) -> None:
            responses = dict(self.responses or {})
            image = {t: OpenAPIMediaType(schema=_string(format="binary")) for t in IMAGE_TYPES}  # type: ignore[arg-type]
            responses["200"] = OpenAPIResponse(description=NEGOTIATED if negotiated else "The image bytes", content=image)
            responses["304"] = OpenAPIResponse(description="Not modified: the If-None-Match ETag is current")
            if ranges:
                responses["206"] = OpenAPIResponse(description="The bytes of the Range asked for", content=image)
            if redirects:
                responses["302"] = OpenAPIResponse(
                    description="IMAGIFY_SERVE_MODE=redirect: a short-lived presigned S3 URL in Location"
                )
            self.responses = responses

    return ImageBytesOperation
