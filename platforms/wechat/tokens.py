"""The tokens WeChat's calls carry, and the two kinds of call made with them.

The platform's ``component_access_token`` comes from its AppSecret and the newest
``component_verify_ticket`` (pushed, kept in the vault, or configured); each mini
program's ``authorizer_access_token`` from its ``authorizer_refresh_token`` (obtained while
running, kept in the vault, or configured). Both are cached and renewed before WeChat's
expiry, one renewal at a time; a token WeChat refuses is renewed once.
:meth:`WeChatTokens._component_call` calls a platform-level API, :meth:`WeChatTokens._call`
a ``/wxa`` API of one mini program.

Run-time credentials go to the vault here: what the vault raises becomes a
:class:`~platforms.errors.ConfigError` (:meth:`~platforms.base.Platform.vault_failure`).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import SecretStr

from platforms.errors import AuthError, ConfigError, PlatformError
from platforms.wechat.api import AUTHORIZER_INFO, GET_AUTHORIZER_ACCESS, GET_COMPONENT_ACCESS
from platforms.wechat.config import _AppConfig
from platforms.wechat.errors import NotConnected
from platforms.wechat.reading import _bad, _section, as_int
from platforms.wechat.wire import WeChatWire

__all__ = ["WeChatTokens"]

log = logging.getLogger(__name__)


TOKEN_CODES = frozenset({"40001", "40014", "42001", "42006"})
"""errcodes that mean "this access token is refused": renew it and try once more.

