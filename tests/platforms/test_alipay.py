"""Alipay adapter, signing helpers and emulator: what the shared contract does not cover."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from pydantic import SecretStr

from platforms import alipay_sign
from platforms.alipay import (
    AUDIT_APPLY,
    AUDIT_CANCEL,
    BUILD_QUERY,
    DETAIL_QUERY,
    ONLINE,
    UPLOAD,
    AlipayPlatform,
    error_for,
    version_desc_length,
)
from platforms.base import Overview, ReviewState, recording
from platforms.emulators.alipay import AlipayEmulator
from platforms.emulators.base import EmulatorServer
from platforms.errors import (
    AlreadyInReview,
    AuthError,
    BadResponse,
    ConfigError,
    InvalidInput,
    InvalidState,
    NotFound,
    OutcomeUnknown,
    PlatformError,
    PlatformUnavailable,
)
from tests.helpers import FakeClock, World, open_world
from tests.platforms.transports import Tamper

SHEET_STRING_TO_SIGN = (
    "app_auth_token=202405BBxxxx&app_id=2021000000000001&biz_content="
    '{"app_version":"0.0.2","ext":"{\\"extEnable\\":true}","template_id":"2021000000000009"}'
    "&charset=utf-8&format=json&method=alipay.open.mini.version.upload&sign_type=RSA2"
    "&timestamp=2024-05-01 12:00:00&version=1.0"
)


@cache
def key_pair(name: str) -> tuple[str, str]:
    """A (private PEM, public PEM) pair per name, generated once per test run."""
    return alipay_sign.generate_key_pair()


@pytest.fixture
async def world() -> AsyncIterator[World]:
    async with open_world("alipay") as w:
        yield w


def adapter_of(world: World) -> AlipayPlatform:
    assert isinstance(world.adapter, AlipayPlatform)
    return world.adapter


def emulator_of(world: World) -> AlipayEmulator:
    assert isinstance(world.emulator, AlipayEmulator)
    return world.emulator


def fast_retries(adapter: AlipayPlatform) -> None:
    adapter.settings = adapter.settings.model_copy(update={"retry_backoff_seconds": 0.01})


def sibling(world: World, transport: httpx.AsyncBaseTransport) -> AlipayPlatform:
    """Another adapter on the same emulator and credentials, through ``transport``."""
    a = adapter_of(world)
    client = httpx.AsyncClient(transport=transport, timeout=1.0)
    return AlipayPlatform(a.settings, a.apps, client=client, clock=world.clock)


# --------------------------------------------------------------------------- signing


def test_string_to_sign_matches_the_fact_sheet_example() -> None:
    ext = json.dumps({"extEnable": True}, separators=(",", ":"))
    biz = {"app_version": "0.0.2", "ext": ext, "template_id": "2021000000000009"}
    params = {
        "app_id": "2021000000000001",
        "method": "alipay.open.mini.version.upload",
        "format": "json",
        "charset": "utf-8",
        "sign_type": "RSA2",
        "timestamp": "2024-05-01 12:00:00",
        "version": "1.0",
        "app_auth_token": "202405BBxxxx",
        "biz_content": json.dumps(biz, ensure_ascii=False, separators=(",", ":")),
        "sign": "must-not-be-signed",
        "notify_url": "",
    }
    assert alipay_sign.sign_content(params) == SHEET_STRING_TO_SIGN


def test_sign_verify_round_trip_and_key_formats() -> None:
    private_pem, public_pem = key_pair("a")
    key = alipay_sign.load_private_key(private_pem)
    signature = alipay_sign.sign(SHEET_STRING_TO_SIGN, key)
    assert len(signature) == 344  # 2048-bit key, base64
    public = alipay_sign.load_public_key(public_pem)
    assert alipay_sign.verify(SHEET_STRING_TO_SIGN, signature, public)
    assert not alipay_sign.verify(SHEET_STRING_TO_SIGN + "x", signature, public)
    assert not alipay_sign.verify(SHEET_STRING_TO_SIGN, "not base64!", public)

    # bare base64 PKCS#1 (official Python SDK) and PKCS#8 (Java) give the same key
    pkcs1 = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    bare = base64.b64encode(pkcs1).decode()
    assert alipay_sign.sign(SHEET_STRING_TO_SIGN, alipay_sign.load_private_key(bare)) == signature
    spki = "".join(line for line in public_pem.splitlines() if "-----" not in line)
    assert alipay_sign.verify(SHEET_STRING_TO_SIGN, signature, alipay_sign.load_public_key(spki))
    with pytest.raises(ValueError, match="private key"):
        alipay_sign.load_public_key(private_pem)
    with pytest.raises(ValueError):
        alipay_sign.load_private_key("bm90IGEga2V5")


def test_response_node_is_taken_raw_and_tolerates_cert_mode_and_whitespace() -> None:
    body = (
        '{ "alipay_open_mini_version_upload_response" : {"code":"10000", "msg":"Success",'
        '"note":"a } \\" {"} ,"alipay_cert_sn":"abc","sign":"c2ln"}'
    )
    node = alipay_sign.read_response(body, UPLOAD)
    assert node.raw == '{"code":"10000", "msg":"Success","note":"a } \\" {"}'
    assert node.sign == "c2ln" and node.data["note"] == 'a } " {'
    err = alipay_sign.read_response('{"error_response":{"code":"40002"},"sign":""}', UPLOAD)
    assert err.name == "error_response" and err.sign is None
    with pytest.raises(LookupError):
        alipay_sign.read_response('{"other_response":{}}', UPLOAD)
    with pytest.raises(ValueError):
        alipay_sign.read_response("<html>", UPLOAD)


def test_gateway_times_are_beijing_time() -> None:
    assert alipay_sign.format_timestamp(0) == "1970-01-01 08:00:00"
    assert alipay_sign.parse_timestamp("1970-01-01 08:00:00") == datetime(1970, 1, 1, tzinfo=UTC)
    with pytest.raises(ValueError):
        alipay_sign.parse_timestamp("1970/01/01 08:00:00")


def test_version_desc_length_counts_chinese_twice() -> None:
    assert version_desc_length("abc") == 3
    assert version_desc_length("修复问题") == 8
    assert version_desc_length("修复，ok") == 8  # full-width punctuation is wide too


def test_error_mapping() -> None:
    cases: list[tuple[tuple[str, str], type[PlatformError], str]] = [
        (
            ("40004", "CAN_NOT_SUBMIT_WITH_AUDIT_GRAY"),
            AlreadyInReview,
            "CAN_NOT_SUBMIT_WITH_AUDIT_GRAY",
        ),
        (("40004", "CAN_NOT_SUBMIT_WITH_AUDIT"), AlreadyInReview, "CAN_NOT_SUBMIT_WITH_AUDIT"),
        (("20000", "isp.unknow-error"), PlatformUnavailable, "isp.unknow-error"),
        (("40004", "SYSTEM_ERROR"), PlatformUnavailable, "SYSTEM_ERROR"),
        (("20001", "aop.invalid-app-auth-token"), AuthError, "aop.invalid-app-auth-token"),
        (
            ("40006", "isv.insufficient-isv-permissions"),
            AuthError,
            "isv.insufficient-isv-permissions",
        ),
        (("40002", "isv.invalid-signature"), AuthError, "isv.invalid-signature"),
        (("40004", "INVALID_VERSION_DESC_LENGTH"), InvalidInput, "INVALID_VERSION_DESC_LENGTH"),
        (("40004", "CODE_TEMPLATE_NOT_EXIST"), NotFound, "CODE_TEMPLATE_NOT_EXIST"),
        (("40004", "EXIST_LARGER_ONLINED_VERSION"), InvalidState, "EXIST_LARGER_ONLINED_VERSION"),
        (("40004", "CAN_NOT_ONLINE_SOMETHING_NEW"), InvalidState, "CAN_NOT_ONLINE_SOMETHING_NEW"),
        (("40004", "SOMETHING_ELSE_IS_BLANK"), InvalidInput, "SOMETHING_ELSE_IS_BLANK"),
        (("40001", "isv.missing-app-id"), InvalidInput, "isv.missing-app-id"),
        (("40004", ""), PlatformError, "40004"),
    ]
    for (code, sub_code), cls, expected in cases:
        error = error_for(code, sub_code, "子消息", "Business Failed")
        assert type(error) is cls, (code, sub_code)
        assert error.code == expected and error.platform == "alipay"
        assert error.explanation
    unknown = error_for("40004", "BRAND_NEW_CODE", "全新的错误")
    assert type(unknown) is PlatformError and "全新的错误" in unknown.describe()
    assert error_for("40004", "", "", "Business Failed").platform_message == "Business Failed"


# --------------------------------------------------------------------------- configuration


def make_settings(**updates: Any) -> Any:
    private, _ = key_pair("isv")
    _, platform_public = key_pair("platform")
    values: dict[str, Any] = {
        "gateway": "https://gateway.test/gateway.do",
        "app_id": "2021000000000002",
        "private_key": SecretStr(private),
        "alipay_public_key": SecretStr(platform_public),
    }
    values.update(updates)
    return AlipayPlatform.Settings(**values)


def make_app(**updates: Any) -> Any:
    values: dict[str, Any] = {
        "app_id": "2021000000000001",
        "template_id": "2021000000000009",
        "app_auth_token": "env:MINISHIP_TEST_ALIPAY_TOKEN",
        "review_notes": "Release notes long enough for Alipay's thirty characters.",
    }
    values.update(updates)
    return AlipayPlatform.AppConfig.model_validate(values)


@pytest.fixture(autouse=True)
def _token_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MINISHIP_TEST_ALIPAY_TOKEN", "202405BBtoken")


def test_describe_app() -> None:
    assert AlipayPlatform.describe_app(make_app()) == (
        "mini program 2021000000000001 from template 2021000000000009 (via the third-party app)"
    )
    own = make_app(template_id=None, private_key="env:MINISHIP_TEST_ALIPAY_TOKEN")
    assert AlipayPlatform.describe_app(own) == "mini program 2021000000000001 (self-owned keys)"


def test_is_configured() -> None:
    assert AlipayPlatform.is_configured(make_settings())
    assert not AlipayPlatform.is_configured(make_settings(app_id=""))
    assert not AlipayPlatform.is_configured(make_settings(alipay_public_key=None))


def test_bad_key_material_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="ALIPAY_PRIVATE_KEY is not a usable RSA private key"):
        AlipayPlatform(make_settings(private_key=SecretStr("garbage")), {"a": make_app()})
    own_public = key_pair("isv")[1]
    with pytest.raises(ConfigError, match="public half of your own app key"):
        AlipayPlatform(make_settings(alipay_public_key=SecretStr(own_public)), {"a": make_app()})
    with pytest.raises(ConfigError, match="not both"):
        AlipayPlatform(make_settings(private_key_file=tmp_path / "k.pem"), {"a": make_app()})
    with pytest.raises(ConfigError, match="cannot read ALIPAY_PRIVATE_KEY_FILE"):
        AlipayPlatform(
            make_settings(private_key=None, private_key_file=tmp_path / "missing.pem"),
            {"a": make_app()},
        )
    with pytest.raises(ConfigError, match="app_auth_token is needed"):
        AlipayPlatform(make_settings(), {"a": make_app(app_auth_token=None)})
    with pytest.raises(ConfigError, match="ALIPAY_GATEWAY"):
        AlipayPlatform(make_settings(gateway="openapi.alipay.com"), {"a": make_app()})
    with pytest.raises(ConfigError, match="no keys"):
        AlipayPlatform(make_settings(app_id=""), {"a": make_app()})
    with pytest.raises(ConfigError, match="both private_key and alipay_public_key"):
        AlipayPlatform(
            make_settings(), {"a": make_app(private_key="env:MINISHIP_TEST_ALIPAY_TOKEN")}
        )
    with pytest.raises(ConfigError):
        AlipayPlatform(make_settings(), {"a": {"app_id": "2021", "unknown_field": 1}})

    key_file = tmp_path / "app_private_key.txt"
    key_file.write_text(key_pair("isv")[0])
    AlipayPlatform(make_settings(private_key=None, private_key_file=key_file), {"a": make_app()})


async def test_upload_without_template_is_a_config_error() -> None:
    adapter = AlipayPlatform(make_settings(), {"a": make_app(template_id=None)})
    with pytest.raises(ConfigError, match="template_id"):
        await adapter.upload("a", "1.0.0", "notes")
    await adapter.aclose()


# --------------------------------------------------------------------------- answers (mocked)


def signed_body(method: str, inner: dict[str, Any], *, key: str = "platform") -> str:
    """A gateway answer as Alipay sends it, signed with the named test key."""
    text = json.dumps(inner, ensure_ascii=False, separators=(",", ":"))
    signature = alipay_sign.sign(text, alipay_sign.load_private_key(key_pair(key)[0]))
    return '{"' + alipay_sign.node_name(method) + '":' + text + ',"sign":"' + signature + '"}'


def mocked(answer: Callable[[str], httpx.Response]) -> AlipayPlatform:
    def handler(request: httpx.Request) -> httpx.Response:
        return answer(request.url.params["method"])

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return AlipayPlatform(make_settings(), {"a": make_app()}, client=client)


DETAIL_OK = {"code": "10000", "msg": "Success", "app_version": "1.0.0", "status": "AUDITING"}


async def test_unsigned_success_is_a_bad_response() -> None:
    body = json.dumps({alipay_sign.node_name(DETAIL_QUERY): DETAIL_OK})
    adapter = mocked(lambda m: httpx.Response(200, text=body))
    with pytest.raises(BadResponse, match="no signature"):
        await adapter.review_status("a", "1.0.0", "1.0.0")


async def test_unsigned_error_is_tolerated_and_mapped() -> None:
    body = json.dumps(
        {
            "error_response": {
                "code": "40002",
                "msg": "Invalid Arguments",
                "sub_code": "isv.invalid-app-id",
                "sub_msg": "无效的AppID参数",
            },
            "sign": "",
        },
        ensure_ascii=False,
    )
    adapter = mocked(lambda m: httpx.Response(200, text=body))
    with pytest.raises(AuthError) as err:
        await adapter.review_status("a", "1.0.0", "1.0.0")
    assert err.value.code == "isv.invalid-app-id"
    assert err.value.platform_message == "无效的AppID参数"


async def test_escaped_slashes_are_tolerated() -> None:
    inner = {**DETAIL_OK, "status": "AUDIT_REJECT", "reject_reason": "见 https://example.com/a/b"}
    body = signed_body(DETAIL_QUERY, inner).replace("/", "\\/")
    adapter = mocked(lambda m: httpx.Response(200, text=body))
    status = await adapter.review_status("a", "1.0.0", "1.0.0")
    assert status.state is ReviewState.REJECTED
    assert status.reason == "见 https://example.com/a/b"


async def test_answer_signed_with_another_key_is_a_bad_response() -> None:
    body = signed_body(DETAIL_QUERY, DETAIL_OK, key="stranger")
    adapter = mocked(lambda m: httpx.Response(200, text=body))
    with pytest.raises(BadResponse, match="did not verify"):
        await adapter.review_status("a", "1.0.0", "1.0.0")


async def test_non_json_and_http_errors_are_unavailable() -> None:
    adapter = mocked(lambda m: httpx.Response(200, text="<html>maintenance</html>"))
    adapter.settings = adapter.settings.model_copy(update={"max_retries": 0})
    with pytest.raises(PlatformUnavailable, match="not JSON"):
        await adapter.review_status("a", "1.0.0", "1.0.0")
    adapter = mocked(lambda m: httpx.Response(502, text="bad gateway"))
    adapter.settings = adapter.settings.model_copy(update={"max_retries": 0})
    with pytest.raises(PlatformUnavailable) as err:
        await adapter.review_status("a", "1.0.0", "1.0.0")
    assert err.value.code == "HTTP 502"


async def test_failed_build_is_reported() -> None:
    upload = {"code": "10000", "msg": "Success", "build_status": "1", "create_status": "1"}
    upload["need_rotation"] = "true"
    failed = {**upload, "build_status": "3", "create_status": "3", "need_rotation": "false"}

    def answer(method: str) -> httpx.Response:
        return httpx.Response(200, text=signed_body(method, upload if method == UPLOAD else failed))

    adapter = mocked(answer)
    adapter.build_poll_delays = (0.0,)
    with pytest.raises(PlatformError, match="failed"):
        await adapter.upload("a", "1.0.0", "notes")


# --------------------------------------------------------------------------- signatures (emulator)


async def test_tampered_request_signature_is_refused(world: World) -> None:
    def tamper(request: httpx.Request) -> None:
        stamp = request.url.params["timestamp"]
        request.url = request.url.copy_set_param("timestamp", stamp[:-1] + "9")

    adapter = sibling(world, Tamper(request=tamper))
    with pytest.raises(AuthError) as err:
        await adapter.upload(world.app, "1.0.0", "notes")
    assert err.value.code == "isv.invalid-signature"
    assert "验签" in err.value.platform_message
    await adapter.client.aclose()
    # nothing was uploaded
    assert (await world.adapter.review_status(world.app, "1.0.0", "")).state is ReviewState.UNKNOWN


async def test_wrong_app_key_is_refused(world: World) -> None:
    a = adapter_of(world)
    settings = a.settings.model_copy(update={"private_key": SecretStr(key_pair("stranger")[0])})
    adapter = AlipayPlatform(settings, a.apps, client=a.client, clock=world.clock)
    with pytest.raises(AuthError, match="private key does not match"):
        await adapter.overview(world.app)


async def test_tampered_response_is_a_bad_response(world: World) -> None:
    adapter = sibling(world, Tamper(response=lambda b: b.replace(b'"Success"', b'"Succes5"')))
    with pytest.raises(BadResponse):  # a read
        await adapter.overview(world.app)
    # a change whose answer cannot be trusted may have happened; no answer can be trusted
    # here, so asking Alipay cannot settle it either
    with recording() as log, pytest.raises(OutcomeUnknown) as err:
        await adapter.upload(world.app, "1.0.0", "notes")
    assert log[0].error == "response signature did not verify"
    assert isinstance(err.value.original, BadResponse)
    assert "did not verify" in err.value.explanation and "could not check" in err.value.explanation
    await adapter.client.aclose()


async def test_gateway_level_checks(world: World) -> None:
    base = world.server.base_url("alipay") + "/gateway.do"
    emulator = emulator_of(world)
    isv = emulator.snapshot()["isv"]
    isv_key = alipay_sign.load_private_key(isv["private_key"])
    platform_key = alipay_sign.load_public_key(emulator.snapshot()["platform_key"]["public_key"])

    def signed(**params: str) -> dict[str, str]:
        params = {
            "app_id": isv["app_id"],
            "format": "JSON",
            "charset": "utf-8",
            "sign_type": "RSA2",
            "timestamp": "2026-09-21 10:00:00",
            "version": "1.0",
            **params,
        }
        params["sign"] = alipay_sign.sign(alipay_sign.sign_content(params), isv_key)
        return params

    async def ask(params: dict[str, str], *, get: bool = False) -> alipay_sign.ResponseNode:
        async with httpx.AsyncClient() as client:
            if get:
                response = await client.get(base, params=params)
            else:
                response = await client.post(base, data=params)
        return alipay_sign.read_response(response.text, params.get("method", ""))

    node = await ask({"app_id": isv["app_id"]})
    assert node.name == "error_response" and node.data["sub_code"] == "isv.missing-method"
    node = await ask(signed(method="alipay.open.mini.nonsense"))
    assert node.data["sub_code"] == "isv.invalid-method"
    node = await ask({**signed(method=DETAIL_QUERY), "app_id": "2021009999999999"})
    assert node.data["sub_code"] == "isv.invalid-app-id" and node.sign is None
    node = await ask(signed(method=DETAIL_QUERY, timestamp="2026/09/21 10:00:00"))
    assert node.data["sub_code"] == "isv.invalid-timestamp"
    unsigned = signed(method=DETAIL_QUERY)
    del unsigned["sign"]
    node = await ask(unsigned)
    assert node.data["sub_code"] == "isv.missing-signature"
    # a third-party app calling for itself
    node = await ask(signed(method=DETAIL_QUERY, biz_content='{"app_version":"1.0.0"}'))
    assert node.data["code"] == "40006" and node.data["sub_msg"] == "此用户不允许自调用"
    assert alipay_sign.verify_node(node, platform_key)
    # GET with everything in the query string works too; answers are signed, sign last
    token = world.adapter.apps[world.app].app_auth_token.get_secret_value()
    biz = '{"app_version":"9.9.9"}'
    node = await ask(signed(method=DETAIL_QUERY, app_auth_token=token, biz_content=biz), get=True)
    assert node.data["sub_code"] == "MINI_APP_PACKAGE_INFO_NOT_EXIST"
    assert node.data["msg"] == "Business Failed" and alipay_sign.verify_node(node, platform_key)


# --------------------------------------------------------------------------- versions


async def test_versions_must_increase(world: World) -> None:
    a, app = world.adapter, world.app
    await a.upload(app, "1.0.1", "notes")
    with pytest.raises(InvalidInput) as err:
        await a.upload(app, "1.0.0", "notes")
    assert err.value.code == "LARGER_VERSION_HAS_EXISTED"
    with pytest.raises(InvalidInput) as err:
        await a.upload(app, "1.0.1", "notes")
    assert err.value.code == "VERSION_HAS_EXISTED"
    with pytest.raises(InvalidInput) as err:
        await a.upload(app, "1.1", "notes")
    assert err.value.code == "INVALID_VERSION"
    with pytest.raises(InvalidInput) as err:
        await a.upload(app, "2147483648.0.0", "notes")
    assert err.value.code == "VERSION_EXCEEDED_LENGTH"
    assert (await a.upload(app, "1.0.10", "notes")).detail == "build finished"


async def test_upload_request_carries_compact_biz_content(world: World) -> None:
    a, app = adapter_of(world), world.app
    sent: list[httpx.Request] = []

    async def keep(request: httpx.Request) -> None:
        sent.append(request)

    a.client.event_hooks["request"].append(keep)
    await a.upload(app, "1.0.0", "notes")
    request = sent[0]
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    form = dict(httpx.QueryParams(request.read().decode()))
    assert set(form) == {"biz_content"}
    assert form["biz_content"] == (
        '{"template_id":"2021004100009999","app_version":"1.0.0",'
        '"ext":"{\\"ext\\":{\\"shopName\\":\\"Demo shop\\"},\\"extEnable\\":true}",'
        '"bundle_id":"com.alipay.alipaywallet"}'
    )
    query = request.url.params
    assert query["method"] == UPLOAD and query["sign_type"] == "RSA2"
    assert query["app_id"] == a.settings.app_id and query["version"] == "1.0"
    content = alipay_sign.sign_content({**dict(query), **form})
    isv_public = alipay_sign.load_public_key(emulator_of(world).snapshot()["isv"]["public_key"])
    assert alipay_sign.verify(content, query["sign"], isv_public)


async def test_one_open_review_at_a_time(world: World) -> None:
    a, app = world.adapter, world.app
    await a.upload(app, "1.0.0", "notes #reject")
    await a.submit(app, "1.0.0", "notes #reject")
    world.decide_reviews()
    assert (await a.review_status(app, "1.0.0", "1.0.0")).state is ReviewState.REJECTED
    await a.upload(app, "1.0.1", "notes")
    fields = {"app_version": "1.0.1", "version_desc": "x" * 40, "region_type": "CHINA"}
    with pytest.raises(AlreadyInReview) as err:  # on the platform a rejected version blocks
        await adapter_of(world)._call(app, AUDIT_APPLY, fields, multipart=True)
    assert err.value.code == "CAN_NOT_SUBMIT_WITH_AUDIT_GRAY"
    assert err.value.platform_message == "存在审核中，审核通过，审核拒绝，灰度中版本不能提审"


async def test_review_notes_length_is_checked_before_sending(world: World) -> None:
    a, app = adapter_of(world), world.app
    await a.upload(app, "1.0.0", "notes")
    a.apps[app] = a.apps[app].model_copy(update={"review_notes": ""})
    with recording() as log, pytest.raises(InvalidInput) as err:
        await a.submit(app, "1.0.0", "修复" * 7 + "x")  # 14 Chinese characters = 28, + 1
    assert not log
    assert "30–500" in err.value.explanation and "these have 29" in err.value.explanation
    with pytest.raises(InvalidInput, match="these have 501"):
        await a.submit(app, "1.0.0", "x" * 501)
    await a.submit(app, "1.0.0", "修复" * 7 + "xx")  # exactly 30
    assert (await a.review_status(app, "1.0.0", "1.0.0")).state is ReviewState.IN_REVIEW


async def test_emulator_checks_version_desc_length(world: World) -> None:
    a, app = adapter_of(world), world.app
    await a.upload(app, "1.0.0", "notes")
    fields = {
        "app_version": "1.0.0",
        "region_type": "CHINA",
        "bundle_id": "com.alipay.alipaywallet",
    }
    with pytest.raises(InvalidInput) as err:
        await a._call(
            app, AUDIT_APPLY, {**fields, "version_desc": "审核" * 7 + "x"}, multipart=True
        )
    assert err.value.code == "INVALID_VERSION_DESC_LENGTH"
    with pytest.raises(InvalidInput) as err:
        await a._call(
            app,
            AUDIT_APPLY,
            {**fields, "version_desc": "x" * 40, "region_type": "MARS"},
            multipart=True,
        )
    assert err.value.code == "REGION_TYPE_IS_INVALID"
    await a._call(app, AUDIT_APPLY, {**fields, "version_desc": "审核" * 15}, multipart=True)
    assert (await a.review_status(app, "1.0.0", "1.0.0")).state is ReviewState.IN_REVIEW


async def test_multipart_submit_with_chinese_text(world: World) -> None:
    a, app = adapter_of(world), world.app
    a.apps[app] = a.apps[app].model_copy(
        update={"test_account": "reviewer@example.com", "test_password": SecretStr("pa55-审核")}
    )
    sent: list[httpx.Request] = []

    async def keep(request: httpx.Request) -> None:
        if request.url.params.get("method") == AUDIT_APPLY:
            sent.append(request)

    a.client.event_hooks["request"].append(keep)
    await a.upload(app, "1.0.0", "notes")
    notes = "本次更新：修复了购物车在弱网下提交失败的问题，并优化首页加载速度。"
    with recording() as log:
        sub = await a.submit(app, "1.0.0", notes)
    assert sub.ref == "1.0.0"
    request = sent[0]
    assert request.headers["content-type"].startswith("multipart/form-data")
    assert request.url.params["timestamp"] == alipay_sign.format_timestamp(world.clock())
    body = request.read()
    assert b"biz_content" not in body and b'name="test_accout"' in body
    assert notes.encode() in body and b"text/plain; charset=utf-8" in body
    assert "sign" in request.url.params and "app_auth_token" in request.url.params
    assert log[0].request["test_password"] == "***"
    state = emulator_of(world).snapshot()["apps"]["2021004100000001"]["versions"]
    version = state["com.alipay.alipaywallet"]["1.0.0"]
    assert version["version_desc"] == notes + "\n" + a.apps[app].review_notes
    assert version["test_accout"] == "reviewer@example.com"


async def test_review_status_mapping(world: World) -> None:
    a, app = world.adapter, world.app
    await a.upload(app, "1.0.0", "notes")
    assert (await a.review_status(app, "1.0.0", "")).state is ReviewState.NOT_SUBMITTED
    assert (await a.review_status(app, "9.0.0", "9.0.0")).state is ReviewState.UNKNOWN
    submitted_at = world.clock()
    await a.submit(app, "1.0.0", "notes")
    world.decide_reviews()
    approved = await a.review_status(app, "1.0.0", "1.0.0")
    assert approved.state is ReviewState.APPROVED and "WAIT_RELEASE" in approved.detail
    assert approved.decided_at is not None
    assert approved.decided_at.timestamp() == submitted_at + world.emulator.review_seconds
    await a.publish(app, "1.0.0", "1.0.0")
    await a.upload(app, "1.0.1", "notes")
    await a.submit(app, "1.0.1", "notes")
    world.decide_reviews()
    assert "published" in await a.publish(app, "1.0.1", "1.0.1")
    offline = await a.review_status(app, "1.0.0", "1.0.0")
    assert offline.state is ReviewState.UNKNOWN and "taken offline" in offline.detail
    overview = await a.overview(app)
    assert overview.live_version == "1.0.1" and overview.review is None


async def test_withdraw_and_publish_check_the_state(world: World) -> None:
    a, app = world.adapter, world.app
    await a.upload(app, "1.0.0", "notes")
    with pytest.raises(InvalidState, match="in development"):
        await a.withdraw(app, "1.0.0", "1.0.0")
    with pytest.raises(InvalidState, match="only an approved version"):
        await a.publish(app, "1.0.0", "1.0.0")
    await a.submit(app, "1.0.0", "notes")
    assert "withdrew" in await a.withdraw(app, "1.0.0", "1.0.0")
    await a.submit(app, "1.0.0", "notes #reject")
    world.decide_reviews()
    with pytest.raises(InvalidState) as err:
        await a.publish(app, "1.0.0", "1.0.0")
    assert err.value.code == "AUDIT_REJECT"
    with pytest.raises(InvalidState, match="rejected"):
        await a.withdraw(app, "1.0.0", "1.0.0")
    with pytest.raises(NotFound):  # the emulator refuses to publish what it does not know
        await adapter_of(world)._call(
            app, "alipay.open.mini.version.online", {"app_version": "3.0.0"}
        )


async def test_emulator_state_rules(world: World) -> None:
    a, app = adapter_of(world), world.app
    back_to_dev = "alipay.open.mini.version.audited.cancel"
    await a.upload(app, "1.0.0", "notes")
    await a.upload(app, "1.0.1", "notes")
    with pytest.raises(InvalidState) as err:
        await a._call(app, back_to_dev, {"app_version": "1.0.0"})
    assert err.value.code == "CAN_NOT_BACK_DEV_WITHOUT_AUDIT"
    with pytest.raises(NotFound) as missing:
        await a._call(app, BUILD_QUERY, {"app_version": "7.0.0"}, read=True)
    assert missing.value.code == "BUILD_VERSION_NOT_EXISTED"

    await a.submit(app, "1.0.1", "notes #delay")
    world.clock.advance(world.emulator.review_seconds * 0.75)  # delayed: still in review
    assert (await a.review_status(app, "1.0.1", "1.0.1")).state is ReviewState.IN_REVIEW
    world.decide_reviews()
    await a._call(app, back_to_dev, {"app_version": "1.0.1"})  # approved → development
    assert (await a.review_status(app, "1.0.1", "1.0.1")).state is ReviewState.WITHDRAWN
    await a.submit(app, "1.0.1", "notes")
    world.decide_reviews()
    await a.publish(app, "1.0.1", "1.0.1")
    with pytest.raises(InvalidState) as err:  # 1.0.0 is below the live 1.0.1
        await a.submit(app, "1.0.0", "notes")
    assert err.value.code == "EXIST_LARGER_ONLINED_VERSION"


async def test_overview(world: World) -> None:
    a, app = world.adapter, world.app
    assert await a.overview(app) == Overview()
    await a.upload(app, "1.0.0", "notes")
    await a.submit(app, "1.0.0", "notes")
    await a.upload(app, "1.0.1", "notes")
    overview = await a.overview(app)
    assert overview.live_version is None and overview.trial_version == "1.0.1"
    assert overview.review is not None and overview.review.version == "1.0.0"
    assert overview.review.state is ReviewState.IN_REVIEW
    assert overview.lines[0].startswith("1.0.1: in development")


async def test_lost_submit_answer_is_checked(world: World) -> None:
    a, app = world.adapter, world.app
    await a.upload(app, "1.0.0", "notes")
    world.emulator.inject(AUDIT_APPLY, "timeout")
    sub = await a.submit(app, "1.0.0", "notes")
    assert "confirmed" in sub.detail
    assert (await a.review_status(app, "1.0.0", sub.ref)).state is ReviewState.IN_REVIEW


# --------------------------------------------------------------------------- tokens


async def test_app_auth_token_is_renewed_once(world: World) -> None:
    a, app = adapter_of(world), world.app
    old = a._callers[app].token
    emulator_of(world).expire_tokens()
    with recording() as log:
        await a.upload(app, "1.0.0", "notes")
        await a.review_status(app, "1.0.0", "")
    apis = [x.api for x in log]
    assert apis == [UPLOAD, "alipay.open.auth.token.app", UPLOAD, DETAIL_QUERY]
    assert log[0].answer["sub_code"] == "aop.app-auth-token-time-out"
    assert log[1].request["refresh_token"] == "***"
    assert log[1].answer["app_auth_token"] == "***" and log[1].answer["app_refresh_token"] == "***"
    assert a._callers[app].token != old


async def test_expired_token_without_refresh_token_is_explained(world: World) -> None:
    a = adapter_of(world)
    cfg = a.apps[world.app].model_copy(update={"app_refresh_token": None})
    adapter = AlipayPlatform(a.settings, {"shop": cfg}, client=a.client, clock=world.clock)
    emulator_of(world).expire_tokens()
    with pytest.raises(AuthError) as err:
        await adapter.upload("shop", "1.0.0", "notes")
    assert err.value.code == "aop.app-auth-token-time-out"
    assert "app_refresh_token" in err.value.explanation


async def test_self_owned_mini_program(world: World) -> None:
    emulator = emulator_of(world)
    await world.adapter.upload(world.app, "1.0.0", "notes")
    private, alipay_public = emulator.register_app_key("2021004100000001")
    cfg = emulator.example_app().model_copy(
        update={"private_key": SecretStr(private), "alipay_public_key": SecretStr(alipay_public)}
    )
    settings = AlipayPlatform.Settings(gateway=world.server.base_url("alipay") + "/gateway.do")
    adapter = AlipayPlatform(
        settings, {"own": cfg}, client=adapter_of(world).client, clock=world.clock
    )
    with recording() as log:
        assert (await adapter.review_status("own", "1.0.0", "")).state is ReviewState.NOT_SUBMITTED
    assert log[0].request["app_id"] == "2021004100000001"
    with pytest.raises(AuthError) as err:  # template builds are ISV-only
        await adapter.upload("own", "1.0.1", "notes")
    assert err.value.code == "ISV_APP_ID_IS_BLANK"


# --------------------------------------------------------------------------- builds


async def test_build_is_polled_until_finished(world: World) -> None:
    a, app = adapter_of(world), world.app
    emulator_of(world).build_seconds = 5
    a.build_poll_delays = (0.02,) * 20

    async def tick() -> None:
        while True:
            await asyncio.sleep(0.01)
            world.clock.advance(1)

    ticker = asyncio.create_task(tick())
    try:
        with recording() as log:
            result = await a.upload(app, "1.0.0", "notes")
    finally:
        ticker.cancel()
    assert result.detail == "build finished"
    polls = [x for x in log if x.api == BUILD_QUERY]
    assert 1 <= len(polls) < 20
    assert polls[-1].answer["version_created"] == "true"
    await a.submit(app, "1.0.0", "notes")


async def test_build_polling_is_bounded(world: World) -> None:
    a, app = adapter_of(world), world.app
    emulator_of(world).build_seconds = 600
    a.build_poll_delays = (0.0,) * 3
    with recording() as log:
        result = await a.upload(app, "1.0.0", "notes")
    assert "still building" in result.detail
    assert [x.api for x in log].count(BUILD_QUERY) == 3
    with pytest.raises(NotFound, match="build may still be running"):
        await a.submit(app, "1.0.0", "notes")
    world.clock.advance(600)
    await a.submit(app, "1.0.0", "notes")


# --------------------------------------------------------------------------- emulator


async def test_snapshot_restore_round_trip(world: World, tmp_path: Path) -> None:
    a, app = world.adapter, world.app
    await a.upload(app, "1.0.0", "notes")
    await a.submit(app, "1.0.0", "notes")
    state = world.emulator.snapshot()
    assert json.loads(json.dumps(state)) == state
    assert "BEGIN PRIVATE KEY" in state["platform_key"]["private_key"]

    clock = FakeClock(world.clock())
    twin = AlipayEmulator(review_seconds=60, clock=clock, state_path=tmp_path / "alipay.json")
    twin.restore(state)
    assert twin.snapshot() == state
    async with EmulatorServer([twin]) as server:
        provisioned = twin.provision(server.base_url("alipay"), {"shop": twin.example_app()})
        assert provisioned.env["ALIPAY_APP_ID"] == adapter_of(world).settings.app_id
        assert provisioned.apps["shop"] == a.apps["shop"]  # same credentials as before
        assert set(provisioned.env) >= {
            "ALIPAY_GATEWAY",
            "ALIPAY_PRIVATE_KEY",
            "ALIPAY_PUBLIC_KEY",
            "MINISHIP_SHOP_ALIPAY_APP_AUTH_TOKEN",
            "MINISHIP_SHOP_ALIPAY_APP_REFRESH_TOKEN",
        }
        async with httpx.AsyncClient(timeout=1.0) as client:
            adapter = AlipayPlatform(
                provisioned.settings, provisioned.apps, client=client, clock=clock
            )
            assert (
                await adapter.review_status(app, "1.0.0", "1.0.0")
            ).state is ReviewState.IN_REVIEW
            clock.advance(61)
            assert (
                await adapter.review_status(app, "1.0.0", "1.0.0")
            ).state is ReviewState.APPROVED
    # the state file written after each request brings the same platform back
    reborn = AlipayEmulator(clock=clock, state_path=tmp_path / "alipay.json")
    assert reborn.snapshot() == twin.snapshot()


async def test_inject_endpoint_over_http(world: World) -> None:
    fast_retries(adapter_of(world))
    url = world.server.base_url("alipay") + "/_emulator/inject"
    async with httpx.AsyncClient() as client:
        bad = await client.post(url, json={"api": DETAIL_QUERY, "fault": "melted"})
        assert bad.status_code == 400
        ok = await client.post(url, json={"api": DETAIL_QUERY, "fault": "unavailable", "times": 3})
        assert ok.json() == {"ok": True}
    with pytest.raises(PlatformUnavailable) as err:
        await world.adapter.review_status(world.app, "1.0.0", "")
    assert err.value.code == "HTTP 503"
    assert (await world.adapter.review_status(world.app, "1.0.0", "")).state is ReviewState.UNKNOWN


async def test_recorded_exchanges_hold_no_secret_values(world: World) -> None:
    a, app = adapter_of(world), world.app
    a.apps[app] = a.apps[app].model_copy(
        update={"test_account": "reviewer", "test_password": SecretStr("hunter2-审核")}
    )
    cfg = a.apps[app]
    assert cfg.app_auth_token and cfg.app_refresh_token and a.settings.private_key
    secrets = {
        cfg.app_auth_token.get_secret_value(),
        cfg.app_refresh_token.get_secret_value(),
        "hunter2-审核",
        a.settings.private_key.get_secret_value(),
    }
    emulator_of(world).expire_tokens()
    with recording() as log:
        await a.upload(app, "1.0.0", "notes")
        await a.submit(app, "1.0.0", "notes")
        await a.overview(app)
    secrets.add(a._callers[app].token or "")
    secrets.add(a._callers[app].refresh_token or "")
    text = repr(log)
    assert len(log) >= 5
    for secret in secrets:
        assert secret and secret not in text
    assert "sign" not in {k for x in log for k in x.request}


# --------------------------------------------------------------------------- decided reviews


def status_on_platform(world: World, version: str) -> str:
    """The emulator's own status of ``version`` (after deciding reviews as of now)."""
    versions = emulator_of(world)._versions("2021004100000001", {})
    return str(versions[version]["status"])


