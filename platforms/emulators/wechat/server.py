"""The emulator's HTTP surface below the APIs: faults, the common checks of every call
(method, caller IP, token, permission set, JSON body) and the answer's shape.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from platforms.emulators.base import FAULTS, Fault
from platforms.emulators.wechat.errors import _error, _Fail
from platforms.emulators.wechat.state import WeChatState, _Call, _Program

__all__ = ["HISTORY", "JSON_TYPE", "WECHAT_FAULTS", "Server"]


JSON_TYPE = "application/json; encoding=utf-8"
HISTORY = "/wxa/revertcoderelease?action=get_history_version"

WECHAT_FAULTS = ("rate_limit_minute", "invalid_token")
"""Faults of WeChat's own, besides the shared :data:`platforms.emulators.base.FAULTS`."""


@dataclass(frozen=True)
class _Endpoint:
    method: str  # "GET" or "POST"
    token: str  # "none", "component" or "authorizer"
    body: bool  # a JSON body is required
    run: Callable[[_Call], dict[str, Any] | web.Response]
    permissions: tuple[int, ...] = ()  # one of these sets must be granted (61007)
    error_type: str = JSON_TYPE  # Content-Type of error answers


class Server(WeChatState):
    """Serving one API call: :meth:`_serve`."""

    def inject(self, api: str, fault: str, times: int = 1) -> None:
        """As :meth:`Emulator.inject`, with WeChat's own faults (:data:`WECHAT_FAULTS`) too."""
        if fault not in WECHAT_FAULTS:
            if fault not in FAULTS:
                known = ", ".join((*FAULTS, *WECHAT_FAULTS))
                raise ValueError(f"unknown fault {fault!r}; one of {known}")
            super().inject(api, fault, times)
            return
        if times < 1:
            raise ValueError("times must be at least 1")
        self._faults.append(Fault(api, fault, times))

    def _handler(
        self, path: str, endpoint: _Endpoint
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            return await self._serve(request, path, endpoint)

        return handle

    async def _serve(
        self, request: web.Request, path: str, endpoint: _Endpoint
    ) -> web.StreamResponse:
        """Faults first, then the common checks, then the API itself."""
        if path == "/wxa/revertcoderelease" and "action" in request.query:
            path = HISTORY  # a read, counted and faulted apart from rollbacks
        self.calls[path] += 1
        fault = self.take_fault(path)
        if fault == "busy":
            return self._respond(_error(-1), endpoint)
        if fault == "rate_limit":
            return self._respond(_error(45009), endpoint)
        if fault == "rate_limit_minute":
            return self._respond(_error(45011), endpoint)
        if fault == "invalid_token":
            return self._respond(_error(40014), endpoint)
        if fault == "unavailable":
            return self.unavailable()
        if fault == "expired_token":
            now = self.clock()
            for token in self.tokens.values():
                token.expires_at = min(token.expires_at, now)
        raw = await request.read()
        try:
            answer = self._process(request, endpoint, raw)
        except _Fail as fail:
            answer = _error(fail.errcode, fail.message)
        await self.hold(fault)
        response = self._respond(answer, endpoint)
        if fault in ("malformed", "unsigned"):  # WeChat signs no answer: both are cut short
            body = response.body if isinstance(response.body, bytes) else b""
            return web.Response(
                body=body[: max(1, len(body) // 2)],
                headers={"Content-Type": response.headers.get("Content-Type", JSON_TYPE)},
            )
        return response

    @staticmethod
    def _respond(answer: Mapping[str, Any] | web.Response, endpoint: _Endpoint) -> web.Response:
        if isinstance(answer, web.Response):
            return answer
        failed = answer.get("errcode", 0) != 0
        body = json.dumps(answer, ensure_ascii=False).encode("utf-8")
        kind = endpoint.error_type if failed else JSON_TYPE
        return web.Response(body=body, headers={"Content-Type": kind})

    def _process(
        self, request: web.Request, endpoint: _Endpoint, raw: bytes
    ) -> dict[str, Any] | web.Response:
        if request.method != endpoint.method:
            raise _Fail(43001 if endpoint.method == "GET" else 43002)
        remote = request.remote or ""
        if self.ip_whitelist is not None and remote not in self.ip_whitelist:
            raise _Fail(61004, f"invalid ip {remote} ipv6 ::ffff:{remote}, not in whitelist")
        program = self._authorize(request.query, endpoint.token)
        if (
            program is not None
            and endpoint.permissions
            and not set(endpoint.permissions) & set(program.func_info)
        ):
            raise _Fail(61007)
        body: dict[str, Any] = {}
        if endpoint.body:
            if not raw.strip():
                raise _Fail(44002)
            try:
                parsed = json.loads(raw)
            except ValueError:
                raise _Fail(47001) from None
            if not isinstance(parsed, dict):
                raise _Fail(47001)
            body = parsed
        return endpoint.run(_Call(body, program, request.query))

    def _authorize(self, query: Mapping[str, str], kind: str) -> _Program | None:
        """Check the query token for an API taking ``kind`` of token."""
        if kind == "none":
            return None
        if kind == "component":
            value = query.get("component_access_token") or query.get("access_token")
        else:
            value = query.get("access_token")
        if not value:
            raise _Fail(41001)
        token = self.tokens.get(value)
        if token is None:
            raise _Fail(40001)
        if token.kind != kind:
            raise _Fail(61014 if kind == "component" else 48001)
        if self.clock() >= token.expires_at:
            raise _Fail(self.expired_component_errcode if kind == "component" else 42001)
        if kind == "component":
            return None
        program = self.programs.get(token.appid)
        if program is None or not program.authorized:  # revoked since the token was issued
            raise _Fail(61003)
        return program
