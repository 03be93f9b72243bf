"""The adapters' HTTP transport (platforms/transport.py): connections reused, newest first;
the limit on connections; keep-alive expiry by the pool's clock; a connection the server
closed, an error, a cancellation or a body left unread never reused.

A small HTTP/1.1 server on the loopback interface answers by path and counts the
connections it was given, so each test sees what the pool did from the other end.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from platforms.base import CONNECTIONS
from platforms.transport import Pool, Transport, client_transport

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


class Server:
    """Answers ``/ok``; ``/hold`` once ``release`` is set (``/later``: ``release_later``);
    ``/slow`` half at once, half once released; ``/close`` with Connection:
    close; ``/drop`` and then closes the connection without saying so; ``/garbage`` with
    something that is not HTTP."""

    def __init__(self) -> None:
        self.accepted = 0
        self.open = 0
        self.held = 0
        self.release = asyncio.Event()
        self.release_later = asyncio.Event()
        self.dropped = asyncio.Event()
        self.closed = asyncio.Event()  # set whenever a connection ends
        self._moved = asyncio.Event()  # set whenever a count above changes
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> Server:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self.open += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                path = head.split(b" ", 2)[1]
                if path in (b"/hold", b"/later"):
                    self.held += 1
                    self._moved.set()
                    await (self.release if path == b"/hold" else self.release_later).wait()
                if path == b"/slow":  # the headers, half the body, the rest once released
                    self.held += 1
                    self._moved.set()
                    writer.write(OK[:-1])
                    await writer.drain()
                    await self.release.wait()
                    writer.write(OK[-1:])
                elif path == b"/garbage":
                    writer.write(b"nonsense\r\n\r\n")
                elif path == b"/close":
                    writer.write(OK.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"))
                else:
                    writer.write(OK)
                await writer.drain()
                if path in (b"/garbage", b"/close", b"/drop"):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.open -= 1
            self._moved.set()
            writer.close()
            await writer.wait_closed()
            self.dropped.set()
            self.closed.set()

    async def until(self, held: int | None = None, *, open: int | None = None) -> None:
        """Wait until ``held`` requests are being held, or ``open`` connections are open."""
        while not ((held is None or self.held >= held) and (open is None or self.open <= open)):
            self._moved.clear()
            await self._moved.wait()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    async with Server() as s:
        yield s


def client(
    server: Server,
    *,
    connections: int = 10,
    idle: int = 10,
    expiry: float = 5.0,
    clock: Clock | None = None,
    pool_timeout: float = 5.0,
) -> tuple[httpx.AsyncClient, Pool]:
    limits = httpx.Limits(
        max_connections=connections, max_keepalive_connections=idle, keepalive_expiry=expiry
    )
    transport = Transport(limits=limits, clock=clock or Clock())
    timeout = httpx.Timeout(5.0, pool=pool_timeout)
    return httpx.AsyncClient(base_url=server.url, transport=transport, timeout=timeout), (
        transport.pool
    )


async def test_one_connection_serves_requests_one_after_another(server: Server) -> None:
    http, pool = client(server)
    async with http:
        for _ in range(5):
            assert (await http.get("/ok")).text == "ok"
        assert (server.accepted, pool.idle, pool.busy) == (1, 1, 0)
    await server.closed.wait()
    assert server.open == 0  # closing the client closed the idle connection


async def test_requests_at_once_get_a_connection_each_then_share_them(server: Server) -> None:
    http, pool = client(server)
    async with http:
        held = [asyncio.create_task(http.get("/hold")) for _ in range(3)]
        await server.until(3)
        assert pool.busy == 3
        server.release.set()
        assert [r.text for r in await asyncio.gather(*held)] == ["ok"] * 3
        assert pool.idle == 3
        for _ in range(6):
            await http.get("/ok")
        assert server.accepted == 3


async def test_beyond_the_limit_a_request_waits_for_a_connection(server: Server) -> None:
    http, pool = client(server, connections=2)
    async with http:
        held = [asyncio.create_task(http.get("/hold")) for _ in range(3)]
        await server.until(2)
        for _ in range(10):
            await asyncio.sleep(0)
        assert (server.held, server.accepted, pool.busy) == (2, 2, 2)
        server.release.set()
        assert [r.text for r in await asyncio.gather(*held)] == ["ok"] * 3
        assert server.accepted == 2  # the third ran on one of the two


async def test_a_request_that_finds_no_connection_in_time_fails(server: Server) -> None:
    http, pool = client(server, connections=1, pool_timeout=0)
    async with http:
        held = asyncio.create_task(http.get("/hold"))
        await server.until(1)
        with pytest.raises(httpx.PoolTimeout):
            await http.get("/ok")
        server.release.set()
        await held
        assert (await http.get("/ok")).text == "ok"  # its slot was given back
        assert pool.busy == 0


async def test_idle_connections_beyond_the_keepalive_limit_are_closed(server: Server) -> None:
    http, pool = client(server, idle=1)
    async with http:
        held = [asyncio.create_task(http.get("/hold")) for _ in range(3)]
        await server.until(3)
        server.release.set()
        await asyncio.gather(*held)
        assert pool.idle == 1
        await server.until(open=1)


async def test_keepalive_expiry_is_read_on_the_pools_clock(server: Server) -> None:
    clock = Clock()
    http, pool = client(server, expiry=5.0, clock=clock)
    async with http:
        await http.get("/ok")
        clock.now += 4.0
        await http.get("/ok")
        assert server.accepted == 1  # within the keep-alive: reused
        clock.now += 5.5
        await http.get("/ok")
        assert server.accepted == 2
        await server.closed.wait()  # the expired one was closed, not left open
        assert (server.open, pool.idle) == (1, 1)


async def test_an_expired_connection_is_closed_with_the_older_ones(server: Server) -> None:
    clock = Clock()
    http, pool = client(server, expiry=5.0, clock=clock)
    async with http:
        held = [asyncio.create_task(http.get("/hold")) for _ in range(2)]
        await server.until(2)
        server.release.set()
        await asyncio.gather(*held)
        clock.now += 6.0
        assert (await http.get("/ok")).text == "ok"
        assert (pool.idle, server.accepted) == (1, 3)
        await server.until(open=1)


async def test_expired_connections_are_dropped_when_another_comes_back(server: Server) -> None:
    clock = Clock()
    http, pool = client(server, expiry=5.0, clock=clock)
    async with http:
        early = asyncio.create_task(http.get("/hold"))
        late = asyncio.create_task(http.get("/later"))
        await server.until(2)
        server.release.set()
        await early
        clock.now += 6.0
        server.release_later.set()
        await late
        assert pool.idle == 1  # the early one expired while idle: closed, not kept
        await server.until(open=1)


async def test_a_connection_the_server_closed_is_not_reused(server: Server) -> None:
    http, pool = client(server)
    async with http:
        assert (await http.get("/close")).text == "ok"
        assert pool.idle == 0  # Connection: close
        assert (await http.get("/drop")).text == "ok"
        await server.dropped.wait()  # closed by the server without a word
        assert (await http.get("/ok")).text == "ok"
        assert server.accepted == 3


async def test_a_connection_that_failed_is_closed(server: Server) -> None:
    http, pool = client(server)
    async with http:
        with pytest.raises(httpx.RemoteProtocolError):
            await http.get("/garbage")
        assert (pool.idle, pool.busy) == (0, 0)
        assert (await http.get("/ok")).text == "ok"
        assert server.accepted == 2


async def test_a_request_cancelled_in_flight_gives_up_its_connection(server: Server) -> None:
    http, pool = client(server, connections=1)
    async with http:
        held = asyncio.create_task(http.get("/hold"))
        await server.until(1)
        held.cancel()
        with pytest.raises(asyncio.CancelledError):
            await held
        assert (pool.idle, pool.busy) == (0, 0)  # its state unknown: closed, not kept
        server.release.set()
        await server.closed.wait()
        assert (await http.get("/ok")).text == "ok"  # the one slot is free again
        assert server.accepted == 2


async def test_a_response_left_unread_closes_its_connection(server: Server) -> None:
    http, pool = client(server)
    async with http:
        async with http.stream("GET", "/slow") as response:
            assert response.status_code == 200
        assert (pool.idle, pool.busy) == (0, 0)
        server.release.set()
        assert (await http.get("/ok")).text == "ok"
        assert server.accepted == 2


async def test_closing_the_client_closes_connections_in_use(server: Server) -> None:
    http, pool = client(server)
    held = asyncio.create_task(http.get("/hold"))
    await server.until(1)
    await http.aclose()
    assert pool.busy == 0
    server.release.set()
    await server.closed.wait()
    assert server.open == 0
    with pytest.raises(httpx.HTTPError):
        await held


def test_a_proxy_in_the_environment_leaves_httpx_its_own_transport(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("all_proxy", raising=False)
    assert isinstance(client_transport(CONNECTIONS), Transport)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    assert client_transport(CONNECTIONS) is None
