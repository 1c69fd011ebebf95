"""Structured logs: one JSON object per line, with any `extra=` fields as keys."""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}

# The id of the HTTP request being served, set by the observability middleware, so that
# every line logged while serving it (in the event loop or a worker thread) carries it.
request_id: ContextVar[str | None] = ContextVar("imagify_request_id", default=None)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def stamp_request_ids() -> None:
    """Give every log record made while a request is served its `request_id` (idempotent).

    Stamped when the record is made, in the thread serving the request, so a handler that
    formats later or elsewhere (a queue listener) still has it.
    """
    make = logging.getLogRecordFactory()
    if getattr(make, "stamps_request_id", False):
        return

    def stamped(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make(*args, **kwargs)
        current = request_id.get()
        if current is not None:
            record.request_id = current
        return record

    stamped.stamps_request_id = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(stamped)


def configure_logging(level: int = logging.INFO) -> None:
    """JSON lines on stderr for Imagify's own loggers (idempotent)."""
    # Our access line (imagify.access) replaces uvicorn's, which prints raw paths and query
    # strings: `/l/<token>` would put a live link token in the logs.
    logging.getLogger("uvicorn.access").disabled = True
    logger = logging.getLogger("imagify")
    if any(isinstance(h.formatter, JsonFormatter) for h in logger.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