async def test_a_rejected_version_can_be_submitted_again(world: World) -> None:
    a, app = world.adapter, world.app
    await a.upload(app, "1.0.0", "notes")
    await a.submit(app, "1.0.0", "first try #reject")
    world.decide_reviews()
    assert (await a.review_status(app, "1.0.0", "1.0.0")).state is ReviewState.REJECTED
    with recording() as log:
        sub = await a.submit(app, "1.0.0", "fixed what the reviewers found")
    assert "1.0.0 (rejected) went back to development" in sub.detail
    assert "alipay.open.mini.version.audited.cancel" in [x.api for x in log]
    assert (await a.review_status(app, "1.0.0", sub.ref)).state is ReviewState.IN_REVIEW
    world.decide_reviews()
    assert (await a.review_status(app, "1.0.0", sub.ref)).state is ReviewState.APPROVED


async def test_a_rejection_does_not_block_the_next_version(world: World) -> None:
    a, app = world.adapter, world.app
    await a.upload(app, "1.0.0", "notes")
    await a.submit(app, "1.0.0", "notes #reject")
    world.decide_reviews()
    await a.upload(app, "1.0.1", "notes")
    sub = await a.submit(app, "1.0.1", "notes")
    assert "1.0.0 (rejected) went back to development" in sub.detail
    assert (await a.review_status(app, "1.0.1", sub.ref)).state is ReviewState.IN_REVIEW
    assert status_on_platform(world, "1.0.0") == "INIT"


