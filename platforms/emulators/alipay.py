"""A local look-alike of the Alipay open platform gateway for the mini program version APIs.

Mounted at ``/alipay``, it answers ``POST`` (and ``GET``) ``/gateway.do`` as the fact sheet
(``alipay-api.md`` §1–3) describes: common parameters in the query string or the body,
RSA2 request signatures checked against the calling app's public key, responses signed
with the platform key as ``{"<method>_response":{…},"sign":"…"}``, gateway error codes
(20000/20001/40001/40002/40004/40006) with the platform's own sub_codes and Chinese
sub_msgs.

The emulator plays the third-party app (ISV) setting: :meth:`provision` creates the ISV
app and its key pair, the platform key pair, and for each mini program an
``app_auth_token``/``app_refresh_token`` grant. Self-owned calls (the mini program signs
with its own key) work once :meth:`register_app_key` gave that mini program a key.

Emulated methods: ``alipay.open.mini.version.upload`` / ``build.query`` / ``audit.apply``
(multipart, screenshots as file parts) / ``audit.cancel`` / ``audited.cancel`` / ``online`` /
``offline`` / ``rollback`` / ``gray.online`` / ``gray.cancel`` / ``detail.query`` /
``list.query``, ``alipay.open.mini.experience.create`` / ``.query`` and
``alipay.open.auth.token.app`` (refresh only).

Test endpoints beside the gateway (not Alipay's):

- ``GET /_emulator/experience-qr.png?app_id=…&bundle_id=…&version=…``: the trial version's
  QR code, a real PNG (``exp_qr_code_url`` points here);
- ``POST /_emulator/minidev/upload``: what a minidev stand-in calls to upload a version of a
  mini program owned directly, signed with a tool key from :meth:`AlipayEmulator.register_tool`.
"""

from __future__ import annotations

import io
import json
import re
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlencode

import qrcode
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import BaseModel, SecretStr

from platforms import alipay_api as api
from platforms import alipay_sign
from platforms.alipay import AlipayPlatform
from platforms.emulators.base import Emulator, Fault, OutgoingPush, Provisioned

__all__ = ["AlipayEmulator"]

FORM_TYPE = "application/x-www-form-urlencoded; charset=utf-8"

COMMON_PARAMS = frozenset(
    {
        "app_id",
        "method",
        "format",
        "charset",
        "sign_type",
        "sign",
        "timestamp",
        "version",
        "app_auth_token",
        "notify_url",
        "auth_token",
        "encrypt_type",
        "alipay_sdk",
        "app_cert_sn",
        "alipay_root_cert_sn",
        "terminal_type",
        "terminal_info",
        "prod_code",
        "return_url",
        "target_app_id",
        "ws_service_url",
    }
)

GATEWAY_MSG = {
    "10000": "Success",
    "20000": "Service Currently Unavailable",
    "20001": "Insufficient Token Permissions",
    "40001": "Missing Required Arguments",
    "40002": "Invalid Arguments",
    "40004": "Business Failed",
    "40006": "Insufficient Permissions",
}

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
REGION_TYPES = frozenset({"GLOBAL", "CHINA", "LOCATION"})
PASSED_FOR_RELEASE = frozenset({"BASE_AUDIT_PASS", "PROMOTE_AUDIT_REJECT"})  # BASE_PROMOTE
PUBLISHABLE = frozenset({"WAIT_RELEASE", "GRAY", *PASSED_FOR_RELEASE})  # with can_release
DECIDED = frozenset({"WAIT_RELEASE", "AUDIT_REJECT", *PASSED_FOR_RELEASE})  # audited.cancel
OPEN_REVIEW = frozenset({"AUDITING", "GRAY", *DECIDED})
GRAY_STRATEGIES = ("p10", "p30", "p50")  # in the order a gray release may grow
VERSION_DESC_LENGTHS = (30, 500)  # counted as _desc_length does
SCREENSHOT_EXTENSIONS = (".png", ".jpg", ".jpeg")
SCREENSHOT_MAX_BYTES = 4 * 1024 * 1024
REGION_FIELDS = frozenset(
    {"province_code", "province_name", "city_code", "city_name", "area_code", "area_name"}
)
VERSION_RE = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")
MAX_VERSION_PART = 2147483647
BASE_MARK = "#base"  # in the notes: admission passed, marketing refused (BASE_AUDIT_PASS)
PROMOTE_MARK = "#promote"  # the same, as the UNCERTAIN status PROMOTE_AUDIT_REJECT
BUILD_FAILED_FAULT = "build_failed"  # the upload it is injected into builds, then fails
WIDE = re.compile(
    "[\u1100-\u115f\u2e80-\u303e\u3041-\u33ff\u3400-\u4dbf\u4e00-\u9fff\ua000-\ua4cf"
    "\uac00-\ud7a3\uf900-\ufaff\ufe30-\ufe4f\uff00-\uff60\uffe0-\uffe6"
    "\U00020000-\U0003fffd]"
)
"""Characters Alipay counts twice in ``version_desc`` (Chinese, Japanese, Korean and
full-width forms): the emulator's own reading of "Chinese counts 2" (§3.3)."""
ISV_APP_ID = "2021004199990001"
GRANT_LIFETIME = "31536000"  # expires_in, seconds (one year)
REFRESH_LIFETIME = "32140800"  # re_expires_in

