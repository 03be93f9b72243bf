"""A merchant's authorization of the third-party app (第三方应用授权): the link the merchant
opens, the ``app_auth_code`` Alipay sends their browser back with, traded for the
app_auth_token / app_refresh_token pair kept in the vault.

Alipay's open platform documents two links: the single-app one
(``https://openauth.alipay.com/oauth2/appToAppAuth.htm?app_id=…&redirect_uri=…&state=…``),
which authorizes the merchant's *base* app and so cannot be used for mini program APIs,
and the "specified app" one (指定应用授权, recommended) this adapter makes:
``https://b.alipay.com/page/message/tasksDetail?bizData=<url-encoded JSON>`` with
``{"platformCode":"O","taskType":"INTERFACE_AUTH","agentOpParam":{"redirectUri":…,
"appTypes":["TINYAPP"],"isvAppId":…,"state":…}}``, on which the merchant picks one of
their mini programs. ``redirectUri`` must equal the third-party app's registered
authorization callback address, so miniship's one-time state travels in ``state`` (at
most 100 characters, base64). After the merchant confirms, Alipay sends the browser to
``redirectUri?app_id=<third-party app>&app_auth_code=<code>&state=<state>``; the code
works once, for a day, with ``alipay.open.auth.token.app`` (``grant_type`` =
``authorization_code``). Sources: the fact sheet (§1.4) and mirrors of Alipay's
"授权操作" and "第三方应用授权" pages; Alipay sends no server-to-server notification of a
new authorization to a third-party app that is not in its service market, so the
callback is where a new mini program is learnt of.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import SecretStr

from platforms.alipay.api import AUTH_GRANT, DETAIL_QUERY, LIST_QUERY
from platforms.alipay.keys import _Caller, _IsvKeys, isv_caller
from platforms.alipay.reading import ALL_STATUSES, PROMOTE_REJECT, version_key
from platforms.alipay.wire import TOKEN_NAMES, AlipayWire
from platforms.base import Authorization, Authorized
from platforms.errors import AuthError, BadResponse, ConfigError, InvalidInput, PlatformError

__all__ = ["GRANTED", "AlipayAuthorization"]

log = logging.getLogger(__name__)

GRANTED = ("the APIs of the third-party app's authorization scope",)
"""What an Alipay grant is said to give: the token answer names no permission sets."""

NAMED_BUNDLE = "com.alipay.alipaywallet"  # whose versions are read for the name

_STATE = re.compile(r"[A-Za-z0-9_-]{16,100}")  # miniship's own state tokens (URL-safe)


def _encoded(state: str) -> str:
    """``state`` as Alipay wants it: base64 ("对应的值必须为 base64 编码")."""
    return base64.b64encode(state.encode("ascii")).decode("ascii")


def _grant_entries(answer: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The grants of an ``alipay.open.auth.token.app`` answer: its own fields (the fact
    sheet's reading), or the entries of ``tokens`` (how newer answers list them)."""
    if answer.get("app_auth_token"):
        return [answer]
    tokens = answer.get("tokens")
    return [t for t in tokens if isinstance(t, Mapping)] if isinstance(tokens, list) else []


