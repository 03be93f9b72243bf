"""``gateway.do``: the common parameters and the request signature checked, faults
applied, the target mini program found, the method dispatched, the answer signed.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Any

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import rsa

from platforms.alipay import api
from platforms.alipay import sign as alipay_sign
from platforms.emulators.alipay.errors import GATEWAY_MSG, _business, _Failure
from platforms.emulators.alipay.grants import GrantMethods
from platforms.emulators.alipay.release import ReleaseMethods
from platforms.emulators.alipay.trial import TrialMethods
from platforms.emulators.alipay.versions import VersionMethods

__all__ = ["BUILD_FAILED_FAULT", "Gateway"]


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

BUILD_FAILED_FAULT = "build_failed"  # the upload it is injected into builds, then fails


@functools.lru_cache(maxsize=4096)
def _signature(text: str, key: rsa.RSAPrivateKey) -> str:
    """The gateway's signature of an answer. RSA2 (PKCS#1 v1.5) signs the same bytes
    alike every time, so an answer given before (a review status asked again each watch
    round) is not signed again: the signature is most of an answer's cost."""
    return alipay_sign.sign(text, key)


class Gateway(VersionMethods, ReleaseMethods, TrialMethods, GrantMethods):
    """The gateway over the methods of the mixins it is made of."""

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
        await self.hold(fault)
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
            body += ',"sign":"' + _signature(text, key) + '"'
        body += "}"
        return web.Response(text=body, content_type="application/json", charset="utf-8")

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
