"""Our Alipay signing and WeChat message crypto, checked against independent implementations.

- the official ``alipay-sdk-python`` (import package ``alipay``) signs what we sign to the
  same RSA2 signature, drives our Alipay emulator end to end (its signatures accepted by the
  emulator, the emulator's accepted by it), verifies the emulator's answers exactly the way
  its client extracts the signed text, and verifies the emulator's audit-result pushes;
- ``wechatpy`` decrypts the pushes our WeChat emulator encrypts, and our ``WeChatCrypto``
  (and the adapter's ``read_push``) decrypts what wechatpy encrypts;
- the test vectors of WeChat's official encryption example (fact sheet wechat-api.md §8.5)
  decrypt and re-encrypt with our code, with wechatpy as a control;
- wechatpy's component and authorizer clients renew their tokens against our WeChat
  emulator once it says they expired (the errcode its retry knows, 42001).

The SDKs are test-only dependencies; nothing here is copied into the project.
"""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Iterator
from functools import cache
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
import rsa  # the SDK's own RSA library, for its VerificationError
import xmltodict  # type: ignore[import-untyped]  # wechatpy's XML parser
from alipay.aop.api.AlipayClientConfig import AlipayClientConfig
from alipay.aop.api.constant.CommonConstants import THREAD_LOCAL
from alipay.aop.api.DefaultAlipayClient import DefaultAlipayClient
from alipay.aop.api.domain.AlipayOpenMiniVersionDetailQueryModel import (
    AlipayOpenMiniVersionDetailQueryModel,
)
from alipay.aop.api.domain.AlipayOpenMiniVersionUploadModel import (
    AlipayOpenMiniVersionUploadModel,
)
from alipay.aop.api.exception.Exception import ResponseException
from alipay.aop.api.FileItem import FileItem
from alipay.aop.api.request.AlipayOpenMiniVersionAuditApplyRequest import (
    AlipayOpenMiniVersionAuditApplyRequest,
)
from alipay.aop.api.request.AlipayOpenMiniVersionDetailQueryRequest import (
    AlipayOpenMiniVersionDetailQueryRequest,
)
from alipay.aop.api.request.AlipayOpenMiniVersionUploadRequest import (
    AlipayOpenMiniVersionUploadRequest,
)
from alipay.aop.api.response.AlipayOpenMiniVersionAuditApplyResponse import (
    AlipayOpenMiniVersionAuditApplyResponse,
)
from alipay.aop.api.response.AlipayOpenMiniVersionDetailQueryResponse import (
    AlipayOpenMiniVersionDetailQueryResponse,
)
from alipay.aop.api.response.AlipayOpenMiniVersionUploadResponse import (
    AlipayOpenMiniVersionUploadResponse,
)
from alipay.aop.api.util import SignatureUtils, WebUtils
from cryptography.hazmat.primitives import serialization
from wechatpy import WeChatComponent
from wechatpy.crypto import PrpCrypto
from wechatpy.crypto import WeChatCrypto as WechatpyCrypto
from wechatpy.exceptions import InvalidAppIdException, InvalidSignatureException
from wechatpy.utils import check_signature

from platforms.alipay import (
    AUDIT_APPLY,
    DETAIL_QUERY,
    LIST_QUERY,
    ONLINE,
    UPLOAD,
    AlipayPlatform,
)
from platforms.alipay import sign as alipay_sign
from platforms.base import ReviewState
from platforms.emulators.wechat import WeChatEmulator
from platforms.push import PushRejected, PushRequest
from platforms.transport import Sender
from platforms.wechat import WeChatPlatform
from platforms.wechat.crypto import WeChatCrypto, parse_xml
from tests.helpers import World, open_world
from tests.platforms.transports import Tamper, alipay_params

PUSH_URL = "http://127.0.0.1:9/push"  # due_pushes only builds pushes; nothing is sent there


# =========================================================================== Alipay


@cache
def sdk_key() -> tuple[str, str, str]:
    """One app key as ``(our PKCS#8 PEM, the SDK's bare PKCS#1 base64, bare SPKI public key)``."""
    private_pem, public_pem = alipay_sign.generate_key_pair()
    return private_pem, pkcs1_bare(private_pem), bare(public_pem)


def pkcs1_bare(private_pem: str) -> str:
    """A private key as the official Python SDK wants it: PKCS#1, bare base64 (fact sheet §1.5)."""
    key = alipay_sign.load_private_key(private_pem)
    der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    return base64.b64encode(der).decode("ascii")


def bare(pem: str) -> str:
    """A PEM key's base64 body on one line, as the Alipay console shows keys."""
    return "".join(line for line in pem.strip().splitlines() if not line.startswith("-----"))


