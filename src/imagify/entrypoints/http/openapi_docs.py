"""OpenAPI details Litestar cannot infer: the streamed upload body, the token form, error codes."""

from __future__ import annotations

from dataclasses import dataclass, field

from litestar.openapi import ResponseSpec
from litestar.openapi.spec import OpenAPIMediaType as MediaType, Operation, RequestBody, Schema
from litestar.openapi.spec.enums import OpenAPIType

from imagify.entrypoints.http.schemas import ErrorOut

WHY = {
    400: "Bad input: the detail says which value and why",
    401: "Missing, invalid or expired bearer token",
    403: "Your tiers do not grant this",
    404: "No such thing, or it belongs to someone else",
    409: "Conflicts with what exists",
    413: "Too many bytes or pixels",
    415: "Not JPEG, PNG or WebP, or not multipart/form-data",
    502: "The thumbnail renderer failed; try again",
    503: "A backing service is unavailable; try again",
}


def errors(*codes: int) -> dict[int, ResponseSpec]:
    return {c: ResponseSpec(ErrorOut, description=WHY[c]) for c in codes}


@dataclass
class UploadOperation(Operation):
    """The upload is parsed from the raw stream, so its body is declared here."""

    request_body: RequestBody | None = field(
        default_factory=lambda: RequestBody(
            required=True,
            content={
                "multipart/form-data": MediaType(
                    schema=Schema(
                        type=OpenAPIType.OBJECT,
                        required=["file"],
                        properties={
                            "file": Schema(
                                type=OpenAPIType.STRING,
                                format="binary",  # type: ignore[arg-type]
                                description="a JPEG, PNG or WebP image",
                            )
                        },
                    )
                )
            },
        )
    )


def _credentials(*, form: bool) -> Schema:
    props = {"username": Schema(type=OpenAPIType.STRING), "password": Schema(type=OpenAPIType.STRING)}
    if form:
        props["grant_type"] = Schema(type=OpenAPIType.STRING, description="'password' (optional)")
    return Schema(type=OpenAPIType.OBJECT, required=["username", "password"], properties=props)


@dataclass
class TokenOperation(Operation):
    """The token route takes JSON, and the OAuth2 password form used by the docs page."""

    request_body: RequestBody | None = field(
        default_factory=lambda: RequestBody(
            required=True,
            content={
                "application/json": MediaType(schema=_credentials(form=False)),
                "application/x-www-form-urlencoded": MediaType(schema=_credentials(form=True)),
            },
        )
    )


@dataclass
class LinkOperation(Operation):
    """The link body is decoded strictly by hand (no 300.0, no "300"), so declared here."""

    request_body: RequestBody | None = field(
        default_factory=lambda: RequestBody(
            required=True,
            content={
                "application/json": MediaType(
                    schema=Schema(
                        type=OpenAPIType.OBJECT,
                        required=["seconds"],
                        properties={
                            "seconds": Schema(
                                type=OpenAPIType.INTEGER,
                                minimum=300,
                                maximum=30000,
                                description="how long the link works, in seconds",
                            )
                        },
                    )
                )
            },
        )
    )
