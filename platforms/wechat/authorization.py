"""A mini program's authorization of the third-party platform: the link its admin
opens, the code WeChat sends back, and which permission sets were granted.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from platforms.base import Authorization, Authorized
from platforms.errors import AuthError, InvalidInput
from platforms.wechat.api import AUTHORIZER_LIST, CREATE_PREAUTHCODE, LOGIN_PAGE, QUERY_AUTH
from platforms.wechat.reading import _bad, _granted, _section, _text, as_int
from platforms.wechat.tokens import DEFAULT_EXPIRES_IN, WeChatTokens, _Token

__all__ = ["CODE_MANAGEMENT", "PERMISSION_NAMES", "WeChatAuthorization", "permission_name"]


CODE_MANAGEMENT = 18  # the permission set all /wxa code-management APIs belong to (§2)

PERMISSION_NAMES: dict[int, str] = {
    CODE_MANAGEMENT: "code management (mini program development and data analysis)",
    30: "categories (mini program settings)",
    86: "trial QR codes",
}
"""Plain names of the permission sets (权限集) the fact sheet names (§2); others show as
"permission set N"."""


def permission_name(permission: int) -> str:
    return PERMISSION_NAMES.get(permission, f"permission set {permission}")


PAGE = 500  # api_get_authorizer_list's largest page
INFO_CONCURRENCY = 8  # api_get_authorizer_info calls in flight while naming them


def _when(seconds: int | None) -> datetime | None:
    try:
        return datetime.fromtimestamp(seconds, UTC) if seconds else None
    except (OverflowError, OSError, ValueError):  # not a moment: said as unknown
        return None


class WeChatAuthorization(WeChatTokens):
    """``connect_link``, ``complete_connect`` and ``authorization``."""

    async def connect_link(self, app: str, redirect_uri: str) -> str:
        """The componentloginpage link the mini program's admin opens to authorize the
        platform (mini programs only, this app's appid); WeChat then sends the browser to
        ``redirect_uri`` with ``auth_code`` (see :meth:`complete_connect`)."""
        cfg = self._config(app)
        appid, _ = self._component_credentials()
        data = await self._component_call(
            "POST", CREATE_PREAUTHCODE, {"component_appid": appid}, read=True
        )
        code = data.get("pre_auth_code")
        if not isinstance(code, str) or not code:
            raise _bad(f"POST {CREATE_PREAUTHCODE}", "no pre_auth_code")
        params = {
            "component_appid": appid,
            "pre_auth_code": code,
            "redirect_uri": redirect_uri,
            "auth_type": "2",  # mini programs only
            "biz_appid": cfg.appid,
        }
        return f"{self.settings.authorize_page_base}{LOGIN_PAGE}?{urlencode(params)}"

    def _grant(
        self, appid: str, permissions: tuple[int, ...], key: str | None, *, authorized: bool = True
    ) -> Authorization:
        names = tuple(permission_name(p) for p in permissions)
        if not authorized:
            detail = f"{appid} has not authorized this third-party platform"
        elif CODE_MANAGEMENT in permissions:
            detail = "code management (permission set 18) granted"
        else:
            detail = (
                "code management (permission set 18) was NOT granted: miniship cannot upload, "
                "submit or publish; authorize again with it ticked (`connect`)"
            )
        return Authorization(
            platform_app_id=appid,
            app=key,
            authorized=authorized,
            permissions=permissions,
            permission_names=names,
            detail=detail,
            platform=self.name,
        )

    async def complete_connect(self, app: str, query: Mapping[str, str]) -> Authorization:
        """Exchange the ``auth_code`` WeChat sent the browser back with (api_query_auth),
        keep the authorizer_refresh_token in the vault, say what was granted.

        Refused, with nothing kept, when the mini program that authorized is not ``app``'s.
        """
        target = self._config(app).appid
        code = (query.get("auth_code") or "").strip()
        if not code:
            raise self._refused(
                "WeChat's authorization page sent no auth_code back (the admin may have "
                "cancelled); run `connect <app> wechat` again.",
                InvalidInput,
            )
        if self.vault is None:
            raise self._no_vault()
        appid, _ = self._component_credentials()
        body = {"component_appid": appid, "authorization_code": code}
        # the code is used once: after an unclear answer, WeChat is asked about the app the
        # link was made for instead
        found: list[Mapping[str, Any]] = []

        async def authorized() -> bool:
            try:
                granted = _section(await self._authorizer_info(target), "authorization_info")
            except AuthError as exc:
                if exc.code in ("61003", "61007"):  # not authorized: it did not happen
                    return False
                raise
            if granted.get("authorizer_refresh_token"):
                found.append(granted)
            return bool(found)

        exchange = functools.partial(self._component_call, "POST", QUERY_AUTH, body, read=False)
        data = await self._change(exchange, "authorization", authorized)
        info = _section(data, "authorization_info") if data is not None else found[-1]
        authorizer = _text(info.get("authorizer_appid"))
        refresh = info.get("authorizer_refresh_token")
        if authorizer is None or not isinstance(refresh, str) or not refresh:
            raise _bad(f"POST {QUERY_AUTH}", "no authorizer_appid or authorizer_refresh_token")
        if authorizer != target:
            raise AuthError(
                self.name,
                "",
                "",
                f"the mini program that authorized miniship is {authorizer}, not {app} "
                f"({target}), so nothing was kept. Run `connect {app} wechat` again and have "
                f"the admin of {target} authorize with that mini program.",
            )
        access = info.get("authorizer_access_token")
        expires_in = as_int(info.get("expires_in")) or DEFAULT_EXPIRES_IN
        for key in self._keys_for(authorizer):
            self._authorizers.pop(key, None)
            if isinstance(access, str) and access:
                self._authorizers[key] = _Token(access, self._renew_at(expires_in))
        await self._keep_refresh(authorizer, refresh, required=True)
        return self._grant(authorizer, _granted(info), app)

    async def authorized_apps(self) -> list[Authorized]:
        """Every mini program that authorized the platform: api_get_authorizer_list (paged,
        500 at a time), each named by api_get_authorizer_info (a few at once). Official
        accounts (no ``MiniProgramInfo``) are left out. The refresh token the list gives
        for each is kept, so miniship can act for it at once."""
        component, _ = self._component_credentials()
        listed: dict[str, tuple[str, datetime | None]] = {}
        while True:
            body = {"component_appid": component, "offset": len(listed), "count": PAGE}
            data = await self._component_call("POST", AUTHORIZER_LIST, body, read=True)
            page, total = data.get("list"), as_int(data.get("total_count"))
            if not isinstance(page, list):
                raise _bad(f"POST {AUTHORIZER_LIST}", "no list")
            before = len(listed)
            for item in page:
                appid = _text(item.get("authorizer_appid")) if isinstance(item, Mapping) else None
                if appid is None:
                    raise _bad(f"POST {AUTHORIZER_LIST}", "an entry without authorizer_appid")
                when = as_int(item.get("auth_time"))
                listed[appid] = (_text(item.get("refresh_token")) or "", _when(when))
            if len(listed) == before or total is None or len(listed) >= total:
                break
        for appid, (token, _) in listed.items():
            if token:
                await self._keep_refresh(appid, token)
        gate = asyncio.Semaphore(INFO_CONCURRENCY)

        async def named(appid: str) -> Authorized | None:
            async with gate:
                return await self._named(appid, listed[appid][1])

        found = await asyncio.gather(*(named(a) for a in listed))
        return [a for a in found if a is not None]

    async def authorized_app(self, platform_app_id: str) -> Authorized | None:
        """api_get_authorizer_info: its name, and its refresh token kept; None when it does
        not authorize the platform (61003) or is not a mini program."""
        try:
            found = await self._named(platform_app_id, None, keep=True)
        except AuthError as exc:
            if exc.code == "61003":
                return None
            raise
        return found

    async def _named(
        self, appid: str, since: datetime | None, *, keep: bool = False
    ) -> Authorized | None:
        data = await self._authorizer_info(appid)
        info = _section(data, "authorizer_info")
        if "MiniProgramInfo" not in info:
            return None  # an official account that authorized the same platform
        token = _text(_section(data, "authorization_info").get("authorizer_refresh_token"))
        if keep and token:
            await self._keep_refresh(appid, token)
        return Authorized(appid, _text(info.get("nick_name")) or appid, since)

    async def authorization(self, app: str) -> Authorization | None:
        """Whether the mini program authorized the platform, and which permission sets
        (api_get_authorizer_info); ``None`` for an app owned directly."""
        cfg = self._config(app)
        if cfg.direct:
            return None
        try:
            data = await self._authorizer_info(cfg.appid)
        except AuthError as exc:
            if exc.code in ("61003", "61007"):
                return self._grant(cfg.appid, (), app, authorized=False)
            raise
        info = _section(data, "authorization_info")
        return self._grant(cfg.appid, _granted(info), app)