async def test_a_new_submission_supersedes_an_unpublished_approval(world: World) -> None:
    a, app = world.adapter, world.app
    await a.upload(app, "1.0.0", "notes")
    await a.submit(app, "1.0.0", "notes")
    world.decide_reviews()
    assert status_on_platform(world, "1.0.0") == "WAIT_RELEASE"
    await a.upload(app, "1.0.1", "notes")
    sub = await a.submit(app, "1.0.1", "notes")
    assert "1.0.0 (approved but not published) went back to development" in sub.detail
    assert status_on_platform(world, "1.0.0") == "INIT"
    assert status_on_platform(world, "1.0.1") == "AUDITING"
    # an approved version can be submitted again too
    world.decide_reviews()
    again = await a.submit(app, "1.0.1", "notes, second look")
    assert "1.0.1 (approved but not published) went back" in again.detail
    assert status_on_platform(world, "1.0.1") == "AUDITING"


async def test_a_review_or_gray_release_still_blocks(world: World) -> None:
    a, app = world.adapter, world.app
    await a.upload(app, "1.0.0", "notes")
    await a.submit(app, "1.0.0", "notes")
    world.decide_reviews()
    emulator_of(world)._versions("2021004100000001", {})["1.0.0"]["status"] = "GRAY"
    await a.upload(app, "1.0.1", "notes")
    with recording() as log, pytest.raises(AlreadyInReview) as err:
        await a.submit(app, "1.0.1", "notes")
    assert err.value.code == "CAN_NOT_SUBMIT_WITH_AUDIT_GRAY"
    assert "alipay.open.mini.version.audited.cancel" not in [x.api for x in log]
    assert status_on_platform(world, "1.0.0") == "GRAY"


