"""How Alipay is spoken to: one signed gateway request, its answer verified and read into
the response node or the typed error, and the tokens it carries (renewed when they
expire, kept in the vault).

Run-time tokens go to the vault here: what the vault raises becomes a
:class:`~platforms.errors.ConfigError` (:meth:`~platforms.base.Platform.vault_failure`).
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import httpx
from pydantic import SecretStr

from platforms.alipay import sign as alipay_sign
from platforms.alipay.api import AUTH_GRANT
from platforms.alipay.config import AlipayAppConfig, AlipaySettings
from platforms.alipay.errors import _unsigned, error_for
from platforms.alipay.keys import _Caller, no_token
from platforms.base import Platform, scrub_answer
from platforms.errors import AuthError, BadResponse, ConfigError, PlatformUnavailable
from platforms.transport import Answer

__all__ = ["AlipayWire"]

log = logging.getLogger(__name__)


SUCCESS = "10000"

TOKEN_NAMES = ("app_auth_token", "app_refresh_token")  # vault names: "<name>:<mini app_id>"
GRANT_EXPIRED = "aop.app-auth-token-time-out"
GRANT_REFUSED = "aop.invalid-app-auth-token"
REFRESH_REFUSED = frozenset({"isv.refresh-token-invalid", "isv.refresh-token-time-out"})

UNSIGNED_GATEWAY_CODES = frozenset({"20000", "40001", "40002"})
"""Refusals Alipay may send without a signature (fact sheet §1.6: the gateway cannot sign
before it knows the caller, or is down). Other unsigned refusals are reported as they
are but never acted on (:class:`_Unsigned`)."""


class AlipayWire(Platform):
    """The exchange with Alipay, below every operation of :class:`AlipayPlatform`. The
    callers are set by its constructor."""

    settings: AlipaySettings
    _callers: dict[str, _Caller]
    _unusable: dict[str, str]

    def _config(self, app: str) -> AlipayAppConfig:
        cfg: AlipayAppConfig = self.app(app)
        return cfg

    # -- the vault ---------------------------------------------------------------------

    async def _keep_tokens(self, caller: _Caller) -> None:
        """Keep ``caller``'s tokens in the vault, so a restart uses them rather than the
        configured ones (Alipay may have retired those). A vault that fails is logged: the
        tokens still work until miniship restarts."""
        if self.vault is None:
            return
        for name, value in zip(TOKEN_NAMES, (caller.token, caller.refresh_token), strict=True):
            if not value:
                continue
            try:
                await self.vault.save(self.name, f"{name}:{caller.mini_app_id}", SecretStr(value))
            except Exception as exc:
                log.error("could not keep the Alipay %s in the vault: %s", name, type(exc).__name__)

    async def _load_tokens(self, caller: _Caller) -> None:
        """Once per caller: use the tokens the vault keeps for its mini program (renewed
        before a restart) in place of the configured ones."""
        async with caller.lock:
            if caller.loaded or self.vault is None:
                caller.loaded = True
                return
            names = [f"{name}:{caller.mini_app_id}" for name in TOKEN_NAMES]
            try:
                kept = [await self.vault.load(self.name, name) for name in names]
            except Exception as exc:  # the vault's own errors name no secret
                where = f"the Alipay tokens of mini program {caller.mini_app_id}"
                raise self.vault_failure(where, exc) from None
            token, refresh = (value.get_secret_value() if value else None for value in kept)
            caller.token = token or caller.token
            caller.refresh_token = refresh or caller.refresh_token
            caller.loaded = True

    # -- the wire ----------------------------------------------------------------------

    def _http_failure(
        self,
        exc: httpx.HTTPError | httpx.InvalidURL,
        api: str,
        request: Mapping[str, Any],
        what: str,
        *,
        bad_url: Exception,
    ) -> Exception:
        """The error for a request to ``what`` that got no answer. Only the exception's
        type is recorded or shown: its text may carry the URL, token and all."""
        timed_out = isinstance(exc, httpx.TimeoutException)
        self.record_exchange(api, request, error="timed out" if timed_out else type(exc).__name__)
        if isinstance(exc, httpx.InvalidURL):
            return bad_url
        if timed_out:
            return PlatformUnavailable(
                self.name, "", "", f"{what} did not answer in time; try again later."
            )
        return PlatformUnavailable(
            self.name, "", "", f"could not reach {what} ({type(exc).__name__}); try again later."
        )

    def _http_status(
        self, response: Answer, api: str, request: Mapping[str, Any], what: str
    ) -> PlatformUnavailable | None:
        """The error for an answer other than HTTP 200, or ``None``."""
        status = response.status_code
        if status == 200:
            return None
        self.record_exchange(api, request, error=f"HTTP {status}")
        return PlatformUnavailable(
            self.name, f"HTTP {status}", "", f"{what} answered HTTP {status}; try again later."
        )

    async def _send(
        self,
        caller: _Caller,
        method: str,
        params: Mapping[str, str],
        *,
        multipart: bool = False,
        files: Mapping[str, tuple[str, bytes, str]] | None = None,
        token: str | None = None,
        shown: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """One signed gateway request; returns the verified response node (code 10000).

        ``files`` (multipart only) are ``part → (file name, content, MIME type)``: sent, but
        not signed. ``shown`` is what the event log may see of ``params`` (defaults to
        ``params``). A refusal without a signature is raised all the same, but marked
        (:class:`_Unsigned`) unless it is a gateway-level one, so nothing acts on it.
        """
        common = {
            "app_id": caller.app_id,
            "method": method,
            "format": "JSON",
            "charset": "utf-8",
            "sign_type": "RSA2",
            "timestamp": alipay_sign.format_timestamp(self.clock()),
            "version": "1.0",
        }
        if token:
            common["app_auth_token"] = token
        if multipart:
            body = {k: v for k, v in params.items() if v}
        else:
            biz = json.dumps(dict(params), ensure_ascii=False, separators=(",", ":"))
            body = {"biz_content": biz}
        common["sign"] = alipay_sign.sign(
            alipay_sign.sign_content({**common, **body}), caller.private_key
        )
        request_log = {"app_id": caller.app_id, "method": method, **(shown or params)}

        started = time.perf_counter()

        def log(answer: Mapping[str, Any] | None = None, error: str = "") -> None:
            self.record_exchange(method, request_log, answer, error, time.perf_counter() - started)

        try:
            if multipart:  # the common parameters in the query, as Alipay's SDKs send them
                parts: list[tuple[str, tuple[str | None, str | bytes, str]]] = [
                    (k, (None, v, "text/plain; charset=utf-8")) for k, v in body.items()
                ]
                parts += [(k, file) for k, file in (files or {}).items()]
                url = f"{self.settings.gateway}?{urlencode(common)}"
                response = await self.sender.request("POST", url, files=parts)
            else:
                # all in the form, but the charset the gateway decodes it with (as Alipay's
                # page-payment forms post): a URL of the same few characters every time
                # rather than 600 for httpx to check, one by one, at every request
                form = {k: v for k, v in common.items() if k != "charset"} | body
                url = f"{self.settings.gateway}?charset={common['charset']}"
                response = await self.sender.request("POST", url, data=form)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            bad_url = ConfigError(
                f"ALIPAY_GATEWAY {self.settings.gateway!r} does not make a valid URL for "
                f"{method}; set it to an http(s) URL such as "
                "https://openapi.alipay.com/gateway.do"
            )
            raise self._http_failure(
                exc, method, request_log, f"Alipay ({method})", bad_url=bad_url
            ) from None
        refused = self._http_status(response, method, request_log, "the Alipay gateway")
        if refused is not None:
            raise refused
        try:
            node = alipay_sign.read_response(response.content.decode("utf-8"), method)
        except (UnicodeDecodeError, ValueError):
            log(error="the answer is not JSON")
            raise PlatformUnavailable(
                self.name,
                "",
                "",
                "the Alipay gateway answered with something that is not JSON (or cut short).",
            ) from None
        except LookupError as exc:
            log(error=str(exc))
            raise BadResponse(
                self.name, "", "", f"Alipay's answer to {method} is malformed: {exc}."
            ) from None

        # sub_msg may echo the signed request, tokens and all
        data: dict[str, Any] = scrub_answer(node.data)
        code = str(data.get("code", ""))
        if node.sign is not None:
            if not alipay_sign.verify_node(node, caller.alipay_public_key):
                log(error="response signature did not verify")
                raise BadResponse(
                    self.name,
                    "",
                    "",
                    f"the signature of Alipay's answer to {method} did not verify; check "
                    "ALIPAY_PUBLIC_KEY (the Alipay public key, not your app's), or someone "
                    "altered the answer on the way.",
                )
        elif code == SUCCESS:
            log(error="successful answer without a signature")
            raise BadResponse(
                self.name,
                "",
                "",
                f"Alipay's successful answer to {method} carries no signature, so it cannot be "
                "trusted.",
            )
        log(data)
        if code == SUCCESS:
            return data
        error = error_for(
            code,
            str(data.get("sub_code", "")),
            str(data.get("sub_msg", "")),
            str(data.get("msg", "")),
        )
        if node.sign is None and code not in UNSIGNED_GATEWAY_CODES:
            error = _unsigned(error)
        raise error

    async def _call(
        self,
        app: str,
        method: str,
        params: Mapping[str, str],
        *,
        read: bool = False,
        multipart: bool = False,
        files: Mapping[str, tuple[str, bytes, str]] | None = None,
        shown: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Call ``method`` for ``app``: renews an expired token once; retries only reads.

        A change (``read=False``) whose answer is lost or unusable raises
        :class:`OutcomeUnknown`, so the operation can ask Alipay what happened; a failed
        token renewal (nothing was changed) does not.
        """
        self.app(app)  # ConfigError for an app without an [apps.<key>.alipay] section
        caller = self._callers.get(app)
        if caller is None:
            raise ConfigError(self._unusable.get(app, f"{app} cannot be called on Alipay"))
        if caller.isv and not caller.loaded:
            await self._load_tokens(caller)
        if caller.isv and caller.token is None:
            raise no_token(caller, app)

        async def attempt(token: str | None) -> dict[str, Any]:
            once = functools.partial(
                self._send,
                caller,
                method,
                params,
                multipart=multipart,
                files=files,
                token=token,
                shown=shown,
            )
            if read:
                return await self.read_with_retries(once)
            return await self.send_change(once)

        token = caller.token
        try:
            return await attempt(token)
        except AuthError as exc:
            # acting on an unsigned refusal here is harmless: a renewal changes nothing on
            # the mini program, and whether Alipay signs 20001 answers is not documented
            if not await self._recover(caller, token, exc.code):
                raise
        return await attempt(caller.token)

    async def _recover(self, caller: _Caller, used: str | None, code: str) -> bool:
        """After Alipay refused the token ``used`` with ``code``: renew it when it expired,
        or go back to the configured token when one kept in the vault is no longer valid
        (the merchant authorised the app again). True when there is a token to try."""
        if code == GRANT_EXPIRED:
            return await self._renew(caller, used)
        configured, configured_refresh = caller.configured
        if code != GRANT_REFUSED or not configured or used == configured:
            return False
        async with caller.lock:
            if caller.token == used:
                caller.token, caller.refresh_token = configured, configured_refresh
                await self._keep_tokens(caller)
        return True

    async def _renew(self, caller: _Caller, expired: str | None) -> bool:
        """Trade a refresh token (the one in use, else the configured one) for a new
        app_auth_token; both new tokens go into the vault. False when there is none."""
        async with caller.lock:
            if caller.token != expired:
                return True  # another call renewed it meanwhile
            candidates = [
                t for t in dict.fromkeys((caller.refresh_token, caller.configured[1])) if t
            ]
            answer: dict[str, Any] = {}
            for refresh in candidates:
                params = {"grant_type": "refresh_token", "refresh_token": refresh}
                try:
                    answer = await self._send(caller, AUTH_GRANT, params)
                except AuthError as exc:
                    if exc.code in REFRESH_REFUSED and refresh != candidates[-1]:
                        continue
                    raise
                break
            else:
                return False
            tokens = answer.get("tokens")
            if not answer.get("app_auth_token") and isinstance(tokens, list) and tokens:
                answer = tokens[0] if isinstance(tokens[0], dict) else answer
            new_token = answer.get("app_auth_token")
            if not isinstance(new_token, str) or not new_token:
                raise BadResponse(
                    self.name,
                    "",
                    "",
                    "Alipay renewed the token but the answer has no app_auth_token.",
                )
            caller.token = new_token
            new_refresh = answer.get("app_refresh_token")
            caller.refresh_token = (
                new_refresh if isinstance(new_refresh, str) and new_refresh else refresh
            )
            await self._keep_tokens(caller)
            return True
