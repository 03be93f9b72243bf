"""The trial (experience) version: set, packaged after ``trial_seconds``, and its QR
code served beside the gateway.
"""

from __future__ import annotations

import io
from typing import Any
from urllib.parse import urlencode

import qrcode
from aiohttp import web

from platforms.emulators.alipay.errors import _business
from platforms.emulators.alipay.state import DEFAULT_BUNDLE, AlipayState

__all__ = ["TrialMethods"]


class TrialMethods(AlipayState):
    """``experience.create`` and ``experience.query``, and the QR code they point to."""

    def _experience_create(self, app_id: str, biz: dict[str, str]) -> dict[str, Any]:
        """Make the version the trial version; packaging takes ``trial_seconds``. INFERRED:
        one trial version per mini program and bundle, a new one replaces the old."""
        _, version = self._ready(app_id, biz)
        if version["status"] == "RELEASE":
            raise _business("CAN_NOT_SET_EXP_WITH_ONLINED_STATUS")
        if version["status"] in ("OFFLINE", "AUDIT_OFFLINE"):
            raise _business("CAN_NOT_SET_EXP_INVALID_STATUS")
        meta = self._bundle(app_id, biz)
        if meta["experience"] and meta["experience"]["version"] == version["app_version"]:
            raise _business("CAN_NOT_SET_EXP_REPEAT")
        meta["experience"] = {"version": version["app_version"], "set_at": self.clock()}
        return {}

    def _experience_schema(self, app_id: str, version: str) -> str:
        # INFERRED: the shape of Alipay's debug schema for a trial version
        return (
            f"alipays://platformapi/startapp?appId={app_id}&nbupdate=synctry&nbsource=debug"
            f"&nbsv={version}&nbsn=TRIAL"
        )

    def _experience_query(self, app_id: str, biz: dict[str, str]) -> dict[str, Any]:
        _, version = self._ready(app_id, biz)
        name = version["app_version"]
        experience = self._bundle(app_id, biz)["experience"]
        if experience is None or experience["version"] != name:
            return {"status": "notExpVersion"}
        if self.clock() < experience["set_at"] + self.trial_seconds:
            return {"status": "expVersionPackaging"}
        bundle = biz.get("bundle_id") or DEFAULT_BUNDLE
        query = urlencode({"app_id": app_id, "bundle_id": bundle, "version": name})
        return {
            "status": "expVersionPackged",  # sic, as Alipay spells it
            "exp_qr_code_url": f"{self.base_url}/_emulator/experience-qr.png?{query}",
            "exp_schema_url": self._experience_schema(app_id, name),
        }

    async def _experience_qr(self, request: web.Request) -> web.Response:
        """The trial version's QR code as a PNG, while it is the packaged trial version."""
        query = request.query
        app_id, version = query.get("app_id", ""), query.get("version", "")
        app = self._state["apps"].get(app_id)
        meta = self._bundle(app_id, query) if app is not None else None
        experience = meta["experience"] if meta else None
        if (
            experience is None
            or experience["version"] != version
            or self.clock() < experience["set_at"] + self.trial_seconds
        ):
            return web.Response(status=404, text="not found")
        image = qrcode.make(self._experience_schema(app_id, version))
        out = io.BytesIO()
        image.save(out, format="PNG")
        return web.Response(body=out.getvalue(), content_type="image/png")
