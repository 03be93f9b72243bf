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

Emulated methods: ``alipay.open.mini.version.upload`` / ``build.query`` / ``audit.apply`` /
``audit.cancel`` / ``audited.cancel`` / ``online`` / ``detail.query`` / ``list.query`` and
``alipay.open.auth.token.app`` (refresh only).
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlencode

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import BaseModel, SecretStr

from platforms import alipay_sign
from platforms.alipay import AlipayPlatform, version_desc_length, version_key
from platforms.emulators.base import Emulator, OutgoingPush, Provisioned

__all__ = ["AlipayEmulator"]

UPLOAD = "alipay.open.mini.version.upload"
BUILD_QUERY = "alipay.open.mini.version.build.query"
AUDIT_APPLY = "alipay.open.mini.version.audit.apply"
AUDIT_CANCEL = "alipay.open.mini.version.audit.cancel"
AUDITED_CANCEL = "alipay.open.mini.version.audited.cancel"
ONLINE = "alipay.open.mini.version.online"
DETAIL_QUERY = "alipay.open.mini.version.detail.query"
LIST_QUERY = "alipay.open.mini.version.list.query"
AUTH_GRANT = "alipay.open.auth.token.app"
AUDIT_PASSED = "alipay.open.mini.version.audit.passed"
AUDIT_REJECTED = "alipay.open.mini.version.audit.rejected"
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
OPEN_REVIEW = frozenset({"AUDITING", "WAIT_RELEASE", "BASE_AUDIT_PASS", "AUDIT_REJECT", "GRAY"})
DECIDED = frozenset({"WAIT_RELEASE", "BASE_AUDIT_PASS", "AUDIT_REJECT"})  # audited.cancel
VERSION_RE = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")
MAX_VERSION_PART = 2147483647
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
}


class _Failure(Exception):
    """A gateway answer other than success; ``signed`` is False where the key is unknown."""

    def __init__(
        self,
        code: str,
        sub_code: str,
        sub_msg: str,
        *,
        signed: bool = True,
        node: str | None = None,
    ) -> None:
        super().__init__(sub_code)
        self.code = code
        self.sub_code = sub_code
        self.sub_msg = sub_msg
        self.signed = signed
        self.node = node


def _business(sub_code: str) -> _Failure:
    return _Failure("40004", sub_code, SUB_MSG.get(sub_code, f"未知的错误码{sub_code}"))


def _empty_state() -> dict[str, Any]:
    return {
        "platform_key": None,  # {"private_key", "public_key"}: signs every answer
        "isv": None,  # {"app_id", "private_key", "public_key"}: the third-party app
        "apps": {},  # mini program APPID → {"public_key", "versions": {bundle: {ver: {...}}}}
        "templates": {},  # template APPID → {"isv_app_id", "versions": [...]}
        "tokens": {},  # app_auth_token → {"app_id", "expired"}
        "refresh_tokens": {},  # app_refresh_token → mini program APPID
        "grants": {},  # mini program APPID → {"app_auth_token", "app_refresh_token"}
        "pushed": [],  # keys of the audit-result pushes the receiver accepted
    }


