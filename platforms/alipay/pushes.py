"""What Alipay pushes: the message service's audit results, verified with the Alipay
public key of the app that receives them.
"""

from __future__ import annotations

import dataclasses
from urllib.parse import parse_qsl

from cryptography.hazmat.primitives.asymmetric import rsa

from platforms.alipay import sign as alipay_sign
from platforms.alipay.wire import AlipayWire
from platforms.errors import ConfigError
from platforms.push import (
    PushEvent,
    PushRejected,
    PushRequest,
    alipay_events,
    check_fresh,
    push_digest,
)

__all__ = ["AlipayPushes"]


class AlipayPushes(AlipayWire):
    """``read_push``. ``_isv_public`` is set by :class:`AlipayPlatform`'s constructor."""

    _isv_public: rsa.RSAPublicKey | None

    def _notify_key(self, app_id: str) -> rsa.RSAPublicKey:
        """The Alipay public key a push to ``app_id`` is verified with.

        A self-owned mini program (its own keys in miniship.toml) receives pushes signed for
        it; everything else arrives at the third-party app, verified with ALIPAY_PUBLIC_KEY.
        """
        for caller in self._callers.values():
            if not caller.isv and caller.app_id == app_id:
                return caller.alipay_public_key
        if self._isv_public is None:
            raise ConfigError(
                "reading Alipay pushes needs ALIPAY_PUBLIC_KEY (the Alipay public key of the "
                "third-party app)"
            )
        return self._isv_public

    @staticmethod
    def _push_params(request: PushRequest) -> dict[str, str]:
        """The query and urlencoded form fields of a push as one flat dict."""
        try:
            text = request.body.decode("utf-8")
        except UnicodeDecodeError:
            raise PushRejected("the push body is not UTF-8") from None
        try:
            pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text.strip()))
        except ValueError:
            raise PushRejected("the push body is not a urlencoded form") from None
        params: dict[str, str] = {}
        for key, value in [*request.query.items(), *pairs]:
            if key in params and params[key] != value:
                raise PushRejected(f"the push gives {key} twice")
            params[key] = value
        return params

    async def read_push(self, request: PushRequest) -> list[PushEvent]:
        """Verify and read an Alipay message-service push (audit passed / rejected).

        The signature is checked with the Alipay public key of the receiving app (``app_id``
        of the push): a self-owned mini program's own, else the third-party app's. Events
        get ``app`` from the configured app whose ``app_id`` is the push's ``mini_app_id``,
        and the push's name: a digest of the signed content (``notify_id`` and
        ``utc_timestamp`` included). Reply ``success`` to Alipay afterwards.

        Raises:
            PushStale: it verified, but its ``utc_timestamp`` is outside the push window
                (a replay).
            PushRejected: bad or missing signature, or a malformed body.
        """
        params = self._push_params(request)
        if not params.get("sign"):
            raise PushRejected("the push carries no sign")
        key = self._notify_key(params.get("app_id", ""))
        if not alipay_sign.verify_notify(params, key):
            raise PushRejected("bad sign: the push was not signed by Alipay")
        check_fresh(params.get("utc_timestamp"), "utc_timestamp", self.clock(), millis=True)
        name = push_digest("alipay", alipay_sign.notify_content(params))
        events = alipay_events(params)
        return [
            dataclasses.replace(
                event,
                app=next(
                    (k for k, cfg in self.apps.items() if cfg.app_id == event.mini_program), None
                ),
                push_id=name,
            )
            for event in events
        ]