# --------------------------------------------------------------------------- unusable answers


def method_is(method: str) -> Callable[[httpx.Request], bool]:
    return lambda request: request.url.params.get("method") == method


def late_clock(request: httpx.Request) -> None:
    """Change the signed timestamp on the way, so the request signature no longer verifies."""
    stamp = request.url.params["timestamp"]
    request.url = request.url.copy_set_param("timestamp", stamp[:-1] + "9")


def garble(body: bytes) -> bytes:
    """The same answer, no longer matching its signature."""
    return body.replace(b'"Success"', b'"Succes5"')


async def test_unverifiable_publish_answer_is_checked(world: World) -> None:
    a, app = world.adapter, world.app
    await a.upload(app, "1.0.0", "notes")
    await a.submit(app, "1.0.0", "notes")
    world.decide_reviews()
    adapter = sibling(world, Tamper(response=garble, only=method_is(ONLINE)))
    with recording() as log:
        result = await adapter.publish(app, "1.0.0", "1.0.0")
    assert "published 1.0.0" in result and "confirmed" in result
    assert [x.api for x in log][-2:] == [ONLINE, DETAIL_QUERY]
    assert log[-2].error == "response signature did not verify"
    assert [x.api for x in log].count(ONLINE) == 1  # never repeated
    await adapter.client.aclose()


