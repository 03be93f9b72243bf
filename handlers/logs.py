"""How miniship logs: text for people (the default), or one JSON object per line for log
collectors (MINISHIP_LOG_FORMAT=json), with the command, app, platform and release a line
is about added to it where there are some.

What is logged never holds a secret: messages are written without them, and the HTTP
clients' own loggers (which print request URLs, where platform tokens travel) are kept
at WARNING.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from contextvars import ContextVar
from typing import TextIO

from aiohttp.http_exceptions import HttpProcessingError
from pythonjsonlogger.json import JsonFormatter

__all__ = ["about", "quiet_bad_requests", "setup"]

_ABOUT: ContextVar[dict[str, str]] = ContextVar("miniship_log_about", default={})  # noqa: B039
FIELDS = ("command", "app", "platform", "release", "fleet")


@contextlib.contextmanager
def about(**fields: object) -> Iterator[None]:
    """Lines logged inside the block (in this task and those it starts) carry ``fields``
    (``command``, ``app``, ``platform``, ``release``, ``fleet``) in JSON logs."""
    token = _ABOUT.set({**_ABOUT.get(), **{k: str(v) for k, v in fields.items() if v}})
    try:
        yield
    finally:
        _ABOUT.reset(token)


class _About(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in _ABOUT.get().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


class _BadRequest(logging.Filter):
    """aiohttp answers a request it cannot parse (a NUL byte in a header, a broken request
    line) with a 400, then logs the parser's error at ERROR with a traceback. That is the
    sender's mistake, not miniship's: one warning line, without the echo of the bad bytes
    (the parser's message quotes the header, which may be a signature)."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError) and 400 <= exc.code < 500:
            peer = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
            why = (exc.message or type(exc).__name__).splitlines()[0].rstrip(" :")
            record.msg = "refused a malformed HTTP request from %s (HTTP %d): %s"
            record.args = (peer, exc.code, why)
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.exc_info = record.exc_text = None
        return True


def quiet_bad_requests() -> None:
    """Install :class:`_BadRequest` on aiohttp's server logger (once)."""
    server = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, _BadRequest) for f in server.filters):
        server.addFilter(_BadRequest())


def setup(level: str, form: str, stream: TextIO | None = None) -> None:
    """Log to ``stream`` (stderr) at ``level``, as ``form`` ("text" or "json")."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(_About())
    if form == "json":
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
                timestamp=False,
            )
        )
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    # HTTP client logs name request URLs, and platform tokens travel in query strings
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