def sdk_sign_content(params: dict[str, str]) -> str:
    """What the SDK signs for ``params``: its callers only put non-empty values in the map,
    and ``sign`` is never among them (DefaultAlipayClient.__prepare_request_params)."""
    result: str = SignatureUtils.get_sign_content(
        {k: v for k, v in params.items() if v and k != "sign"}
    )
    return result


SHEET_EXAMPLE = {
    "app_id": "2021000000000001",
    "method": "alipay.open.mini.version.upload",
    "format": "json",
    "charset": "utf-8",
    "sign_type": "RSA2",
    "timestamp": "2024-05-01 12:00:00",
    "version": "1.0",
    "app_auth_token": "202405BBxxxx",
    "biz_content": json.dumps(
        {
            "app_version": "0.0.2",
            "ext": json.dumps({"extEnable": True}, separators=(",", ":")),
            "template_id": "2021000000000009",
        },
        separators=(",", ":"),
    ),
}

PARAMETER_SETS: dict[str, dict[str, str]] = {
    "fact-sheet example": SHEET_EXAMPLE,
    "chinese biz_content": {
        **SHEET_EXAMPLE,
        "method": "alipay.open.mini.version.upload",
        "biz_content": json.dumps(
            {
                "app_version": "1.2.3",
                "template_id": "2021004100009999",
                "ext": json.dumps(
                    {
                        "extEnable": True,
                        "ext": {"店铺名称": "演示小店 · 北京", "slogan": "好物“到家”"},
                    },
                    ensure_ascii=False,
                    separators=(",", ":"),
                ),
            },
            ensure_ascii=False,
            separators=(",", ":"),
        ),
    },
    "empty values are not signed": {
        **SHEET_EXAMPLE,
        "notify_url": "",
        "app_auth_token": "",
        "return_url": "",
        "sign": "never-signed",
    },
    "biz_content with escapes, slashes, emoji, spaces": {
        **SHEET_EXAMPLE,
        "method": "alipay.open.mini.version.detail.query",
        "biz_content": json.dumps(
            {
                "app_version": "0.0.1",
                "memo": 'a "quoted" text\\with / slash & amp = eq + plus 🚀\nnew line',
                "nested": {"list": [1, 2, {"k": "值"}], "flag": False, "none": None},
            },
            ensure_ascii=False,
        ),
    },
    "multipart audit.apply text fields": {
        "app_id": "2021004199990001",
        "method": AUDIT_APPLY,
        "format": "JSON",
        "charset": "utf-8",
        "sign_type": "RSA2",
        "timestamp": "2026-02-03 04:05:06",
        "version": "1.0",
        "app_auth_token": "202602BBabcdef",
        "app_version": "2.0.0",
        "version_desc": "修复了支付页面的问题；新增会员中心。Fixed checkout; added member centre.",
        "region_type": "CHINA",
        "service_region_info": json.dumps(
            [{"province_code": "110000", "province_name": "北京市"}],
            ensure_ascii=False,
            sort_keys=True,
            separators=(",", ":"),
        ),
        "test_accout": "reviewer@example.com",
    },
}


@pytest.mark.parametrize("params", PARAMETER_SETS.values(), ids=list(PARAMETER_SETS))
def test_official_sdk_signs_like_us(params: dict[str, str]) -> None:
    private_pem, sdk_private, public = sdk_key()
    ours = alipay_sign.sign_content(params)
    assert ours == sdk_sign_content(params)
    signature = alipay_sign.sign(ours, alipay_sign.load_private_key(private_pem))
    assert signature == SignatureUtils.sign_with_rsa2(sdk_private, ours, "utf-8")
    assert SignatureUtils.verify_with_rsa(public, ours.encode("utf-8"), signature)


def test_official_client_request_signature_is_ours() -> None:
    """The SDK's whole request builder (common params, biz_content serialisation, which
    params it signs) produces a ``sign`` our verification accepts and our signing repeats."""
    private_pem, sdk_private, public = sdk_key()
    model = AlipayOpenMiniVersionUploadModel()
    model.template_id = "2021004100009999"
    model.app_version = "3.2.1"
    model.ext = json.dumps({"extEnable": True, "ext": {"店名": "演示"}}, ensure_ascii=False)
    request = AlipayOpenMiniVersionUploadRequest(biz_model=model)
    request.add_other_text_param("app_auth_token", "202605BBtoken")
    client = DefaultAlipayClient(sdk_config("2021004199990001", sdk_private, public, "http://x/"))
    THREAD_LOCAL.uuid, THREAD_LOCAL.logger = str(uuid.uuid4()), None
    common, params = client._DefaultAlipayClient__prepare_request_params(request)
    sent = {**common, **params}
    assert "app_auth_token" in common and "biz_content" in params
    content = alipay_sign.sign_content(sent)
    public_key = alipay_sign.load_public_key(public)
    assert alipay_sign.verify(content, sent["sign"], public_key)
    assert alipay_sign.sign(content, alipay_sign.load_private_key(private_pem)) == sent["sign"]