async def test_unverifiable_answers_to_upload_submit_withdraw_are_checked(world: World) -> None:
    app = world.app
    for method in (UPLOAD, AUDIT_APPLY, AUDIT_CANCEL):
        adapter = sibling(world, Tamper(response=garble, only=method_is(method)))
        if method == UPLOAD:
            assert (await adapter.upload(app, "1.0.0", "notes")).detail == "build finished"
        elif method == AUDIT_APPLY:
            assert "confirmed" in (await adapter.submit(app, "1.0.0", "notes")).detail
        else:
            assert "confirmed" in await adapter.withdraw(app, "1.0.0", "1.0.0")
        await adapter.client.aclose()
    assert status_on_platform(world, "1.0.0") == "INIT"


async def test_unverifiable_answer_to_a_change_that_did_not_happen(world: World) -> None:
    a, app = world.adapter, world.app
    await a.upload(app, "1.0.0", "notes")
    await a.submit(app, "1.0.0", "notes")
    world.decide_reviews()

    def garbled(body: bytes) -> bytes:  # Alipay refuses the publish, and the answer is malformed
        return b'{"unexpected_response":{}}'

    tamper = Tamper(request=late_clock, response=garbled, only=method_is(ONLINE))
    adapter = sibling(world, tamper)
    with pytest.raises(BadResponse) as err:
        await adapter.publish(app, "1.0.0", "1.0.0")
    assert not isinstance(err.value, OutcomeUnknown)
    assert "did not happen" in err.value.explanation
    await adapter.client.aclose()