# Business failures (40004): sub_code → sub_msg, as the platform writes them.
SUB_MSG = {
    "APP_VERSION_IS_BLANK": "小程序版本号不能为空",
    "TEMPLATE_ID_IS_BLANK": "模板id不能为空",
    "CODE_TEMPLATE_NOT_EXIST": "代码模板不存在",
    "TEMPLATE_NOT_ONLINE_OR_OFFLINE": "模板版本未上架或已下架",
    "ISV_APP_ID_IS_BLANK": "服务商应用id为空，请使用第三方应用代调用",
    "INVALID_VERSION": "版本号不合法，必须为x.y.z格式的数字且大于已有版本",
    "VERSION_EXCEEDED_LENGTH": "版本号每一位不能超过2147483647",
    "VERSION_HAS_EXISTED": "该版本号已存在",
    "LARGER_VERSION_HAS_EXISTED": "已存在更大的版本号",
    "INVALID_EXT_JSON": "ext参数不是合法的json格式",
    "BUNDLE_ID_NOT_EXIST": "bundleId不存在",
    "BUILD_VERSION_NOT_EXISTED": "构建版本不存在",
    "MINI_APP_PACKAGE_INFO_NOT_EXIST": "小程序版本不存在",
    "VERSION_DESC_IS_BLANK": "版本描述不能为空",
    "INVALID_VERSION_DESC_LENGTH": "版本描述长度不合法，须为30-500个字符（一个汉字算2个字符）",
    "REGION_TYPE_IS_BLANK": "服务区域类型不能为空",
    "REGION_TYPE_IS_INVALID": "服务区域类型不合法",
    "REGION_CODE_IS_BLANK": "服务区域不能为空",
    "CAN_NOT_SUBMIT_WITHOUT_INIT": "只有开发中的版本才能提交审核",
    "CAN_NOT_SUBMIT_WITH_AUDIT_GRAY": "存在审核中，审核通过，审核拒绝，灰度中版本不能提审",
    "EXIST_LARGER_ONLINED_VERSION": "存在更大的已上架版本",
    "AUDITING_VERSION_NOT_EXIST": "不存在审核中的版本",
    "CAN_NOT_BACK_DEV_WITHOUT_AUDIT": "只有审核通过或审核驳回的版本才能退回开发",
    "CAN_NOT_ONLINE_NOT_GRAY_OR_WAITRELEASE": "只有灰度中或待上架的版本才能上架",
    # INFERRED wording; the sheet names the code only
    "CAN_NOT_ONLINE_NO_PROMOTE": "营销审核未通过，不能上架",
    "INVALID_REGION": "服务区域不合法",
    "INVALID_MINI_APP_MEMO_LENGTH": "备注长度不能超过500个字符",
    "SCREEN_SHOT_NUM_IS_INVALID": "截图数量须为2-5张",
    "INVALID_SCREEN_SHOT_EXT": "截图格式只支持png、jpg、jpeg",
    "SCREEN_SHOT_EXCEED_MAX_SIZE": "截图大小不能超过4M",
    "CAN_NOT_OFFLINE_WITHOUT_ONLINE": "只有已上架的版本才能下架",
    "CAN_NOT_OFFLINE_WITH_GRAY": "存在灰度中的版本，不能下架",
    "CAN_NOT_ROLLBACK_WITHOUT_ONLINE": "只有已上架的版本才能回滚",
    "CAN_NOT_ROLLBACK_WITH_GRAY": "存在灰度中的版本，不能回滚",
    "CAN_NOT_CONTINUOUS_ROLLBACK": "不能连续回滚",
    "CAN_NOT_ROLLBACK_WITHOUT_OFFLINE": "不存在可回滚的历史上架版本",
    "GRAY_STRATEGY_IS_BLANK": "灰度策略不能为空",
    "GRAY_STRATEGY_IS_INVALID": "灰度策略不合法，只支持p10、p30、p50",
    "GRAY_STRATEGY_NOT_ALLOW_REDUCE": "灰度策略不允许缩小",
    "CAN_NOT_GRAY_WITHOUT_AUDIT_PASS": "只有审核通过的版本才能灰度",
    "CAN_NOT_END_GRAY_WITHOUT_GRAY": "只有灰度中的版本才能结束灰度",
    "CAN_NOT_SET_EXP_REPEAT": "该版本已是体验版，不能重复设置",
    "CAN_NOT_SET_EXP_WITH_ONLINED_STATUS": "已上架的版本不能设置为体验版",
    "CAN_NOT_SET_EXP_INVALID_STATUS": "当前版本状态不能设置为体验版",
    # INFERRED: the sheet names SYSTEM_LIMIT (audit.apply) but gives no text; the emulator
    # answers it for the rate_limit fault on any method
    "SYSTEM_LIMIT": "调用频率超过限制，请稍后再试",
}


