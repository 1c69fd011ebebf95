"""Structured logs: one JSON object per line, with any `extra=` fields as keys."""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import msgspec

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "color_message"}

# The id of the HTTP request being served, set by the observability middleware, so that
# every line logged while serving it (in the event loop or a worker thread) carries it.
request_id: ContextVar[str | None] = ContextVar("imagify_request_id", default=None)


class JsonFormatter(logging.Formatter):
    """Cheap enough for one line per request: msgspec encodes, the time's second is reused."""

    def __init__(self) -> None:
        super().__init__()
        self._encoder = msgspec.json.Encoder(enc_hook=str)  # str() what JSON has no type for
        self._second: tuple[float, str] = (-1.0, "")  # the last second formatted, and its text

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self._time(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD:
                entry[key] = value
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return self._encoder.encode(entry).decode()

    def _time(self, created: float) -> str:
        """ISO 8601 in UTC to the millisecond, e.g. 2026-12-01T19:25:37.123+00:00."""
        second, fraction = divmod(created, 1.0)
        cached, text = self._second  # one tuple: threads never see one second's text with another's
        if second != cached:
            text = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
            self._second = (second, text)
        return f"{text}.{min(int(fraction * 1000), 999):03d}+00:00"


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
    # Thread and process names are never written (see _STANDARD), and looking them up is
    # a good part of making a record: one is made per request.
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    logger = logging.getLogger("imagify")
    if any(isinstance(h.formatter, JsonFormatter) for h in logger.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False


def uvicorn_log_config(level: str = "INFO") -> dict[str, Any]:
    """uvicorn's `log_config`: its lines, and any library's warnings, in the same JSON lines."""
    return {
        "version": 1,
        "disable_existing_loggers": False,  # Imagify's own loggers keep their handler
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {"json": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}},
        "loggers": {
            "uvicorn": {"handlers": ["json"], "level": level, "propagate": False},
            "uvicorn.access": {"handlers": [], "level": level, "propagate": False},
        },
        "root": {"handlers": ["json"], "level": "WARNING"},
    }
