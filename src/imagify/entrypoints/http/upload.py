"""Receive a multipart upload as a stream: spool the `file` part, stop at the byte limit."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from collections.abc import AsyncIterator
from typing import IO

import anyio
import multipart
from litestar import Request
from litestar.exceptions import HTTPException

from imagify.domain.errors import InvalidInput, TooLarge, UnsupportedFormat
from imagify.entrypoints.http.numbers import ascii_int

SPOOL_IN_MEMORY = 1024 * 1024
FORM_OVERHEAD = 64 * 1024  # boundaries, part headers and small fields around the file
MAX_PARTS = 32
MAX_HEADERS = 16  # per part


@dataclass
class Upload:
    filename: str | None
    file: IO[bytes]
    size: int


def _too_large(limit: int) -> TooLarge:
    return TooLarge(f"the upload is larger than the limit of {limit} bytes")


async def _chunks(request: Request, idle_seconds: int) -> AsyncIterator[bytes]:
    """The body's chunks; a 408 when the client sends nothing for `idle_seconds`."""
    stream = request.stream()
    try:
        while True:
            try:
                with anyio.fail_after(idle_seconds):
                    chunk = await anext(stream)
            except StopAsyncIteration:
                return
            except TimeoutError:
                unit = "second" if idle_seconds == 1 else "seconds"
                raise HTTPException(
                    status_code=408,
                    detail=f"the upload sent nothing for {idle_seconds} {unit}: send the body without pausing",
                    headers={"Connection": "close"},
                ) from None
            yield chunk
    finally:
        await stream.aclose()


async def receive_upload(request: Request, max_bytes: int, idle_seconds: int) -> Upload:
    content_type, options = multipart.parse_options_header(request.headers.get("content-type", ""))
    if content_type != "multipart/form-data" or not options.get("boundary"):
        raise UnsupportedFormat(
            "send the image as multipart/form-data with the image in the field 'file'"
        )
    declared = request.headers.get("content-length")
    if declared is not None:
        length = ascii_int(declared.strip())
        if length is None:
            raise InvalidInput(f"the Content-Length header must be a number of bytes, got {declared[:40]!r}")
        if length > max_bytes + FORM_OVERHEAD:
            raise _too_large(max_bytes)

    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)
    filename: str | None = None
    found = False
    received = 0
    writing = False
    try:
        parser = multipart.PushMultipartParser(
            options["boundary"], max_header_count=MAX_HEADERS, max_segment_count=MAX_PARTS
        )
        with parser:  # leaving the block checks the body was complete
            async for chunk in _chunks(request, idle_seconds):
                received += len(chunk)
                if received > max_bytes + FORM_OVERHEAD:
                    raise _too_large(max_bytes)
                for event in parser.parse(chunk):
                    if isinstance(event, multipart.MultipartSegment):
                        writing = event.name == "file" and not found
                        if writing:
                            found, filename = True, event.filename
                    elif event is None:
                        writing = False
                    elif writing:
                        if spool.tell() + len(event) > max_bytes:
                            raise _too_large(max_bytes)
                        spool.write(event)
    except multipart.ParserLimitReached as error:
        spool.close()
        raise InvalidInput(
            f"the multipart body has too many parts or part headers, or too long a header ({error}): "
            f"send one part 'file' of at most {MAX_HEADERS} headers"
        ) from None
    except multipart.MultipartError as error:
        spool.close()
        raise InvalidInput(f"the multipart body is malformed ({error}): send the image in the field 'file'") from None
    except BaseException:
        spool.close()
        raise
    if not found:
        spool.close()
        raise InvalidInput("the multipart body has no field 'file': send the image in 'file'")
    size = spool.tell()
    spool.seek(0)
    return Upload(filename, spool, size)
