"""Alipay adapter, signing helpers and emulator: what the shared contract does not cover."""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import sys
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
import pytest
import qrcode
from cryptography.hazmat.primitives import serialization
from PIL import Image
from pydantic import SecretStr

from platforms import cli
from platforms.alipay import (
    AUDIT_APPLY,
    AUDIT_CANCEL,
    AUDITED_CANCEL,
    BUILD_QUERY,
    DETAIL_QUERY,
    EXPERIENCE_QUERY,
    LIST_QUERY,
    OFFLINE,
    ONLINE,
    ROLLBACK,
    UPLOAD,
    AlipayPlatform,
    error_for,
    version_desc_length,
)
from platforms.alipay import sign as alipay_sign
from platforms.alipay.api import AUDIT_REJECTED, AUTH_GRANT, GRAY_ONLINE
from platforms.alipay.errors import _GROUPS
from platforms.alipay.versions import CONFIRMED
from platforms.base import (
    REVIEW_IMAGES_MAX,
    GrayPlan,
    Overview,
    ReviewImage,
    ReviewState,
    recording,
    scrub_message,
)
from platforms.cli import CliFailed
from platforms.emulators.alipay import AlipayEmulator
from platforms.emulators.alipay import rules as alipay_emulator
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
    QuotaExceeded,
)
from platforms.push import PushRejected, PushRequest
from platforms.transport import Sender
from tests.helpers import FakeClock, FakeSleep, World, open_world
from tests.platforms.transports import Tamper, Watched, alipay_params

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
        w.adapter.sleep = FakeSleep(w.clock)  # polling and back-off pass on the fake clock
        yield w


def sleeps(world: World) -> list[float]:
    """The delays the adapter waited so far (through the fixture's FakeSleep)."""
    sleeper = world.adapter.sleep
    assert isinstance(sleeper, FakeSleep)
    return sleeper.delays


def adapter_of(world: World) -> AlipayPlatform:
    assert isinstance(world.adapter, AlipayPlatform)
    return world.adapter


def requests_to(a: AlipayPlatform, method: str | None = None) -> list[httpx.Request]:
    """The requests ``a`` sends from now on (those of gateway ``method`` only, if given)."""
    sent: list[httpx.Request] = []

    def keep(request: httpx.Request) -> None:
        if method is None or alipay_params(request).get("method") == method:
            sent.append(request)

    a.sender.transport = Watched(a.sender.transport, keep)
    return sent


def emulator_of(world: World) -> AlipayEmulator:
    assert isinstance(world.emulator, AlipayEmulator)
    return world.emulator


def fast_retries(adapter: AlipayPlatform) -> None:
    adapter.settings = adapter.settings.model_copy(update={"retry_backoff_seconds": 0.01})


def sibling(world: World, transport: httpx.AsyncBaseTransport) -> AlipayPlatform:
    """Another adapter on the same emulator and credentials, through ``transport``."""
    a = adapter_of(world)
    return AlipayPlatform(
        a.settings, a.apps, sender=Sender(transport, timeout=1.0), clock=world.clock
    )


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


async def test_an_app_added_at_run_time_without_its_token_is_refused_alone() -> None:
    """Apps given while running (added from chat, synced): one with no token, configured
    or kept in the vault by an authorization, is refused with its reason when used (asking
    nothing); the others go on working."""
    adapter = AlipayPlatform(make_settings(), {"a": make_app()})
    adapter.set_apps(
        {
            "a": make_app(),
            "b": make_app(app_id="2021000000000002", app_auth_token=None),
            "c": make_app(app_id="2021000000000003"),
        }
    )
    with recording() as log, pytest.raises(ConfigError) as err:
        await adapter.overview("b")
    assert "[apps.b.alipay]: app_auth_token is needed" in str(err.value) and not log
    assert "`connect alipay`" in str(err.value)
    assert set(adapter._callers) == {"a", "b", "c"} and not adapter._unusable
    adapter.set_apps({"a": make_app(), "b": make_app(app_id="2021000000000002")})
    assert set(adapter._callers) == {"a", "b"} and not adapter._unusable
    await adapter.aclose()


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
        return answer(alipay_params(request)["method"])

    return AlipayPlatform(
        make_settings(), {"a": make_app()}, sender=Sender(httpx.MockTransport(handler))
    )


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


@pytest.mark.parametrize(
    ("code", "words", "kind", "error_code"),
    [
        ("3", "failed", InvalidInput, "BUILD_FAILED"),
        ("5", "timed out", InvalidState, "BUILD_TIMEOUT"),
    ],
)
async def test_failed_build_is_reported(
    code: str, words: str, kind: type[PlatformError], error_code: str
) -> None:
    upload = {"code": "10000", "msg": "Success", "build_status": "1", "create_status": "1"}
    upload["need_rotation"] = "true"
    failed = {**upload, "build_status": code, "create_status": code, "need_rotation": "false"}

    def answer(method: str) -> httpx.Response:
        return httpx.Response(200, text=signed_body(method, upload if method == UPLOAD else failed))

    adapter = mocked(answer)
    adapter.sleep = FakeSleep()
    with pytest.raises(kind) as err:
        await adapter.upload("a", "1.0.0", "notes")
    assert err.value.code == error_code
    assert f"{words} (build_status {code}, create_status {code})" in err.value.explanation
    assert "upload a higher version" in err.value.explanation


# --------------------------------------------------------------------------- signatures (emulator)


async def test_tampered_request_signature_is_refused(world: World) -> None:
    def tamper(request: httpx.Request) -> None:
        stamp = alipay_params(request)["timestamp"]
        request.url = request.url.copy_set_param("timestamp", stamp[:-1] + "9")

    adapter = sibling(world, Tamper(request=tamper))
    with pytest.raises(AuthError) as err:
        await adapter.upload(world.app, "1.0.0", "notes")
    assert err.value.code == "isv.invalid-signature"
    assert "验签" in err.value.platform_message
    await adapter.sender.aclose()
    # nothing was uploaded
    assert (await world.adapter.review_status(world.app, "1.0.0", "")).state is ReviewState.UNKNOWN


async def test_wrong_app_key_is_refused(world: World) -> None:
    a = adapter_of(world)
    settings = a.settings.model_copy(update={"private_key": SecretStr(key_pair("stranger")[0])})
    adapter = AlipayPlatform(settings, a.apps, sender=a.sender, clock=world.clock)
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
    await adapter.sender.aclose()


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
    assert (await a.upload(app, "1.0.10", "notes")).detail == "built in 0 s"


async def test_upload_request_carries_compact_biz_content(world: World) -> None:
    a, app = adapter_of(world), world.app
    sent = requests_to(a)
    await a.upload(app, "1.0.0", "notes")
    request = sent[0]
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    form = dict(httpx.QueryParams(request.read().decode()))
    # every parameter in the form but the charset the gateway decodes it with
    assert dict(request.url.params) == {"charset": "utf-8"}
    assert set(form) == {
        *("app_id", "method", "format", "sign_type", "timestamp", "version", "sign"),
        *("app_auth_token", "biz_content"),
    }
    assert form["biz_content"] == (
        '{"template_id":"2021004100009999","app_version":"1.0.0",'
        '"ext":"{\\"ext\\":{\\"shopName\\":\\"Demo shop\\"},\\"extEnable\\":true}",'
        '"bundle_id":"com.alipay.alipaywallet"}'
    )
    assert form["method"] == UPLOAD and form["sign_type"] == "RSA2"
    assert form["app_id"] == a.settings.app_id and form["version"] == "1.0"
    content = alipay_sign.sign_content({**dict(request.url.params), **form})
    isv_public = alipay_sign.load_public_key(emulator_of(world).snapshot()["isv"]["public_key"])
    assert alipay_sign.verify(content, form["sign"], isv_public)


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
    sent = requests_to(a, AUDIT_APPLY)
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
    adapter = AlipayPlatform(a.settings, {"shop": cfg}, sender=a.sender, clock=world.clock)
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
        settings, {"own": cfg}, sender=adapter_of(world).sender, clock=world.clock
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
    a.settings = a.settings.model_copy(update={"poll_seconds": 2.0})
    with recording() as log:
        result = await a.upload(app, "1.0.0", "notes")
    assert result.detail == "built in 6 s"
    assert sleeps(world) == [2.0, 2.0, 2.0]
    polls = [x for x in log if x.api == BUILD_QUERY]
    assert [p.answer["version_created"] for p in polls] == ["false", "false", "true"]
    await a.submit(app, "1.0.0", "notes")


