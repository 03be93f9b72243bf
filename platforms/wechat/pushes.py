"""What WeChat pushes: audit results for a mini program, and the component_verify_ticket
every 10 minutes (which becomes the ticket the adapter uses, kept in the vault).
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import datetime

from pydantic import SecretStr

from platforms.errors import ConfigError
from platforms.push import (
    PushEvent,
    PushRejected,
    PushRequest,
    check_fresh,
    push_digest,
    wechat_events,
)
from platforms.wechat.crypto import WeChatCrypto, parse_xml
from platforms.wechat.tokens import VAULT_TICKET, WeChatTokens

__all__ = ["WeChatPushes"]

log = logging.getLogger(__name__)


class WeChatPushes(WeChatTokens):
    """``read_push``."""

    def _crypto(self) -> WeChatCrypto:
        s = self.settings
        token, key = s.component_token, s.encoding_aes_key
        if token is None or not token.get_secret_value():
            raise ConfigError(
                "reading WeChat pushes needs WECHAT_COMPONENT_TOKEN (the third-party platform's "
                "message verification token)"
            )
        if key is None or not key.get_secret_value():
            raise ConfigError(
                "reading WeChat pushes needs WECHAT_ENCODING_AES_KEY (the third-party "
                "platform's message encryption key)"
            )
        if not s.component_appid:
            raise ConfigError("reading WeChat pushes needs WECHAT_COMPONENT_APPID")
        try:
            return WeChatCrypto(token.get_secret_value(), key.get_secret_value(), s.component_appid)
        except PushRejected as exc:
            raise ConfigError(f"WECHAT_ENCODING_AES_KEY is unusable: {exc.reason}") from None

    async def _take_ticket(self, ticket: str, at: datetime | None) -> None:
        """Use a pushed component_verify_ticket from now on (and keep it in the vault),
        unless it is the one in use already or its CreateTime is older than the newest one
        seen (a replayed push: the receiver says so, once)."""
        newest = self._pushed_ticket_at
        if at is not None and newest is not None and at < newest:
            log.debug("ignored a component_verify_ticket push older than the newest one")
            return
        current = self._pushed_ticket
        if current is not None and current.get_secret_value() == ticket:
            return
        self._pushed_ticket = SecretStr(ticket)
        self._pushed_ticket_at = at or newest
        await self._vault_save(VAULT_TICKET, ticket)
        log.info("WeChat pushed a new component_verify_ticket")

    def _app_for(self, mini_program: str) -> str | None:
        for key, cfg in self.apps.items():
            if mini_program in (cfg.appid, cfg.original_id):
                return str(key)
        return None

    async def read_push(self, request: PushRequest) -> list[PushEvent]:
        """Verify, decrypt and read a push (audit result or component_verify_ticket).

        A ``verify_ticket`` event also becomes the ticket this adapter uses for
        ``api_component_token`` (see :attr:`verify_ticket`) and is kept in the vault for
        the next start, unless it is older than the newest ticket pushed before. Audit
        events get ``app`` from the configured app whose appid (the ``$APPID$`` path
        segment) or original id (``ToUserName``) they name. Every event gets the push's
        name, a digest of the signed ``timestamp``, ``nonce`` and ``Encrypt``. Reply
        ``success`` to WeChat afterwards.

        Raises:
            PushStale: it verified, but its ``timestamp`` is outside the push window (a
                replay): nothing was taken from it.
            PushRejected: bad signature, undecryptable or malformed payload, or a path
                appid that contradicts the push's ``ToUserName``.
            ConfigError: WECHAT_COMPONENT_TOKEN or WECHAT_ENCODING_AES_KEY is not set.
        """
        crypto = self._crypto()
        query = request.query
        timestamp, nonce = query.get("timestamp", ""), query.get("nonce", "")
        encrypt = crypto.verify_push(
            request.body,
            msg_signature=query.get("msg_signature", ""),
            timestamp=timestamp,
            nonce=nonce,
        )
        check_fresh(timestamp, "timestamp", self.clock())
        fields = parse_xml(crypto.decrypt(encrypt))
        name = push_digest("wechat", timestamp, nonce, encrypt)
        appid = (request.path.get("appid") or "").strip() or None
        events = wechat_events(fields, appid=appid)
        resolved: list[PushEvent] = []
        for event in events:
            if event.kind == "verify_ticket":
                if event.ticket:
                    await self._take_ticket(event.ticket, event.at)
                resolved.append(dataclasses.replace(event, push_id=name))
                continue
            app = self._app_for(event.mini_program)
            to_user = (fields.get("ToUserName") or "").strip()
            if app is not None and appid is not None and to_user:
                original = self._config(app).original_id
                if original and original != to_user:
                    raise PushRejected(
                        f"the push for {appid} is addressed to {to_user}, not {original}"
                    )
            if app is None and to_user:
                app = self._app_for(to_user)
            resolved.append(dataclasses.replace(event, app=app, push_id=name))
        return resolved
