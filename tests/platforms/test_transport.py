"""The adapters' HTTP transport (platforms/transport.py): connections reused; the limit
on connections; a connection the server closed, an error or a cancellation never reused;
answers read whole; the environment's proxies; every failure an httpx error, so the
adapters' typed errors follow
(the shared adapter suite, tests/platforms/test_contract.py, runs over this transport).

A small HTTP/1.1 server on the loopback interface answers by path and counts the
connections it was given, so each test sees what the transport did from the other end.
"""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator
from urllib.parse import parse_qsl

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from platforms.transport import CONNECTIONS, Sender, Transport

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
_ZIPPED = gzip.compress(b"ok")
GZIP = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s" % (
    len(_ZIPPED),
    _ZIPPED,
)


class Server:
    """Answers ``/ok`` (``/gzip``: gzip-encoded); ``/hold`` once ``release`` is set
    (``/later``: ``release_later``); ``/slow`` half at once, half once released; ``/close``
    with Connection: close; ``/drop`` and then closes the connection without saying so;
    ``/garbage`` with something that is not HTTP; ``/short`` with less body than it
    announced; ``/hangup`` not at all (the connection closed)."""

    def __init__(self) -> None:
        self.accepted = 0
        self.targets: list[bytes] = []  # each request's target, as sent
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
                self.targets.append(head.split(b" ", 2)[1])
                path = self.targets[-1].partition(b"?")[0]
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
                elif path == b"/short":
                    writer.write(OK.replace(b"Length: 2", b"Length: 20"))
                elif path == b"/hangup":
                    break
                elif path == b"/gzip":
                    writer.write(GZIP)
                elif path == b"/close":
                    writer.write(OK.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"))
                else:
                    writer.write(OK)
                await writer.drain()
                if path in (b"/garbage", b"/close", b"/drop", b"/short"):
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


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    async with Server() as s:
        yield s


def client(
    server: Server, *, connections: int = 10, pool_timeout: float = 5.0, read: float = 5.0
) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    timeout = httpx.Timeout(5.0, pool=pool_timeout, read=read)
    return httpx.AsyncClient(
        base_url=server.url, transport=Transport(limits=limits), timeout=timeout
    )


async def test_one_connection_serves_requests_one_after_another(server: Server) -> None:
    async with client(server) as http:
        for _ in range(5):
            assert (await http.get("/ok")).text == "ok"
        assert (server.accepted, server.open) == (1, 1)
    await server.closed.wait()
    assert server.open == 0  # closing the client closed the idle connection


async def test_requests_at_once_get_a_connection_each_then_share_them(server: Server) -> None:
    async with client(server) as http:
        held = [asyncio.create_task(http.get("/hold")) for _ in range(3)]
        await server.until(3)
        server.release.set()
        assert [r.text for r in await asyncio.gather(*held)] == ["ok"] * 3
        for _ in range(6):
            await http.get("/ok")
        assert server.accepted == 3


async def test_beyond_the_limit_a_request_waits_for_a_connection(server: Server) -> None:
    async with client(server, connections=2) as http:
        held = [asyncio.create_task(http.get("/hold")) for _ in range(3)]
        await server.until(2)
        for _ in range(10):
            await asyncio.sleep(0)
        assert (server.held, server.accepted) == (2, 2)
        server.release.set()
        assert [r.text for r in await asyncio.gather(*held)] == ["ok"] * 3
        assert server.accepted == 2  # the third ran on one of the two


async def test_a_request_that_finds_no_connection_in_time_fails(server: Server) -> None:
    async with client(server, connections=1, pool_timeout=0.05) as http:
        held = asyncio.create_task(http.get("/hold"))
        await server.until(1)
        with pytest.raises(httpx.ConnectTimeout) as failed:
            await http.get("/ok", params={"access_token": "SECRET"})
        assert "SECRET" not in str(failed.value)  # aiohttp's own text names the URL
        server.release.set()
        await held
        assert (await http.get("/ok")).text == "ok"  # its slot was given back


async def test_a_connection_the_server_closed_is_not_reused(server: Server) -> None:
    async with client(server) as http:
        assert (await http.get("/close")).text == "ok"  # Connection: close
        assert (await http.get("/drop")).text == "ok"
        await server.dropped.wait()  # closed by the server without a word
        for _ in range(10):  # a few turns of the loop: the close reaches our end
            await asyncio.sleep(0)
        assert (await http.get("/ok")).text == "ok"
        assert server.accepted == 3


async def test_a_request_on_a_connection_closed_meanwhile_fails_and_is_not_sent_again(
    server: Server,
) -> None:
    """Reused at the moment the server closed it: the request fails (the adapters ask
    again, or check what a change did) rather than going out a second time on its own."""
    async with client(server) as http:
        assert (await http.get("/drop")).text == "ok"
        await server.dropped.wait()  # the close not yet read at our end
        with pytest.raises(httpx.RemoteProtocolError):
            await http.get("/ok")
        assert server.accepted == 1
        assert (await http.get("/ok")).text == "ok"
        assert server.accepted == 2


@pytest.mark.parametrize(
    ("path", "error"),
    [
        ("/garbage", httpx.RemoteProtocolError),  # not HTTP (aiohttp: ClientResponseError)
        ("/hangup", httpx.RemoteProtocolError),  # no answer at all
        ("/short", httpx.ReadError),  # the body cut short
        ("/hold", httpx.ReadTimeout),  # no answer within the read timeout
    ],
)
async def test_every_failure_is_an_httpx_error_and_its_connection_is_closed(
    server: Server, path: str, error: type[httpx.HTTPError]
) -> None:
    async with client(server, read=0.05) as http:
        with pytest.raises(error) as failed:  # a GET, as WeChat's rollback: sent once
            await http.get(path, params={"access_token": "SECRET"})
        assert type(failed.value) is error
        assert "SECRET" not in str(failed.value)  # aiohttp's text may carry the URL
        server.release.set()
        assert (await http.get("/ok")).text == "ok"
        assert server.accepted == 2  # not sent again on a connection of its own


async def test_a_server_that_stops_reading_a_body_is_a_write_timeout() -> None:
    """aiohttp has no write timeout of its own: the request's timeouts bound it."""

    async def accept_and_never_read(reader: asyncio.StreamReader, _: asyncio.StreamWriter) -> None:
        await asyncio.sleep(60)

    deaf = await asyncio.start_server(accept_and_never_read, "127.0.0.1", 0)
    port = deaf.sockets[0].getsockname()[1]
    try:
        async with httpx.AsyncClient(
            transport=Transport(limits=CONNECTIONS), timeout=httpx.Timeout(0.2)
        ) as http:
            with pytest.raises(httpx.WriteTimeout):  # not a hang: bounded by the test too
                await asyncio.wait_for(
                    http.post(f"http://127.0.0.1:{port}/upload", content=b"x" * 2**26), 30
                )
    finally:
        deaf.close()


async def test_a_refused_connection_is_a_connect_error(server: Server) -> None:
    url = server.url
    await server.__aexit__()
    async with httpx.AsyncClient(transport=Transport(limits=CONNECTIONS)) as http:
        with pytest.raises(httpx.ConnectError):
            await http.get(url + "/ok")


async def test_a_request_cancelled_in_flight_gives_up_its_connection(server: Server) -> None:
    async with client(server, connections=1) as http:
        held = asyncio.create_task(http.get("/hold"))
        await server.until(1)
        held.cancel()
        with pytest.raises(asyncio.CancelledError):
            await held
        server.release.set()
        await server.closed.wait()  # its state unknown: closed, not kept
        assert (await http.get("/ok")).text == "ok"  # the one slot is free again
        assert server.accepted == 2


async def test_an_answer_is_read_whole_before_it_is_returned(server: Server) -> None:
    async with client(server) as http:
        slow = asyncio.create_task(http.get("/slow"))  # its head and half its body sent
        await server.until(1)
        for _ in range(10):
            await asyncio.sleep(0)
        assert not slow.done()
        server.release.set()
        assert (await slow).text == "ok"
        assert (await http.get("/ok")).text == "ok"
        assert server.accepted == 1  # read to its end, the connection was kept


async def test_closing_the_client_closes_connections_in_use(server: Server) -> None:
    http = client(server)
    held = asyncio.create_task(http.get("/hold"))
    await server.until(1)
    await http.aclose()
    server.release.set()
    with pytest.raises(httpx.HTTPError):
        await held
    await server.until(open=0)
    assert server.accepted == 1


async def test_an_encoded_answer_is_decoded_once(server: Server) -> None:
    """The adapters' way (a :class:`Sender`'s answer, no httpx objects) and httpx's (which
    decodes what the transport gives it) both read the body as the server meant it."""
    async with Sender() as sender:
        answer = await sender.request("GET", server.url + "/gzip")
    assert (answer.status_code, answer.content) == (200, b"ok")
    assert answer.headers["CONTENT-ENCODING"] == "gzip"  # header names in any case
    async with client(server) as http:
        assert (await http.get("/gzip")).text == "ok"


@pytest.fixture
def no_proxies(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    return monkeypatch


async def test_a_proxy_named_in_the_environment_carries_the_requests(
    server: Server, no_proxies: pytest.MonkeyPatch
) -> None:
    no_proxies.setenv("HTTP_PROXY", server.url)
    async with httpx.AsyncClient(transport=Transport(limits=CONNECTIONS)) as http:
        assert (await http.get("http://api.platform.example/ok?x=1")).text == "ok"
    assert server.targets == [b"http://api.platform.example/ok?x=1"]  # asked of the proxy


async def test_no_proxy_keeps_a_host_off_the_proxy(
    server: Server, no_proxies: pytest.MonkeyPatch
) -> None:
    no_proxies.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    no_proxies.setenv("NO_PROXY", "127.0.0.1")
    async with httpx.AsyncClient(transport=Transport(limits=CONNECTIONS)) as http:
        assert (await http.get(server.url + "/ok")).text == "ok"
    assert server.targets == [b"/ok"]


_TEXT = st.text(st.characters(codec="utf-8"))  # what UTF-8 can carry


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(_TEXT, _TEXT, max_size=8))
def test_a_form_arrives_as_it_was_given(fields: dict[str, str]) -> None:
    """A form is encoded by yarl's quoter, not urllib's (for speed): whatever the text,
    the platform decodes exactly the fields that were sent."""
    sent: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200)

    sender = Sender(httpx.MockTransport(answer))
    asyncio.run(sender.request("POST", "http://gateway.example/gateway.do", data=fields))
    (request,) = sent
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    body = request.content.decode("ascii")
    assert parse_qsl(body, keep_blank_values=True) == list(fields.items())