# --------------------------------------------------------------------------- secrets in answers


async def test_signed_string_in_sub_msg_is_scrubbed(world: World) -> None:
    a, app = adapter_of(world), world.app
    a.apps[app] = a.apps[app].model_copy(
        update={"test_account": "reviewer", "test_password": SecretStr("hunter2-审核")}
    )
    cfg = a.apps[app]
    assert cfg.app_auth_token and cfg.app_refresh_token
    token = cfg.app_auth_token.get_secret_value()
    refresh = cfg.app_refresh_token.get_secret_value()
    secrets = [token, refresh, "hunter2-审核"]
    await a.upload(app, "1.0.0", "notes")

    async def refused(method: str, run: Callable[[AlipayPlatform], Any]) -> None:
        adapter = sibling(world, Tamper(request=late_clock, only=method_is(method)))
        adapter.apps[app] = cfg
        with recording() as log, pytest.raises(AuthError) as err:
            await run(adapter)
        await adapter.client.aclose()
        error = err.value
        assert error.code == "isv.invalid-signature"
        assert "验签出错" in error.platform_message
        assert "[signed string removed]" in error.platform_message
        recorded = json.dumps([dataclasses.asdict(x) for x in log], ensure_ascii=False)
        assert "[signed string removed]" in recorded
        for text in (str(error), error.platform_message, error.explanation, recorded):
            for secret in secrets:
                assert secret not in text

    await refused(UPLOAD, lambda ad: ad.upload(app, "1.0.1", "notes"))
    await refused(AUDIT_APPLY, lambda ad: ad.submit(app, "1.0.0", "notes"))
    emulator_of(world).expire_tokens()  # the renewal (with the refresh token) is refused
    await refused("alipay.open.auth.token.app", lambda ad: ad.upload(app, "1.0.1", "notes"))