class _Failure(Exception):
    """A gateway answer other than success; ``signed`` is False where the key is unknown."""

    def __init__(self, code: str, sub_code: str, sub_msg: str, *, signed: bool = True) -> None:
        super().__init__(sub_code)
        self.code = code
        self.sub_code = sub_code
        self.sub_msg = sub_msg
        self.signed = signed


def _desc_length(text: str) -> int:
    """``version_desc`` length as the emulator counts it: wide characters count 2."""
    return len(text) + len(WIDE.findall(text))


def _version_key(name: str) -> tuple[int, ...]:
    """``"1.2.10"`` → ``(1, 2, 10)``, for ordering; anything else sorts first."""
    match = VERSION_RE.match(name)
    return tuple(int(part) for part in match.groups()) if match else ()


def _business(sub_code: str) -> _Failure:
    return _Failure("40004", sub_code, SUB_MSG.get(sub_code, f"未知的错误码{sub_code}"))


RECORD_FIELDS = (
    ("base_audit_record", "base_audit_reason"),
    ("promote_audit_record", "promote_audit_reason"),
)  # detail.query field → audit push field (fact sheet §3.11, §4)
VERDICT_FIELDS = (
    "reject_reason",
    "base_audit",
    "promote_audit",
    "can_release",
    *(record for record, _ in RECORD_FIELDS),
)
MARKETING_REFUSAL = "推广素材与服务内容不符 (#base/#promote) — emulated marketing review."


def _record(memo: str) -> dict[str, Any]:
    """A ``MiniAppAuditReason`` (fact sheet §3.11) holding one memo."""
    return {"audit_images": [], "memos": [{"memo": memo, "memo_image_list": []}]}


def _verdict(notes: str, approved: bool, reason: str) -> dict[str, Any]:
    """The fields a decided review sets. With ``#base``/``#promote`` in the notes it is
    reviewed as under ``audit_rule=BASE_PROMOTE``: admission and marketing apart."""
    if BASE_MARK not in notes and PROMOTE_MARK not in notes:
        if approved:
            return {"status": "WAIT_RELEASE"}
        return {"status": "AUDIT_REJECT", "reject_reason": reason}
    if not approved:  # refused at admission: the reason stands in its record only
        return {
            "status": "AUDIT_REJECT",
            "base_audit": "REJECT",
            "base_audit_record": _record(reason),
        }
    return {
        "status": "PROMOTE_AUDIT_REJECT" if PROMOTE_MARK in notes else "BASE_AUDIT_PASS",
        "base_audit": "PASS",
        "promote_audit": "REJECT",
        "promote_audit_record": _record(MARKETING_REFUSAL),
        "can_release": "true",
    }


def _clear_verdict(version: dict[str, Any]) -> None:
    """Forget a decided review (the version goes back to development, or is submitted)."""
    version.update(dict.fromkeys(VERDICT_FIELDS, ""))


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
        "pushed": [],  # keys of the audit-result pushes the receiver accepted
    }


