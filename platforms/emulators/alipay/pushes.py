"""What the emulated platform pushes: the message service's audit passed / rejected
messages, signed with the platform key.
"""

from __future__ import annotations

import json
import secrets
from typing import Any
from urllib.parse import urlencode

from platforms.alipay import api
from platforms.alipay import sign as alipay_sign
from platforms.emulators.alipay.rules import RECORD_FIELDS
from platforms.emulators.alipay.state import AlipayState
from platforms.emulators.base import OutgoingPush

__all__ = ["Pushes"]


FORM_TYPE = "application/x-www-form-urlencoded; charset=utf-8"


class Pushes(AlipayState):
    """:meth:`due_pushes`."""

    def _audit_push(self, app_id: str, bundle: str, version: dict[str, Any]) -> OutgoingPush | None:
        if version["applied_at"] is None or version["audit_end_at"] is None:
            return None  # never submitted, still in review, or sent back to development
        name = version["app_version"]
        key = f"audit:{app_id}:{bundle}:{name}:{version['applied_at']}"
        if key in self.pushed or self.push_url is None:
            return None
        rejected = version["status"] == "AUDIT_REJECT"
        biz: dict[str, Any] = {
            "mini_app_id": app_id,
            "mini_app_version": name,
            "bundle_id": bundle,
        }
        if rejected:
            biz["audit_reason"] = version["reject_reason"]
            for record, field in RECORD_FIELDS:
                if version.get(record):
                    biz[field] = version[record]
        params = {
            "notify_id": secrets.token_hex(16),
            "utc_timestamp": str(int(version["audit_end_at"] * 1000)),
            "msg_method": api.AUDIT_REJECTED if rejected else api.AUDIT_PASSED,
            "app_id": self._isv()["app_id"],
            "version": "1.1",
            "charset": "utf-8",
            "biz_content": json.dumps(biz, ensure_ascii=False, separators=(",", ":")),
        }
        platform_key = self._private(self._platform_key()["private_key"])
        signed = alipay_sign.sign_notify(params, platform_key, rule=self.notify_rule)
        return OutgoingPush(key, self.push_url, {}, urlencode(signed).encode("ascii"), FORM_TYPE)

    def due_pushes(self) -> list[OutgoingPush]:
        """Audit passed / rejected messages (§4) for reviews decided and not yet delivered,
        POSTed as a signed form to ``push_url`` for the third-party app."""
        if self.push_url is None:
            return []
        pushes: list[OutgoingPush] = []
        for app_id, app in list(self._state["apps"].items()):
            for bundle in list(app["versions"]):
                for version in self._versions(app_id, {"bundle_id": bundle}).values():
                    push = self._audit_push(app_id, bundle, version)
                    if push is not None:
                        pushes.append(push)
        return pushes
