"""The authorization page: a merchant picks one of their mini programs and authorizes the
third-party app, and the browser goes back to the callback with a one-time
``app_auth_code`` (traded by ``alipay.open.auth.token.app``, :mod:`.grants`).

Served as Alipay's "specified app" page (指定应用授权),
``GET /page/message/tasksDetail?bizData=<JSON>`` with
``{"platformCode":"O","taskType":"INTERFACE_AUTH","agentOpParam":{"redirectUri",
"appTypes","isvAppId","state"}}``. The single-app page (``/oauth2/appToAppAuth.htm``) is
not emulated: on Alipay it authorizes the merchant's base app, which cannot be used for
mini program APIs.

Where a merchant would log in and pick a mini program, the emulator takes two query
parameters of its own: ``merchant_app_id`` (the mini program that authorizes; it is
created if the emulator does not know it) and ``app_name`` (its name, optional, which
``detail.query`` then reports). Without ``merchant_app_id`` the page is a small form asking
for them, so a person can authorize from a browser.
"""

from __future__ import annotations

import base64
import binascii
import html
import json
import re
import secrets
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from platforms.emulators.alipay.grants import CODE_SECONDS
from platforms.emulators.alipay.state import AlipayState

__all__ = ["AUTHORIZE_PAGE", "AuthorizationPage"]

AUTHORIZE_PAGE = "/page/message/tasksDetail"

_APP_ID = re.compile(r"\d{1,32}")


class _Refused(Exception):
    """The page cannot go on: the text says why (in Alipay's language)."""


class AuthorizationPage(AlipayState):
    """The specified-app authorization page."""

    async def _authorize_page(self, request: web.Request) -> web.Response:
        try:
            operation = self._operation(request.query.get("bizData", ""))
        except _Refused as refused:
            return _page(400, "授权失败", f"<p>{html.escape(str(refused))}</p>")
        merchant = request.query.get("merchant_app_id", "").strip()
        if not merchant:
            return _page(200, "应用授权", _form(request.query.get("bizData", "")))
        if not _APP_ID.fullmatch(merchant):
            return _page(400, "授权失败", "<p>merchant_app_id 不是小程序 APPID</p>")
        app = self._mini_app(merchant)
        name = request.query.get("app_name", "").strip()
        if name:
            app["name"] = name
        code = secrets.token_hex(16)
        self._state["auth_codes"][code] = {
            "app_id": merchant,
            "expires_at": self.clock() + CODE_SECONDS,
        }
        back: dict[str, str] = {"app_id": self._isv()["app_id"], "app_auth_code": code}
        if operation.get("state"):
            back["state"] = str(operation["state"])
        redirect = str(operation["redirectUri"])
        location = f"{redirect}{'&' if '?' in redirect else '?'}{urlencode(back)}"
        return web.Response(status=302, headers={"Location": location})

    def _operation(self, biz_data: str) -> dict[str, Any]:
        """``agentOpParam`` of ``bizData``, checked as the page would."""
        try:
            data = json.loads(biz_data)
        except ValueError:
            raise _Refused("bizData 参数错误") from None
        operation = data.get("agentOpParam") if isinstance(data, dict) else None
        if (
            not isinstance(operation, dict)
            or data.get("taskType") != "INTERFACE_AUTH"
            or data.get("platformCode") != "O"
        ):
            raise _Refused("bizData 参数错误：需要 platformCode、taskType 和 agentOpParam")
        if operation.get("isvAppId") != self._isv()["app_id"]:
            raise _Refused("第三方应用不存在（isvAppId）")
        redirect = operation.get("redirectUri")
        if not isinstance(redirect, str) or not redirect.startswith(("http://", "https://")):
            raise _Refused("redirectUri 与第三方应用配置的授权回调地址不一致")
        types = operation.get("appTypes")
        if not isinstance(types, list) or "TINYAPP" not in types:
            raise _Refused("appTypes 不包含小程序（TINYAPP），无可授权的应用")
        state = operation.get("state")
        if state is not None and not _base64(state):
            raise _Refused("state 必须为 base64 编码，且不超过 100 个字符")
        return operation


def _base64(value: object) -> bool:
    if not isinstance(value, str) or not 0 < len(value) <= 100:
        return False
    try:
        base64.b64decode(value, validate=True)
    except binascii.Error:
        return False
    return True


def _form(biz_data: str) -> str:
    return (
        '<form method="get" action="">'
        f'<input type="hidden" name="bizData" value="{html.escape(biz_data)}">'
        '<label>小程序 APPID <input name="merchant_app_id" required></label> '
        '<label>名称 <input name="app_name"></label> '
        '<button type="submit">确认授权</button></form>'
    )


def _page(status: int, title: str, body: str) -> web.Response:
    return web.Response(
        status=status,
        text=f"<html><head><meta charset=utf-8><title>{title}</title></head>"
        f"<body><h1>{title}</h1>{body}</body></html>",
        content_type="text/html",
    )