# --------------------------------------------------------------------------- transport


async def test_transport_errors_record_only_their_type() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused " + str(request.url), request=request)

    adapter = AlipayPlatform(
        make_settings(max_retries=0),
        {"a": make_app()},
        client=httpx.AsyncClient(transport=httpx.MockTransport(refuse)),
    )
    with recording() as log, pytest.raises(PlatformUnavailable) as err:
        await adapter.overview("a")
    assert log[0].error == "ConnectError"
    assert "202405BBtoken" not in str(err.value) + repr(log)


async def test_invalid_url_is_a_config_error() -> None:
    for gateway in ("http://[::1/gateway.do", "https://gateway.test:99999/gateway.do"):
        with pytest.raises(ConfigError, match="ALIPAY_GATEWAY"):
            AlipayPlatform(make_settings(gateway=gateway), {"a": make_app()})

    def invalid(request: httpx.Request) -> httpx.Response:
        raise httpx.InvalidURL("Invalid URL " + str(request.url))

    adapter = AlipayPlatform(
        make_settings(),
        {"a": make_app()},
        client=httpx.AsyncClient(transport=httpx.MockTransport(invalid)),
    )
    with recording() as log, pytest.raises(ConfigError, match="ALIPAY_GATEWAY") as err:
        await adapter.upload("a", "1.0.0", "notes")
    assert log[0].error == "InvalidURL" and "202405BBtoken" not in str(err.value)


# --------------------------------------------------------------------------- waiting


async def test_backoff_and_build_polling_wait_through_sleep(world: World) -> None:
    a, app = adapter_of(world), world.app
    waited: list[float] = []

    async def no_wait(seconds: float) -> None:
        waited.append(seconds)
        world.clock.advance(seconds)

    a.sleep = no_wait
    world.emulator.inject(DETAIL_QUERY, "busy", times=2)
    assert (await a.review_status(app, "1.0.0", "")).state is ReviewState.UNKNOWN
    assert waited == [0.5, 1.0]
    waited.clear()
    emulator_of(world).build_seconds = 2
    a.build_poll_delays = (0.5, 0.5, 0.5, 0.5, 0.5, 0.5)
    assert (await a.upload(app, "1.0.0", "notes")).detail == "build finished"
    assert waited == [0.5, 0.5, 0.5, 0.5]
