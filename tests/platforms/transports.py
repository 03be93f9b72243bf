"""An httpx transport for the adapter tests: real HTTP, with hooks to alter what passes."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qsl

import httpx


def alipay_params(request: httpx.Request) -> dict[str, str]:
    """An Alipay gateway request's parameters, from its query and urlencoded form alike
    (the adapter puts the charset in the query, the rest in the form)."""
    form: dict[str, str] = {}
    if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        form = dict(parse_qsl(request.read().decode(), keep_blank_values=True))
    return {**dict(request.url.params), **form}


class Watched(httpx.AsyncBaseTransport):
    """``inner``, each request shown to ``see`` before it is sent."""

    def __init__(
        self, inner: httpx.AsyncBaseTransport, see: Callable[[httpx.Request], None]
    ) -> None:
        self.inner = inner
        self.see = see

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.see(request)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


class Tamper(httpx.AsyncBaseTransport):
    """Real HTTP, with a hook to alter each request and each response body.

    ``only`` picks the requests both hooks apply to (all by default).
    """

    def __init__(
        self,
        *,
        request: Callable[[httpx.Request], None] | None = None,
        response: Callable[[bytes], bytes] | None = None,
        only: Callable[[httpx.Request], bool] | None = None,
    ) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.on_request = request
        self.on_response = response
        self.only = only

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        chosen = self.only is None or self.only(request)
        if chosen and self.on_request is not None:
            self.on_request(request)
        response = await self.inner.handle_async_request(request)
        if not chosen or self.on_response is None:
            return response
        body = await response.aread()
        await response.aclose()
        return httpx.Response(
            response.status_code,
            headers={"content-type": response.headers.get("content-type", "")},
            content=self.on_response(body),
        )

    async def aclose(self) -> None:
        await self.inner.aclose()