# --------------------------------------------------------------------------- against the emulator


def sdk_config(app_id: str, private_key: str, alipay_public_key: str, url: str) -> Any:
    config = AlipayClientConfig()
    config.server_url = url
    config.app_id = app_id
    config.app_private_key = private_key
    config.alipay_public_key = alipay_public_key
    return config


@pytest.fixture
async def alipay_world() -> AsyncIterator[World]:
    async with open_world("alipay") as w:
        yield w


def alipay_adapter(world: World) -> AlipayPlatform:
    assert isinstance(world.adapter, AlipayPlatform)
    return world.adapter


def official_client(world: World) -> Any:
    """The SDK's client as the third-party app the emulator provisioned, pointed at it."""
    a = alipay_adapter(world)
    isv = world.emulator.snapshot()["isv"]
    assert a.settings.alipay_public_key is not None
    return DefaultAlipayClient(
        sdk_config(
            isv["app_id"],
            pkcs1_bare(isv["private_key"]),
            bare(a.settings.alipay_public_key.get_secret_value()),
            a.settings.gateway,
        )
    )


def sdk_parse_response(world: World, body: bytes) -> str:
    """The SDK client's own response check (``__parse_response``): find the response node,
    take the raw text up to the last ``},"sign":"``, verify it; returns the node text."""
    THREAD_LOCAL.uuid, THREAD_LOCAL.logger = str(uuid.uuid4()), None
    return str(official_client(world)._DefaultAlipayClient__parse_response(body))