class AlipayEmulator(Emulator):
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
    ``PROMOTE_AUDIT_REJECT``.

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

    # -- pushes ------------------------------------------------------------------------

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

    def issued_secrets(self) -> set[str]:
        state = self._state
        keys = [state["platform_key"], state["isv"]]
        tools = [tool for app in state["apps"].values() for tool in app.get("tools", {}).values()]
        return {
            *(key["private_key"] for key in keys if key is not None),
            *(tool["private_key"] for tool in tools),
            *state["tokens"],
            *state["refresh_tokens"],
        }

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
        settings = AlipayPlatform.Settings(
            gateway=env["ALIPAY_GATEWAY"],
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
            web.get("/_emulator/experience-qr.png", self._experience_qr),
            web.post("/_emulator/minidev/upload", self._minidev_upload),
        ]

    async def _gateway(self, request: web.Request) -> web.StreamResponse:
        self.base_url = str(request.url.with_query(None)).rsplit("/gateway.do", 1)[0]
        params: dict[str, str] = {}
        files: dict[str, tuple[str, int]] = {}  # part → (file name, size)
        for k, v in request.query.items():
            params.setdefault(k, v)
        if request.method == "POST" and request.content_type in (
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        ):
            form = await request.post()
            for name, value in form.items():
                if isinstance(value, str):
                    params.setdefault(name, value)
                elif isinstance(value, web.FileField):  # neither params nor signed
                    files[name] = (value.filename, len(value.file.read()))
        method = params.get("method", "")
        fault = self.take_fault(method)
        if fault == "unavailable":
            return self.unavailable()
        if fault == "expired_token":
            self.expire_tokens()
        self._failing_build = fault == BUILD_FAILED_FAULT
        try:
            response = self._answer(method, params, files, fault)
        finally:
            self._failing_build = False
        if fault == "timeout":
            await self.hold()
        if fault == "malformed":  # carried out, but the answer is cut short
            text = response.text or ""
            return web.Response(
                text=text[: len(text) // 2], content_type="application/json", charset="utf-8"
            )
        return response

    def _answer(
        self,
        method: str,
        params: dict[str, str],
        files: Mapping[str, tuple[str, int]],
        fault: str | None = None,
    ) -> web.Response:
        """The gateway's answer, as the injected ``fault`` (if any) shapes it: ``busy`` and
        ``rate_limit`` refuse the call, ``unsigned`` leaves out ``sign``."""
        node = alipay_sign.node_name(method) if self._knows(method) else "error_response"
        signed = fault != "unsigned"
        try:
            fields = self._handle(method, params, files, fault)
        except _Failure as failure:
            inner: dict[str, Any] = {
                "code": failure.code,
                "msg": GATEWAY_MSG[failure.code],
                "sub_code": failure.sub_code,
                "sub_msg": failure.sub_msg,
            }
            return self._respond(node, inner, signed=failure.signed and signed)
        return self._respond(node, {"code": "10000", "msg": "Success", **fields}, signed=signed)

    def _respond(self, node: str, inner: dict[str, Any], *, signed: bool) -> web.Response:
        """Serialise the node once, sign exactly those bytes, put ``sign`` last."""
        text = json.dumps(inner, ensure_ascii=False, separators=(",", ":"))
        body = '{"' + node + '":' + text
        if signed:
            key = self._private(self._platform_key()["private_key"])
            body += ',"sign":"' + alipay_sign.sign(text, key) + '"'
        body += "}"
        return web.Response(text=body, content_type="application/json", charset="utf-8")

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

    async def _minidev_upload(self, request: web.Request) -> web.Response:
        """A minidev upload of a mini program owned directly (what ideservice does for the
        real CLI, fact sheet §5, reduced): JSON ``appId``, ``version``, ``versionDescription``,
        ``toolId`` and ``sign`` (RSA2 over the other fields, sorted ``k=v`` joined by ``&``,
        with the tool key). Answers ``{"stat":"ok","data":{…}}`` or ``{"stat":"fail","msg":…}``."""
        try:
            data = await request.json()
            fields = {str(k): str(v) for k, v in data.items()}
        except (ValueError, AttributeError):
            return web.json_response({"stat": "fail", "msg": "请求不是合法的JSON"})
        app = self._state["apps"].get(fields.get("appId", ""))
        if app is None:
            return web.json_response({"stat": "fail", "msg": "应用不存在"})
        tool = app.get("tools", {}).get(fields.get("toolId", ""))
        content = alipay_sign.sign_content({k: v for k, v in fields.items() if k != "sign"})
        if tool is None or not alipay_sign.verify(
            content, fields.get("sign", ""), self._public(tool["public_key"])
        ):
            return web.json_response(
                {"stat": "fail", "msg": "工具密钥校验失败，请检查toolId和私钥"}
            )
        biz = {"app_version": fields.get("version", "")}
        try:
            version = self._create_version(
                fields["appId"], biz, fields.get("versionDescription", "")
            )
        except _Failure as failure:
            return web.json_response({"stat": "fail", "msg": failure.sub_msg})
        # minidev waits for the build itself
        version.update(queued_until=version["created_at"], built_at=version["created_at"])
        self.save()
        return web.json_response({"stat": "ok", "data": {"version": version["app_version"]}})

    def _knows(self, method: str) -> bool:
        return method == api.AUDIT_APPLY or method in self._handlers

    def _caller_key(self, app_id: str) -> rsa.RSAPublicKey:
        """The registered public key of the calling app (ISV app or mini program)."""
        isv = self._state["isv"]
        if isv is not None and app_id == isv["app_id"]:
            return self._public(isv["public_key"])
        app = self._state["apps"].get(app_id)
        if app is None:
            raise _Failure("40002", "isv.invalid-app-id", "无效的AppID参数", signed=False)
        if not app["public_key"]:
            raise _Failure(
                "40002",
                "isv.missing-signature-config",
                "验签出错，未配置对应签名算法的公钥或者证书",
                signed=False,
            )
        return self._public(app["public_key"])

    def _handle(
        self,
        method: str,
        params: dict[str, str],
        files: Mapping[str, tuple[str, int]],
        fault: str | None,
    ) -> dict[str, Any]:
        """Check the common params and the signature, resolve the target app, dispatch."""
        if not method:
            raise _Failure("40001", "isv.missing-method", "缺少方法名参数", signed=False)
        if not self._knows(method):
            raise _Failure("40002", "isv.invalid-method", "不存在的方法名", signed=False)
        app_id = params.get("app_id", "")
        if not app_id:
            raise _Failure("40001", "isv.missing-app-id", "缺少AppID参数", signed=False)
        key = self._caller_key(app_id)
        missing = [
            ("sign_type", "isv.missing-signature-type", "缺少签名类型参数"),
            ("sign", "isv.missing-signature", "缺少签名参数"),
            ("timestamp", "isv.missing-timestamp", "缺少时间戳参数"),
            ("version", "isv.missing-version", "缺少版本参数"),
        ]
        for name, sub_code, sub_msg in missing:
            if not params.get(name):
                raise _Failure("40001", sub_code, sub_msg)
        if params["sign_type"] != "RSA2":  # the emulator only knows RSA2 keys
            raise _Failure("40002", "isv.invalid-signature-type", "无效签名方式类型")
        if params.get("charset", "utf-8").lower() != "utf-8":
            raise _Failure("40002", "isv.invalid-charset", "字符集错误")
        if params.get("format", "json").lower() != "json":
            raise _Failure("40002", "isv.invalid-format", "无效的数据格式")
        try:
            alipay_sign.parse_timestamp(params["timestamp"])
        except ValueError:
            raise _Failure("40002", "isv.invalid-timestamp", "非法的时间戳参数") from None
        content = alipay_sign.sign_content(params)
        if not alipay_sign.verify(content, params["sign"], key):
            raise _Failure(
                "40002",
                "isv.invalid-signature",
                "验签出错，建议检查签名字符串或签名私钥与应用公钥是否匹配，"
                f"网关生成的验签字符串为：{content}",
            )
        if fault == "busy":
            raise _Failure("20000", "isp.unknow-error", "业务系统不可用")
        if fault == "rate_limit":
            raise _business("SYSTEM_LIMIT")

        target, isv_call = self._target(method, app_id, params.get("app_auth_token", ""))
        if method == api.UPLOAD and not isv_call:  # template builds are made by the ISV only
            raise _business("ISV_APP_ID_IS_BLANK")
        if method == api.AUDIT_APPLY:  # multipart: top-level fields and file parts
            biz = {k: v for k, v in params.items() if k not in COMMON_PARAMS}
            return self._audit_apply(target, biz, files)
        return self._handlers[method](target, self._biz_content(params.get("biz_content", "")))

    def _target(self, method: str, app_id: str, token: str) -> tuple[str, bool]:
        """The mini program a call acts on, and whether the ISV calls on its behalf."""
        isv = self._state["isv"]
        is_isv = isv is not None and app_id == isv["app_id"]
        if token:
            grant = self._state["tokens"].get(token)
            if not is_isv or grant is None or token in self._state["revoked"]:
                raise _Failure("20001", "aop.invalid-app-auth-token", "无效的应用授权令牌")
            if grant["expired"]:
                raise _Failure("20001", "aop.app-auth-token-time-out", "应用授权令牌已过期")
            return str(grant["app_id"]), True
        if is_isv:
            if method == api.AUTH_GRANT:
                return app_id, False
            # UNCERTAIN (fact sheet §1.4): only the text is documented; code and sub_code
            # follow a gateway answer quoted in a public test of an Alipay SDK client.
            raise _Failure("40006", "isv.self-invoke-forbidden", "此用户不允许自调用")
        if method == api.AUTH_GRANT:
            raise _Failure(
                "40006",
                "isv.insufficient-isv-permissions",
                "ISV权限不足，建议在开发者中心检查对应功能是否已经添加",
            )
        return app_id, False

    @staticmethod
    def _biz_content(text: str) -> dict[str, str]:
        try:
            data = json.loads(text or "{}")
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise _Failure("40002", "isv.invalid-parameter", "参数无效：biz_content不是合法的JSON")
        biz: dict[str, str] = {}
        for k, v in data.items():
            if isinstance(v, bool):
                biz[k] = "true" if v else "false"
            elif v is None:
                continue
            else:
                biz[k] = v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)
        return biz

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
                v.update(_verdict(v["version_desc"], outcome == "approved", reason))
                v["audit_end_at"] = v["applied_at"] + self.review_seconds
        return versions

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

    def _build_fields(self, version: dict[str, Any]) -> dict[str, str]:
        """upload's and build.query's answer: queued (0), building (1), failed (3) or
        built and created (2, 6)."""
        if self._queued(version):
            build, create, rotate = "0", "0", "true"
        elif self.clock() < version["built_at"]:
            build, create, rotate = "1", "1", "true"
        elif version.get("build_failed"):
            build, create, rotate = "3", "3", "false"
        else:
            build, create, rotate = "2", "6", "false"
        return {
            "build_status": build,
            "create_status": create,
            "need_rotation": rotate,
            "version_created": "true" if create == "6" else "false",
        }

    def _upload(self, app_id: str, biz: dict[str, str]) -> dict[str, Any]:
        template_id = biz.get("template_id", "")
        if not template_id:
            raise _business("TEMPLATE_ID_IS_BLANK")
        name = biz.get("app_version", "")
        if not name:
            raise _business("APP_VERSION_IS_BLANK")
        template = self._state["templates"].get(template_id)
        if template is None:
            raise _business("CODE_TEMPLATE_NOT_EXIST")
        template_version = biz.get("template_version") or template["versions"][-1]
        if template_version not in template["versions"]:
            raise _business("TEMPLATE_NOT_ONLINE_OR_OFFLINE")
        self._check_new_version(app_id, biz)
        ext = biz.get("ext", "")
        if ext:
            try:
                valid = isinstance(json.loads(ext), dict)
            except ValueError:
                valid = False
            if not valid:
                raise _business("INVALID_EXT_JSON")
        version = self._create_version(app_id, biz)
        version.update(template_id=template_id, template_version=template_version, ext=ext)
        return self._build_fields(version)

    def _check_new_version(self, app_id: str, biz: Mapping[str, str]) -> None:
        """The upload rules for a new version number (fact sheet §2.2)."""
        name = biz.get("app_version", "")
        if not name:
            raise _business("APP_VERSION_IS_BLANK")
        versions = self._versions(app_id, biz)
        match = VERSION_RE.match(name)
        if match is None:
            raise _business("INVALID_VERSION")
        if any(int(part) > MAX_VERSION_PART for part in match.groups()):
            raise _business("VERSION_EXCEEDED_LENGTH")
        if name in versions:
            raise _business("VERSION_HAS_EXISTED")
        if any(_version_key(v) > _version_key(name) for v in versions):
            raise _business("LARGER_VERSION_HAS_EXISTED")

    def _create_version(
        self, app_id: str, biz: Mapping[str, str], description: str = ""
    ) -> dict[str, Any]:
        """A new development version (after :meth:`_check_new_version`), building for
        ``build_seconds``."""
        self._check_new_version(app_id, biz)
        name = biz["app_version"]
        now = self.clock()
        version: dict[str, Any] = {
            "app_version": name,
            "status": "INIT",
            "template_id": "",
            "template_version": "",
            "ext": "",
            "version_desc": description,
            "created_at": now,
            "queued_until": now + self.queue_seconds,
            "built_at": now + self.queue_seconds + self.build_seconds,
            "build_failed": self._failing_build,
            "applied_at": None,
            "audit_end_at": None,
            "online_at": None,
            "offline_at": None,
            "reject_reason": "",
            "region_type": "",
            "service_region_info": "",
            "test_accout": "",
            "memo": "",
            "speed_up": "false",
            "screenshots": [],
            "gray_strategy": "",
        }
        self._versions(app_id, biz)[name] = version
        return version

    def _build_query(self, app_id: str, biz: dict[str, str]) -> dict[str, Any]:
        name = biz.get("app_version", "")
        if not name:
            raise _business("APP_VERSION_IS_BLANK")
        version = self._versions(app_id, biz).get(name)
        if version is None or self._queued(version):
            raise _business("BUILD_VERSION_NOT_EXISTED")
        return self._build_fields(version)

    def _audit_apply(
        self, app_id: str, biz: dict[str, str], files: Mapping[str, tuple[str, int]]
    ) -> dict[str, Any]:
        versions, version = self._ready(app_id, biz)
        desc = biz.get("version_desc", "")
        if not desc:
            raise _business("VERSION_DESC_IS_BLANK")
        shortest, longest = VERSION_DESC_LENGTHS
        if not shortest <= _desc_length(desc) <= longest:
            raise _business("INVALID_VERSION_DESC_LENGTH")
        region = biz.get("region_type", "")
        if not region:
            raise _business("REGION_TYPE_IS_BLANK")
        if region not in REGION_TYPES:
            raise _business("REGION_TYPE_IS_INVALID")
        if region == "LOCATION":
            self._check_regions(biz.get("service_region_info", ""))
        if len(biz.get("memo", "")) > 500:
            raise _business("INVALID_MINI_APP_MEMO_LENGTH")
        shots = [(part, *files[part]) for part in api.SCREENSHOT_PARTS if part in files]
        if shots and not 2 <= len(shots) <= len(api.SCREENSHOT_PARTS):
            raise _business("SCREEN_SHOT_NUM_IS_INVALID")
        for _, filename, size in shots:
            if not filename.lower().endswith(SCREENSHOT_EXTENSIONS):
                raise _business("INVALID_SCREEN_SHOT_EXT")
            if size > SCREENSHOT_MAX_BYTES:
                raise _business("SCREEN_SHOT_EXCEED_MAX_SIZE")
        if any(v["status"] in OPEN_REVIEW for v in versions.values()):
            raise _business("CAN_NOT_SUBMIT_WITH_AUDIT_GRAY")
        if version["status"] != "INIT":
            raise _business("CAN_NOT_SUBMIT_WITHOUT_INIT")
        key = _version_key(version["app_version"])
        if any(v["status"] == "RELEASE" and _version_key(n) > key for n, v in versions.items()):
            raise _business("EXIST_LARGER_ONLINED_VERSION")
        _clear_verdict(version)
        version.update(
            status="AUDITING",
            version_desc=desc,
            region_type=region,
            applied_at=self.clock(),
            audit_end_at=None,
            test_accout=biz.get("test_accout", ""),
            memo=biz.get("memo", ""),
            service_region_info=biz.get("service_region_info", ""),
            screenshots=[filename for _, filename, _ in shots],
            speed_up="false",
        )
        if biz.get("speed_up", "true") != "true":  # Alipay's default is to expedite
            return {"speed_up": "false"}
        app = self._mini_app(app_id)
        if app["speed_ups"] >= self.expedites:
            return {"speed_up": "false", "speed_up_memo": "暂无可用的审核加急权益"}
        app["speed_ups"] += 1
        version["speed_up"] = "true"
        # INFERRED wording; the sheet gives only the field
        return {"speed_up": "true", "speed_up_memo": "已使用1次审核加急权益"}

    @staticmethod
    def _check_regions(text: str) -> None:
        """``service_region_info``: a JSON array of regions; a city needs its province, an
        area its province and city (fact sheet §3.3)."""
        if not text:
            raise _business("REGION_CODE_IS_BLANK")
        try:
            regions = json.loads(text)
        except ValueError:
            raise _business("INVALID_REGION") from None
        if not isinstance(regions, list) or not regions:
            raise _business("INVALID_REGION")
        for region in regions:
            if not isinstance(region, dict) or not set(region) <= REGION_FIELDS:
                raise _business("INVALID_REGION")
            if not region.get("province_code"):
                raise _business("REGION_CODE_IS_BLANK")
            if region.get("area_code") and not region.get("city_code"):
                raise _business("INVALID_REGION")

    def _audit_cancel(self, app_id: str, biz: dict[str, str]) -> dict[str, Any]:
        versions = self._versions(app_id, biz)
        name = biz.get("app_version", "")
        if name:
            version = versions.get(name)
        else:  # "不传默认撤消正在审核中的版本"
            version = next((v for v in versions.values() if v["status"] == "AUDITING"), None)
        if version is None or version["status"] != "AUDITING":
            raise _business("AUDITING_VERSION_NOT_EXIST")
        version.update(status="INIT", audit_end_at=None)
        return {}

    def _audited_cancel(self, app_id: str, biz: dict[str, str]) -> dict[str, Any]:
        _, version = self._ready(app_id, biz)
        if version["status"] not in DECIDED:
            raise _business("CAN_NOT_BACK_DEV_WITHOUT_AUDIT")
        _clear_verdict(version)
        version.update(status="INIT", audit_end_at=None)
        return {}

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

    def _detail_query(self, app_id: str, biz: dict[str, str]) -> dict[str, Any]:
        _, version = self._ready(app_id, biz)
        fields = {
            "app_version": version["app_version"],
            "status": version["status"],
            "version_desc": version["version_desc"],
            "memo": version["memo"],
            "scan_result": "True",
            "service_region_type": version["region_type"],
            "gmt_create": alipay_sign.format_timestamp(version["created_at"]),
        }
        for field, at in (
            ("gmt_apply_audit", "applied_at"),
            ("gmt_audit_end", "audit_end_at"),
            ("gmt_online", "online_at"),
            ("gmt_offline", "offline_at"),
        ):
            if version[at] is not None:
                fields[field] = alipay_sign.format_timestamp(version[at])
        for field in VERDICT_FIELDS:
            fields[field] = version.get(field) or ""
        if version["status"] == "GRAY" and self.report_gray_strategy:
            fields["gray_strategy"] = version.get("gray_strategy") or ""
        return {k: v for k, v in fields.items() if v}

    def _list_query(self, app_id: str, biz: dict[str, str]) -> dict[str, Any]:
        versions = self._versions(app_id, biz)
        wanted = {s.strip() for s in biz.get("version_status", "").split(",") if s.strip()}
        if not wanted:  # "不填默认不返回"
            return {}
        bundle = biz.get("bundle_id") or DEFAULT_BUNDLE
        listed = sorted(
            (v for v in versions.values() if v["status"] in wanted and self._built(v)),
            key=lambda v: _version_key(v["app_version"]),
            reverse=True,
        )[:20]
        infos = [
            {
                "app_version": v["app_version"],
                "bundle_id": bundle,
                "version_status": v["status"],
                "version_description": v["version_desc"],
                "create_time": alipay_sign.format_timestamp(v["created_at"]),
                **{k: v[k] for k in ("base_audit", "promote_audit", "can_release") if v.get(k)},
            }
            for v in listed
        ]
        return {"app_version_infos": infos}

    def _auth_grant(self, app_id: str, biz: dict[str, str]) -> dict[str, Any]:
        grant_type = biz.get("grant_type", "")
        if grant_type == "authorization_code":
            # the emulator issues no authorisation codes: every code is unknown
            raise _Failure("40002", "isv.code-invalid", "授权码code无效")
        if grant_type != "refresh_token":
            raise _Failure("40002", "isv.grant-type-invalid", "grant_type参数无效")
        # INFERRED: earlier refresh tokens stay usable unless revoke_old_grants is set (a
        # restarted miniship must then use the newest one, which it kept)
        refresh = biz.get("refresh_token", "")
        mini = self._state["refresh_tokens"].get(refresh)
        if mini is None or refresh in self._state["revoked"]:
            raise _Failure("40002", "isv.refresh-token-invalid", "刷新令牌refresh_token无效")
        grant = self._issue_grant(mini)
        return {
            "user_id": "2088" + mini[-12:].rjust(12, "0"),
            "auth_app_id": mini,
            "app_auth_token": grant["app_auth_token"],
            "app_refresh_token": grant["app_refresh_token"],
            "expires_in": GRANT_LIFETIME,
            "re_expires_in": REFRESH_LIFETIME,
        }


def _bare(pem: str) -> str:
    """A PEM key's base64 body on one line."""
    return "".join(line for line in pem.strip().splitlines() if not line.startswith("-----"))
