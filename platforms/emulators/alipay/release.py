"""Releases: online, offline, rollback, and the gray release and its end."""

from __future__ import annotations

from typing import Any

from platforms.emulators.alipay.errors import _business
from platforms.emulators.alipay.rules import GRAY_STRATEGIES, PUBLISHABLE
from platforms.emulators.alipay.state import AlipayState

__all__ = ["ReleaseMethods"]


class ReleaseMethods(AlipayState):
    """``online``, ``offline``, ``rollback``, ``gray.online`` and ``gray.cancel``."""

    @staticmethod
    def _check_publishable(version: dict[str, Any], refusal: str) -> None:
        """Approved (or gray), and Alipay allows it online (``can_release``, BASE_PROMOTE)."""
        if version["status"] not in PUBLISHABLE:
            raise _business(refusal)
        if version.get("can_release") == "false":
            raise _business("CAN_NOT_ONLINE_NO_PROMOTE")

    def _online(self, app_id: str, biz: dict[str, str]) -> dict[str, Any]:
        versions, version = self._ready(app_id, biz)
        self._check_publishable(version, "CAN_NOT_ONLINE_NOT_GRAY_OR_WAITRELEASE")
        now = self.clock()
        for other in versions.values():
            if other["status"] == "RELEASE":  # INFERRED (§2.2): the previous one goes offline
                other.update(status="OFFLINE", offline_at=now)
        version.update(status="RELEASE", online_at=now, gray_strategy="")
        meta = self._bundle(app_id, biz)
        meta["history"].append(version["app_version"])
        meta["rolled_back"] = False
        return {}

    def _offline(self, app_id: str, biz: dict[str, str]) -> dict[str, Any]:
        versions, version = self._ready(app_id, biz)
        if version["status"] != "RELEASE":
            raise _business("CAN_NOT_OFFLINE_WITHOUT_ONLINE")
        if any(v["status"] == "GRAY" for v in versions.values()):
            raise _business("CAN_NOT_OFFLINE_WITH_GRAY")
        version.update(status="OFFLINE", offline_at=self.clock())
        return {}

    def _rollback(self, app_id: str, biz: dict[str, str]) -> dict[str, Any]:
        """The named live version goes offline, the one online before it comes back
        (fact sheet §2.2); never twice in a row, never while a version is gray."""
        versions, version = self._ready(app_id, biz)
        if version["status"] != "RELEASE":
            raise _business("CAN_NOT_ROLLBACK_WITHOUT_ONLINE")
        if any(v["status"] == "GRAY" for v in versions.values()):
            raise _business("CAN_NOT_ROLLBACK_WITH_GRAY")
        meta = self._bundle(app_id, biz)
        if meta["rolled_back"]:
            raise _business("CAN_NOT_CONTINUOUS_ROLLBACK")
        name = version["app_version"]
        previous = next(
            (
                versions[v]
                for v in reversed(meta["history"])
                if v != name and v in versions and versions[v]["status"] == "OFFLINE"
            ),
            None,
        )
        if previous is None:  # INFERRED meaning of this sub_code: nothing to go back to
            raise _business("CAN_NOT_ROLLBACK_WITHOUT_OFFLINE")
        now = self.clock()
        version.update(status="OFFLINE", offline_at=now)
        previous.update(status="RELEASE", online_at=now)
        meta["history"].append(previous["app_version"])
        meta["rolled_back"] = True
        return {}

    def _gray_online(self, app_id: str, biz: dict[str, str]) -> dict[str, Any]:
        _, version = self._ready(app_id, biz)
        strategy = biz.get("gray_strategy", "")
        if not strategy:
            raise _business("GRAY_STRATEGY_IS_BLANK")
        if strategy not in GRAY_STRATEGIES:
            raise _business("GRAY_STRATEGY_IS_INVALID")
        self._check_publishable(version, "CAN_NOT_GRAY_WITHOUT_AUDIT_PASS")
        if version["status"] == "GRAY":
            current = version.get("gray_strategy")
            if current in GRAY_STRATEGIES and strategy < current:  # "p10" < "p30" < "p50"
                raise _business("GRAY_STRATEGY_NOT_ALLOW_REDUCE")
        else:  # where gray.cancel returns it to
            version["approved_as"] = version["status"]
        version.update(status="GRAY", gray_strategy=strategy)
        return {}

    def _gray_cancel(self, app_id: str, biz: dict[str, str]) -> dict[str, Any]:
        _, version = self._ready(app_id, biz)
        if version["status"] != "GRAY":
            raise _business("CAN_NOT_END_GRAY_WITHOUT_GRAY")
        # "回到审核通过状态": the approval it had before the gray release
        version.update(status=version.get("approved_as") or "WAIT_RELEASE", gray_strategy="")
        return {}
