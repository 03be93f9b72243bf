"""The HTTP transport of the adapters' clients: httpx's own, over a connection pool whose
checkout takes the same time however many connections it keeps.

httpcore's pool (1.0.9, the newest) is most of miniship's CPU in a watch round: on every
request it polls each idle connection's socket (a system call each) and, for each idle
connection, counts all connections again, so a round with 32 calls in flight pays for
hundreds of checks per request. :class:`Pool` keeps the idle connections of each origin
in a stack instead and looks only at the one it takes:

- the connection used last is taken first (the one most likely still open); one whose
  keep-alive ran out (``keepalive_expiry``, by the injectable ``clock``) or that the server
  closed (httpcore's own check, one poll of that socket) is closed and the next one taken;
  the idle ones older than an expired one are closed with it, as they expired before it;
- at most ``max_connections`` requests are in flight, each on a connection of its own
  (HTTP/1.1); a request beyond waits for one to finish, at most the ``pool`` timeout
  (:class:`httpcore.PoolTimeout`, which httpx turns into :class:`httpx.PoolTimeout`);
- a connection goes back to its stack only when its response was read to the end and
  closed, so it is idle for certain; one in any other state (an error, a cancellation, a
  body left unread) is closed, never reused. At most ``max_keepalive_connections`` are
  kept idle; one coming back beyond that is closed.

:class:`Transport` is :class:`httpx.AsyncHTTPTransport` (how requests, answers and errors
cross between httpx and httpcore, TLS with the SSL context httpx makes) with this pool in
place of httpcore's. It speaks HTTP/1.1 only, and no proxies: :func:`client_transport`
leaves an environment naming a proxy (``HTTPS_PROXY``…) to httpx's own transport.
"""

from __future__ import annotations

import asyncio
import logging
import time
import urllib.request
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import httpcore
import httpx

__all__ = ["Pool", "Transport", "client_transport"]

log = logging.getLogger(__name__)

_Key = tuple[bytes, bytes, int]


def _key(origin: httpcore.Origin) -> _Key:
    """An origin as a dictionary key (httpcore's :class:`~httpcore.Origin` is not hashable)."""
    return origin.scheme, origin.host, origin.port


