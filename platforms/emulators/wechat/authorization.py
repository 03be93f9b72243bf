"""Tokens and authorization: the component and authorizer tokens, the pre-auth code,
the authorization page an admin "confirms" and the code it sends back.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from platforms.emulators.wechat.errors import _Fail
from platforms.emulators.wechat.state import (
    CATEGORIES,
    CODE_SECONDS,
    GRANTED,
    TICKET_SECONDS,
    TOKEN_SECONDS,
    WeChatState,
    _Call,
    _Program,
    _Token,
)
from platforms.wechat.reading import as_int

__all__ = ["AuthorizationApis"]


def _func_info(granted: Sequence[int]) -> list[dict[str, Any]]:
    return [{"funcscope_category": {"id": p}} for p in granted]


class AuthorizationApis(WeChatState):
    """api_component_token, api_authorizer_token, api_create_preauthcode,
    componentloginpage, api_query_auth, api_get_authorizer_info."""

    def _issue(self, kind: str, appid: str) -> str:
        now = self.clock()
        self.tokens = {v: t for v, t in self.tokens.items() if t.expires_at > now - 86_400}
        value = secrets.token_urlsafe(48)
        self.tokens[value] = _Token(kind, appid, now + TOKEN_SECONDS)
        return value

    # -- tokens ------------------------------------------------------------------------

    def _component_token(self, call: _Call) -> dict[str, Any]:
        body, comp = call.body, self.component
        appid = body.get("component_appid")
        secret = body.get("component_appsecret")
        if not appid:
            raise _Fail(41018)
        if not secret:
            raise _Fail(41004)
        if appid != comp.appid:
            raise _Fail(40013)
        if secret != comp.secret:
            raise _Fail(40125)
        ticket = body.get("component_verify_ticket")
        if ticket != comp.verify_ticket:
            issued = next((at for t, at in self.previous_tickets if t == ticket), None)
            if issued is None:
                raise _Fail(61006)
            if self.clock() >= issued + TICKET_SECONDS:
                raise _Fail(61005)
        value = self._issue("component", comp.appid)
        return {"component_access_token": value, "expires_in": TOKEN_SECONDS}

    def _component_appid(self, body: Mapping[str, Any]) -> None:
        appid = body.get("component_appid")
        if not appid:
            raise _Fail(41018)
        if appid != self.component.appid:
            raise _Fail(61011)

    def _authorizer_token(self, call: _Call) -> dict[str, Any]:
        body = call.body
        self._component_appid(body)
        program = self.programs.get(str(body.get("authorizer_appid", "")))
        if program is None or not program.authorized:
            raise _Fail(61003)
        if body.get("authorizer_refresh_token") != program.refresh_token:
            raise _Fail(61023)
        if self.rotate_refresh_tokens:
            program.refresh_token = "refreshtoken@@@" + secrets.token_urlsafe(32)
        value = self._issue("authorizer", program.appid)
        return {
            "authorizer_access_token": value,
            "expires_in": TOKEN_SECONDS,
            "authorizer_refresh_token": program.refresh_token,
        }

    # -- authorization -----------------------------------------------------------------

    def _create_preauthcode(self, call: _Call) -> dict[str, Any]:
        self._component_appid(call.body)
        now = self.clock()
        self.preauth_codes = {c: t for c, t in self.preauth_codes.items() if t > now}
        code = "preauthcode@@@" + secrets.token_urlsafe(32)
        self.preauth_codes[code] = now + CODE_SECONDS
        return {"pre_auth_code": code, "expires_in": CODE_SECONDS}

    @staticmethod
    def _page(status: int, text: str) -> web.Response:
        return web.Response(
            status=status,
            text=f"<html><body><h1>授权失败</h1><p>{text}</p></body></html>",
            content_type="text/html",
        )

    async def _login_page(self, request: web.Request) -> web.StreamResponse:
        """The authorization page: the admin of ``biz_appid`` "scans and confirms" at once,
        and the browser is sent to ``redirect_uri`` with the authorization code."""
        self.calls["/cgi-bin/componentloginpage"] += 1
        q = request.query
        now = self.clock()
        if q.get("component_appid") != self.component.appid:
            return self._page(400, "unknown component_appid")
        expires = self.preauth_codes.pop(q.get("pre_auth_code", ""), None)
        if expires is None or expires <= now:
            return self._page(400, "pre_auth_code is invalid or expired")
        redirect = q.get("redirect_uri", "")
        appid = q.get("biz_appid", "")
        if not redirect.startswith(("http://", "https://")):
            return self._page(400, "redirect_uri is missing")
        if not appid:
            return self._page(400, "the emulator authorizes the mini program named by biz_appid")
        self._grant(appid)
        code = "queryauthcode@@@" + secrets.token_urlsafe(32)
        self.auth_codes[code] = (appid, now + CODE_SECONDS)
        query = urlencode({"auth_code": code, "expires_in": CODE_SECONDS})
        location = f"{redirect}{'&' if '?' in redirect else '?'}{query}"
        return web.Response(status=302, headers={"Location": location})

    def _query_auth(self, call: _Call) -> dict[str, Any]:
        self._component_appid(call.body)
        code = str(call.body.get("authorization_code", ""))
        found = self.auth_codes.pop(code, None)  # a code is used once
        if found is None:
            raise _Fail(61009)
        appid, expires = found
        program = self.programs.get(appid)
        if self.clock() >= expires:
            raise _Fail(61010)
        if program is None or not program.authorized:
            raise _Fail(61003)
        return {
            "authorization_info": {
                "authorizer_appid": appid,
                "authorizer_access_token": self._issue("authorizer", appid),
                "expires_in": TOKEN_SECONDS,
                "authorizer_refresh_token": program.refresh_token,
                "func_info": _func_info(program.func_info),
            }
        }

    def _grant(self, appid: str, name: str = "") -> _Program:
        """Mini program ``appid`` authorizes the platform (again): a new refresh token (a
        re-authorization changes it, fact sheet §3) and an ``authorized`` (or
        ``updateauthorized``) push to come."""
        program = self.programs.get(appid)
        if program is None:
            program = _Program(
                appid=appid,
                original_id="gh_" + secrets.token_hex(6),
                refresh_token=None,
                categories=[dict(c) for c in CATEGORIES],
            )
            self.programs[appid] = program
        info = "updateauthorized" if program.authorized else "authorized"
        program.refresh_token = "refreshtoken@@@" + secrets.token_urlsafe(32)
        program.func_info = list(GRANTED)
        program.nick_name = name or program.nick_name
        program.authorized_at = self.clock()
        self.grant_events.append((info, appid, self.clock()))
        return program

    def _get_authorizer_list(self, call: _Call) -> dict[str, Any]:
        """Every authorized mini program, oldest authorization first, ``count`` (≤ 500)
        from ``offset``."""
        self._component_appid(call.body)
        offset, count = as_int(call.body.get("offset")), as_int(call.body.get("count"))
        if offset is None or count is None or offset < 0 or not 0 < count <= 500:
            raise _Fail(40097)  # invalid args
        authorized = sorted(
            (p for p in self.programs.values() if p.authorized),
            key=lambda p: (p.authorized_at, p.appid),
        )
        return {
            "total_count": len(authorized),
            "list": [
                {
                    "authorizer_appid": p.appid,
                    "refresh_token": p.refresh_token,
                    "auth_time": int(p.authorized_at),
                }
                for p in authorized[offset : offset + count]
            ],
        }

    def _get_authorizer_info(self, call: _Call) -> dict[str, Any]:
        self._component_appid(call.body)
        program = self.programs.get(str(call.body.get("authorizer_appid", "")))
        if program is None or not program.authorized:
            raise _Fail(61003)
        return {
            "authorizer_info": {
                "nick_name": program.nick_name or f"Emulated {program.appid[-4:]}",
                "user_name": program.original_id,
                "principal_name": "Emulated Co., Ltd.",
                "MiniProgramInfo": {
                    "categories": [
                        {"first": c["first_class"], "second": c["second_class"]}
                        for c in program.categories
                    ]
                },
            },
            "authorization_info": {
                "authorizer_appid": program.appid,
                "authorizer_refresh_token": program.refresh_token,
                "func_info": _func_info(program.func_info),
            },
        }