class AlipayAuthorization(AlipayWire):
    """``connect_link``, ``link_state``, ``complete_connect`` and ``authorized_app``.
    ``_isv`` (the third-party app's keys) is set by :class:`AlipayPlatform`'s constructor."""

    connects_any = True
    state_in_query = True

    _isv: _IsvKeys

    async def connect_link(self, app: str, redirect_uri: str) -> str:
        """The "specified app" authorization link for mini programs: any merchant (``app``
        "") or the admin of ``app``'s mini program picks it and confirms; Alipay then sends
        the browser to ``redirect_uri`` (without its ``state``, which rides in the link's
        own ``state``, base64) with ``app_auth_code``."""
        isv_caller("", self.settings, self._isv)  # refused now if the third-party app is not set
        if app and self._config(app).private_key is not None:
            raise InvalidInput(
                self.name,
                "",
                "",
                f"{app} calls Alipay with its own keys (self-owned); it needs no authorization.",
            )
        parts = urlsplit(redirect_uri)
        query = dict(parse_qsl(parts.query))
        state = query.pop("state", "")
        callback = urlunsplit(parts._replace(query=urlencode(query)))
        operation: dict[str, Any] = {
            "redirectUri": callback,
            "appTypes": ["TINYAPP"],
            "isvAppId": self.settings.app_id,
        }
        if state:
            operation["state"] = _encoded(state)
        biz = {"platformCode": "O", "taskType": "INTERFACE_AUTH", "agentOpParam": operation}
        data = json.dumps(biz, separators=(",", ":"))
        return f"{self.settings.authorize_page}?{urlencode({'bizData': data})}"

    def link_state(self, query: Mapping[str, str]) -> str:
        """miniship's state from the callback's ``state``. UNCERTAIN: Alipay says it passes
        the value through (透传), so it comes back base64 as sent; one already decoded is
        taken as it is."""
        said = query.get("state", "")
        try:
            decoded = base64.b64decode(said, validate=True).decode("ascii")
        except (binascii.Error, UnicodeDecodeError):
            return said
        return decoded if _STATE.fullmatch(decoded) else said

    async def complete_connect(self, app: str, query: Mapping[str, str]) -> Authorization:
        """Trade the ``app_auth_code`` Alipay sent the browser back with for the merchant's
        tokens, keep them in the vault (and in use at once), say who authorized.

        ``app`` "": any mini program (the grant then names it); else it must be ``app``'s
        mini program, or nothing is kept. The code is traded once: an answer lost on the
        way is not asked again (the fact sheet documents no way to read a grant back), the
        merchant authorizes again.
        """
        target = self._config(app).app_id if app else None
        code = (query.get("app_auth_code") or "").strip()
        if not code:
            raise InvalidInput(
                self.name,
                "",
                "",
                "Alipay's authorization page sent no app_auth_code back (the merchant may "
                "have cancelled); ask for a new link with `connect alipay`.",
            )
        sent_for = query.get("app_id", "")
        if sent_for and sent_for != self.settings.app_id:
            raise AuthError(
                self.name,
                "",
                "",
                f"that authorization is for the third-party app {sent_for}, not this "
                f"miniship's ({self.settings.app_id}); nothing was kept.",
            )
        if self.vault is None:
            raise ConfigError(
                "miniship needs its secret key setting (MINISHIP_SECRET_KEY or "
                "MINISHIP_SECRET_KEY_FILE) to keep the tokens Alipay grants; set it and ask "
                "for a new link"
            )
        caller = isv_caller("", self.settings, self._isv)
        params = {"grant_type": "authorization_code", "code": code}
        answer = await self._send(caller, AUTH_GRANT, params, shown={**params, "code": "***"})
        entries = _grant_entries(answer)
        # the specified-app page grants one mini program; a batch answer may list more,
        # of which the one asked for (else the first) is kept
        chosen = next((e for e in entries if e.get("auth_app_id") == target), None)
        if chosen is None and target is None and entries:
            chosen = entries[0]
        if chosen is None:
            who = ", ".join(str(e.get("auth_app_id")) for e in entries) or "unknown"
            raise AuthError(
                self.name,
                "",
                "",
                f"the mini program that authorized miniship is {who}, not {app} ({target}), "
                f"so nothing was kept. Run `connect {app} alipay` again and have the admin of "
                f"{target} pick that mini program.",
            )
        mini, token, refresh = (
            chosen.get(k) for k in ("auth_app_id", "app_auth_token", "app_refresh_token")
        )
        if not all(isinstance(v, str) and v for v in (mini, token, refresh)):
            raise BadResponse(
                self.name,
                "",
                "",
                f"Alipay's answer to {AUTH_GRANT} lacks auth_app_id, app_auth_token or "
                "app_refresh_token; nothing was kept.",
            )
        assert isinstance(mini, str) and isinstance(token, str) and isinstance(refresh, str)
        await self._keep_grant(mini, token, refresh)
        key = next((k for k, cfg in self.apps.items() if cfg.app_id == mini), None)
        return Authorization(
            platform_app_id=mini,
            app=key,
            permission_names=GRANTED,
            detail=f"mini program {mini} authorized the third-party app {caller.app_id}",
            platform=self.name,
        )

    async def _keep_grant(self, mini: str, token: str, refresh: str) -> None:
        """Keep a new grant for mini program ``mini`` in the vault (required: an app added
        by it has no other token) and give it to the callers of that mini program."""
        assert self.vault is not None
        for name, value in zip(TOKEN_NAMES, (token, refresh), strict=True):
            try:
                await self.vault.save(self.name, f"{name}:{mini}", SecretStr(value))
            except Exception as exc:  # the vault's own errors name no secret
                raise ConfigError(
                    f"miniship's credential vault could not keep the Alipay tokens of mini "
                    f"program {mini} ({type(exc).__name__}: {exc}); check MINISHIP_SECRET_KEY "
                    "and have the merchant authorize again"
                ) from None
        for caller in self._callers.values():
            if caller.isv and caller.mini_app_id == mini:
                async with caller.lock:
                    caller.token, caller.refresh_token, caller.loaded = token, refresh, True

    async def authorized_app(self, platform_app_id: str) -> Authorized | None:
        """Mini program ``platform_app_id`` when miniship holds its grant (kept in the vault
        by :meth:`complete_connect`), named as Alipay shows it; else None."""
        caller = isv_caller(platform_app_id, self.settings, self._isv)
        await self._load_tokens(caller)
        if caller.token is None:
            return None
        return Authorized(platform_app_id, await self._name(caller) or platform_app_id)

    async def _name(self, caller: _Caller) -> str | None:
        """The mini program's name: the fact sheet's APIs give it only with a version
        (``detail.query``'s ``app_name``), so the newest version listed is read; None when
        it has none yet or Alipay does not say (the app id stands in)."""
        statuses = ",".join(s for s in ALL_STATUSES.split(",") if s != PROMOTE_REJECT)
        try:
            listed = await self._send(
                caller,
                LIST_QUERY,
                {"bundle_id": NAMED_BUNDLE, "version_status": statuses},
                token=caller.token,
            )
            names = [
                str(i.get("app_version"))
                for i in listed.get("app_version_infos") or []
                if isinstance(i, Mapping) and i.get("app_version")
            ]
            if not names:
                return None
            newest = max(names, key=version_key)
            detail = await self._send(
                caller,
                DETAIL_QUERY,
                {"app_version": newest, "bundle_id": NAMED_BUNDLE},
                token=caller.token,
            )
        except PlatformError as exc:
            log.info("could not read the name of mini program %s: %s", caller.mini_app_id, exc)
            return None
        name = detail.get("app_name")
        return name.strip() if isinstance(name, str) and name.strip() else None
