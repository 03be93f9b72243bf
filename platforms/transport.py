"""How the adapters' requests reach the platforms: aiohttp's connections, httpx's
vocabulary for timeouts and errors.

A platform question costs miniship less than a millisecond of its own work (issue 13);
httpx's default stack (httpcore's HTTP/1.1 state machine, h11 in pure Python, anyio's
streams, each read and write under a timeout scope of its own) cost about 0.8 ms a request
more, its client's machinery (a cookie jar, redirect and auth loops, the URL parsed again)
another 0.1 ms, and building an :class:`httpx.Request` and :class:`httpx.Response` for
each question another 0.06 ms. So the adapters send through two small pieces:

- :class:`Sender` hands each request straight to the transport and gives back an
  :class:`Answer` read whole (status, headers, body). Platform APIs set no cookies, are
  never followed across redirects (a 3xx is an answer like any other, as with httpx's
  default) and need no auth flow. Tests give it httpx's ``MockTransport`` or a wrapper of
  the real transport, which take and give httpx's objects as usual.
- :class:`Transport` is aiohttp's connection pool and its C HTTP parser, as an httpx
  transport too (:meth:`Transport.handle_async_request`). Every failure reaches the
  adapters as an httpx error (:func:`httpx_errors`), and httpx's timeouts are what the
  adapters set, so they turn both into their typed :class:`~platforms.errors.PlatformError`
  as before.

Connections: at most ``max_connections`` in use at once (a request beyond waits, at most
the ``pool`` timeout: :class:`httpx.ConnectTimeout`), idle ones kept ``keepalive_expiry``
seconds, the one used last taken first; one the server closed, or that failed or was
cancelled mid-answer, is never reused (aiohttp's connector). Every request is sent once:
aiohttp's own retry of a GET whose connection dropped is off. HTTP/1.1 only. A proxy
named in the environment (``HTTPS_PROXY``, ``HTTP_PROXY``, ``NO_PROXY``) is used, as
httpx would.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import json
import urllib.request
from collections.abc import Iterator, Mapping
from typing import Any

import aiohttp
import httpx
import yarl

__all__ = ["CONNECTIONS", "TIMEOUT", "Answer", "Sender", "Transport", "httpx_errors"]

CONNECTIONS = httpx.Limits(max_connections=256, max_keepalive_connections=256)
"""As many connections kept open as a watch round or fleet run has calls in flight (the
settings allow 256), in aiohttp's pool (whose checkout does not grow with the pool,
unlike httpcore's)."""

TIMEOUT = httpx.Timeout(15.0, connect=5.0)
"""A platform request's timeouts unless the adapter is given others (tests shorten them)."""

USER_AGENT = "miniship"

_ERRORS: tuple[tuple[type[BaseException], type[httpx.TransportError]], ...] = (
    # most specific first: the first that matches is taken
    (aiohttp.ConnectionTimeoutError, httpx.ConnectTimeout),  # no connection in time
    (aiohttp.SocketTimeoutError, httpx.ReadTimeout),
    (aiohttp.ServerTimeoutError, httpx.ReadTimeout),
    (TimeoutError, httpx.ReadTimeout),
    (aiohttp.ClientProxyConnectionError, httpx.ProxyError),
    (aiohttp.ClientHttpProxyError, httpx.ProxyError),
    (aiohttp.ClientConnectorError, httpx.ConnectError),  # refused, DNS, TLS handshake
    (aiohttp.ServerDisconnectedError, httpx.RemoteProtocolError),  # hung up, no answer
    (aiohttp.ClientPayloadError, httpx.ReadError),  # the body cut short or malformed
    (aiohttp.ClientResponseError, httpx.RemoteProtocolError),  # not a valid HTTP answer
    (aiohttp.InvalidUrlClientError, httpx.UnsupportedProtocol),
    (aiohttp.ClientOSError, httpx.NetworkError),
    (aiohttp.ClientConnectionError, httpx.NetworkError),
    (aiohttp.ClientError, httpx.TransportError),
)


