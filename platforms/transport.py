"""How the adapters' requests reach the platforms: httpx's requests and answers, carried
by aiohttp's connections.

A platform question costs miniship less than a millisecond of its own work (issue 13);
httpx's default stack (httpcore's HTTP/1.1 state machine, h11 in pure Python, anyio's
streams, each read and write under a timeout scope of its own) cost about 0.8 ms a request
more, and its client's machinery (a cookie jar, redirect and auth loops, the URL parsed
again) another 0.1 ms. So the adapters keep httpx's vocabulary — :class:`httpx.Request`,
:class:`httpx.Response`, its timeouts and errors, which the adapters and their tests speak
— and send through two small pieces:

- :class:`Sender` builds each request and hands it straight to an httpx transport, its
  answer read whole. Platform APIs set no cookies, are never followed across redirects
  (a 3xx is an answer like any other, as with httpx's default) and need no auth flow.
  Tests give it httpx's ``MockTransport`` or a wrapper of the real transport.
- :class:`Transport` is that transport: aiohttp's connection pool and its C HTTP parser.
  Every failure reaches the adapters as an httpx error (:func:`httpx_errors`), so they
  turn it into their typed :class:`~platforms.errors.PlatformError` as before.

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
import functools
import urllib.request
from collections.abc import Iterator, Mapping
from typing import Any

import aiohttp
import httpx
import yarl

__all__ = ["CONNECTIONS", "TIMEOUT", "Sender", "Transport", "httpx_errors"]

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

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._session is None:
            self._session = self._open()
        limits: Mapping[str, float | None] = request.extensions.get("timeout", {})
        # aiohttp has no write timeout: a server that stops reading a large body would hold
        # the request for ever, so the whole exchange is bounded by the sum of the
        # request's connect, pool, write and read timeouts
        total = sum(v for v in limits.values() if v is not None) or None
        body = await request.aread()
        headers = [(k, v) for k, v in request.headers.multi_items() if k != "transfer-encoding"]
        answered = False
        try:
            async with asyncio.timeout(total):
                with httpx_errors():
                    async with self._session.request(
                        request.method,
                        yarl.URL(str(request.url), encoded=True),  # httpx encoded it
                        headers=headers,
                        data=body or None,
                        allow_redirects=False,
                        auto_decompress=False,  # httpx decodes the body it is given
                        timeout=aiohttp.ClientTimeout(
                            sock_connect=limits.get("connect"),
                            sock_read=limits.get("read"),
                            connect=limits.get("pool"),
                        ),
                    ) as answer:
                        answered = True
                        content = await answer.read()
        except TimeoutError as exc:  # the bound: the body not taken, or the answer trickling
            raise (httpx.ReadTimeout if answered else httpx.WriteTimeout)("TimeoutError") from exc
        extensions: dict[str, Any] = {"http_version": b"HTTP/1.1"}
        if answer.reason:
            extensions["reason_phrase"] = answer.reason.encode("latin-1", "replace")
        return httpx.Response(
            answer.status,
            headers=answer.raw_headers,
            content=content,
            request=request,
            extensions=extensions,
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


_parsed = functools.lru_cache(maxsize=2048)(httpx.URL)
"""A URL as httpx reads it, from those read lately: the same URLs come back round after
round (an app's question carries the same token for two hours; Alipay's gateway URL is
always the same), and httpx checks each character of each URL it reads, about 40 µs for
a WeChat URL. Two thousand of them hold about 2 MB."""


class Sender:
    """How an adapter sends: each request built as an :class:`httpx.Request`, handed
    straight to ``transport`` with the adapter's timeouts, its answer read whole (see the
    module: no cookies, no redirects followed, no auth flow); ``transport`` is
    :class:`Transport` unless given. Failures on the way raise httpx's errors; a URL httpx
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
    ) -> httpx.Response:
        headers = {"User-Agent": USER_AGENT, **(headers or {})}
        if data is not None and files is None:
            # encoded by yarl's quoter (in C), five times faster than urllib's urlencode,
            # which httpx uses; characters a query may carry (":", ",", "/") are kept
            content = yarl.URL.build(query=data).raw_query_string.encode("ascii")
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            data = None
        request = httpx.Request(
            method,
            _parsed(url),
            content=content,
            data=data,
            files=files,
            headers=headers,
            extensions={"timeout": self._timeout},
        )
        response = await self.transport.handle_async_request(request)
        response.request = request
        try:
            await response.aread()
        finally:
            await response.aclose()
        return response

    async def aclose(self) -> None:
        await self.transport.aclose()

    async def __aenter__(self) -> Sender:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
