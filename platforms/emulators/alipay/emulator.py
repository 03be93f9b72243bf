"""The Alipay emulator: :class:`AlipayEmulator`, its state set up, kept and provisioned,
and its routes.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import BaseModel, SecretStr

from platforms.alipay import AlipayPlatform, api
from platforms.alipay import sign as alipay_sign
from platforms.emulators.alipay.authorization import AUTHORIZE_PAGE, AuthorizationPage
from platforms.emulators.alipay.gateway import BUILD_FAILED_FAULT, Gateway
from platforms.emulators.alipay.pushes import Pushes
from platforms.emulators.alipay.state import _empty_state
from platforms.emulators.base import Fault, Provisioned

__all__ = ["AlipayEmulator"]


class AlipayEmulator(Gateway, Pushes, AuthorizationPage):
    """The Alipay gateway for mini program versions, on loopback.

    Args:
        build_seconds: how long a template build takes; meanwhile ``upload`` answers
            ``need_rotation="true"`` and ``build.query`` reports the build running.
        queue_seconds: how long a template build waits in Alipay's queue before it starts
            (``build_status`` 0); meanwhile ``build.query`` answers
            ``BUILD_VERSION_NOT_EXISTED`` (INFERRED: the build record does not exist yet).
        trial_seconds: how long packaging a trial (experience) version takes.
        expedites: how many expedited reviews (``speed_up``) each mini program has.
        review_seconds, clock, timeout_seconds, state_path: see :class:`Emulator`.

    Switches (attributes, also settable after construction):

    - ``report_gray_strategy``: False leaves ``gray_strategy`` out of ``detail.query``, as
      Alipay may (the field is documented, not promised);
    - ``revoke_old_grants``: True makes every new token grant (a refresh) revoke the
      app_auth_token and app_refresh_token it replaces, instead of keeping them usable;
    - ``notify_rule``: ``"V1"`` (default) or ``"V2"``, which content the audit pushes are
      signed over (UNCERTAIN, fact sheet §4).

    Reviews: besides ``#reject`` and ``#delay``, notes with ``#base`` are reviewed as under
    ``audit_rule=BASE_PROMOTE``: approved for release but refused for promotion
    (``BASE_AUDIT_PASS``, ``can_release`` true, the refusal in ``promote_audit_record``), or
    with ``#reject`` refused at admission (``AUDIT_REJECT`` with the reason only in
    ``base_audit_record``). ``#promote`` does the same with the UNCERTAIN status
    ``PROMOTE_AUDIT_REJECT``. A rejection shows two images in ``base_audit_record`` (one in
    ``audit_images``, one in the memo's ``memo_image_list``), links to
    ``/_emulator/audit-image.png`` beside the gateway.

    Faults: ``rate_limit`` answers 40004 ``SYSTEM_LIMIT`` (the only limit code the fact sheet
    names); ``malformed`` carries the request out and cuts the answer in half; ``unsigned``
    carries it out and leaves ``sign`` off the answer; ``build_failed`` (this emulator's
    own, for ``upload``) makes the build it starts fail (``build_status`` 3).
    """

    platform = "alipay"
    OPERATIONS: ClassVar[Mapping[str, str]] = {
        "upload": api.UPLOAD,
        "submit": api.AUDIT_APPLY,
        "status": api.DETAIL_QUERY,
        "withdraw": api.AUDIT_CANCEL,
        "publish": api.ONLINE,
        "gray": api.GRAY_ONLINE,
        "stop_gray": api.GRAY_CANCEL,
        "rollback": api.ROLLBACK,
        "offline": api.OFFLINE,
        "trial_code": api.EXPERIENCE_QUERY,  # the call that hands out the QR code
        "review_images": api.DETAIL_QUERY,  # the images are links in its review records
        "versions": api.LIST_QUERY,
    }

    def __init__(
        self,
        *,
        build_seconds: float = 0.0,
        queue_seconds: float = 0.0,
        trial_seconds: float = 3.0,
        expedites: int = 1,
        review_seconds: float = 30.0,
        clock: Callable[[], float] = time.time,
        timeout_seconds: float = 30.0,
        state_path: Path | None = None,
    ) -> None:
        self.build_seconds = build_seconds
        self.queue_seconds = queue_seconds
        self.trial_seconds = trial_seconds
        self.report_gray_strategy = True
        self.revoke_old_grants = False
        self.notify_rule: alipay_sign.NotifyRule = "V1"
        self._failing_build = False  # the build_failed fault, for the request at hand
        self.expedites = expedites
        self.base_url = ""  # where the emulator is mounted, as the last request reached it
        self._state: dict[str, Any] = _empty_state()
        self._private_keys: dict[str, rsa.RSAPrivateKey] = {}
        self._public_keys: dict[str, rsa.RSAPublicKey] = {}
        # audit.apply is dispatched apart (multipart); every other method takes biz_content
        self._handlers: dict[str, Callable[[str, dict[str, str]], dict[str, Any]]] = {
            api.UPLOAD: self._upload,
            api.BUILD_QUERY: self._build_query,
            api.AUDIT_CANCEL: self._audit_cancel,
            api.AUDITED_CANCEL: self._audited_cancel,
            api.ONLINE: self._online,
            api.OFFLINE: self._offline,
            api.ROLLBACK: self._rollback,
            api.GRAY_ONLINE: self._gray_online,
            api.GRAY_CANCEL: self._gray_cancel,
            api.EXPERIENCE_CREATE: self._experience_create,
            api.EXPERIENCE_QUERY: self._experience_query,
            api.DETAIL_QUERY: self._detail_query,
            api.LIST_QUERY: self._list_query,
            api.AUTH_GRANT: self._auth_grant,
        }
        super().__init__(
            review_seconds=review_seconds,
            clock=clock,
            timeout_seconds=timeout_seconds,
            state_path=state_path,
        )

    # -- state -------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        state: dict[str, Any] = json.loads(json.dumps(self._state))
        state["pushed"] = sorted(self.pushed)
        return state

    def restore(self, state: dict[str, Any]) -> None:
        fresh = _empty_state()
        fresh.update(json.loads(json.dumps(state)))
        self._state = fresh
        self.pushed = set(fresh.get("pushed", []))

    def inject(self, api: str, fault: str, times: int = 1) -> None:
        """As :meth:`Emulator.inject`, plus this emulator's ``build_failed`` fault."""
        if fault != BUILD_FAILED_FAULT:
            super().inject(api, fault, times)
            return
        if times < 1:
            raise ValueError("times must be at least 1")
        self._faults.append(Fault(api, fault, times))

    def issued_secrets(self) -> set[str]:
        state = self._state
        keys = [state["platform_key"], state["isv"]]
        tools = [tool for app in state["apps"].values() for tool in app.get("tools", {}).values()]
        return {
            *(key["private_key"] for key in keys if key is not None),
            *(tool["private_key"] for tool in tools),
            *state["tokens"],
            *state["refresh_tokens"],
            *state["auth_codes"],
        }

    # -- provisioning ------------------------------------------------------------------

    def provision(self, base_url: str, apps: Mapping[str, BaseModel]) -> Provisioned:
        """Register the mini programs and templates and hand out ISV credentials."""
        self.base_url = base_url
        isv = self._isv()
        platform_key = self._platform_key()
        configs: dict[str, BaseModel] = {}
        env = {
            "ALIPAY_GATEWAY": f"{base_url}/gateway.do",
            "ALIPAY_APP_ID": isv["app_id"],
            # bare base64, as Alipay's key tool shows keys: one line, safe in any env file
            "ALIPAY_PRIVATE_KEY": _bare(isv["private_key"]),
            "ALIPAY_PUBLIC_KEY": _bare(platform_key["public_key"]),
        }
        for key, given in apps.items():
            cfg = AlipayPlatform.AppConfig.model_validate(given.model_dump())
            self._mini_app(cfg.app_id)
            if cfg.template_id:
                template = self._state["templates"].setdefault(
                    cfg.template_id, {"isv_app_id": isv["app_id"], "versions": ["1.0.0"]}
                )
                if cfg.template_version and cfg.template_version not in template["versions"]:
                    template["versions"].append(cfg.template_version)
            grant = self._state["grants"].get(cfg.app_id) or self._issue_grant(cfg.app_id)
            configs[key] = cfg.model_copy(
                update={
                    "app_auth_token": SecretStr(grant["app_auth_token"]),
                    "app_refresh_token": SecretStr(grant["app_refresh_token"]),
                }
            )
            prefix = "MINISHIP_" + re.sub(r"[^A-Z0-9]", "_", key.upper()) + "_ALIPAY_"
            env[prefix + "APP_AUTH_TOKEN"] = grant["app_auth_token"]
            env[prefix + "APP_REFRESH_TOKEN"] = grant["app_refresh_token"]
        env["ALIPAY_AUTHORIZE_PAGE"] = f"{base_url}{AUTHORIZE_PAGE}"
        settings = AlipayPlatform.Settings(
            gateway=env["ALIPAY_GATEWAY"],
            authorize_page=env["ALIPAY_AUTHORIZE_PAGE"],
            app_id=isv["app_id"],
            private_key=SecretStr(isv["private_key"]),
            alipay_public_key=SecretStr(platform_key["public_key"]),
        )
        self.save()
        return Provisioned(settings=settings, apps=configs, env=env)

    def register_app_key(self, app_id: str) -> tuple[str, str]:
        """Give mini program ``app_id`` its own key for self-owned calls.

        Returns ``(app private key PEM, Alipay public key PEM)`` for the app's config.
        """
        private, public = alipay_sign.generate_key_pair()
        self._mini_app(app_id)["public_key"] = public
        self.save()
        return private, self._platform_key()["public_key"]

    def register_tool(self, app_id: str) -> tuple[str, str]:
        """A minidev tool key ("工具密钥") for mini program ``app_id``.

        Returns ``(tool id, tool private key PEM)`` for the app's ``tool_id`` and
        ``tool_private_key``; uploads through ``/_emulator/minidev/upload`` are signed with it.
        """
        private, public = alipay_sign.generate_key_pair()
        tool_id = "TOOL" + secrets.token_hex(8).upper()
        self._mini_app(app_id)["tools"][tool_id] = {"public_key": public, "private_key": private}
        self.save()
        return tool_id, private

    def example_app(self) -> BaseModel:
        return AlipayPlatform.AppConfig(
            app_id="2021004100000001",
            template_id="2021004100009999",
            ext={"ext": {"shopName": "Demo shop"}},
            review_notes=(
                "Emulated release made by miniship; the shop pages need no login to review."
            ),
        )

    # -- the HTTP surface --------------------------------------------------------------

    def routes(self) -> Sequence[web.RouteDef]:
        return [
            web.post("/gateway.do", self._gateway),
            web.get("/gateway.do", self._gateway),
            web.get(AUTHORIZE_PAGE, self._authorize_page),
            web.get("/_emulator/experience-qr.png", self._experience_qr),
            web.get("/_emulator/audit-image.png", self._audit_image),
            web.post("/_emulator/minidev/upload", self._minidev_upload),
        ]


def _bare(pem: str) -> str:
    """A PEM key's base64 body on one line."""
    return "".join(line for line in pem.strip().splitlines() if not line.startswith("-----"))