@pytest.fixture
def sdk_over_loopback(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Let the SDK's HTTP helpers reach a server on a non-default port.

    ``WebUtils.get_http_connection`` always connects to port 80/443 and appends the port as
    an int to the URL (a ``TypeError``; fact sheet §6.1). This replacement keeps the SDK's
    own request building, encoding and multipart bodies, and only connects to the right port.
    """

    def connection(url: str, query_string: str, timeout: float) -> tuple[str, Any]:
        parts = urllib.parse.urlsplit(url)
        target = f"{parts.path}?{query_string}"
        return target, http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout)

    monkeypatch.setattr(WebUtils, "get_http_connection", connection)
    yield


def token_of(world: World) -> str:
    token = alipay_adapter(world).apps[world.app].app_auth_token
    assert token is not None
    return str(token.get_secret_value())


@pytest.mark.usefixtures("sdk_over_loopback")
async def test_official_client_drives_the_emulator(alipay_world: World) -> None:
    """The SDK signs requests the emulator accepts (form and multipart, Chinese text), and
    verifies every answer the emulator signs; our adapter then sees what the SDK did."""
    world = alipay_world
    client, token = official_client(world), token_of(world)
    cfg = alipay_adapter(world).apps[world.app]

    model = AlipayOpenMiniVersionUploadModel()
    model.template_id = cfg.template_id
    model.app_version = "1.0.0"
    model.ext = json.dumps({"extEnable": True, "ext": {"店名": "演示小店"}}, ensure_ascii=False)
    upload = AlipayOpenMiniVersionUploadRequest(biz_model=model)
    upload.add_other_text_param("app_auth_token", token)
    uploaded = AlipayOpenMiniVersionUploadResponse()
    uploaded.parse_response_content(await asyncio.to_thread(client.execute, upload))
    assert uploaded.is_success() and uploaded.version_created == "true"

    apply = AlipayOpenMiniVersionAuditApplyRequest()
    apply.app_version = "1.0.0"
    apply.version_desc = "首个版本：商品列表、购物车和订单页面；审核无需登录。First release."
    apply.region_type = "CHINA"
    png = b"\x89PNG\r\n\x1a\n" + b"\0" * 64
    apply.first_screen_shot = FileItem("home.png", png)  # file parts: sent multipart
    apply.second_screen_shot = FileItem("cart.png", png)
    apply.add_other_text_param("app_auth_token", token)
    applied = AlipayOpenMiniVersionAuditApplyResponse()
    applied.parse_response_content(await asyncio.to_thread(client.execute, apply))
    assert applied.is_success(), applied.sub_msg

    detail_model = AlipayOpenMiniVersionDetailQueryModel()
    detail_model.app_version = "1.0.0"
    detail = AlipayOpenMiniVersionDetailQueryRequest(biz_model=detail_model)
    detail.add_other_text_param("app_auth_token", token)
    detailed = AlipayOpenMiniVersionDetailQueryResponse()
    detailed.parse_response_content(await asyncio.to_thread(client.execute, detail))
    assert detailed.status == "AUDITING"
    assert detailed.version_desc == apply.version_desc

    status = await world.adapter.review_status(world.app, "1.0.0", "1.0.0")
    assert status.state is ReviewState.IN_REVIEW


async def capture_answers(world: World) -> dict[str, list[bytes]]:
    """Raw answers to a full release through the adapter, by method, as they came off the wire."""
    a = alipay_adapter(world)
    methods: list[str] = []
    answers: dict[str, list[bytes]] = {}

    def sent(request: httpx.Request) -> None:
        methods.append(alipay_params(request)["method"])

    def answered(body: bytes) -> bytes:
        answers.setdefault(methods[-1], []).append(body)
        return body

    sender = Sender(Tamper(request=sent, response=answered), timeout=2.0)
    adapter = AlipayPlatform(a.settings, a.apps, sender=sender, clock=world.clock)
    try:
        await adapter.upload(world.app, "1.0.0", "首个版本")
        await adapter.submit(world.app, "1.0.0", "首个版本：商品列表、购物车和订单页面。")
        world.decide_reviews()
        await adapter.publish(world.app, "1.0.0", "1.0.0")
        await adapter.overview(world.app)
        assert (await adapter.review_status(world.app, "9.9.9", "")).state is ReviewState.UNKNOWN
    finally:
        await sender.aclose()
    return answers


async def test_official_sdk_verifies_the_emulators_answers(alipay_world: World) -> None:
    answers = await capture_answers(alipay_world)
    assert {UPLOAD, AUDIT_APPLY, DETAIL_QUERY, ONLINE, LIST_QUERY} <= set(answers)
    for method, bodies in answers.items():
        for body in bodies:
            node = alipay_sign.read_response(body.decode("utf-8"), method)
            assert node.sign, f"{method} answered without a signature: {body!r}"
            # the SDK extracts the same bytes we verify, and they verify with its code
            assert sdk_parse_response(alipay_world, body) == node.raw
    failures = [
        b for b in answers[DETAIL_QUERY] if b'"code":"40004"' in b
    ]  # the unknown version: a signed business failure
    assert failures
    assert json.loads(sdk_parse_response(alipay_world, failures[0]))["sub_code"] == (
        "MINI_APP_PACKAGE_INFO_NOT_EXIST"
    )


async def test_official_sdk_rejects_tampered_answers(alipay_world: World) -> None:
    answers = await capture_answers(alipay_world)
    body = answers[DETAIL_QUERY][0]
    sdk_parse_response(alipay_world, body)  # the untouched answer verifies
    tampered = [
        body.replace(b'"10000"', b'"10001"', 1),  # a changed value
        body.replace(b'"msg":"Success"', b'"msg":"Success" ', 1),  # even whitespace
    ]
    signature = alipay_sign.read_response(body.decode(), DETAIL_QUERY).sign
    assert signature is not None
    forged = base64.b64encode(bytes(256)).decode()
    tampered.append(body.replace(signature.encode(), forged.encode()))  # another signature
    for bad in tampered:
        assert bad != body
        with pytest.raises(ResponseException, match="sign verify failed"):
            sdk_parse_response(alipay_world, bad)


# --------------------------------------------------------------------------- pushes


async def alipay_pushes(world: World) -> list[dict[str, str]]:
    """The audit-result pushes the emulator owes after one rejection and one approval."""
    a = world.adapter
    world.emulator.push_url = PUSH_URL + "/alipay"
    await a.upload(world.app, "1.0.0", "notes")
    await a.submit(world.app, "1.0.0", "请驳回这个版本 #reject（审核说明：无需登录）")
    world.decide_reviews()
    pushes = world.emulator.due_pushes()  # owed until delivered or superseded
    await a.upload(world.app, "1.0.1", "notes")
    await a.submit(world.app, "1.0.1", "第二个版本，审核通过即可上架。")
    world.decide_reviews()
    pushes += world.emulator.due_pushes()
    assert len(pushes) == 2
    return [dict(parse_qsl(p.body.decode("ascii"), keep_blank_values=True)) for p in pushes]


def sdk_verify_notify(public_key: str, params: dict[str, str]) -> bool:
    """Asynchronous-notification check (fact sheet §1.9, V1): drop ``sign`` and ``sign_type``,
    let the SDK build the sorted ``k=v`` string and verify it (the Python SDK has no notify
    helper of its own; it raises ``rsa.VerificationError`` on a mismatch)."""
    rest = {k: v for k, v in params.items() if k not in ("sign", "sign_type")}
    content = SignatureUtils.get_sign_content(rest).encode(params.get("charset") or "utf-8")
    verified: bool = SignatureUtils.verify_with_rsa(public_key, content, params["sign"])
    return verified


async def test_official_sdk_verifies_the_emulators_pushes(alipay_world: World) -> None:
    world = alipay_world
    public_key = alipay_adapter(world).settings.alipay_public_key
    assert public_key is not None
    pushes = await alipay_pushes(world)
    methods = {p["msg_method"] for p in pushes}
    assert methods == {
        "alipay.open.mini.version.audit.rejected",
        "alipay.open.mini.version.audit.passed",
    }
    for params in pushes:
        assert params["sign_type"] == "RSA2"
        assert sdk_verify_notify(public_key.get_secret_value(), params)
        # and our own adapter reads the same push (control)
        body = urllib.parse.urlencode(params).encode("ascii")
        events = await world.adapter.read_push(PushRequest({}, {}, body, "form"))
        assert [e.app for e in events] == [world.app]

    rejected = next(p for p in pushes if p["msg_method"].endswith("rejected"))
    assert json.loads(rejected["biz_content"])["audit_reason"]
    swaps = {
        "biz_content": rejected["biz_content"].replace("1.0.0", "1.0.9"),
        "msg_method": "alipay.open.mini.version.audit.passed",
    }
    for key, value in swaps.items():
        forged = {**rejected, key: value}
        with pytest.raises(rsa.VerificationError):
            sdk_verify_notify(public_key.get_secret_value(), forged)
        with pytest.raises(PushRejected):
            body = urllib.parse.urlencode(forged).encode("ascii")
            await world.adapter.read_push(PushRequest({}, {}, body, "form"))


# =========================================================================== WeChat


@pytest.fixture
async def wechat_world() -> AsyncIterator[World]:
    async with open_world("wechat") as w:
        yield w


def wechat_adapter(world: World) -> WeChatPlatform:
    assert isinstance(world.adapter, WeChatPlatform)
    return world.adapter


def credentials(world: World) -> tuple[str, str, str]:
    """``(token, EncodingAESKey, component appid)`` the adapter was provisioned with."""
    s = wechat_adapter(world).settings
    assert s.component_token is not None and s.encoding_aes_key is not None
    return (
        s.component_token.get_secret_value(),
        s.encoding_aes_key.get_secret_value(),
        (s.component_appid),
    )


def wechatpy_crypto(world: World, appid: str | None = None) -> Any:
    token, key, component = credentials(world)
    return WechatpyCrypto(token, key, appid or component)


async def test_wechatpy_decrypts_the_emulators_pushes(wechat_world: World) -> None:
    world = wechat_world
    a = world.adapter
    world.emulator.push_url = PUSH_URL + "/wechat"
    await a.upload(world.app, "1.0.0", "notes #reject")
    await a.submit(world.app, "1.0.0", "审核说明：无需登录 #reject")
    world.decide_reviews()
    pushes = world.emulator.due_pushes()
    assert len(pushes) == 2  # the verify ticket and the rejection

    token, key, component = credentials(world)
    ours = WeChatCrypto(token, key, component)
    theirs = wechatpy_crypto(world)
    for push in pushes:
        q = push.params
        # the legacy URL signature checks out too (wechatpy raises when it does not)
        check_signature(token, q["signature"], q["timestamp"], q["nonce"])
        text = theirs.decrypt_message(push.body, q["msg_signature"], q["timestamp"], q["nonce"])
        decrypted = xmltodict.parse(text)["xml"]
        fields = ours.decrypt_push(
            push.body, msg_signature=q["msg_signature"], timestamp=q["timestamp"], nonce=q["nonce"]
        )
        assert {k: v or "" for k, v in decrypted.items()} == fields
        with pytest.raises(InvalidSignatureException):
            theirs.decrypt_message(push.body, "0" * 40, q["timestamp"], q["nonce"])

    kinds = [parse_xml(ours.decrypt(parse_xml(p.body)["Encrypt"])) for p in pushes]
    assert {k.get("InfoType") or k.get("Event") for k in kinds} == {
        "component_verify_ticket",
        "weapp_audit_fail",
    }
    with pytest.raises(InvalidAppIdException):  # encrypted for this platform only
        wechatpy_crypto(world, appid="wx0000000000000000").decrypt_message(
            pushes[0].body,
            pushes[0].params["msg_signature"],
            pushes[0].params["timestamp"],
            pushes[0].params["nonce"],
        )


def audit_event_xml(original_id: str, reason: str) -> str:
    return (
        f"<xml><ToUserName><![CDATA[{original_id}]]></ToUserName>"
        "<FromUserName><![CDATA[od1P50M-fNQI5Gcq-trm4a7apsU8]]></FromUserName>"
        "<CreateTime>1488856591</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        "<Event><![CDATA[weapp_audit_fail]]></Event>"
        f"<Reason><![CDATA[{reason}]]></Reason>"
        "<FailTime>1488856591</FailTime><ScreenShot>xxx|yyy|zzz</ScreenShot></xml>"
    )


async def test_we_decrypt_what_wechatpy_encrypts(wechat_world: World) -> None:
    world = wechat_world
    a = wechat_adapter(world)
    cfg = a.apps[world.app]
    original_id = cfg.original_id
    assert original_id is not None
    reason = '1:账号信息不符合规范:<br>(1):包含"敏感"因素 & 其他<br>'
    inner = audit_event_xml(original_id, reason)
    now = str(int(world.clock()))  # a push is read only near the time it was sent
    reply = wechatpy_crypto(world).encrypt_message(inner, "415670741", now)
    envelope = xmltodict.parse(reply)["xml"]
    query = {
        "timestamp": envelope["TimeStamp"],
        "nonce": envelope["Nonce"],
        "msg_signature": envelope["MsgSignature"],
        "encrypt_type": "aes",
    }

    token, key, component = credentials(world)
    fields = WeChatCrypto(token, key, component).decrypt_push(
        reply.encode("utf-8"),
        msg_signature=query["msg_signature"],
        timestamp=query["timestamp"],
        nonce=query["nonce"],
    )
    assert fields["Reason"] == reason and fields["ToUserName"] == original_id

    # the adapter's own push reader, as the push endpoint calls it
    request = PushRequest({"appid": cfg.appid}, query, reply.encode("utf-8"), "text/xml")
    (event,) = await a.read_push(request)
    assert (event.kind, event.app, event.platform) == ("rejected", world.app, "wechat")
    assert "账号信息不符合规范" in event.reason

    forged = {**query, "msg_signature": query["msg_signature"][::-1]}
    with pytest.raises(PushRejected, match="msg_signature"):
        await a.read_push(PushRequest({"appid": cfg.appid}, forged, request.body, "text/xml"))
    stranger = wechatpy_crypto(world, appid="wx0000000000000000").encrypt_message(inner, "1", now)
    s = xmltodict.parse(stranger)["xml"]
    with pytest.raises(PushRejected, match="appid"):
        await a.read_push(
            PushRequest(
                {"appid": cfg.appid},
                {
                    "timestamp": s["TimeStamp"],
                    "nonce": s["Nonce"],
                    "msg_signature": s["MsgSignature"],
                },
                stranger.encode("utf-8"),
                "text/xml",
            )
        )


# --------------------------------------------------------------------------- tokens


def wechatpy_component(world: World) -> Any:
    """wechatpy's third-party-platform client, as provisioned, pointed at the emulator, with
    the verify ticket and the mini program's refresh token in its session."""
    a = wechat_adapter(world)
    s, cfg = a.settings, a.apps[world.app]
    token, key, component_appid = credentials(world)
    assert s.component_secret is not None and s.component_verify_ticket is not None
    assert cfg.refresh_token is not None
    component = WeChatComponent(component_appid, s.component_secret.get_secret_value(), token, key)
    component.API_BASE_URL = world.server.base_url("wechat") + "/cgi-bin"
    component.session.set("component_verify_ticket", s.component_verify_ticket.get_secret_value())
    component.session.set(f"{cfg.appid}_refresh_token", cfg.refresh_token.get_secret_value())
    return component


async def test_wechatpy_renews_expired_tokens_against_the_emulator(wechat_world: World) -> None:
    """Once the emulator's clock passes the tokens' 7200 s, wechatpy (whose own clock still
    calls them fresh) sends them, is told 42001 and renews: the component client its
    component_access_token, the authorizer client both tokens, one inside the other. With
    42006 for the component token wechatpy would give up (it only renews on 40001, 40014
    and 42001)."""
    world = wechat_world
    emulator = world.emulator
    assert isinstance(emulator, WeChatEmulator)
    component = wechatpy_component(world)
    appid = wechat_adapter(world).apps[world.app].appid
    refresh = component.session.get(f"{appid}_refresh_token")

    first = await asyncio.to_thread(component.refresh_authorizer_token, appid, refresh)
    assert first["authorizer_access_token"]
    component_token = component.session.get("component_access_token")
    world.clock.advance(7200)  # expired on the emulator only
    again = await asyncio.to_thread(component.refresh_authorizer_token, appid, refresh)
    assert again["authorizer_access_token"] != first["authorizer_access_token"]
    assert component.session.get("component_access_token") != component_token
    assert emulator.calls["/cgi-bin/component/api_component_token"] == 2
    assert emulator.calls["/cgi-bin/component/api_authorizer_token"] == 3  # one refused

    client = await asyncio.to_thread(component.get_client_by_appid, appid)
    client.wxa.API_BASE_URL = world.server.base_url("wechat") + "/"
    categories = await asyncio.to_thread(client.wxa.get_category)
    assert categories and {"first_id", "second_id"} <= set(categories[0])
    world.clock.advance(7200)  # both tokens expired on the emulator
    assert await asyncio.to_thread(client.wxa.get_category) == categories
    assert emulator.calls["/wxa/get_category"] == 3  # one refused (42001), then retried
    assert emulator.calls["/cgi-bin/component/api_component_token"] == 3
    assert emulator.calls["/cgi-bin/component/api_authorizer_token"] == 6


# --------------------------------------------------------------------------- §8.5 test vectors

VECTOR_TOKEN, VECTOR_KEY, VECTOR_APPID = "AAAAA", "A" * 43, "wx134c8103faa5a59e"

OFFICIAL_PUSH = {
    "timestamp": "1715943329",
    "nonce": "1590219412",
    "signature": "cc0c594499c1634947d5b502f158ee518947db27",
    "msg_signature": "6c12a4205838198b8fa631b3220723bb07f1015c",
    "to_user": "gh_97417a04a28d",
    "encrypt": (
        "D7yzvUNAL930rd28wf21s4hvXhz0L6Uit/p2Di6C5DHyYGpEgdBRnKjBec34JwoQXicwaZC7fOVihW80F4Vtsd"
        "vE//1vr7oAbqjDv8KenVp+ajKYpJnyQ4zMRhIC+a31fCVOMC03FfzV/QuC94kBP55a+Za3sJgvAn+ZbsNqZI5D"
        "kyuzkhQN8OBqCzFhizGmy0xpM0MEA4agpvE+RuNO1rhHTtuJB5yltw1FiYzecSXJ+y/D2r81VkRn2eYjh2lts"
        "oyfbDR7Is6ookXIFxTfyeNyeHxMeT4KN5WpCDmSbTcUYrbBUlkGLJ9n/rU8YOywma6G7aTb7KZKOqCxgfoUlYE"
        "ZPk4FUL/TK7ShriFDMVCLyjQJ15Ob++agDWtcxhfUfe6HIoIpRW8mKNBQiY/Jd1svvuskA1wLef1RTtzKfMpag"
        "SCX/laZINmdnX4zrF6kIaR9P4xQrWXbsTFHTYe0Mg=="
    ),
    "msg": (
        "<xml><ToUserName><![CDATA[gh_97417a04a28d]]></ToUserName>\n"
        "<FromUserName><![CDATA[o9AgO5Kd5ggOC-bXrbNODIiE3bGY]]></FromUserName>\n"
        "<CreateTime>1715943329</CreateTime>\n<MsgType><![CDATA[event]]></MsgType>\n"
        "<Event><![CDATA[debug_demo]]></Event>\n<debug_str><![CDATA[hello world]]></debug_str>\n"
        "</xml>"
    ),
}

OFFICIAL_REPLY = {
    "msg": "<xml><demo_resp>[CDATA[good luck]]</demo_resp></xml>",
    "random": "999951349e8ee746",
    "timestamp": "1713424427",
    "nonce": "415670741",
    "msg_signature": "03e0812039325c2712ef5f0f980fd14c70d6e307",
    "encrypt": (
        "hE8R6mGXHkJJjU72KxzKUd1GEkKJaEZq7vRL8XgK3o+00k8JGq6+pZJUIlTSyhsX+bxIBQ72g3GyvDdIZcr6+3H"
        "AZbSvPT9t/o11MI7d6WELwqrGd7jMnV0zv3Zc9Nq7"
    ),
}

SELF_GENERATED = {
    "msg": (
        "<xml><ToUserName><![CDATA[gh_fb9688c2a4b2]]></ToUserName><FromUserName><![CDATA["
        "od1P50M-fNQI5Gcq-trm4a7apsU8]]></FromUserName><CreateTime>1488856741</CreateTime>"
        "<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[weapp_audit_success]]></Event>"
        "<SuccTime>1488856741</SuccTime></xml>"
    ),
    "random": "0123456789abcdef",
    "timestamp": "1488856800",
    "nonce": "123456789",
    "msg_signature": "cae417fac12b960f56e3fe6702b1cd9a977d2f65",
    "signature": "89b8a746f911edc5ab9dc8ae4925bc103f16c7f0",
    "encrypt": (
        "uMMzGtqcnpOzXOYBwDQNrY4VGBSTMZLIOS943Qol251cnxZTrDbS/KGSToqXctBulfcnlTgmvl3LJ2227k6a/vW"
        "8bTKVeFM4nFZj0pZBHROe2ugCthDSxuxaLJae4SMwFrXKVMGVx06Ii4kC0NPtBY7DP/WswqOtBE5D3SfBBobsKt"
        "+hseIZEH+7zMwKHqa+Pd4p2GMRhbNzxUgl3tQUKacn3X7TPs1ueOyXEMGDIw1fBqfI2fQOJu2OCNeK5uXvG5tAx"
        "dYF7gtTXlTL51iRm5vL4xU4q4Fq2cjJud7e25yLdwJzY2SO3E038t3w6gD4CnUqtoigIvZ41ARqRxCsjMhBU4C3"
        "UJRBmDZSe6jcMGfugroGjSPWmaH6uw8CINRXlURyr1itGgz80h/qfpS+uVjJkyzDK8XE338IiReJhCI="
    ),
}


def vector_crypto() -> WeChatCrypto:
    return WeChatCrypto(VECTOR_TOKEN, VECTOR_KEY, VECTOR_APPID)


class _FixedRandom(PrpCrypto):  # type: ignore[misc]
    """wechatpy's cipher with the vector's "random" 16 bytes, to reproduce its ciphertext."""

    random = ""

    def get_random_string(self) -> str:
        return self.random


def wechatpy_encrypt(msg: str, random16: str) -> str:
    cipher = type("Fixed", (_FixedRandom,), {"random": random16})(
        base64.b64decode(VECTOR_KEY + "=")
    )
    encrypted: bytes = cipher.encrypt(msg, VECTOR_APPID)
    return encrypted.decode("ascii")


def test_official_push_vector() -> None:
    v, c = OFFICIAL_PUSH, vector_crypto()
    assert c.url_signature(v["timestamp"], v["nonce"]) == v["signature"]
    assert c.signature(v["timestamp"], v["nonce"], v["encrypt"]) == v["msg_signature"]
    assert len(v["msg"].encode()) == 292
    assert c.decrypt(v["encrypt"]) == v["msg"].encode()
    envelope = (
        f"<xml><ToUserName><![CDATA[{v['to_user']}]]></ToUserName>"
        f"<Encrypt><![CDATA[{v['encrypt']}]]></Encrypt></xml>"
    )
    fields = c.decrypt_push(
        envelope.encode(),
        msg_signature=v["msg_signature"],
        timestamp=v["timestamp"],
        nonce=v["nonce"],
    )
    assert fields["Event"] == "debug_demo" and fields["debug_str"] == "hello world"
    with pytest.raises(PushRejected):
        c.decrypt_push(
            envelope.encode(),
            msg_signature=v["signature"],
            timestamp=v["timestamp"],
            nonce=v["nonce"],
        )
    with pytest.raises(PushRejected, match="appid"):
        WeChatCrypto(VECTOR_TOKEN, VECTOR_KEY, "wxba5fad812f8e6fb9").decrypt(v["encrypt"])

    # control: wechatpy reads the same vector the same way
    theirs = WechatpyCrypto(VECTOR_TOKEN, VECTOR_KEY, VECTOR_APPID)
    assert (
        theirs.decrypt_message(envelope, v["msg_signature"], v["timestamp"], v["nonce"])
        == (v["msg"])
    )
    check_signature(VECTOR_TOKEN, v["signature"], v["timestamp"], v["nonce"])


@pytest.mark.parametrize("vector", [OFFICIAL_REPLY, SELF_GENERATED], ids=["reply", "self-made"])
def test_encrypt_vectors(vector: dict[str, str]) -> None:
    c, msg = vector_crypto(), vector["msg"].encode()
    assert c.encrypt(msg, random16=vector["random"].encode()) == vector["encrypt"]
    assert (
        c.signature(vector["timestamp"], vector["nonce"], vector["encrypt"])
        == (vector["msg_signature"])
    )
    if "signature" in vector:
        assert c.url_signature(vector["timestamp"], vector["nonce"]) == vector["signature"]
    assert c.decrypt(vector["encrypt"]) == msg

    # control: wechatpy with the same random bytes gives the same ciphertext, and reads it
    assert wechatpy_encrypt(vector["msg"], vector["random"]) == vector["encrypt"]
    theirs = WechatpyCrypto(VECTOR_TOKEN, VECTOR_KEY, VECTOR_APPID)
    envelope = {"Encrypt": vector["encrypt"]}
    assert (
        theirs.decrypt_message(
            envelope, vector["msg_signature"], vector["timestamp"], vector["nonce"]
        )
        == vector["msg"]
    )