def _httpx_error(exc: BaseException) -> type[httpx.TransportError]:
    for cause, error in _ERRORS:
        if isinstance(exc, cause):
            return error
    raise AssertionError(f"no httpx error for {type(exc).__name__}")  # every one has its row


@contextlib.contextmanager
def httpx_errors() -> Iterator[None]:
    """Whatever aiohttp raises inside, an :class:`httpx.TransportError` comes out, chosen
    by what the aiohttp exception is, with it as the cause. The message is the exception's
    type only: aiohttp's text may carry the URL, and with it a token in the query."""
    try:
        yield
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise _httpx_error(exc)(type(exc).__name__) from exc


@dataclasses.dataclass(frozen=True, slots=True)
class Answer:
    """A platform's answer, read whole: what the adapters read of it."""

    status_code: int
    headers: Mapping[str, str]
    """Case-insensitive, as HTTP's header names are."""
    content: bytes
    reason: str = ""

    def json(self) -> Any:
        """The body as JSON (its UTF encoding detected, as httpx does); a body that is not
        JSON raises :class:`ValueError`."""
        return json.loads(self.content)


@functools.lru_cache(maxsize=2048)
def _target(url: str) -> yarl.URL:
    """``url`` as httpx reads it (checked character by character: :class:`httpx.InvalidURL`
    if it cannot be read, percent-encoded where it must be), for aiohttp to send as is;
    from those read lately, since the same URLs come back round after round (an app's
    question carries the same token for two hours; Alipay's gateway URL is always the
    same) and reading one costs about 40 µs. Two thousand of them hold about 2 MB."""
    return yarl.URL(str(httpx.URL(url)), encoded=True)


@functools.lru_cache(maxsize=64)
def _bounds(
    connect: float | None, read: float | None, write: float | None, pool: float | None
) -> tuple[float | None, aiohttp.ClientTimeout]:
    """httpx's four timeouts as aiohttp's, and the bound of a whole exchange: aiohttp has
    no write timeout, so a server that stops reading a large body would hold the request
    for ever; the exchange is bounded by the sum of the four."""
    total = sum(v for v in (connect, read, write, pool) if v is not None) or None
    return total, aiohttp.ClientTimeout(sock_connect=connect, sock_read=read, connect=pool)


