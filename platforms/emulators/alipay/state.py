"""What the emulated gateway holds: the platform's and the third-party app's keys, the
mini programs with their versions per bundle, templates and token grants; and the reads
of that state the methods share (:class:`AlipayState`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlencode

from cryptography.hazmat.primitives.asymmetric import rsa

from platforms.alipay import sign as alipay_sign
from platforms.emulators.alipay.errors import _business
from platforms.emulators.alipay.rules import _verdict
from platforms.emulators.base import Emulator

__all__ = ["AlipayState"]


BUNDLES = frozenset(
    {
        "com.alipay.alipaywallet",
        "com.alibaba.android.rimet",
        "com.amap.app",
        "com.alibaba.ailabs.genie.webapps",
        "com.alipay.iot.xpaas",
    }
)
DEFAULT_BUNDLE = "com.alipay.alipaywallet"

ISV_APP_ID = "2021004199990001"


def _empty_state() -> dict[str, Any]:
    return {
        "platform_key": None,  # {"private_key", "public_key"}: signs every answer
        "isv": None,  # {"app_id", "private_key", "public_key"}: the third-party app
        "apps": {},  # mini program APPID → {"public_key", "versions": {bundle: {ver: {...}}}}
        "templates": {},  # template APPID → {"isv_app_id", "versions": [...]}
        "tokens": {},  # app_auth_token → {"app_id", "expired"}
        "refresh_tokens": {},  # app_refresh_token → mini program APPID
        "grants": {},  # mini program APPID → {"app_auth_token", "app_refresh_token"}
        "revoked": [],  # tokens of either kind replaced by a newer grant (revoke_old_grants)
        "auth_codes": {},  # app_auth_code → {"app_id", "expires_at"}: one-time, a day
        "pushed": [],  # keys of the audit-result pushes the receiver accepted
    }


class AlipayState(Emulator):
    """The emulator's state, as :class:`AlipayEmulator`'s constructor sets it up, and what
    the methods of the mixins beside it share."""

    build_seconds: float
    queue_seconds: float
    trial_seconds: float
    report_gray_strategy: bool
    revoke_old_grants: bool
    notify_rule: alipay_sign.NotifyRule
    _failing_build: bool  # the build_failed fault, for the request at hand
    expedites: int
    base_url: str  # where the emulator is mounted, as the last request reached it
    _state: dict[str, Any]
    _private_keys: dict[str, rsa.RSAPrivateKey]
    _public_keys: dict[str, rsa.RSAPublicKey]
    _handlers: dict[str, Callable[[str, dict[str, str]], dict[str, Any]]]

    def _platform_key(self) -> dict[str, str]:
        if self._state["platform_key"] is None:
            private, public = alipay_sign.generate_key_pair()
            self._state["platform_key"] = {"private_key": private, "public_key": public}
        key: dict[str, str] = self._state["platform_key"]
        return key

    def _isv(self) -> dict[str, str]:
        if self._state["isv"] is None:
            private, public = alipay_sign.generate_key_pair()
            self._state["isv"] = {
                "app_id": ISV_APP_ID,
                "private_key": private,
                "public_key": public,
            }
        isv: dict[str, str] = self._state["isv"]
        return isv

    def _private(self, pem: str) -> rsa.RSAPrivateKey:
        if pem not in self._private_keys:
            self._private_keys[pem] = alipay_sign.load_private_key(pem)
        return self._private_keys[pem]

    def _public(self, pem: str) -> rsa.RSAPublicKey:
        if pem not in self._public_keys:
            self._public_keys[pem] = alipay_sign.load_public_key(pem)
        return self._public_keys[pem]

    def _mini_app(self, app_id: str) -> dict[str, Any]:
        apps: dict[str, Any] = self._state["apps"]
        if app_id not in apps:
            apps[app_id] = {"public_key": None, "versions": {}}
        app: dict[str, Any] = apps[app_id]
        app.setdefault("tools", {})  # minidev tool id → {"public_key", "private_key"}
        app.setdefault("bundles", {})  # bundle → releases and the trial version (_bundle)
        app.setdefault("speed_ups", 0)  # expedited reviews used
        return app

    def _bundle(self, app_id: str, biz: Mapping[str, str]) -> dict[str, Any]:
        """What the emulator keeps per mini program and bundle beside its versions:
        ``history`` (versions in the order they went online), ``rolled_back`` (the last
        change of the live version was a rollback) and ``experience`` (the trial version)."""
        bundle = biz.get("bundle_id") or DEFAULT_BUNDLE
        bundles: dict[str, Any] = self._mini_app(app_id)["bundles"]
        meta: dict[str, Any] = bundles.setdefault(
            bundle, {"history": [], "rolled_back": False, "experience": None}
        )
        return meta

    # -- versions ----------------------------------------------------------------------

    def _now(self) -> str:
        return alipay_sign.format_timestamp(self.clock())

    def _versions(self, app_id: str, biz: Mapping[str, str]) -> dict[str, dict[str, Any]]:
        """The app's versions for the request's bundle, with reviews decided as of now."""
        bundle = biz.get("bundle_id") or DEFAULT_BUNDLE
        if bundle not in BUNDLES:
            raise _business("BUNDLE_ID_NOT_EXIST")
        versions: dict[str, dict[str, Any]] = self._mini_app(app_id)["versions"].setdefault(
            bundle, {}
        )
        for v in versions.values():
            if v["status"] != "AUDITING":
                continue
            outcome, reason = self.decide(v["version_desc"], v["applied_at"])
            # "pending" and "delayed" stay AUDITING: Alipay has no separate delay state
            if outcome in ("approved", "rejected"):
                evidence = self._audit_image_urls(app_id, bundle, v["app_version"])
                v.update(_verdict(v["version_desc"], outcome == "approved", reason, evidence))
                v["audit_end_at"] = v["applied_at"] + self.review_seconds
        return versions

    def _audit_image_urls(self, app_id: str, bundle: str, version: str) -> list[str]:
        """Where the emulator serves a rejection's two images (``/_emulator/audit-image.png``),
        under the URL the emulator was last reached at."""
        return [
            f"{self.base_url}/_emulator/audit-image.png?"
            + urlencode({"app_id": app_id, "bundle_id": bundle, "version": version, "n": n})
            for n in (1, 2)
        ]

    def _built(self, version: dict[str, Any]) -> bool:
        """Built and created: listed, and usable by every method but ``build.query``."""
        return self.clock() >= version["built_at"] and not version.get("build_failed")

    def _ready(
        self, app_id: str, biz: Mapping[str, str]
    ) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
        """The bundle's versions and the built version that ``biz["app_version"]`` names."""
        versions = self._versions(app_id, biz)
        name = biz.get("app_version", "")
        if not name:
            raise _business("APP_VERSION_IS_BLANK")
        version = versions.get(name)
        if version is None or not self._built(version):
            raise _business("MINI_APP_PACKAGE_INFO_NOT_EXIST")
        return versions, version

    def _queued(self, version: dict[str, Any]) -> bool:
        return bool(self.clock() < version.get("queued_until", version["created_at"]))