class AlipayEmulator(Emulator):
    """The Alipay gateway for mini program versions, on loopback.

    Args:
        build_seconds: how long a template build takes; meanwhile ``upload`` answers
            ``need_rotation="true"`` and ``build.query`` reports the build running.
        review_seconds, clock, timeout_seconds, state_path: see :class:`Emulator`.
    """

    platform = "alipay"
    OPERATIONS: ClassVar[Mapping[str, str]] = {
        "upload": UPLOAD,
        "submit": AUDIT_APPLY,
        "status": DETAIL_QUERY,
        "withdraw": AUDIT_CANCEL,
        "publish": ONLINE,
    }

    def __init__(
        self,
        *,
        build_seconds: float = 0.0,
        review_seconds: float = 30.0,
        clock: Callable[[], float] = time.time,
        timeout_seconds: float = 30.0,
        state_path: Path | None = None,
    ) -> None:
        self.build_seconds = build_seconds
        self._state: dict[str, Any] = _empty_state()
        self._private_keys: dict[str, rsa.RSAPrivateKey] = {}
        self._public_keys: dict[str, rsa.RSAPublicKey] = {}
        self._handlers: dict[str, Callable[[str, dict[str, str], bool], dict[str, Any]]] = {
            UPLOAD: self._upload,
            BUILD_QUERY: self._build_query,
            AUDIT_APPLY: self._audit_apply,
            AUDIT_CANCEL: self._audit_cancel,
            AUDITED_CANCEL: self._audited_cancel,
            ONLINE: self._online,
            DETAIL_QUERY: self._detail_query,
            LIST_QUERY: self._list_query,
            AUTH_GRANT: self._auth_grant,
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

    # -- pushes ------------------------------------------------------------------------

    def _audit_push(self, app_id: str, bundle: str, version: dict[str, Any]) -> OutgoingPush | None:
        if version["applied_at"] is None or version["audit_end_at"] is None:
            return None  # never submitted, still in review, or sent back to development
        name = version["app_version"]
        key = f"audit:{app_id}:{bundle}:{name}:{version['applied_at']}"
        if key in self.pushed or self.push_url is None:
            return None
        rejected = version["status"] == "AUDIT_REJECT"
        biz: dict[str, str] = {
            "mini_app_id": app_id,
            "mini_app_version": name,
            "bundle_id": bundle,
        }
        if rejected:
            biz["audit_reason"] = version["reject_reason"]
        params = {
            "notify_id": secrets.token_hex(16),
            "utc_timestamp": str(int(version["audit_end_at"] * 1000)),
            "msg_method": AUDIT_REJECTED if rejected else AUDIT_PASSED,
            "app_id": self._isv()["app_id"],
            "version": "1.1",
            "charset": "utf-8",
            "biz_content": json.dumps(biz, ensure_ascii=False, separators=(",", ":")),
        }
        signed = alipay_sign.sign_notify(params, self._private(self._platform_key()["private_key"]))
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
        return {
            *(key["private_key"] for key in keys if key is not None),
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
        return app

    def _issue_grant(self, app_id: str) -> dict[str, str]:
        """A new app_auth_token/app_refresh_token pair for the ISV on ``app_id``."""
        month = alipay_sign.format_timestamp(self.clock())[:7].replace("-", "")
        grant = {
            "app_auth_token": f"{month}BB{secrets.token_hex(16)}",
            "app_refresh_token": f"{month}BB{secrets.token_hex(16)}",
        }
        self._state["tokens"][grant["app_auth_token"]] = {"app_id": app_id, "expired": False}
        self._state["refresh_tokens"][grant["app_refresh_token"]] = app_id
        self._state["grants"][app_id] = grant
        return grant

    def expire_tokens(self) -> None:
        """Every app_auth_token issued so far expires now (refresh tokens stay valid)."""
        for token in self._state["tokens"].values():
            token["expired"] = True

    # -- provisioning ------------------------------------------------------------------

    def provision(self, base_url: str, apps: Mapping[str, BaseModel]) -> Provisioned:
        """Register the mini programs and templates and hand out ISV credentials."""
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
        return [web.post("/gateway.do", self._gateway), web.get("/gateway.do", self._gateway)]

    async def _gateway(self, request: web.Request) -> web.StreamResponse:
        params: dict[str, str] = {}
        for k, v in request.query.items():
            params.setdefault(k, v)
        if request.method == "POST" and request.content_type in (
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        ):
            form = await request.post()
            for name, value in form.items():
                if isinstance(value, str):  # file parts are neither params nor signed
                    params.setdefault(name, value)
        method = params.get("method", "")
        fault = self.take_fault(method)
        if fault == "unavailable":
            return self.unavailable()
        if fault == "expired_token":
            self.expire_tokens()
        response = self._answer(method, params, busy=fault == "busy")
        if fault == "timeout":
            await self.hold()
        return response

    def _answer(self, method: str, params: dict[str, str], *, busy: bool) -> web.Response:
        node = alipay_sign.node_name(method) if method in self._handlers else "error_response"
        try:
            fields = self._handle(method, params, busy=busy)
        except _Failure as failure:
            inner: dict[str, Any] = {
                "code": failure.code,
                "msg": GATEWAY_MSG[failure.code],
                "sub_code": failure.sub_code,
                "sub_msg": failure.sub_msg,
            }
            return self._respond(failure.node or node, inner, signed=failure.signed)
        return self._respond(node, {"code": "10000", "msg": "Success", **fields}, signed=True)

    def _respond(self, node: str, inner: dict[str, Any], *, signed: bool) -> web.Response:
        """Serialise the node once, sign exactly those bytes, put ``sign`` last."""
        text = json.dumps(inner, ensure_ascii=False, separators=(",", ":"))
        body = '{"' + node + '":' + text
        if signed:
            key = self._private(self._platform_key()["private_key"])
            body += ',"sign":"' + alipay_sign.sign(text, key) + '"'
        body += "}"
        return web.Response(text=body, content_type="application/json", charset="utf-8")

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

    def _handle(self, method: str, params: dict[str, str], *, busy: bool) -> dict[str, Any]:
        """Check the common params and the signature, resolve the target app, dispatch."""
        if not method:
            raise _Failure("40001", "isv.missing-method", "缺少方法名参数", signed=False)
        if method not in self._handlers:
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
        if busy:
            raise _Failure("20000", "isp.unknow-error", "业务系统不可用")

        target, isv_call = self._target(method, app_id, params.get("app_auth_token", ""))
        if method == AUDIT_APPLY:
            biz = {k: v for k, v in params.items() if k not in COMMON_PARAMS}
        else:
            biz = self._biz_content(params.get("biz_content", ""))
        fields = self._handlers[method](target, biz, isv_call)
        return fields

    def _target(self, method: str, app_id: str, token: str) -> tuple[str, bool]:
        """The mini program a call acts on, and whether the ISV calls on its behalf."""
        isv = self._state["isv"]
        is_isv = isv is not None and app_id == isv["app_id"]
        if token:
            grant = self._state["tokens"].get(token)
            if not is_isv or grant is None:
                raise _Failure("20001", "aop.invalid-app-auth-token", "无效的应用授权令牌")
            if grant["expired"]:
                raise _Failure("20001", "aop.app-auth-token-time-out", "应用授权令牌已过期")
            return str(grant["app_id"]), True
        if is_isv:
            if method == AUTH_GRANT:
                return app_id, False
            # UNCERTAIN (fact sheet §1.4): only the text is documented; code and sub_code
            # follow a gateway answer quoted in a public test of an Alipay SDK client.
            raise _Failure("40006", "isv.self-invoke-forbidden", "此用户不允许自调用")
        if method == AUTH_GRANT:
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
            if outcome == "approved":
                v["status"] = "WAIT_RELEASE"
                v["audit_end_at"] = v["applied_at"] + self.review_seconds
            elif outcome == "rejected":
                v["status"] = "AUDIT_REJECT"
                v["reject_reason"] = reason
                v["audit_end_at"] = v["applied_at"] + self.review_seconds
            # "pending" and "delayed" stay AUDITING: Alipay has no separate delay state
        return versions

    def _built(self, version: dict[str, Any]) -> bool:
        return bool(self.clock() >= version["built_at"])

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

    def _build_fields(self, version: dict[str, Any]) -> dict[str, str]:
        if self._built(version):
            return {
                "build_status": "2",
                "create_status": "6",
                "need_rotation": "false",
                "version_created": "true",
            }
        return {
            "build_status": "1",
            "create_status": "1",
            "need_rotation": "true",
            "version_created": "false",
        }

    def _upload(self, app_id: str, biz: dict[str, str], isv_call: bool) -> dict[str, Any]:
        if not isv_call:
            raise _business("ISV_APP_ID_IS_BLANK")
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
        versions = self._versions(app_id, biz)
        match = VERSION_RE.match(name)
        if match is None:
            raise _business("INVALID_VERSION")
        if any(int(part) > MAX_VERSION_PART for part in match.groups()):
            raise _business("VERSION_EXCEEDED_LENGTH")
        if name in versions:
            raise _business("VERSION_HAS_EXISTED")
        if any(version_key(v) > version_key(name) for v in versions):
            raise _business("LARGER_VERSION_HAS_EXISTED")
        ext = biz.get("ext", "")
        if ext:
            try:
                valid = isinstance(json.loads(ext), dict)
            except ValueError:
                valid = False
            if not valid:
                raise _business("INVALID_EXT_JSON")
        now = self.clock()
        versions[name] = {
            "app_version": name,
            "status": "INIT",
            "template_id": template_id,
            "template_version": template_version,
            "ext": ext,
            "version_desc": "",
            "created_at": now,
            "built_at": now + self.build_seconds,
            "applied_at": None,
            "audit_end_at": None,
            "online_at": None,
            "offline_at": None,
            "reject_reason": "",
            "region_type": "",
            "test_accout": "",
            "memo": "",
        }
        return self._build_fields(versions[name])

    def _build_query(self, app_id: str, biz: dict[str, str], isv_call: bool) -> dict[str, Any]:
        name = biz.get("app_version", "")
        if not name:
            raise _business("APP_VERSION_IS_BLANK")
        version = self._versions(app_id, biz).get(name)
        if version is None:
            raise _business("BUILD_VERSION_NOT_EXISTED")
        return self._build_fields(version)

    def _audit_apply(self, app_id: str, biz: dict[str, str], isv_call: bool) -> dict[str, Any]:
        versions, version = self._ready(app_id, biz)
        desc = biz.get("version_desc", "")
        if not desc:
            raise _business("VERSION_DESC_IS_BLANK")
        if not 30 <= version_desc_length(desc) <= 500:
            raise _business("INVALID_VERSION_DESC_LENGTH")
        region = biz.get("region_type", "")
        if not region:
            raise _business("REGION_TYPE_IS_BLANK")
        if region not in REGION_TYPES:
            raise _business("REGION_TYPE_IS_INVALID")
        if region == "LOCATION" and not biz.get("service_region_info"):
            raise _business("REGION_CODE_IS_BLANK")
        if any(v["status"] in OPEN_REVIEW for v in versions.values()):
            raise _business("CAN_NOT_SUBMIT_WITH_AUDIT_GRAY")
        if version["status"] != "INIT":
            raise _business("CAN_NOT_SUBMIT_WITHOUT_INIT")
        key = version_key(version["app_version"])
        if any(v["status"] == "RELEASE" and version_key(n) > key for n, v in versions.items()):
            raise _business("EXIST_LARGER_ONLINED_VERSION")
        version.update(
            status="AUDITING",
            version_desc=desc,
            region_type=region,
            applied_at=self.clock(),
            audit_end_at=None,
            reject_reason="",
            test_accout=biz.get("test_accout", ""),
            memo=biz.get("memo", ""),
        )
        return {"speed_up": "false", "speed_up_memo": "暂无可用的审核加急权益"}

    def _audit_cancel(self, app_id: str, biz: dict[str, str], isv_call: bool) -> dict[str, Any]:
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

    def _audited_cancel(self, app_id: str, biz: dict[str, str], isv_call: bool) -> dict[str, Any]:
        _, version = self._ready(app_id, biz)
        if version["status"] not in DECIDED:
            raise _business("CAN_NOT_BACK_DEV_WITHOUT_AUDIT")
        version.update(status="INIT", audit_end_at=None, reject_reason="")
        return {}

    def _online(self, app_id: str, biz: dict[str, str], isv_call: bool) -> dict[str, Any]:
        versions, version = self._ready(app_id, biz)
        if version["status"] not in ("WAIT_RELEASE", "GRAY"):
            raise _business("CAN_NOT_ONLINE_NOT_GRAY_OR_WAITRELEASE")
        now = self.clock()
        for other in versions.values():
            if other["status"] == "RELEASE":  # INFERRED (§2.2): the previous one goes offline
                other.update(status="OFFLINE", offline_at=now)
        version.update(status="RELEASE", online_at=now)
        return {}

    def _detail_query(self, app_id: str, biz: dict[str, str], isv_call: bool) -> dict[str, Any]:
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
        if version["reject_reason"]:
            fields["reject_reason"] = version["reject_reason"]
        return {k: v for k, v in fields.items() if v}

    def _list_query(self, app_id: str, biz: dict[str, str], isv_call: bool) -> dict[str, Any]:
        versions = self._versions(app_id, biz)
        wanted = {s.strip() for s in biz.get("version_status", "").split(",") if s.strip()}
        if not wanted:  # "不填默认不返回"
            return {}
        bundle = biz.get("bundle_id") or DEFAULT_BUNDLE
        listed = sorted(
            (v for v in versions.values() if v["status"] in wanted and self._built(v)),
            key=lambda v: version_key(v["app_version"]),
            reverse=True,
        )[:20]
        infos = [
            {
                "app_version": v["app_version"],
                "bundle_id": bundle,
                "version_status": v["status"],
                "version_description": v["version_desc"],
                "create_time": alipay_sign.format_timestamp(v["created_at"]),
            }
            for v in listed
        ]
        return {"app_version_infos": infos}

    def _auth_grant(self, app_id: str, biz: dict[str, str], isv_call: bool) -> dict[str, Any]:
        grant_type = biz.get("grant_type", "")
        if grant_type == "authorization_code":
            # the emulator issues no authorisation codes: every code is unknown
            raise _Failure("40002", "isv.code-invalid", "授权码code无效")
        if grant_type != "refresh_token":
            raise _Failure("40002", "isv.grant-type-invalid", "grant_type参数无效")
        # INFERRED: earlier refresh tokens stay usable, so a restarted miniship whose
        # configured refresh token predates a renewal can still renew.
        mini = self._state["refresh_tokens"].get(biz.get("refresh_token", ""))
        if mini is None:
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