The SDKs' set is {40001, 40014, 42001} (fact sheet §1.1); 42001 is what an expired token
of either kind answers, the component token on api_authorizer_token too (§3.6). 42006
(component_access_token expired) is only in WxJava's error enum; it is renewed as well,
in case WeChat answers it."""

TICKET_REFUSED = frozenset({"61005", "61006"})

REFRESH_REFUSED = frozenset({"61023"})

REFRESH_EARLY_SECONDS = 600.0
"""Tokens are renewed at least this long before WeChat says they expire."""

DEFAULT_EXPIRES_IN = 7200

VAULT_TICKET = "component_verify_ticket"


@dataclass(frozen=True)
class _Token:
    value: str = field(repr=False)  # a secret: kept out of repr (debuggers, error reports)
    renew_at: float  # unix seconds; renewed from then on, before WeChat's expiry


def _reveal(secret: SecretStr | None) -> str | None:
    return secret.get_secret_value() if secret is not None else None


def _candidates(*values: str | None) -> list[str]:
    """Credentials to try, in the order given, without empty ones and repeats."""
    return list(dict.fromkeys(v for v in values if v))


class WeChatTokens(WeChatWire):
    """Tokens and the calls that carry them. The state below is set by
    :class:`WeChatPlatform`'s constructor."""

    _component: _Token | None
    _authorizers: dict[str, _Token]
    _refresh_tokens: dict[str, SecretStr]  # obtained while running
    _locks: dict[str, asyncio.Lock]
    _pushed_ticket: SecretStr | None
    _pushed_ticket_at: datetime | None  # its CreateTime

    @property
    def verify_ticket(self) -> SecretStr | None:
        """The newest component_verify_ticket known in memory: the latest pushed one, else
        the configured one (the vault may hold a newer one after a restart)."""
        return self._pushed_ticket or self.settings.component_verify_ticket

    # -- the vault ---------------------------------------------------------------------

    async def _vault_load(self, name: str) -> str | None:
        if self.vault is None:
            return None
        try:
            value = await self.vault.load(self.name, name)
        except ConfigError:
            raise
        except Exception as exc:  # the vault's own errors name no secret
            raise self.vault_failure(f"the WeChat {name.split(':')[0]}", exc) from None
        return value.get_secret_value() if value is not None else None

    @staticmethod
    def _no_vault() -> ConfigError:
        return ConfigError(
            "miniship needs its secret key setting (MINISHIP_SECRET_KEY or "
            "MINISHIP_SECRET_KEY_FILE) to keep the authorization WeChat returns; set it and "
            "run `connect` again"
        )

    async def _vault_save(self, name: str, value: str, *, required: bool = False) -> None:
        if self.vault is None:
            if required:
                raise self._no_vault()
            return
        try:
            await self.vault.save(self.name, name, SecretStr(value))
        except Exception as exc:
            if required:
                raise ConfigError(
                    f"miniship's credential vault could not keep the WeChat "
                    f"{name.split(':')[0]} ({type(exc).__name__}); check MINISHIP_SECRET_KEY"
                ) from None
            log.error("could not keep the WeChat %s in the vault: %s", name.split(":")[0], exc)

    # -- tokens ------------------------------------------------------------------------

    @staticmethod
    async def _renewing(
        token: Callable[[], Awaitable[str]],
        forget: Callable[[str], None],
        send: Callable[[str], Awaitable[dict[str, Any]]],
    ) -> dict[str, Any]:
        """``send(token)``; when WeChat refuses the token, forget it, renew, try once more."""
        value = await token()
        try:
            return await send(value)
        except PlatformError as exc:
            if exc.code not in TOKEN_CODES:
                raise
            log.info("WeChat refused a token (errcode %s); renewing it", exc.code)
        forget(value)
        return await send(await token())

    def _lock(self, key: str) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())

    def _renew_at(self, expires_in: int) -> float:
        return self.clock() + max(expires_in - REFRESH_EARLY_SECONDS, expires_in / 2)

    def _fresh(self, token: _Token | None) -> str | None:
        return token.value if token is not None and self.clock() < token.renew_at else None

    @staticmethod
    def _token_fields(data: Mapping[str, Any], key: str, api: str) -> tuple[str, int]:
        value = data.get(key)
        if not isinstance(value, str) or not value:
            raise _bad(api, f"no {key}")
        expires_in = as_int(data.get("expires_in"))
        return value, expires_in if expires_in and expires_in > 0 else DEFAULT_EXPIRES_IN

    def _component_credentials(self) -> tuple[str, str]:
        s = self.settings
        secret = s.component_secret
        if not (s.component_appid and secret is not None and secret.get_secret_value()):
            raise ConfigError(
                "WeChat needs WECHAT_COMPONENT_APPID and WECHAT_COMPONENT_SECRET (the "
                "third-party platform's credentials) and a component_verify_ticket "
                "(WECHAT_COMPONENT_VERIFY_TICKET, or the newest one WeChat pushes to "
                "/push/wechat/auth)"
            )
        return s.component_appid, secret.get_secret_value()

    async def _tickets(self) -> list[str]:
        """component_verify_tickets to try, newest first: pushed, kept in the vault, configured."""
        return _candidates(
            _reveal(self._pushed_ticket),
            await self._vault_load(VAULT_TICKET),
            _reveal(self.settings.component_verify_ticket),
        )

    async def _component_token(self) -> str:
        """The platform's component_access_token, cached; renewed by one caller at a time."""
        if value := self._fresh(self._component):
            return value
        async with self._lock("component"):
            if value := self._fresh(self._component):
                return value
            appid, secret = self._component_credentials()
            tickets = await self._tickets()
            if not tickets:
                raise ConfigError(
                    "WeChat has not pushed a component_verify_ticket yet (it does every 10 "
                    "minutes, to /push/wechat/auth); check that URL is set on open.weixin.qq.com "
                    "and reachable, or set WECHAT_COMPONENT_VERIFY_TICKET"
                )
            data = await self._first_accepted(
                tickets,
                TICKET_REFUSED,
                lambda ticket: self.read_with_retries(
                    functools.partial(
                        self._send,
                        "POST",
                        GET_COMPONENT_ACCESS,
                        body={
                            "component_appid": appid,
                            "component_appsecret": secret,
                            "component_verify_ticket": ticket,
                        },
                    )
                ),
            )
            value, expires_in = self._token_fields(
                data, "component_access_token", f"POST {GET_COMPONENT_ACCESS}"
            )
            self._component = _Token(value, self._renew_at(expires_in))
            return value

    @staticmethod
    async def _first_accepted(
        candidates: Sequence[str],
        refused: frozenset[str],
        send: Callable[[str], Awaitable[dict[str, Any]]],
    ) -> dict[str, Any]:
        """``send`` with each candidate credential in turn until WeChat accepts one; only an
        answer in ``refused`` (this credential is invalid) moves on to the next."""
        for candidate in candidates[:-1]:
            try:
                return await send(candidate)
            except AuthError as exc:
                if exc.code not in refused:
                    raise
                log.info("WeChat refused a stored credential (%s); trying the next one", exc.code)
        return await send(candidates[-1])

    def _forget_component(self, value: str) -> None:
        if self._component is not None and self._component.value == value:
            self._component = None

    async def _component_call(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        *,
        read: bool,
        query: Mapping[str, str] | None = None,
        key: str = "component_access_token",
    ) -> dict[str, Any]:
        """Call a platform-level API with the component token under query ``key``
        (``access_token`` for the template library, as the sheet advises, §3.7)."""
        send = self._sender(method, path, body, read=read, query=query, key=key)
        return await self._renewing(self._component_token, self._forget_component, send)

    async def _refresh_tokens_for(self, app: str, cfg: _AppConfig) -> list[str]:
        """Refresh tokens to try, in order: obtained while running, the vault, miniship.toml."""
        return _candidates(
            _reveal(self._refresh_tokens.get(app)),
            await self._vault_load(f"refresh_token:{cfg.appid}"),
            _reveal(cfg.refresh_token),
        )

    async def _keep_refresh(self, appid: str, value: str, *, required: bool = False) -> None:
        """Use ``value`` as the refresh token of mini program ``appid`` from now on: in
        memory first (a failing vault then does not lose it for this process), then in the
        vault, for the next start."""
        for key in self._keys_for(appid):
            self._refresh_tokens[key] = SecretStr(value)
        await self._vault_save(f"refresh_token:{appid}", value, required=required)

    async def _authorizer_token(self, app: str) -> str:
        """The mini program's authorizer_access_token, cached; one renewal at a time."""
        cfg = self._platform_app(app)
        if value := self._fresh(self._authorizers.get(app)):
            return value
        async with self._lock(f"authorizer:{app}"):
            if value := self._fresh(self._authorizers.get(app)):
                return value
            candidates = await self._refresh_tokens_for(app, cfg)
            if not candidates:
                raise NotConnected(
                    self.name,
                    "",
                    "",
                    f"miniship has no authorization for mini program {cfg.appid} ({app}): run "
                    f"`connect {app} wechat` and have its admin open the link, or give "
                    f"refresh_token (its authorizer_refresh_token) in [apps.{app}.wechat].",
                )
            used: list[str] = []

            async def renew(refresh: str) -> dict[str, Any]:
                used.append(refresh)
                return await self._renew_authorizer(cfg, refresh)

            try:
                data = await self._first_accepted(candidates, REFRESH_REFUSED, renew)
            except AuthError as refused:
                if refused.code not in REFRESH_REFUSED:
                    raise
                data = await renew(await self._recover_refresh(cfg, candidates, refused))
            value, expires_in = self._token_fields(
                data, "authorizer_access_token", f"POST {GET_AUTHORIZER_ACCESS}"
            )
            newest = data.get("authorizer_refresh_token")
            if isinstance(newest, str) and newest and newest != used[-1]:
                # rotated (whether WeChat does is UNCERTAIN, §3.6): the new one is the one
                # to use from now on, here and after a restart
                await self._keep_refresh(cfg.appid, newest)
            self._authorizers[app] = _Token(value, self._renew_at(expires_in))
            return value

    async def _recover_refresh(
        self, cfg: _AppConfig, tried: Sequence[str], refused: AuthError
    ) -> str:
        """The current refresh token of a mini program whose known ones WeChat refused
        (61023), as api_get_authorizer_info names it, kept for later renewals.

        This covers a rotated token whose answer was lost (api_authorizer_token is asked
        again as a read, with the old one). ``refused`` is raised again when WeChat names
        no other token; a mini program that no longer authorizes the platform gets 61003.
        """
        try:
            info = _section(await self._authorizer_info(cfg.appid), "authorization_info")
        except AuthError:
            raise
        except PlatformError as exc:
            log.info("could not ask WeChat for the current refresh token (%s)", exc.code or "-")
            raise refused from None
        current = info.get("authorizer_refresh_token")
        if not isinstance(current, str) or not current or current in tried:
            raise refused
        log.info("WeChat named a newer refresh token for %s; using it", cfg.appid)
        await self._keep_refresh(cfg.appid, current)
        return current

    async def _renew_authorizer(self, cfg: _AppConfig, refresh: str) -> dict[str, Any]:
        body = {
            "component_appid": self.settings.component_appid,
            "authorizer_appid": cfg.appid,
            "authorizer_refresh_token": refresh,
        }
        return await self._component_call("POST", GET_AUTHORIZER_ACCESS, body, read=True)

    def _forget_authorizer(self, app: str, value: str) -> None:
        token = self._authorizers.get(app)
        if token is not None and token.value == value:
            del self._authorizers[app]

    async def _call(
        self,
        app: str,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        *,
        read: bool,
        query: Mapping[str, str] | None = None,
        image: bool = False,
    ) -> dict[str, Any]:
        """Call a ``/wxa`` API for ``app``: renews a refused token once; retries only reads.

        A write whose answer is lost or unusable raises :class:`OutcomeUnknown`, so the
        operation can ask WeChat what happened; failures before the write was sent (tokens)
        do not.
        """
        send = self._sender(
            method, path, body, read=read, query=query, key="access_token", image=image
        )
        return await self._renewing(
            functools.partial(self._authorizer_token, app),
            functools.partial(self._forget_authorizer, app),
            send,
        )

    def _keys_for(self, appid: str) -> list[str]:
        """The configured apps of mini program ``appid``."""
        return [k for k, cfg in self.apps.items() if cfg.appid == appid]

    async def _authorizer_info(self, appid: str) -> dict[str, Any]:
        # Not in the fact sheet: the documented component API
        # POST /cgi-bin/component/api_get_authorizer_info {component_appid, authorizer_appid}
        # → {"authorizer_info": {...}, "authorization_info": {"authorizer_appid",
        #    "authorizer_refresh_token", "func_info": [{"funcscope_category": {"id": 18}}]}}
        component, _ = self._component_credentials()
        body = {"component_appid": component, "authorizer_appid": appid}
        return await self._component_call("POST", AUTHORIZER_INFO, body, read=True)
