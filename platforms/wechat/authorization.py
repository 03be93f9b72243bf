"""A mini program's authorization of the third-party platform: the link its admin
opens, the code WeChat sends back, and which permission sets were granted.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from platforms.base import Authorization
from platforms.errors import AuthError, InvalidInput
from platforms.wechat.api import CREATE_PREAUTHCODE, LOGIN_PAGE, QUERY_AUTH
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
