"""The HTTP transport of the adapters' clients: httpx's client over aiohttp's connections.

A platform question costs miniship less than a millisecond of its own work; httpx's
default stack (httpcore's HTTP/1.1 state machine, h11 in pure Python, anyio's streams,
each read and write under a timeout scope of its own) cost about 0.8 ms a request more.
:class:`Transport` keeps httpx as the adapters' client (its requests, answers, timeouts
and errors, which the adapters and their tests speak) and hands each request to aiohttp
(``httpx-aiohttp``'s transport): aiohttp's connection pool and its C HTTP parser.

What it adds to ``httpx-aiohttp``: every failure reaches the adapters as an httpx error
(:func:`httpx_errors`), so they turn it into their typed :class:`~platforms.errors.
PlatformError` as before. ``httpx-aiohttp`` maps only some of aiohttp's exceptions (a
malformed answer, ``aiohttp.ClientResponseError``, passed through unmapped) and maps some
loosely (a server that hung up became a connect timeout); here each is mapped by what it
is, with the aiohttp exception kept as the cause.

Connections: at most ``max_connections`` in use at once (a request beyond waits, at most
the ``pool`` timeout: :class:`httpx.ConnectTimeout`), idle ones kept ``keepalive_expiry``
seconds, the one used last taken first; one the server closed, or that failed or was
cancelled mid-answer, is never reused (aiohttp's connector). Every request is sent once:
aiohttp's own retry of a GET whose connection dropped is off. HTTP/1.1 only, and no proxies:
:func:`client_transport` leaves an environment naming a proxy (``HTTPS_PROXY``…) to httpx's
own transport.
"""

from __future__ import annotations

import asyncio
import contextlib
import urllib.request
from collections.abc import AsyncIterator, Iterator

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

__all__ = ["Transport", "client_transport", "httpx_errors"]

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


def _httpx_error(exc: BaseException) -> type[httpx.TransportError] | None:
    for cause, error in _ERRORS:
        if isinstance(exc, cause):
            return error
    return None


@contextlib.contextmanager
def httpx_errors() -> Iterator[None]:
    """Whatever aiohttp raises inside, an :class:`httpx.TransportError` comes out, chosen
    by what the aiohttp exception is (also when ``httpx-aiohttp`` mapped it already).
    The message is the exception's type only: aiohttp's text may carry the URL, and with
    it a token in the query."""
    try:
        yield
    except httpx.HTTPError as exc:
        cause = exc.__cause__
        error = _httpx_error(cause) if cause is not None else None
        if error is None:
            raise
        # raised anew even when httpx-aiohttp chose the same type: its message is
        # aiohttp's, which names the URL ("Connection timeout to host http://…?access_token=…")
        raise error(type(cause).__name__) from cause
    except (aiohttp.ClientError, TimeoutError) as exc:
        error = _httpx_error(exc)
        assert error is not None  # every ClientError and TimeoutError has its row
        raise error(type(exc).__name__) from exc


class _Body(httpx.AsyncByteStream):
    """A response's body from aiohttp, its failures as httpx errors."""

    def __init__(self, inner: httpx.AsyncByteStream) -> None:
        self._inner = inner

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with httpx_errors():
            async for part in self._inner:
                yield part

    async def aclose(self) -> None:
        with httpx_errors():
            await self._inner.aclose()


class Transport(AiohttpTransport):
    """``httpx-aiohttp``'s transport whose every failure is an httpx error (see the module).

    Its aiohttp session is made at the first request, in the loop that sends it, and
    closed by :meth:`aclose` (the client's ``aclose``). It keeps no cookies (httpx does)
    and adds no headers (httpx sends its own).
    """

    def __init__(self, *, limits: httpx.Limits) -> None:
        super().__init__(limits=limits, client=self._session)

    def _session(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self.limits.max_connections or 0,  # 0: no limit
            keepalive_timeout=self.limits.keepalive_expiry,
            ssl=self.ssl_context,
        )
        session = aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar())
        # aiohttp sends a GET (any idempotent method) once more when its connection drops
        # before the answer (RFC 9112 §9.3.1), as its own test client turns off here too:
        # WeChat's rollback, withdraw and gray revert are GETs that change things, and
        # whether to ask again is the adapters' decision (a change's lost answer is
        # OutcomeUnknown, checked, never sent twice)
        session._retry_connection = False
        return session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        # aiohttp has no write timeout: a server that stops reading a large body would hold
        # the request for ever, so the whole exchange up to the answer's head is bounded
        # by the sum of the request's connect, pool, write and read timeouts
        limits = request.extensions.get("timeout", {})
        total = sum(v for v in limits.values() if v is not None) if limits else None
        try:
            async with asyncio.timeout(total or None):
                with httpx_errors():  # aiohttp's own timeouts (a read) mapped as such
                    response = await super().handle_async_request(request)
        except TimeoutError as exc:  # the bound: the body was not taken in time
            raise httpx.WriteTimeout("TimeoutError") from exc
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _Body(response.stream)
        return response


def client_transport(limits: httpx.Limits) -> Transport | None:
    """The transport for an adapter's client: :class:`Transport`, or ``None`` (httpx's own,
    which speaks proxies) when the environment names a proxy."""
    proxies = {k: v for k, v in urllib.request.getproxies().items() if k != "no"}
    return None if proxies else Transport(limits=limits)
