"""Token grants: the app_auth_token / app_refresh_token pairs the third-party app holds
for each mini program, got for an authorization code (issued by the authorization page,
:mod:`platforms.emulators.alipay.authorization`) or renewed
(``alipay.open.auth.token.app``).
"""

from __future__ import annotations

import secrets
from typing import Any

from platforms.alipay import sign as alipay_sign
from platforms.emulators.alipay.errors import _Failure
from platforms.emulators.alipay.state import AlipayState

__all__ = ["GrantMethods"]


GRANT_LIFETIME = "31536000"  # expires_in, seconds (one year)
REFRESH_LIFETIME = "32140800"  # re_expires_in


CODE_SECONDS = 86_400.0  # an app_auth_code not traded within a day expires


class GrantMethods(AlipayState):
    """``alipay.open.auth.token.app``: ``authorization_code`` and ``refresh_token``."""

    def _issue_grant(self, app_id: str) -> dict[str, str]:
        """A new app_auth_token/app_refresh_token pair for the ISV on ``app_id``."""
        month = alipay_sign.format_timestamp(self.clock())[:7].replace("-", "")
        grant = {
            "app_auth_token": f"{month}BB{secrets.token_hex(16)}",
            "app_refresh_token": f"{month}BB{secrets.token_hex(16)}",
        }
        old = self._state["grants"].get(app_id)
        if old is not None and self.revoke_old_grants:
            self._state["revoked"] += [old["app_auth_token"], old["app_refresh_token"]]
        self._state["tokens"][grant["app_auth_token"]] = {"app_id": app_id, "expired": False}
        self._state["refresh_tokens"][grant["app_refresh_token"]] = app_id
        self._state["grants"][app_id] = grant
        return grant

    def expire_tokens(self) -> None:
        """Every app_auth_token issued so far expires now (refresh tokens stay valid unless
        a newer grant revoked them, see ``revoke_old_grants``)."""
        for token in self._state["tokens"].values():
            token["expired"] = True

    def _auth_grant(self, app_id: str, biz: dict[str, str]) -> dict[str, Any]:
        grant_type = biz.get("grant_type", "")
        if grant_type == "authorization_code":
            # a code is used once (taken whatever follows) and expires a day after issue;
            # INFERRED: an expired code is refused like an unknown one
            issued = self._state["auth_codes"].pop(biz.get("code", ""), None)
            if issued is None or self.clock() >= issued["expires_at"]:
                raise _Failure("40002", "isv.code-invalid", "授权码code无效")
            mini = str(issued["app_id"])
        elif grant_type == "refresh_token":
            # INFERRED: earlier refresh tokens stay usable unless revoke_old_grants is set
            # (a restarted miniship must then use the newest one, which it kept)
            refresh = biz.get("refresh_token", "")
            found = self._state["refresh_tokens"].get(refresh)
            if found is None or refresh in self._state["revoked"]:
                raise _Failure("40002", "isv.refresh-token-invalid", "刷新令牌refresh_token无效")
            mini = str(found)
        else:
            raise _Failure("40002", "isv.grant-type-invalid", "grant_type参数无效")
        grant = self._issue_grant(mini)
        return {
            "user_id": "2088" + mini[-12:].rjust(12, "0"),
            "auth_app_id": mini,
            "app_auth_token": grant["app_auth_token"],
            "app_refresh_token": grant["app_refresh_token"],
            "expires_in": GRANT_LIFETIME,
            "re_expires_in": REFRESH_LIFETIME,
        }