class Transport(httpx.AsyncBaseTransport):
    """An httpx transport over aiohttp's connections (see the module), each answer read
    whole before it is returned.

    Its aiohttp session is made at the first request, in the loop that sends it, and
    closed by :meth:`aclose`. It keeps no cookies; the request's own headers are sent.
    """

    def __init__(self, *, limits: httpx.Limits) -> None:
        self.limits = limits
        self._ssl = httpx.create_ssl_context()  # httpx's trust store (certifi, SSL_CERT_FILE)
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self.limits.max_connections or 0,  # 0: no limit
            keepalive_timeout=self.limits.keepalive_expiry,
            ssl=self._ssl,
        )
        # the environment's proxies (and NO_PROXY) read at each request, as httpx would,
        # only if it names one at all: reading it costs a request a little every time
        proxied = any(k != "no" for k in urllib.request.getproxies())
        session = aiohttp.ClientSession(
            connector=connector, cookie_jar=aiohttp.DummyCookieJar(), trust_env=proxied
        )
        # aiohttp sends a GET (any idempotent method) once more when its connection drops
        # before the answer (RFC 9112 §9.3.1), as its own test client turns off here too:
        # WeChat's rollback, withdraw and gray revert are GETs that change things, and
        # whether to ask again is the adapters' decision (a change's lost answer is
        # OutcomeUnknown, checked, never sent twice)
        session._retry_connection = False
        return session

    async def exchange(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | list[tuple[str, str]],
        body: bytes | None,
        timeouts: Mapping[str, float | None],
        *,
        decode: bool = True,
    ) -> Answer:
        """Send one request and read its answer whole: the adapters' way in (through
        :class:`Sender`), without building httpx's request and answer objects (about 60 µs
        a question). ``timeouts`` are httpx's (:meth:`httpx.Timeout.as_dict`); ``decode``
        (off for :meth:`handle_async_request`, where httpx decodes) undoes a
        ``Content-Encoding``. Failures raise httpx's errors, as httpx's own transport."""
        if self._session is None:
            self._session = self._open()
        total, bounds = _bounds(**timeouts)
        answered = False
        try:
            async with asyncio.timeout(total):
                with httpx_errors():
                    async with self._session.request(
                        method,
                        _target(url),
                        headers=headers,
                        data=body or None,
                        allow_redirects=False,
                        auto_decompress=decode,
                        timeout=bounds,
                    ) as answer:
                        answered = True
                        content = await answer.read()
        except TimeoutError as exc:  # the bound: the body not taken, or the answer trickling
            raise (httpx.ReadTimeout if answered else httpx.WriteTimeout)("TimeoutError") from exc
        return Answer(answer.status, answer.headers, content, answer.reason or "")

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """The same, as an httpx transport (for an :class:`httpx.AsyncClient`, or a test's
        wrapper of this transport)."""
        answer = await self.exchange(
            request.method,
            str(request.url),
            [(k, v) for k, v in request.headers.multi_items() if k != "transfer-encoding"],
            await request.aread(),
            request.extensions.get("timeout", {}),
            decode=False,
        )
        extensions: dict[str, Any] = {"http_version": b"HTTP/1.1"}
        if answer.reason:
            extensions["reason_phrase"] = answer.reason.encode("latin-1", "replace")
        return httpx.Response(
            answer.status_code,
            headers=list(answer.headers.items()),
            content=answer.content,
            request=request,
            extensions=extensions,
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


class Sender:
    """How an adapter sends: each request handed straight to ``transport`` with the
    adapter's timeouts, its :class:`Answer` read whole (see the module: no cookies, no
    redirects followed, no auth flow); ``transport`` is :class:`Transport` unless given
    (tests give httpx's ``MockTransport`` or a wrapper of the real one, which get
    :class:`httpx.Request` objects). Failures on the way raise httpx's errors; a URL httpx
    cannot read raises :class:`httpx.InvalidURL`."""

    def __init__(
        self,
        transport: httpx.AsyncBaseTransport | None = None,
        *,
        timeout: float | httpx.Timeout = TIMEOUT,
    ) -> None:
        self.transport = transport or Transport(limits=CONNECTIONS)
        self._timeout = httpx.Timeout(timeout).as_dict()

    async def request(
        self,
        method: str,
        url: str,
        *,
        content: bytes | None = None,
        data: Mapping[str, str] | None = None,
        files: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> Answer:
        headers = {"User-Agent": USER_AGENT, **(headers or {})}
        if files is not None:  # multipart, encoded by httpx
            form = httpx.Request(method, url, data=data, files=files)
            content = form.read()
            headers["Content-Type"] = form.headers["Content-Type"]
        elif data is not None:
            # encoded by yarl's quoter (in C), five times faster than urllib's urlencode,
            # which httpx uses; characters a query may carry (":", ",", "/") are kept
            content = yarl.URL.build(query=data).raw_query_string.encode("ascii")
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        if isinstance(self.transport, Transport):
            return await self.transport.exchange(method, url, headers, content, self._timeout)
        request = httpx.Request(
            method, url, content=content, headers=headers, extensions={"timeout": self._timeout}
        )
        response = await self.transport.handle_async_request(request)
        try:
            await response.aread()
        finally:
            await response.aclose()
        return Answer(
            response.status_code, response.headers, response.content, response.reason_phrase
        )

    async def aclose(self) -> None:
        await self.transport.aclose()

    async def __aenter__(self) -> Sender:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