async def test_build_polling_is_bounded(world: World) -> None:
    a, app = adapter_of(world), world.app
    emulator_of(world).build_seconds = 600
    a.settings = a.settings.model_copy(update={"build_wait_seconds": 10.0, "poll_seconds": 3.0})
    with recording() as log:
        result = await a.upload(app, "1.0.0", "notes")
    assert "still building it after 10 s" in result.detail
    assert "`status` will show" in result.detail
    assert sleeps(world) == [3.0, 3.0, 3.0, 1.0]
    assert [x.api for x in log].count(BUILD_QUERY) == 4
    status = await a.review_status(app, "1.0.0", "")
    assert status.state is ReviewState.NOT_SUBMITTED
    assert "still building" in status.detail
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
        async with Sender(timeout=1.0) as sender:
            adapter = AlipayPlatform(
                provisioned.settings, provisioned.apps, sender=sender, clock=clock
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


@pytest.mark.parametrize(
    ("notes", "status"), [("notes", "WAIT_RELEASE"), ("notes #base", "BASE_AUDIT_PASS")]
)
async def test_an_approved_version_is_not_submitted_again(
    world: World, notes: str, status: str
) -> None:
    """M2: submitting it again would throw its approval away without asking."""
    a, app = world.adapter, world.app
    await a.upload(app, "1.0.0", "notes")
    await a.submit(app, "1.0.0", notes)
    world.decide_reviews()
    with recording() as log, pytest.raises(InvalidState) as err:
        await a.submit(app, "1.0.0", "notes, second look")
    assert "already approved; publish it, or withdraw it first" in err.value.explanation
    assert err.value.code == status and AUDITED_CANCEL not in apis(log)
    assert status_on_platform(world, "1.0.0") == status
    await a.withdraw(app, "1.0.0", "1.0.0")  # what the message says to do
    assert "submitted for review" in (await a.submit(app, "1.0.0", "notes")).detail


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
    return lambda request: alipay_params(request).get("method") == method


def late_clock(request: httpx.Request) -> None:
    """Change the signed timestamp on the way, so the request signature no longer verifies."""
    stamp = alipay_params(request)["timestamp"]
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
    await adapter.sender.aclose()


async def test_unverifiable_answers_to_upload_submit_withdraw_are_checked(world: World) -> None:
    app = world.app
    for method in (UPLOAD, AUDIT_APPLY, AUDIT_CANCEL):
        adapter = sibling(world, Tamper(response=garble, only=method_is(method)))
        if method == UPLOAD:
            done = await adapter.upload(app, "1.0.0", "notes")
            assert done.detail == "built in 0 s (confirmed with Alipay after an unclear answer)"
        elif method == AUDIT_APPLY:
            assert "confirmed" in (await adapter.submit(app, "1.0.0", "notes")).detail
        else:
            assert "confirmed" in await adapter.withdraw(app, "1.0.0", "1.0.0")
        await adapter.sender.aclose()
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
    await adapter.sender.aclose()


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
        await adapter.sender.aclose()
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
        sender=Sender(httpx.MockTransport(refuse)),
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
        sender=Sender(httpx.MockTransport(invalid)),
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
    a.settings = a.settings.model_copy(update={"poll_seconds": 0.5})
    assert (await a.upload(app, "1.0.0", "notes")).detail == "built in 2 s"
    assert waited == [0.5, 0.5, 0.5, 0.5]


# --------------------------------------------------------------------------- helpers (life cycle)

MINI_APP = "2021004100000001"


def platform_version(world: World, version: str) -> dict[str, Any]:
    """The emulator's record of ``version`` (after deciding reviews as of now)."""
    return emulator_of(world)._versions(MINI_APP, {})[version]


def apis(log: list[Any]) -> list[str]:
    return [x.api for x in log]


async def release(world: World, version: str) -> None:
    a, app = world.adapter, world.app
    await a.upload(app, version, "notes")
    await a.submit(app, version, "notes")
    world.decide_reviews()
    await a.publish(app, version, version)


async def approve(world: World, version: str = "1.0.0", notes: str = "notes") -> None:
    """Upload and submit ``version``; the review is decided (approved, unless ``notes``
    say otherwise)."""
    await world.adapter.upload(world.app, version, "notes")
    await world.adapter.submit(world.app, version, notes)
    world.decide_reviews()


# --------------------------------------------------------------------------- error table


def test_every_listed_sub_code_is_explained_once() -> None:
    codes = [code for _, _, listed in _GROUPS for code in listed.split()]
    assert len(codes) == len(set(codes)), "a sub_code stands in two groups"
    assert len(codes) > 150
    for code in codes:
        error = error_for("40004", code, "子消息")
        assert type(error) is not PlatformError, code
        assert error.explanation != "子消息" and error.explanation.endswith("."), code
    cases = {
        "GRAY_STRATEGY_NOT_ALLOW_REDUCE": InvalidState,
        "CAN_NOT_CONTINUOUS_ROLLBACK": InvalidState,
        "CAN_NOT_OFFLINE_WITH_GRAY": InvalidState,
        "SCREEN_SHOT_EXCEED_MAX_SIZE": InvalidInput,
        "MINI_APP_NAME_DUPLICATE": InvalidInput,
        "SYSTEM_LIMIT": QuotaExceeded,
        "EXECUTE_GRAY_FAILED": PlatformUnavailable,
        "TEMPLATE_NOT_ONLINE_OR_OFFLINE": NotFound,
        "NO_TEMPLATE_INSTANTIATE_RELATION": AuthError,
        "CAN_NOT_SET_EXP_REPEAT": InvalidState,
    }
    for code, cls in cases.items():
        assert type(error_for("40004", code, "")) is cls, code
    logo = error_for("40004", "LOGO_HEIGHT_NOT_EQUAL_WIDTH", "logo宽高不一致")
    assert "Alipay console" in logo.explanation and "logo宽高不一致" in logo.describe()


# --------------------------------------------------------------------------- template upload


async def test_upload_from_another_template(world: World) -> None:
    a, app = adapter_of(world), world.app
    a.apps[app] = a.apps[app].model_copy(update={"template_version": "1.0.0"})
    emulator_of(world)._state["templates"]["2021004100008888"] = {
        "isv_app_id": a.settings.app_id,
        "versions": ["3.0.0"],
    }
    with pytest.raises(NotFound) as err:
        await a.upload(app, "1.0.0", "notes", template="2021009999999999")
    assert err.value.code == "CODE_TEMPLATE_NOT_EXIST"
    with recording() as log:
        result = await a.upload(app, "1.0.0", "notes", template="2021004100008888")
    assert result.detail == "built in 0 s"
    sent = log[0].request
    assert sent["template_id"] == "2021004100008888"
    assert "template_version" not in sent  # the configured one belongs to the other template
    assert platform_version(world, "1.0.0")["template_version"] == "3.0.0"


# --------------------------------------------------------------------------- minidev upload

FAKE_MINIDEV = '''#!{python}
"""A stand-in for minidev: checks its arguments, reads the identity file, uploads."""
import base64, json, os, sys, urllib.request
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

args = sys.argv[1:]
with open(os.environ["FAKE_MINIDEV_LOG"], "a", encoding="utf-8") as log:
    log.write(json.dumps(args) + "\\n")
if args[:1] != ["upload"]:
    sys.exit("unknown command " + " ".join(args[:1]))
opts = dict(zip(args[1::2], args[2::2]))
for flag in ("--app-id", "--project", "--version", "--identity-key-path"):
    if flag not in opts:
        sys.exit("missing " + flag)
if not os.path.isfile(os.path.join(opts["--project"], "app.json")):
    sys.exit("not a built mini program: " + opts["--project"])
with open(opts["--identity-key-path"], encoding="utf-8") as f:
    auth = json.load(f)["alipay"]["authentication"]
if os.environ.get("FAKE_MINIDEV_ECHO"):  # a tool that prints what it was given
    print("identity:", json.dumps(auth), file=sys.stderr)
    print("key:", auth["privateKey"], file=sys.stderr)
    sys.exit("could not upload")
key = serialization.load_pem_private_key(auth["privateKey"].encode(), None)
fields = {{
    "appId": opts["--app-id"],
    "version": opts["--version"],
    "versionDescription": opts.get("--version-description", ""),
    "toolId": auth["toolId"],
}}
content = "&".join(f"{{k}}={{v}}" for k, v in sorted(fields.items()) if v)
signature = key.sign(content.encode(), padding.PKCS1v15(), hashes.SHA256())
fields["sign"] = base64.b64encode(signature).decode()
request = urllib.request.Request(
    os.environ["FAKE_MINIDEV_URL"],
    data=json.dumps(fields).encode(),
    headers={{"Content-Type": "application/json"}},
)
with urllib.request.urlopen(request, timeout=5) as response:
    answer = json.load(response)
if answer.get("stat") != "ok":
    print("上传失败：" + answer.get("msg", ""), file=sys.stderr)
    sys.exit(1)
print(json.dumps({{"version": answer["data"]["version"]}}))
'''


@dataclasses.dataclass
class Minidev:
    adapter: AlipayPlatform
    calls: Path  # one JSON argument list per run
    project: Path

    def runs(self) -> list[list[str]]:
        if not self.calls.exists():
            return []
        return [json.loads(line) for line in self.calls.read_text().splitlines()]


@pytest.fixture
async def minidev(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Minidev]:
    """An app owned directly ("own"), its own gateway keys and a minidev tool key, and a
    fake minidev executable selected with MINISHIP_MINIDEV."""
    emulator = emulator_of(world)
    private, alipay_public = emulator.register_app_key(MINI_APP)
    tool_id, tool_key = emulator.register_tool(MINI_APP)
    project = tmp_path / "dist"
    project.mkdir()
    (project / "app.json").write_text("{}")
    cfg = AlipayPlatform.AppConfig(
        app_id=MINI_APP,
        private_key=SecretStr(private),
        alipay_public_key=SecretStr(alipay_public),
        project_path=project,
        tool_id=tool_id,
        tool_private_key=SecretStr(tool_key),
        review_notes="Emulated release made by miniship; the shop pages need no login.",
    )
    script = tmp_path / "minidev"
    script.write_text(FAKE_MINIDEV.format(python=sys.executable))
    script.chmod(0o755)
    calls = tmp_path / "minidev-calls.jsonl"
    monkeypatch.setenv("MINISHIP_MINIDEV", str(script))
    monkeypatch.setenv("FAKE_MINIDEV_LOG", str(calls))
    monkeypatch.setenv(
        "FAKE_MINIDEV_URL", world.server.base_url("alipay") + "/_emulator/minidev/upload"
    )
    settings = adapter_of(world).settings
    adapter = AlipayPlatform(
        settings, {"own": cfg}, sender=adapter_of(world).sender, clock=world.clock
    )
    adapter.sleep = FakeSleep(world.clock)
    yield Minidev(adapter, calls, project)


async def test_minidev_upload_then_submit(minidev: Minidev) -> None:
    a = minidev.adapter
    assert "uploaded with minidev" in AlipayPlatform.describe_app(a.apps["own"])
    with recording() as log:
        result = await a.upload("own", "1.0.0", "修复首页\n加载慢的问题")
    assert result.detail == "uploaded and built with minidev in 0 s"
    (args,) = minidev.runs()
    assert args[:9] == [
        "upload",
        "--app-id",
        MINI_APP,
        "--project",
        str(minidev.project),
        "--version",
        "1.0.0",
        "--version-description",
        "修复首页 加载慢的问题",
    ]
    assert args[9] == "--identity-key-path" and len(args) == 11
    assert not Path(args[10]).exists(), "the identity file outlives the upload"
    key = a.apps["own"].tool_private_key.get_secret_value()
    assert all(key not in arg for arg in args)
    assert apis(log) == ["minidev upload"] and key not in repr(log)
    sub = await a.submit("own", "1.0.0", "notes")
    assert (await a.review_status("own", "1.0.0", sub.ref)).state is ReviewState.IN_REVIEW


async def test_minidev_uploads_a_build_handed_over(minidev: Minidev, tmp_path: Path) -> None:
    """The CI API's archive (``code``): minidev uploads that tree, not the configured one."""
    build = tmp_path / "ci-build"
    build.mkdir()
    (build / "app.json").write_text("{}")
    result = await minidev.adapter.upload("own", "2.0.0", "from CI", code=build)
    assert result.version == "2.0.0"
    (args,) = minidev.runs()
    assert args[args.index("--project") + 1] == str(build) != str(minidev.project)
    (build / "app.json").unlink()  # not a built mini program: minidev's own refusal said
    with pytest.raises(CliFailed) as err:
        await minidev.adapter.upload("own", "2.0.1", "from CI", code=build)
    assert "not a built mini program" in err.value.explanation


async def test_minidev_failure_quotes_the_tool(minidev: Minidev) -> None:
    a = minidev.adapter
    await a.upload("own", "1.0.1", "notes")
    with pytest.raises(CliFailed) as err:
        await a.upload("own", "1.0.0", "notes")
    assert "minidev failed (exit 1)" in err.value.explanation
    assert "已存在更大的版本号" in err.value.explanation


async def test_minidev_not_installed(
    minidev: Minidev, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MINISHIP_MINIDEV")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.chdir(tmp_path)  # no .tools/ here
    with pytest.raises(ConfigError, match="make clis"):
        await minidev.adapter.upload("own", "1.0.0", "notes")
    assert minidev.runs() == []


async def test_minidev_config_is_checked(minidev: Minidev, tmp_path: Path) -> None:
    a = minidev.adapter
    a.apps["own"] = a.apps["own"].model_copy(update={"project_path": tmp_path / "missing"})
    with pytest.raises(ConfigError, match=r"project_path .* is not a directory"):
        await a.upload("own", "1.0.0", "notes")
    with pytest.raises(ConfigError, match="go together"):
        AlipayPlatform(make_settings(), {"a": {"app_id": "2021", "project_path": "dist"}})
    nothing = AlipayPlatform(make_settings(), {"a": make_app(template_id=None)})
    with pytest.raises(ConfigError, match="project_path, tool_id and tool_private_key"):
        await nothing.upload("a", "1.0.0", "notes")
    await nothing.aclose()
    assert minidev.runs() == []


# --------------------------------------------------------------------------- submit details


def picture(path: Path, size: tuple[int, int] = (60, 100)) -> Path:
    Image.new("RGB", size, "white").save(path)
    return path


async def test_submit_sends_review_details(world: World, tmp_path: Path) -> None:
    a, app = adapter_of(world), world.app
    shots = [picture(tmp_path / "home.png"), picture(tmp_path / "cart.jpg")]
    regions = [{"province_code": "310000", "province_name": "上海市"}]
    a.apps[app] = AlipayPlatform.AppConfig.model_validate(
        {
            **a.apps[app].model_dump(),
            "region_type": "LOCATION",
            "service_region_info": regions,
            "memo": "请用测试账号登录",
            "test_account": "reviewer",
            "screenshots": [str(p) for p in shots],
        }
    )
    sent = requests_to(a, AUDIT_APPLY)
    await a.upload(app, "1.0.0", "notes")
    with recording() as log:
        sub = await a.submit(app, "1.0.0", "notes", expedite=True)
    assert (
        sub.detail
        == "submitted for review (expedited); Alipay on expediting: 已使用1次审核加急权益"
    )
    body = sent[0].read()
    assert b'name="speed_up"\r\nContent-Type: text/plain; charset=utf-8\r\n\r\ntrue' in body
    assert b'name="first_screen_shot"; filename="home.png"\r\nContent-Type: image/png' in body
    assert b'name="second_screen_shot"; filename="cart.jpg"\r\nContent-Type: image/jpeg' in body
    assert shots[0].read_bytes() in body
    assert log[0].request["first_screen_shot"] == "home.png"
    stored = platform_version(world, "1.0.0")
    assert (
        stored["screenshots"] == ["home.png", "cart.jpg"] and stored["memo"] == "请用测试账号登录"
    )
    assert json.loads(stored["service_region_info"]) == regions
    # the one expedite entitlement is spent; without asking, Alipay is told "false"
    await a.withdraw(app, "1.0.0", sub.ref)
    again = await a.submit(app, "1.0.0", "notes", expedite=True)
    assert again.detail == "submitted for review; Alipay on expediting: 暂无可用的审核加急权益"
    await a.withdraw(app, "1.0.0", sub.ref)
    plain = await a.submit(app, "1.0.0", "notes")
    assert plain.detail == "submitted for review"
    assert b"\r\n\r\nfalse\r\n" in sent[-1].read()


async def test_screenshots_are_checked_before_sending(world: World, tmp_path: Path) -> None:
    a, app = adapter_of(world), world.app
    await a.upload(app, "1.0.0", "notes")
    good = picture(tmp_path / "a.png")
    big = tmp_path / "big.png"
    big.write_bytes(b"\x89PNG\r\n\x1a\n" + b"0" * (4 * 1024 * 1024))
    gif = tmp_path / "a.gif"
    gif.write_bytes(b"GIF89a")
    cases = [
        (tmp_path / "missing.png", "does not exist"),
        (big, "has 4.0 MB; Alipay takes screenshots of at most 4 MB"),
        (gif, "is not a .png, .jpg or .jpeg file"),
    ]
    for bad, message in cases:
        a.apps[app] = a.apps[app].model_copy(update={"screenshots": [good, bad]})
        with recording() as log, pytest.raises(ConfigError, match=message) as err:
            await a.submit(app, "1.0.0", "notes")
        assert "[apps.shop.alipay] screenshots" in str(err.value) and not log
    for count in (1, 6):
        with pytest.raises(ConfigError, match="screenshots"):
            AlipayPlatform(make_settings(), {"a": {"app_id": "1", "screenshots": [good] * count}})
    with pytest.raises(ConfigError, match="service_region_info"):
        AlipayPlatform(make_settings(), {"a": {"app_id": "1", "region_type": "LOCATION"}})


AREA_WITHOUT_CITY = '[{"province_code":"310000","area_code":"310101"}]'


async def test_emulator_checks_review_details(world: World) -> None:
    a, app = adapter_of(world), world.app
    await a.upload(app, "1.0.0", "notes")
    fields = {"app_version": "1.0.0", "version_desc": "x" * 40, "region_type": "CHINA"}
    png = ("a.png", b"\x89PNG\r\n\x1a\n", "image/png")
    refusals: list[tuple[dict[str, str], dict[str, Any], str]] = [
        ({}, {"first_screen_shot": png}, "SCREEN_SHOT_NUM_IS_INVALID"),
        ({}, {"first_screen_shot": png, "second_screen_shot": ("a.bmp", b"BM", "image/bmp")},
         "INVALID_SCREEN_SHOT_EXT"),
        ({"region_type": "LOCATION"}, {}, "REGION_CODE_IS_BLANK"),
        ({"region_type": "LOCATION", "service_region_info": AREA_WITHOUT_CITY}, {},
         "INVALID_REGION"),
        ({"memo": "备" * 501}, {}, "INVALID_MINI_APP_MEMO_LENGTH"),
    ]  # fmt: skip
    for extra, files, code in refusals:
        with pytest.raises(InvalidInput) as err:
            await a._call(app, AUDIT_APPLY, {**fields, **extra}, multipart=True, files=files)
        assert err.value.code == code
    assert platform_version(world, "1.0.0")["status"] == "INIT"


# --------------------------------------------------------------------------- withdraw


async def test_withdraw_picks_the_cancel_for_the_state(world: World) -> None:
    a, app = world.adapter, world.app
    await a.upload(app, "1.0.0", "notes")
    with pytest.raises(InvalidState, match="in development"):
        await a.withdraw(app, "1.0.0", "1.0.0")
    await a.submit(app, "1.0.0", "notes")
    with recording() as log:
        said = await a.withdraw(app, "1.0.0", "1.0.0")
    assert said == "withdrew 1.0.0 from review; it is back in development"
    assert AUDIT_CANCEL in apis(log) and AUDITED_CANCEL not in apis(log)
    for notes, words in (("notes #reject", "rejected"), ("notes", "approved but not published")):
        await a.submit(app, "1.0.0", notes)
        world.decide_reviews()
        with recording() as log:
            said = await a.withdraw(app, "1.0.0", "1.0.0")
        assert said == f"sent 1.0.0 ({words}) back to development"
        assert AUDITED_CANCEL in apis(log) and AUDIT_CANCEL not in apis(log)
        assert (await a.review_status(app, "1.0.0", "1.0.0")).state is ReviewState.WITHDRAWN
    await a.submit(app, "1.0.0", "notes")
    world.decide_reviews()
    await a.gray(app, "1.0.0", 10)
    with pytest.raises(InvalidState, match="end the gray release first"):
        await a.withdraw(app, "1.0.0", "1.0.0")


async def test_lost_answer_to_sending_back_is_checked(world: World) -> None:
    a, app = world.adapter, world.app
    await approve(world)
    world.emulator.inject(AUDITED_CANCEL, "malformed")
    with recording() as log:
        said = await a.withdraw(app, "1.0.0", "1.0.0")
    assert "confirmed" in said and apis(log).count(AUDITED_CANCEL) == 1
    assert platform_version(world, "1.0.0")["status"] == "INIT"


# --------------------------------------------------------------------------- gray release


async def test_gray_grows_then_stops_or_publishes(world: World) -> None:
    a, app = world.adapter, world.app
    await approve(world)
    with recording() as log, pytest.raises(InvalidInput, match="10, 30 or 50"):
        await a.gray(app, "1.0.0", 20)
    assert not log
    assert await a.gray(app, "1.0.0", 10) == "1.0.0 is released to 10% of users (p10)"
    overview = await a.overview(app)
    assert overview.gray is not None and overview.gray.percent == 10
    assert overview.gray.version == "1.0.0" and overview.gray.state == "running"
    status = await a.review_status(app, "1.0.0", "1.0.0")
    assert status.state is ReviewState.GRAY and "10% of users" in status.detail
    await a.gray(app, "1.0.0", 50)
    with pytest.raises(InvalidState) as err:
        await a.gray(app, "1.0.0", 30)
    assert err.value.code == "GRAY_STRATEGY_NOT_ALLOW_REDUCE"
    assert platform_version(world, "1.0.0")["gray_strategy"] == "p50"
    assert "ended the gray release" in await a.stop_gray(app, "1.0.0")
    assert (await a.review_status(app, "1.0.0", "1.0.0")).state is ReviewState.APPROVED
    assert (await a.overview(app)).gray is None
    with pytest.raises(InvalidState, match="no gray release to end"):
        await a.stop_gray(app, "1.0.0")
    await a.gray(app, "1.0.0", 30)
    assert "published 1.0.0" in await a.publish(app, "1.0.0", "1.0.0")
    assert (await a.overview(app)).live_version == "1.0.0"


async def test_emulator_gray_rules(world: World) -> None:
    a, app = adapter_of(world), world.app
    await a.upload(app, "1.0.0", "notes")
    gray = "alipay.open.mini.version.gray.online"
    for strategy, code, cls in (
        ("p10", "CAN_NOT_GRAY_WITHOUT_AUDIT_PASS", InvalidState),
        ("p20", "GRAY_STRATEGY_IS_INVALID", InvalidInput),
        ("", "GRAY_STRATEGY_IS_BLANK", InvalidInput),
    ):
        with pytest.raises(cls) as err:
            await a._call(app, gray, {"app_version": "1.0.0", "gray_strategy": strategy})
        assert err.value.code == code
    with pytest.raises(InvalidState) as err:
        await a._call(app, "alipay.open.mini.version.gray.cancel", {"app_version": "1.0.0"})
    assert err.value.code == "CAN_NOT_END_GRAY_WITHOUT_GRAY"


async def test_gray_share_may_be_missing() -> None:
    listed = {
        "code": "10000",
        "msg": "Success",
        "app_version_infos": [{"app_version": "1.0.0", "version_status": "GRAY"}],
    }
    detail = {**DETAIL_OK, "status": "GRAY"}

    def answer(method: str) -> httpx.Response:
        return httpx.Response(
            200, text=signed_body(method, listed if method == LIST_QUERY else detail)
        )

    overview = await mocked(answer).overview("a")
    assert overview.gray is not None and overview.gray.percent is None  # never 0
    assert overview.gray.state == "running"
    assert overview.review is not None and overview.review.state is ReviewState.GRAY


async def test_lost_gray_answer_is_checked(world: World) -> None:
    a, app = world.adapter, world.app
    await approve(world)
    world.emulator.inject("alipay.open.mini.version.gray.online", "unsigned")
    said = await a.gray(app, "1.0.0", 30)
    assert said.endswith("(confirmed with Alipay after an unclear answer)")
    assert platform_version(world, "1.0.0")["gray_strategy"] == "p30"


# --------------------------------------------------------------------------- rollback, offline


async def test_rollback_to_the_previous_release(world: World) -> None:
    a, app = world.adapter, world.app
    for version in ("1.0.0", "1.0.1", "1.0.2"):
        await release(world, version)
    listed = await a.versions(app)
    assert [(v.version, v.state, v.rollback) for v in listed] == [
        ("1.0.2", "live", False),
        ("1.0.1", "earlier release", True),
        ("1.0.0", "earlier release", False),
    ]
    with pytest.raises(InvalidInput, match=r"that is the previous release, 1\.0\.1, not 1\.0\.0"):
        await a.rollback(app, "1.0.2", "1.0.0")
    with recording() as log:
        said = await a.rollback(app, "1.0.2", None)
    assert said == "rolled back from 1.0.2 to 1.0.1; 1.0.2 is offline"
    assert apis(log).count(ROLLBACK) == 1
    assert (await a.overview(app)).live_version == "1.0.1"
    assert not any(v.rollback for v in await a.versions(app))  # no two in a row
    with pytest.raises(InvalidState) as err:
        await a.rollback(app, "1.0.1", None)
    assert err.value.code == "CAN_NOT_CONTINUOUS_ROLLBACK"
    # a new release: the one it replaced (1.0.1) is what a rollback brings back
    await release(world, "1.0.3")
    flagged = [v.version for v in await a.versions(app) if v.rollback]
    assert flagged == ["1.0.1"]
    await a.rollback(app, "1.0.3", "1.0.1")
    assert (await a.overview(app)).live_version == "1.0.1"


async def test_rollback_after_a_rollback_and_a_release(world: World) -> None:
    """The previous online version is the one that went offline last, not the highest."""
    a, app = world.adapter, world.app
    await release(world, "1.0.0")
    await release(world, "1.0.1")
    await a.rollback(app, "1.0.1", "1.0.0")
    world.clock.advance(5)
    await release(world, "1.0.2")
    assert [v.version for v in await a.versions(app) if v.rollback] == ["1.0.0"]
    await a.rollback(app, "1.0.2", None)
    assert (await a.overview(app)).live_version == "1.0.0"


async def test_rollback_refusals(world: World) -> None:
    a, app = adapter_of(world), world.app
    await release(world, "1.0.0")
    with pytest.raises(InvalidInput, match="no earlier release"):
        await a.rollback(app, "1.0.0", "0.9.0")
    with pytest.raises(InvalidState) as err:
        await a.rollback(app, "1.0.0", None)
    assert err.value.code == "CAN_NOT_ROLLBACK_WITHOUT_OFFLINE"
    await release(world, "1.0.1")
    await approve(world, "1.0.2")
    await a.gray(app, "1.0.2", 10)
    assert not any(v.rollback for v in await a.versions(app))
    with pytest.raises(InvalidState) as err:
        await a.rollback(app, "1.0.1", None)
    assert err.value.code == "CAN_NOT_ROLLBACK_WITH_GRAY"
    with pytest.raises(InvalidState) as err:
        await a._call(app, ROLLBACK, {"app_version": "1.0.0"})
    assert err.value.code == "CAN_NOT_ROLLBACK_WITHOUT_ONLINE"
    with recording() as log, pytest.raises(InvalidState, match="only the live version"):
        await a.rollback(app, "1.0.0", None)
    assert ROLLBACK not in apis(log)


async def test_lost_rollback_answer_asks_what_is_live(world: World) -> None:
    a, app = world.adapter, world.app
    await release(world, "1.0.0")
    await release(world, "1.0.1")
    world.emulator.inject(ROLLBACK, "malformed")
    with recording() as log:
        said = await a.rollback(app, "1.0.1", None)
    assert "confirmed" in said
    assert apis(log).count(ROLLBACK) == 1 and apis(log)[-1] == LIST_QUERY
    assert log[-1].request["version_status"] == "RELEASE"


async def test_offline(world: World) -> None:
    a, app = adapter_of(world), world.app
    await release(world, "1.0.0")
    await a.upload(app, "1.0.1", "notes")
    with pytest.raises(InvalidState, match="only the live version"):
        await a.offline(app, "1.0.1")
    said = await a.offline(app, "1.0.0")
    assert said == "1.0.0 taken offline: users can no longer open the mini program"
    assert (await a.overview(app)).live_version is None
    status = await a.review_status(app, "1.0.0", "1.0.0")
    assert status.state is ReviewState.UNKNOWN and "taken offline" in status.detail
    assert [(v.version, v.state) for v in await a.versions(app)] == [
        ("1.0.1", "development"),
        ("1.0.0", "offline"),
    ]
    with pytest.raises(InvalidState) as err:
        await a._call(app, OFFLINE, {"app_version": "1.0.0"})
    assert err.value.code == "CAN_NOT_OFFLINE_WITHOUT_ONLINE"
    await release(world, "1.0.2")
    await approve(world, "1.0.3")
    await a.gray(app, "1.0.3", 10)
    with pytest.raises(InvalidState) as err:
        await a.offline(app, "1.0.2")
    assert err.value.code == "CAN_NOT_OFFLINE_WITH_GRAY"


async def test_versions_and_quotas(world: World) -> None:
    a, app = world.adapter, world.app
    assert await a.versions(app) == []
    await release(world, "1.0.0")
    await a.upload(app, "1.0.1", "notes")
    await a.upload(app, "1.0.2", "notes")
    await a.submit(app, "1.0.2", "notes")
    listed = await a.versions(app)
    assert [(v.version, v.state) for v in listed] == [
        ("1.0.2", "in review"),
        ("1.0.1", "development"),
        ("1.0.0", "live"),
    ]
    assert listed[0].description.startswith("notes") and listed[0].created_at is not None
    assert listed[0].created_at.tzinfo is not None
    with recording() as log:
        assert await a.quotas(app) == []
    assert not log


# --------------------------------------------------------------------------- trial QR code


async def test_trial_code_is_a_scannable_png(world: World) -> None:
    a, app = adapter_of(world), world.app
    await a.upload(app, "1.0.0", "notes")
    await a.upload(app, "1.0.1", "notes")
    with recording() as log:
        code = await a.trial_code(app, None)  # the newest in development
    assert code.version == "1.0.1" and code.mime == "image/png" and code.extension == "png"
    assert code.detail == "1.0.1 is now the trial version"
    assert code.url.startswith(world.server.base_url("alipay") + "/_emulator/experience-qr.png?")
    assert sleeps(world) == [3.0]  # packaging takes 3 emulator seconds
    assert apis(log)[-3:] == [EXPERIENCE_QUERY, EXPERIENCE_QUERY, "GET exp_qr_code_url"]
    schema = emulator_of(world)._experience_schema(MINI_APP, "1.0.1")
    expected = io.BytesIO()
    qrcode.make(schema).save(expected, format="PNG")
    assert code.image == expected.getvalue()
    assert Image.open(io.BytesIO(code.image)).size[0] > 100
    again = await a.trial_code(app, "1.0.1")
    assert again.detail == "1.0.1 already was the trial version" and again.image == code.image
    # another version takes over as the trial version
    other = await a.trial_code(app, "1.0.0")
    assert other.version == "1.0.0" and other.image != code.image


async def test_trial_code_refusals_and_bounded_wait(world: World) -> None:
    a, app = adapter_of(world), world.app
    with pytest.raises(NotFound, match="upload one first"):
        await a.trial_code(app, None)
    await release(world, "1.0.0")
    with pytest.raises(InvalidState) as err:
        await a.trial_code(app, "1.0.0")
    assert err.value.code == "CAN_NOT_SET_EXP_WITH_ONLINED_STATUS"
    await a.upload(app, "1.0.1", "notes")
    emulator_of(world).trial_seconds = 1000
    a.settings = a.settings.model_copy(update={"trial_wait_seconds": 7.0})
    with pytest.raises(
        PlatformUnavailable, match=r"still packaging trial version 1\.0\.1 after 7 s"
    ):
        await a.trial_code(app, "1.0.1")
    assert sleeps(world)[-3:] == [3.0, 3.0, 1.0]


async def test_trial_code_tolerates_the_correct_spelling() -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"x" * 20
    ok = {"code": "10000", "msg": "Success"}
    packed = {**ok, "status": "expVersionPackaged", "exp_qr_code_url": "https://cdn.test/qr"}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "cdn.test":
            return httpx.Response(200, content=png, headers={"content-type": "image/png"})
        method = alipay_params(request)["method"]
        return httpx.Response(
            200, text=signed_body(method, packed if method == EXPERIENCE_QUERY else ok)
        )

    adapter = AlipayPlatform(
        make_settings(), {"a": make_app()}, sender=Sender(httpx.MockTransport(handler))
    )
    adapter.sleep = FakeSleep()
    code = await adapter.trial_code("a", "1.0.0")
    assert code.image == png and code.url == "https://cdn.test/qr"


# --------------------------------------------------------------------------- faults


async def test_rate_limit_is_a_quota_error_not_retried(world: World) -> None:
    a, app = world.adapter, world.app
    await a.upload(app, "1.0.0", "notes")
    for api, run in (
        (DETAIL_QUERY, lambda: a.review_status(app, "1.0.0", "")),
        (AUDIT_APPLY, lambda: a.submit(app, "1.0.0", "notes")),
    ):
        world.emulator.inject(api, "rate_limit")
        with recording() as log, pytest.raises(QuotaExceeded) as err:
            await run()
        assert err.value.code == "SYSTEM_LIMIT" and apis(log).count(api) == 1
        assert err.value.platform_message == "调用频率超过限制，请稍后再试"
    assert platform_version(world, "1.0.0")["status"] == "INIT"


async def test_malformed_and_unsigned_answers(world: World) -> None:
    a, app = world.adapter, world.app
    await a.upload(app, "1.0.0", "notes")
    world.emulator.inject(DETAIL_QUERY, "malformed")
    with recording() as log:  # cut short: read again
        assert (await a.review_status(app, "1.0.0", "")).state is ReviewState.NOT_SUBMITTED
    assert apis(log) == [DETAIL_QUERY, DETAIL_QUERY] and sleeps(world) == [0.5]
    world.emulator.inject(DETAIL_QUERY, "unsigned")
    with pytest.raises(BadResponse, match="carries no signature"):
        await a.review_status(app, "1.0.0", "")
    for fault in ("malformed", "unsigned"):  # a change: asked, never repeated
        world.emulator.inject(AUDIT_APPLY, fault)
        with recording() as log:
            sub = await a.submit(app, "1.0.0", "notes")
        assert "confirmed" in sub.detail and apis(log).count(AUDIT_APPLY) == 1
        await a.withdraw(app, "1.0.0", sub.ref)
    # a refusal without its signature is still the refusal
    await a.submit(app, "1.0.0", "notes")
    await a.upload(app, "1.0.1", "notes")
    world.emulator.inject(AUDIT_APPLY, "unsigned")
    with pytest.raises(AlreadyInReview):
        await a.submit(app, "1.0.1", "notes")


# --------------------------------------------------------------------------- after a lost answer


def cut_short(body: bytes) -> bytes:
    """The answer's first half: not JSON, so whether the change happened is unknown."""
    return body[: len(body) // 2]


async def test_lost_submit_answer_after_a_quick_decision_is_confirmed(world: World) -> None:
    """Alipay may decide a review before miniship asks: any status a submission leads to
    counts, and the approval is kept (nothing is sent back to development)."""
    a, app = world.adapter, world.app
    await a.upload(app, "1.0.0", "notes")

    def decided_meanwhile(body: bytes) -> bytes:
        world.decide_reviews()
        return cut_short(body)

    adapter = sibling(world, Tamper(response=decided_meanwhile, only=method_is(AUDIT_APPLY)))
    with recording() as log:
        sub = await adapter.submit(app, "1.0.0", "notes")
    await adapter.sender.aclose()
    assert sub.detail == f"submitted for review ({CONFIRMED})"
    assert apis(log).count(AUDIT_APPLY) == 1 and AUDITED_CANCEL not in apis(log)
    assert status_on_platform(world, "1.0.0") == "WAIT_RELEASE"


async def test_lost_submit_answer_is_not_taken_for_an_older_submission(world: World) -> None:
    a, app = world.adapter, world.app
    await approve(world, notes="first try #reject")
    world.clock.advance(3600)
    # Alipay refuses the resubmission (the rejection blocks it), and that answer is lost
    adapter = sibling(world, Tamper(response=cut_short, only=method_is(AUDIT_APPLY)))
    with pytest.raises(PlatformUnavailable, match="no sign of the submission") as err:
        await adapter.submit(app, "1.0.0", "fixed what the reviewers found")
    await adapter.sender.aclose()
    assert not isinstance(err.value, OutcomeUnknown) and "try again" in err.value.explanation
    assert status_on_platform(world, "1.0.0") == "AUDIT_REJECT"
    again = await a.submit(app, "1.0.0", "fixed what the reviewers found")
    assert "1.0.0 (rejected) went back to development" in again.detail


async def test_lost_submit_answer_without_gmt_apply_audit_is_confirmed() -> None:
    """The submission time is not always given; then the status alone tells."""
    rejected = {**DETAIL_OK, "status": "AUDIT_REJECT", "reject_reason": "名称与内容不符"}

    def answer(method: str) -> httpx.Response:
        if method == AUDIT_APPLY:
            return httpx.Response(200, text="<html>504 gateway time-out</html>")
        return httpx.Response(200, text=signed_body(method, rejected))

    adapter = mocked(answer)
    sub = await adapter.submit("a", "1.0.0", "notes")
    assert sub.detail == f"submitted for review ({CONFIRMED})"
    await adapter.aclose()


async def test_confirmation_reads_are_retried_with_back_off(world: World) -> None:
    a, app = world.adapter, world.app
    await a.upload(app, "1.0.0", "notes")
    world.emulator.inject(AUDIT_APPLY, "malformed")
    world.emulator.inject(DETAIL_QUERY, "busy")  # the outage that lost the answer goes on
    sub = await a.submit(app, "1.0.0", "notes")
    assert sub.detail == f"submitted for review ({CONFIRMED})"
    assert sleeps(world) == [0.5]


async def test_lost_upload_answer_while_the_build_is_queued(world: World) -> None:
    emulator_of(world).queue_seconds = 5  # build.query does not know the build meanwhile
    adapter = sibling(world, Tamper(response=garble, only=method_is(UPLOAD)))
    adapter.sleep = FakeSleep(world.clock)
    with recording() as log:
        result = await adapter.upload(world.app, "1.0.0", "notes")
    await adapter.sender.aclose()
    assert result.detail == f"built in 0 s ({CONFIRMED})"
    assert apis(log) == [UPLOAD, BUILD_QUERY, BUILD_QUERY, BUILD_QUERY]
    assert log[1].answer["sub_code"] == "BUILD_VERSION_NOT_EXISTED"


async def test_minidev_stopped_while_alipay_builds_is_confirmed(
    minidev: Minidev, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = cli.run
    stopped = PlatformUnavailable(
        "alipay", "", "", "minidev did not finish within 600 s and was stopped."
    )

    async def upload_then_stop(tool: cli.Tool, args: list[str], **options: Any) -> str:
        await real(tool, args, **options)  # the upload reached Alipay …
        platform_version(world, "1.0.0")["built_at"] = world.clock() + 5  # … still building
        raise stopped

    monkeypatch.setattr(cli, "run", upload_then_stop)
    result = await minidev.adapter.upload("own", "1.0.0", "notes")
    assert result.detail == f"uploaded with minidev ({CONFIRMED})"

    async def stop(tool: cli.Tool, args: list[str], **options: Any) -> str:
        raise stopped  # nothing reached Alipay

    monkeypatch.setattr(cli, "run", stop)
    a = minidev.adapter
    a.settings = a.settings.model_copy(update={"build_wait_seconds": 6.0})
    with pytest.raises(PlatformUnavailable, match="did not happen") as err:
        await a.upload("own", "1.0.1", "notes")
    assert not isinstance(err.value, OutcomeUnknown)


# --------------------------------------------------------------------------- builds (more)


async def test_a_build_alipay_cannot_report_keeps_the_upload(world: World) -> None:
    a, app = adapter_of(world), world.app
    emulator = emulator_of(world)
    emulator.queue_seconds = 5  # queued: build.query answers BUILD_VERSION_NOT_EXISTED
    a.settings = a.settings.model_copy(update={"poll_seconds": 2.0})
    with recording() as log:
        result = await a.upload(app, "1.0.0", "notes")
    assert result.detail == (
        "uploaded; Alipay could not say how the build is going (BUILD_VERSION_NOT_EXISTED) — "
        "`status` will show when it is ready to submit"
    )
    assert log[0].answer["build_status"] == "0" and log[0].answer["need_rotation"] == "true"
    world.clock.advance(10)
    assert (await a.review_status(app, "1.0.0", "")).state is ReviewState.NOT_SUBMITTED
    # any refusal while asking: the upload still stands
    emulator.queue_seconds, emulator.build_seconds = 0, 5
    world.emulator.inject(BUILD_QUERY, "rate_limit")
    result = await a.upload(app, "1.0.1", "notes")
    assert "could not say how the build is going (SYSTEM_LIMIT)" in result.detail


async def test_a_failed_build_is_a_typed_error(world: World) -> None:
    a, app = world.adapter, world.app
    emulator_of(world).build_seconds = 4
    world.emulator.inject(UPLOAD, "build_failed")
    with pytest.raises(InvalidInput) as err:
        await a.upload(app, "1.0.0", "notes")
    assert err.value.code == "BUILD_FAILED"
    assert "failed (build_status 3, create_status 3)" in err.value.explanation
    status = await a.review_status(app, "1.0.0", "")
    assert status.state is ReviewState.UNKNOWN
    assert status.detail == "Alipay's build of it failed (build_status 3); upload a higher version"
    assert (await a.upload(app, "1.0.1", "notes")).detail.startswith("built in")


async def test_a_build_is_done_only_when_alipay_says_so() -> None:
    """``need_rotation`` left out while building is not "built" (the rule is INFERRED)."""
    states = iter(
        [{"build_status": "1"}, {"build_status": "2", "create_status": "6"}],
    )
    ok = {"code": "10000", "msg": "Success"}

    def answer(method: str) -> httpx.Response:
        inner = {**ok, "build_status": "0"} if method == UPLOAD else {**ok, **next(states)}
        return httpx.Response(200, text=signed_body(method, inner))

    adapter = mocked(answer)
    adapter.sleep = FakeSleep()
    assert (await adapter.upload("a", "1.0.0", "notes")).detail == "built in 6 s"
    await adapter.aclose()


# --------------------------------------------------------------------------- BASE_PROMOTE


async def test_base_promote_reviews(world: World) -> None:
    a, app = world.adapter, world.app
    await a.upload(app, "1.0.0", "notes")
    await a.submit(app, "1.0.0", "notes #base")
    world.decide_reviews()
    status = await a.review_status(app, "1.0.0", "1.0.0")
    assert status.state is ReviewState.APPROVED and "(BASE_AUDIT_PASS)" in status.detail
    assert "the marketing review says: 推广素材与服务内容不符" in status.detail
    assert [v.state for v in await a.versions(app)] == ["approved"]
    assert "published 1.0.0" in await a.publish(app, "1.0.0", "1.0.0")

    # PROMOTE_AUDIT_REJECT (UNCERTAIN) reads the same way
    await a.upload(app, "1.0.1", "notes")
    await a.submit(app, "1.0.1", "notes #promote")
    world.decide_reviews()
    status = await a.review_status(app, "1.0.1", "1.0.1")
    assert status.state is ReviewState.APPROVED and "(PROMOTE_AUDIT_REJECT)" in status.detail
    overview = await a.overview(app)
    assert overview.review is not None and overview.review.version == "1.0.1"
    platform_version(world, "1.0.1")["can_release"] = "false"
    with recording() as log, pytest.raises(InvalidState, match="allows to go online"):
        await a.publish(app, "1.0.1", "1.0.1")
    assert ONLINE not in apis(log)
    with pytest.raises(InvalidState) as err:
        await adapter_of(world)._call(app, ONLINE, {"app_version": "1.0.1"})
    assert err.value.code == "CAN_NOT_ONLINE_NO_PROMOTE"

    # a new submission supersedes it, and a refusal at admission has its reason in a record
    await a.upload(app, "1.0.2", "notes")
    sub = await a.submit(app, "1.0.2", "notes #base #reject")
    assert "1.0.1 (approved but not published) went back to development" in sub.detail
    world.decide_reviews()
    assert not platform_version(world, "1.0.2")["reject_reason"]
    rejected = await a.review_status(app, "1.0.2", sub.ref)
    assert rejected.state is ReviewState.REJECTED
    assert rejected.reason.startswith("1: The version notes ask for a rejection")


async def test_rejection_reason_falls_back_to_the_audit_verdicts() -> None:
    detail = {**DETAIL_OK, "status": "AUDIT_REJECT", "promote_audit": "REJECT"}
    adapter = mocked(lambda method: httpx.Response(200, text=signed_body(method, detail)))
    status = await adapter.review_status("a", "1.0.0", "1.0.0")
    assert status.reason == "Alipay's marketing review refused it"
    await adapter.aclose()


async def test_a_list_query_refusing_promote_audit_reject_is_asked_without_it() -> None:
    """Whether Alipay knows PROMOTE_AUDIT_REJECT is UNCERTAIN: both readings work."""
    asked: list[str] = []
    ok = {"code": "10000", "msg": "Success"}

    def handler(request: httpx.Request) -> httpx.Response:
        method = alipay_params(request)["method"]
        biz = json.loads(dict(httpx.QueryParams(request.read().decode()))["biz_content"])
        inner: dict[str, Any] = {**DETAIL_OK, "status": "INIT"}
        if method == LIST_QUERY:
            asked.append(biz["version_status"])
            inner = {
                **ok,
                "app_version_infos": [{"app_version": "1.0.0", "version_status": "INIT"}],
            }
            if "PROMOTE_AUDIT_REJECT" in biz["version_status"]:
                inner = {
                    "code": "40004",
                    "msg": "Business Failed",
                    "sub_code": "INVALID_PARAMS",
                    "sub_msg": "参数有误",
                }
        return httpx.Response(200, text=signed_body(method, inner))

    adapter = AlipayPlatform(
        make_settings(), {"a": make_app()}, sender=Sender(httpx.MockTransport(handler))
    )
    assert (await adapter.overview("a")).trial_version == "1.0.0"
    assert (await adapter.overview("a")).trial_version == "1.0.0"
    assert ["PROMOTE_AUDIT_REJECT" in statuses for statuses in asked] == [True, False, False]
    await adapter.sender.aclose()


# --------------------------------------------------------------------------- gray share


async def test_gray_share_miniship_set_is_shown_when_alipay_omits_it(world: World) -> None:
    a, app = adapter_of(world), world.app
    emulator_of(world).report_gray_strategy = False
    await approve(world)
    await a.gray(app, "1.0.0", 30)
    assert (await a.overview(app)).gray == GrayPlan(
        30, "1.0.0", "running; Alipay does not report the share, this is the one miniship set"
    )
    assert "30% of users" in (await a.review_status(app, "1.0.0", "1.0.0")).detail
    restarted = AlipayPlatform(a.settings, a.apps, sender=a.sender, clock=world.clock)
    assert (await restarted.overview(app)).gray == GrayPlan(None, "1.0.0", "running")


async def test_gray_share_is_checked_before_sending(world: World) -> None:
    a, app = world.adapter, world.app
    await approve(world)
    await a.gray(app, "1.0.0", 30)
    with recording() as log:
        with pytest.raises(InvalidState) as err:
            await a.gray(app, "1.0.0", 10)
        assert await a.gray(app, "1.0.0", 30) == "1.0.0 is already released to 30% of users (p30)"
    assert err.value.code == "GRAY_STRATEGY_NOT_ALLOW_REDUCE"
    assert "can only grow" in err.value.explanation and GRAY_ONLINE not in apis(log)
    emulator_of(world).report_gray_strategy = False  # then the share miniship set tells
    with recording() as log, pytest.raises(InvalidState):
        await a.gray(app, "1.0.0", 10)
    assert GRAY_ONLINE not in apis(log)
    assert await a.gray(app, "1.0.0", 50) == "1.0.0 is released to 50% of users (p50)"


# --------------------------------------------------------------------------- tokens kept


class TokenVault:
    """A :class:`platforms.base.CredentialVault` for Alipay only, by name."""

    def __init__(self, values: dict[str, str] | None = None) -> None:
        self.values = dict(values or {})

    async def load(self, platform: str, name: str) -> SecretStr | None:
        assert platform == "alipay"
        value = self.values.get(name)
        return SecretStr(value) if value else None

    async def save(self, platform: str, name: str, value: SecretStr) -> None:
        assert platform == "alipay"
        self.values[name] = value.get_secret_value()


TOKEN_NAMES = (f"app_auth_token:{MINI_APP}", f"app_refresh_token:{MINI_APP}")


async def test_renewed_tokens_are_kept_for_a_restart(world: World) -> None:
    a, app = adapter_of(world), world.app
    emulator = emulator_of(world)
    emulator.revoke_old_grants = True  # a renewal retires the tokens it replaces
    a.vault = vault = TokenVault()
    emulator.expire_tokens()
    await a.upload(app, "1.0.0", "notes")
    caller = a._callers[app]
    assert [vault.values.get(name) for name in TOKEN_NAMES] == [
        caller.token,
        caller.refresh_token,
    ]
    # a restart: miniship.toml still holds the first tokens, which Alipay revoked
    emulator.expire_tokens()
    restarted = AlipayPlatform(a.settings, a.apps, sender=a.sender, clock=world.clock)
    restarted.vault = vault
    with recording() as log:
        assert (await restarted.review_status(app, "1.0.0", "")).state is ReviewState.NOT_SUBMITTED
    assert apis(log) == [DETAIL_QUERY, AUTH_GRANT, DETAIL_QUERY]
    forgetful = AlipayPlatform(a.settings, a.apps, sender=a.sender, clock=world.clock)
    with pytest.raises(AuthError) as err:
        await forgetful.review_status(app, "1.0.0", "")
    assert err.value.code == "aop.invalid-app-auth-token"


async def test_a_kept_token_alipay_refuses_gives_way_to_the_configured_one(world: World) -> None:
    a, app = adapter_of(world), world.app
    emulator = emulator_of(world)
    emulator.revoke_old_grants = True
    cfg = a.apps[app]
    assert cfg.app_auth_token is not None and cfg.app_refresh_token is not None
    old = [cfg.app_auth_token.get_secret_value(), cfg.app_refresh_token.get_secret_value()]
    vault = TokenVault(dict(zip(TOKEN_NAMES, old, strict=True)))
    grant = emulator._issue_grant(MINI_APP)  # the merchant authorised the app again
    fresh = cfg.model_copy(
        update={
            "app_auth_token": SecretStr(grant["app_auth_token"]),
            "app_refresh_token": SecretStr(grant["app_refresh_token"]),
        }
    )
    adapter = AlipayPlatform(a.settings, {app: fresh}, sender=a.sender, clock=world.clock)
    adapter.vault = vault
    with recording() as log:
        await adapter.upload(app, "1.0.0", "notes")
    assert apis(log) == [UPLOAD, UPLOAD]
    assert log[0].answer["sub_code"] == "aop.invalid-app-auth-token"
    assert vault.values[TOKEN_NAMES[0]] == grant["app_auth_token"]


# --------------------------------------------------------------------------- secrets (more)


async def test_minidev_output_never_shows_the_tool_key(
    minidev: Minidev, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_MINIDEV_ECHO", "1")
    a = minidev.adapter
    tool_key = a.apps["own"].tool_private_key
    assert tool_key is not None
    lines = [line for line in tool_key.get_secret_value().splitlines() if "-----" not in line]
    with recording() as log, pytest.raises(CliFailed) as err:
        await a.upload("own", "1.0.0", "notes")
    assert "could not upload" in err.value.explanation and "***" in err.value.output
    for text in (str(err.value), err.value.output, repr(log)):
        for line in lines:
            assert line not in text
    assert scrub_message('{"privateKey":"MIIEv"}') == '{"privateKey":"***"}'


def test_caller_repr_shows_no_secret() -> None:
    adapter = AlipayPlatform(make_settings(), {"a": make_app()})
    text = repr(adapter._callers["a"])
    assert "202405BBtoken" not in text and "RSAPrivateKey" not in text
    assert "2021000000000001" in text


def test_an_invalid_section_is_reported_without_its_values() -> None:
    section = {"app_id": "2021", "app_auth_token": "202405BBtyped-in", "memo": "m" * 501}
    with pytest.raises(ConfigError) as err:
        AlipayPlatform(make_settings(), {"a": section})
    text = str(err.value)
    assert "typed-in" not in text and "m" * 501 not in text
    assert "app_auth_token:" in text and "env:VARIABLE" in text and "memo:" in text


async def test_an_unsigned_refusal_is_not_acted_on(world: World) -> None:
    a, app = world.adapter, world.app
    await approve(world)
    await a.upload(app, "1.0.1", "notes")
    world.emulator.inject(AUDIT_APPLY, "unsigned")
    with recording() as log, pytest.raises(AlreadyInReview) as err:
        await a.submit(app, "1.0.1", "notes")
    assert "carried no signature" in err.value.explanation
    assert AUDITED_CANCEL not in apis(log) and LIST_QUERY not in apis(log)
    assert status_on_platform(world, "1.0.0") == "WAIT_RELEASE"
    sub = await a.submit(app, "1.0.1", "notes")  # a signed refusal does clear the way
    assert "1.0.0 (approved but not published) went back to development" in sub.detail


def test_self_invoke_is_recognised_by_its_words() -> None:
    error = error_for("40006", "isv.some-other-code", "此用户不允许自调用")
    assert isinstance(error, AuthError) and "set app_auth_token" in error.explanation


# --------------------------------------------------------------------------- pushes (V2)


async def test_a_push_signed_by_the_v2_rule_is_read(world: World) -> None:
    emulator = emulator_of(world)
    emulator.push_url = "http://127.0.0.1:9/push"  # due_pushes only builds them
    emulator.notify_rule = "V2"
    await approve(world)
    (push,) = emulator.due_pushes()
    params = dict(parse_qsl(push.body.decode("ascii")))
    public = alipay_sign.load_public_key(emulator.snapshot()["platform_key"]["public_key"])
    assert not alipay_sign.verify(alipay_sign.notify_content(params), params["sign"], public)
    events = await world.adapter.read_push(PushRequest({}, {}, push.body, "form"))
    assert [(e.kind, e.app) for e in events] == [("approved", world.app)]
    forged = urlencode({**params, "msg_method": AUDIT_REJECTED}).encode("ascii")
    with pytest.raises(PushRejected):
        await world.adapter.read_push(PushRequest({}, {}, forged, "form"))


# --------------------------------------------------------------------------- rollback (more)


async def test_a_rollback_alipay_would_refuse_is_not_sent(world: World) -> None:
    a, app = world.adapter, world.app
    await release(world, "1.0.0")
    await release(world, "1.0.1")
    await approve(world, "1.0.2")
    await a.gray(app, "1.0.2", 10)
    with recording() as log, pytest.raises(InvalidState) as err:
        await a.rollback(app, "1.0.1", None)
    assert err.value.code == "CAN_NOT_ROLLBACK_WITH_GRAY" and ROLLBACK not in apis(log)
    assert "end it (`gray … stop`)" in err.value.explanation


@pytest.mark.parametrize("listed", [3, 20])
async def test_a_rollback_to_a_version_miniship_cannot_be_sure_of_is_sent(listed: int) -> None:
    """Without ``gmt_offline`` (3 versions), or with a list Alipay may have cut (20), the
    previous release is a guess: an explicit ``to`` is sent, and Alipay decides."""
    ok = {"code": "10000", "msg": "Success"}
    infos = [{"app_version": "1.0.30", "version_status": "RELEASE"}]
    infos += [{"app_version": f"1.0.{n}", "version_status": "OFFLINE"} for n in (29, 28)]
    infos += [{"app_version": f"1.0.{n}", "version_status": "INIT"} for n in range(listed - 3)]
    answers: dict[str, dict[str, Any]] = {
        LIST_QUERY: {**ok, "app_version_infos": infos},
        DETAIL_QUERY: {**DETAIL_OK, "status": "RELEASE"},  # no gmt_offline
        ROLLBACK: ok,
    }
    if listed == 20:  # gmt_offline given, but the list may miss versions
        answers[DETAIL_QUERY] = {**answers[DETAIL_QUERY], "gmt_offline": "2026-01-01 10:00:00"}
    adapter = mocked(lambda method: httpx.Response(200, text=signed_body(method, answers[method])))
    with recording() as log:
        said = await adapter.rollback("a", "1.0.30", "1.0.28")
    assert apis(log).count(ROLLBACK) == 1
    assert said == (
        "rolled back from 1.0.30 to the version live before it (Alipay picks it; `versions` "
        "shows which); 1.0.30 is offline"
    )
    await adapter.aclose()


# --------------------------------------------------------------------------- emulator rules


def test_the_emulator_counts_version_desc_on_its_own() -> None:
    """Its own code, not the adapter's: the two readings of "Chinese counts 2" agree."""
    assert not hasattr(alipay_emulator, "version_desc_length")
    for text in ("abc", "修复问题", "修复，ok", "한국어 テスト", "x" * 40, "Ｆｕｌｌ"):
        assert alipay_emulator._desc_length(text) == version_desc_length(text), text


# --------------------------------------------------------------------------- rejection images

SHOT = "https://mdn.alipayobjects.com/audit/{}.png"


async def test_review_records_images_are_links_only() -> None:
    """audit_images and memo_image_list of both records (an object, or the same as JSON
    text) become URL-only images; what is not an http(s) link is dropped; nothing is fetched."""
    base = {
        "audit_images": [
            SHOT.format(1),
            " " + SHOT.format(2) + " ",
            "ftp://mdn.alipayobjects.com/3.png",
            "javascript:alert(1)",
            "https://",
            "https://mdn.alipayobjects.com/a b.png",
            "https://mdn.alipayobjects.com/x.png|evil",
            "//mdn.alipayobjects.com/4.png",
            42,
            None,
        ],
        "memos": [
            {"memo": " 首页与类目不符 ", "memo_image_list": [SHOT.format(5), SHOT.format(1)]},
            {"memo": "", "memo_image_list": ["http://img.example.com/6.jpeg?x=1"]},
            "not a memo",
        ],
    }
    promote = json.dumps({"audit_images": [SHOT.format(7)], "memos": []})
    detail = {
        **DETAIL_OK,
        "status": "AUDIT_REJECT",
        "reject_reason": "小程序名称与内容不符",
        "base_audit_record": base,
        "promote_audit_record": promote,
        "screen_shot_list": [SHOT.format(99)],  # the app's own screenshots: not evidence
    }
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        method = alipay_params(request)["method"]
        return httpx.Response(200, text=signed_body(method, detail))

    adapter = AlipayPlatform(
        make_settings(), {"a": make_app()}, sender=Sender(httpx.MockTransport(handler))
    )
    status = await adapter.review_status("a", "1.0.0", "1.0.0")
    expected = [SHOT.format(1), SHOT.format(2), SHOT.format(5), "http://img.example.com/6.jpeg?x=1"]
    assert status.state is ReviewState.REJECTED and status.reason == "小程序名称与内容不符"
    assert status.screenshots == (*expected, SHOT.format(7))
    images = await adapter.review_images("a", "1.0.0", "1.0.0")
    assert len(images) == REVIEW_IMAGES_MAX
    assert [i.url for i in images] == [*expected, SHOT.format(7)]
    assert all(isinstance(i, ReviewImage) and i.image == b"" and i.mime == "" for i in images)
    assert [i.source for i in images] == [i.url for i in images]
    assert [i.extension for i in images] == ["png", "png", "png", "jpg", "png"]
    assert images[0].title == "Alipay admission review image 1 of 5"
    assert images[2].title == "Alipay admission review image 3 of 5: 首页与类目不符"
    assert images[4].title == "Alipay marketing review image 5 of 5"
    assert {r.url.path for r in seen} == {"/gateway.do"}  # no image was fetched
    await adapter.aclose()


@pytest.mark.parametrize(
    "records",
    [
        {},
        {"base_audit_record": "not json"},
        {"base_audit_record": {"audit_images": "https://x.example.com/1.png", "memos": {}}},
        {"base_audit_record": [], "promote_audit_record": None},
    ],
)
async def test_no_usable_records_mean_no_images(records: dict[str, Any]) -> None:
    detail = {**DETAIL_OK, "status": "AUDIT_REJECT", "reject_reason": "r", **records}
    adapter = mocked(lambda method: httpx.Response(200, text=signed_body(method, detail)))
    status = await adapter.review_status("a", "1.0.0", "1.0.0")
    assert status.state is ReviewState.REJECTED and status.screenshots == ()
    assert await adapter.review_images("a", "1.0.0", "1.0.0") == []
    await adapter.aclose()


async def test_a_rejection_in_the_emulator_shows_images_the_adapter_does_not_fetch(
    world: World,
) -> None:
    a, app = adapter_of(world), world.app
    sent = requests_to(a)
    await a.upload(app, "1.0.0", "notes")
    await a.submit(app, "1.0.0", "notes #reject")
    assert await a.review_images(app, "1.0.0", "1.0.0") == []  # still in review
    world.decide_reviews()
    status = await a.review_status(app, "1.0.0", "1.0.0")
    images = await a.review_images(app, "1.0.0", "1.0.0")
    assert status.state is ReviewState.REJECTED and len(status.screenshots) == 2
    assert [i.url for i in images] == list(status.screenshots)
    assert all(i.image == b"" and i.url.startswith(world.server.base_url("alipay")) for i in images)
    assert images[1].title.startswith("Alipay admission review image 2 of 2: 1: The version")
    assert {r.url.path.rsplit("/", 1)[-1] for r in sent} == {"gateway.do"}
    # the emulator serves them: real PNGs, and nothing for what is not a rejection's image
    async with httpx.AsyncClient(timeout=2.0) as client:
        for image in images:
            answer = await client.get(image.url)
            assert answer.status_code == 200 and answer.headers["content-type"] == "image/png"
            assert Image.open(io.BytesIO(answer.content)).format == "PNG"
        third = await client.get(images[0].url.replace("n=1", "n=3"))
        assert third.status_code == 404
        other = await client.get(images[0].url.replace("app_id=", "app_id=9"))
        assert other.status_code == 404
        await a.submit(app, "1.0.0", "fixed what the reviewers found")  # back in review
        assert (await client.get(images[0].url)).status_code == 404
    assert await a.review_images(app, "1.0.0", "1.0.0") == []
    assert (await a.review_status(app, "1.0.0", "1.0.0")).screenshots == ()


async def test_review_images_under_base_promote(world: World) -> None:
    a, app = adapter_of(world), world.app
    await a.upload(app, "1.0.0", "notes")
    await a.submit(app, "1.0.0", "notes #base")  # approved, marketing refused: no images
    world.decide_reviews()
    assert (await a.review_status(app, "1.0.0", "1.0.0")).state is ReviewState.APPROVED
    assert await a.review_images(app, "1.0.0", "1.0.0") == []
    await a.upload(app, "1.0.1", "notes")
    await a.submit(app, "1.0.1", "notes #base #reject")  # refused at admission
    world.decide_reviews()
    record = platform_version(world, "1.0.1")["base_audit_record"]
    assert len(record["audit_images"]) == 1 and len(record["memos"][0]["memo_image_list"]) == 1
    images = await a.review_images(app, "1.0.1", "1.0.1")
    assert len(images) == 2 and all(i.url and not i.image for i in images)


async def test_review_images_of_an_unknown_version_or_app(world: World) -> None:
    a = adapter_of(world)
    assert await a.review_images(world.app, "9.9.9", "9.9.9") == []
    with pytest.raises(ConfigError, match=r"\[apps\.nope\.alipay\]"):
        await a.review_images("nope", "1.0.0", "1.0.0")


def test_review_image_extension() -> None:
    assert ReviewImage(url="https://a.example.com/p/x.JPEG?sig=1#f").extension == "jpg"
    assert ReviewImage(url="https://a.example.com/p/x").extension == "img"
    assert ReviewImage(url="").extension == "img"
    assert ReviewImage(b"x", "image/gif", url="https://a.example.com/x.png").extension == "gif"