class Pool:
    """HTTP/1.1 connections per origin, the idle ones in a stack (see the module)."""

    def __init__(
        self,
        *,
        ssl_context: Any = None,
        max_connections: int | None = 100,
        max_keepalive_connections: int | None = 20,
        keepalive_expiry: float | None = 5.0,
        network_backend: httpcore.AsyncNetworkBackend | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ssl_context = ssl_context
        self._max_idle = max_keepalive_connections
        self._expiry = keepalive_expiry
        self._backend = network_backend or httpcore.AnyIOBackend()
        self._clock = clock
        self._slots = asyncio.Semaphore(max_connections) if max_connections else None
        self._idle: dict[_Key, deque[tuple[float, httpcore.AsyncHTTPConnection]]] = {}
        self._idle_count = 0
        self._busy: set[httpcore.AsyncHTTPConnection] = set()
        self._closed = False

    @property
    def idle(self) -> int:
        """How many connections wait idle for a request."""
        return self._idle_count

    @property
    def busy(self) -> int:
        """How many connections carry a request (or its unclosed response) now."""
        return len(self._busy)

    async def handle_async_request(self, request: httpcore.Request) -> httpcore.Response:
        if request.url.scheme not in (b"http", b"https"):
            raise httpcore.UnsupportedProtocol(
                f"Request URL has an unsupported protocol '{request.url.scheme.decode()}://'."
            )
        if self._closed:
            raise RuntimeError("the connection pool is closed")
        await self._acquire(request.extensions.get("timeout", {}).get("pool"))
        try:
            connection = await self._checkout(request.url.origin)
        except BaseException:
            self._release_slot()
            raise
        self._busy.add(connection)
        try:
            response = await connection.handle_async_request(request)
        except BaseException:
            await self._give_back(request.url.origin, connection)  # unknown state: closed
            raise
        return httpcore.Response(
            status=response.status,
            headers=response.headers,
            content=_Body(response.stream, self, request.url.origin, connection),
            extensions=response.extensions,
        )

    async def _acquire(self, wait: float | None) -> None:
        """Wait until a request may go (at most ``wait`` seconds; None: as long as it takes)."""
        if self._slots is None:
            return
        try:
            async with asyncio.timeout(wait):
                await self._slots.acquire()
        except TimeoutError:
            raise httpcore.PoolTimeout("no connection came free in time") from None

    def _release_slot(self) -> None:
        if self._slots is not None:
            self._slots.release()

    async def _checkout(self, origin: httpcore.Origin) -> httpcore.AsyncHTTPConnection:
        """The idle connection used last for ``origin`` if it is still good, else a new one
        (which connects when the request is sent)."""
        stack = self._idle.get(_key(origin))
        while stack:
            since, connection = stack.pop()
            self._idle_count -= 1
            if self._expired(since):
                stale = [connection, *(c for _, c in stack)]  # older still
                self._idle_count -= len(stack)
                stack.clear()
                await _close(*stale)
                break
            if connection.has_expired() or not connection.is_idle():
                await _close(connection)  # closed by the server meanwhile
                continue
            return connection
        return httpcore.AsyncHTTPConnection(
            origin=origin,
            ssl_context=self._ssl_context,
            keepalive_expiry=self._expiry,
            network_backend=self._backend,
        )

    def _expired(self, since: float) -> bool:
        return self._expiry is not None and self._clock() - since > self._expiry

    async def _give_back(
        self, origin: httpcore.Origin, connection: httpcore.AsyncHTTPConnection
    ) -> None:
        """A request is done with ``connection``: idle for certain, it goes back on its
        stack; anything else is closed. Never interrupted by a cancellation."""
        with anyio.CancelScope(shield=True):
            try:
                self._busy.discard(connection)
                stale: list[httpcore.AsyncHTTPConnection] = []
                if self._keep(connection):
                    stack = self._idle.setdefault(_key(origin), deque())
                    while stack and self._expired(stack[0][0]):
                        stale.append(stack.popleft()[1])
                        self._idle_count -= 1
                    stack.append((self._clock(), connection))
                    self._idle_count += 1
                else:
                    stale.append(connection)
                await _close(*stale)
            finally:
                self._release_slot()

    def _keep(self, connection: httpcore.AsyncHTTPConnection) -> bool:
        return (
            not self._closed
            and connection.is_idle()
            and not connection.is_closed()
            and (self._max_idle is None or self._idle_count < self._max_idle)
        )

    async def aclose(self) -> None:
        """Close every connection, idle or busy; a response still being read then fails."""
        self._closed = True
        every = [c for stack in self._idle.values() for _, c in stack] + [*self._busy]
        self._idle.clear()
        self._idle_count = 0
        self._busy.clear()
        await _close(*every)

    async def __aenter__(self) -> Pool:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


async def _close(*connections: httpcore.AsyncHTTPConnection) -> None:
    """Close ``connections``, all of them even if cancelled meanwhile."""
    with anyio.CancelScope(shield=True):
        for connection in connections:
            try:
                await connection.aclose()
            except Exception as exc:  # a socket that fails to close is given up all the same
                log.debug("closing a connection failed: %s", type(exc).__name__)


class _Body:
    """A response's body; closing it gives the connection back to the pool."""

    def __init__(
        self,
        stream: Any,
        pool: Pool,
        origin: httpcore.Origin,
        connection: httpcore.AsyncHTTPConnection,
    ) -> None:
        self._stream = stream
        self._pool = pool
        self._origin = origin
        self._connection = connection
        self._closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for part in self._stream:
                yield part
        except BaseException:
            await self.aclose()
            raise

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        with anyio.CancelScope(shield=True):
            try:
                if hasattr(self._stream, "aclose"):
                    await self._stream.aclose()
            finally:
                await self._pool._give_back(self._origin, self._connection)


class Transport(httpx.AsyncHTTPTransport):
    """httpx's transport over :class:`Pool` (HTTP/1.1, no proxy)."""

    def __init__(
        self,
        *,
        limits: httpx.Limits,
        verify: Any = True,
        trust_env: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        ssl_context = httpx.create_ssl_context(verify=verify, trust_env=trust_env)
        super().__init__(verify=ssl_context, trust_env=trust_env, limits=limits)
        self.pool = Pool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            clock=clock,
        )
        # httpx's transport sends every request through ``_pool``: httpcore's pool there
        # (made above, never used) gives way to this one, which answers the same calls
        self._pool = self.pool  # type: ignore[assignment]


def client_transport(limits: httpx.Limits) -> Transport | None:
    """The transport for an adapter's client: :class:`Transport`, or ``None`` (httpx's own,
    which speaks proxies) when the environment names a proxy."""
    proxies = {k: v for k, v in urllib.request.getproxies().items() if k != "no"}
    return None if proxies else Transport(limits=limits)
