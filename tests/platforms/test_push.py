"""Push groundwork: WeChat message crypto, Alipay notification signatures, PushEvent mapping.

Vectors and payloads come from the fact sheets: wechat-api.md §8.5 (official and
self-generated crypto vectors), §7 and §3.1 (decrypted events), alipay-api.md §1.9 and §4.
"""

from __future__ import annotations

import base64
import json
import os
from datetime import UTC, datetime
from urllib.parse import parse_qsl

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from platforms.alipay import sign as alipay_sign
from platforms.push import (
    PUSH_SKEW,
    PUSH_WINDOW,
    PushEvent,
    PushRejected,
    PushStale,
    alipay_events,
    check_fresh,
    push_digest,
    wechat_events,
)
from platforms.wechat.crypto import WeChatCrypto, parse_xml

TOKEN = "AAAAA"
AES_KEY = "A" * 43
COMPONENT_APPID = "wx134c8103faa5a59e"

# --- official worked example (message_push.html) ---------------------------------------

OFFICIAL_TIMESTAMP = "1715943329"
OFFICIAL_NONCE = "1590219412"
OFFICIAL_SIGNATURE = "cc0c594499c1634947d5b502f158ee518947db27"
OFFICIAL_MSG_SIGNATURE = "6c12a4205838198b8fa631b3220723bb07f1015c"
OFFICIAL_ENCRYPT = (
    "D7yzvUNAL930rd28wf21s4hvXhz0L6Uit/p2Di6C5DHyYGpEgdBRnKjBec34JwoQXicwaZC7fOVihW80F4Vtsdv"
    "E//1vr7oAbqjDv8KenVp+ajKYpJnyQ4zMRhIC+a31fCVOMC03FfzV/QuC94kBP55a+Za3sJgvAn+ZbsNqZI5Dky"
    "uzkhQN8OBqCzFhizGmy0xpM0MEA4agpvE+RuNO1rhHTtuJB5yltw1FiYzecSXJ+y/D2r81VkRn2eYjh2ltsoyfb"
    "DR7Is6ookXIFxTfyeNyeHxMeT4KN5WpCDmSbTcUYrbBUlkGLJ9n/rU8YOywma6G7aTb7KZKOqCxgfoUlYEZPk4F"
    "UL/TK7ShriFDMVCLyjQJ15Ob++agDWtcxhfUfe6HIoIpRW8mKNBQiY/Jd1svvuskA1wLef1RTtzKfMpagSCX/la"
    "ZINmdnX4zrF6kIaR9P4xQrWXbsTFHTYe0Mg=="
)
OFFICIAL_MSG = (
    b"<xml><ToUserName><![CDATA[gh_97417a04a28d]]></ToUserName>\n"
    b"<FromUserName><![CDATA[o9AgO5Kd5ggOC-bXrbNODIiE3bGY]]></FromUserName>\n"
    b"<CreateTime>1715943329</CreateTime>\n"
    b"<MsgType><![CDATA[event]]></MsgType>\n"
    b"<Event><![CDATA[debug_demo]]></Event>\n"
    b"<debug_str><![CDATA[hello world]]></debug_str>\n"
    b"</xml>"
)
OFFICIAL_ENVELOPE = (
    "<xml><ToUserName><![CDATA[gh_97417a04a28d]]></ToUserName>"
    f"<Encrypt><![CDATA[{OFFICIAL_ENCRYPT}]]></Encrypt></xml>"
).encode()

REPLY_MSG = b"<xml><demo_resp>[CDATA[good luck]]</demo_resp></xml>"
REPLY_RANDOM = b"999951349e8ee746"
REPLY_ENCRYPT = (
    "hE8R6mGXHkJJjU72KxzKUd1GEkKJaEZq7vRL8XgK3o+00k8JGq6+pZJUIlTSyhsX+bxIBQ72g3GyvDdIZcr6+3HA"
    "ZbSvPT9t/o11MI7d6WELwqrGd7jMnV0zv3Zc9Nq7"
)
REPLY_TIMESTAMP = "1713424427"
REPLY_NONCE = "415670741"
REPLY_MSG_SIGNATURE = "03e0812039325c2712ef5f0f980fd14c70d6e307"

# --- self-generated weapp_audit_success vector --------------------------------------------

AUDIT_SUCCESS_XML = (
    "<xml><ToUserName><![CDATA[gh_fb9688c2a4b2]]></ToUserName>"
    "<FromUserName><![CDATA[od1P50M-fNQI5Gcq-trm4a7apsU8]]></FromUserName>"
    "<CreateTime>1488856741</CreateTime><MsgType><![CDATA[event]]></MsgType>"
    "<Event><![CDATA[weapp_audit_success]]></Event><SuccTime>1488856741</SuccTime></xml>"
)
AUDIT_SUCCESS_ENCRYPT = (
    "uMMzGtqcnpOzXOYBwDQNrY4VGBSTMZLIOS943Qol251cnxZTrDbS/KGSToqXctBulfcnlTgmvl3LJ2227k6a/vW8"
    "bTKVeFM4nFZj0pZBHROe2ugCthDSxuxaLJae4SMwFrXKVMGVx06Ii4kC0NPtBY7DP/WswqOtBE5D3SfBBobsKt+h"
    "seIZEH+7zMwKHqa+Pd4p2GMRhbNzxUgl3tQUKacn3X7TPs1ueOyXEMGDIw1fBqfI2fQOJu2OCNeK5uXvG5tAxdYF"
    "7gtTXlTL51iRm5vL4xU4q4Fq2cjJud7e25yLdwJzY2SO3E038t3w6gD4CnUqtoigIvZ41ARqRxCsjMhBU4C3UJRB"
    "mDZSe6jcMGfugroGjSPWmaH6uw8CINRXlURyr1itGgz80h/qfpS+uVjJkyzDK8XE338IiReJhCI="
)
AUDIT_SUCCESS_MSG_SIGNATURE = "cae417fac12b960f56e3fe6702b1cd9a977d2f65"
AUDIT_SUCCESS_SIGNATURE = "89b8a746f911edc5ab9dc8ae4925bc103f16c7f0"

# --- §7 decrypted examples --------------------------------------------------------------

AUDIT_FAIL_XML = (
    "<xml><ToUserName><![CDATA[gh_fb9688c2a4b2]]></ToUserName>"
    "<FromUserName><![CDATA[od1P50M-fNQI5Gcq-trm4a7apsU8]]></FromUserName>\n"
    "<CreateTime>1488856591</CreateTime><MsgType><![CDATA[event]]></MsgType>"
    "<Event><![CDATA[weapp_audit_fail]]></Event>\n"
    '<Reason><![CDATA[1:账号信息不符合规范:<br>(1):包含色情因素<br>2:服务类目"金融业-保险_"'
    "与你提交代码审核时设置的功能页面内容不一致:<br>]]></Reason>\n"
    "<FailTime>1488856591</FailTime><ScreenShot>xxx|yyy|zzz</ScreenShot></xml>"
)
AUDIT_DELAY_REASON = (
    "为了更好的服务小程序，您的服务商正在进行提审系统的优化，可能会导致审核时效的增长，请耐心等待"
)
AUDIT_DELAY_XML = (
    "<xml><ToUserName><![CDATA[gh_fb9688c2a4b2]]></ToUserName>"
    "<FromUserName><![CDATA[od1P50M-fNQI5Gcq-trm4a7apsU8]]></FromUserName>\n"
    "<CreateTime>1488856591</CreateTime><MsgType><![CDATA[event]]></MsgType>"
    "<Event><![CDATA[weapp_audit_delay]]></Event>\n"
    f"<Reason><![CDATA[{AUDIT_DELAY_REASON}]]></Reason>\n"
    "<DelayTime>1488856591</DelayTime></xml>"
)
TICKET_XML = (
    "<xml><AppId>some_appid</AppId><CreateTime>1413192605</CreateTime>"
    "<InfoType>component_verify_ticket</InfoType>"
    "<ComponentVerifyTicket>ticket@@@secret-value</ComponentVerifyTicket></xml>"
)


@pytest.fixture
def crypto() -> WeChatCrypto:
    return WeChatCrypto(TOKEN, AES_KEY, COMPONENT_APPID)


# =========================================================================== WeChat crypto


def test_official_vector_signatures(crypto: WeChatCrypto) -> None:
    assert (
        crypto.signature(OFFICIAL_TIMESTAMP, OFFICIAL_NONCE, OFFICIAL_ENCRYPT)
        == OFFICIAL_MSG_SIGNATURE
    )
    assert crypto.url_signature(OFFICIAL_TIMESTAMP, OFFICIAL_NONCE) == OFFICIAL_SIGNATURE


def test_official_vector_decrypts_exactly(crypto: WeChatCrypto) -> None:
    msg = crypto.decrypt(OFFICIAL_ENCRYPT)
    assert len(msg) == 292
    assert msg == OFFICIAL_MSG


def test_official_vector_decrypt_push(crypto: WeChatCrypto) -> None:
    fields = crypto.decrypt_push(
        OFFICIAL_ENVELOPE,
        msg_signature=OFFICIAL_MSG_SIGNATURE,
        timestamp=OFFICIAL_TIMESTAMP,
        nonce=OFFICIAL_NONCE,
    )
    assert fields == {
        "ToUserName": "gh_97417a04a28d",
        "FromUserName": "o9AgO5Kd5ggOC-bXrbNODIiE3bGY",
        "CreateTime": "1715943329",
        "MsgType": "event",
        "Event": "debug_demo",
        "debug_str": "hello world",
    }
    assert wechat_events(fields) == []  # debug_demo is not an event we act on


def test_official_reply_vector_encrypts_exactly(crypto: WeChatCrypto) -> None:
    assert len(REPLY_MSG) == 52
    encrypt = crypto.encrypt(REPLY_MSG, random16=REPLY_RANDOM)
    assert encrypt == REPLY_ENCRYPT
    assert len(base64.b64decode(encrypt)) == 96
    assert crypto.signature(REPLY_TIMESTAMP, REPLY_NONCE, encrypt) == REPLY_MSG_SIGNATURE
    assert crypto.decrypt(encrypt) == REPLY_MSG


def test_self_generated_audit_success_vector(crypto: WeChatCrypto) -> None:
    assert len(AUDIT_SUCCESS_XML.encode()) == 280
    query, body = crypto.encrypt_push(
        AUDIT_SUCCESS_XML,
        timestamp="1488856800",
        nonce="123456789",
        to_user="gh_fb9688c2a4b2",
        random16=b"0123456789abcdef",
    )
    assert query == {
        "signature": AUDIT_SUCCESS_SIGNATURE,
        "timestamp": "1488856800",
        "nonce": "123456789",
        "encrypt_type": "aes",
        "msg_signature": AUDIT_SUCCESS_MSG_SIGNATURE,
    }
    assert parse_xml(body) == {"ToUserName": "gh_fb9688c2a4b2", "Encrypt": AUDIT_SUCCESS_ENCRYPT}
    fields = crypto.decrypt_push(
        body, msg_signature=query["msg_signature"], timestamp="1488856800", nonce="123456789"
    )
    assert wechat_events(fields) == [
        PushEvent(
            platform="wechat",
            kind="approved",
            mini_program="gh_fb9688c2a4b2",
            version=None,
            at=datetime(2017, 3, 7, 3, 19, 1, tzinfo=UTC),
        )
    ]


def test_tampered_signature_rejected(crypto: WeChatCrypto) -> None:
    bad = "0" + OFFICIAL_MSG_SIGNATURE[1:]
    with pytest.raises(PushRejected, match="msg_signature"):
        crypto.decrypt_push(
            OFFICIAL_ENVELOPE, msg_signature=bad, timestamp=OFFICIAL_TIMESTAMP, nonce=OFFICIAL_NONCE
        )
    with pytest.raises(PushRejected, match="msg_signature"):
        crypto.decrypt_push(
            OFFICIAL_ENVELOPE,
            msg_signature=OFFICIAL_MSG_SIGNATURE,
            timestamp=OFFICIAL_TIMESTAMP,
            nonce="1590219413",
        )


def test_wrong_appid_rejected() -> None:
    other = WeChatCrypto(TOKEN, AES_KEY, "wxba5fad812f8e6fb9")
    with pytest.raises(PushRejected, match="appid mismatch"):
        other.decrypt(OFFICIAL_ENCRYPT)


def test_wrong_key_rejected() -> None:
    other = WeChatCrypto(TOKEN, "B" * 43, COMPONENT_APPID)
    with pytest.raises(PushRejected):
        other.decrypt(OFFICIAL_ENCRYPT)


@pytest.mark.parametrize("key", ["A" * 42, "A" * 44, "A" * 42 + "!", ""])
def test_bad_key_rejected(key: str) -> None:
    with pytest.raises(PushRejected, match="EncodingAESKey"):
        WeChatCrypto(TOKEN, key, COMPONENT_APPID)


@pytest.mark.parametrize(
    ("encrypt", "reason"),
    [
        ("not base64!!", "base64"),
        (base64.b64encode(b"x" * 20).decode(), "AES blocks"),
        ("", "AES blocks"),
    ],
)
def test_malformed_ciphertext_rejected(crypto: WeChatCrypto, encrypt: str, reason: str) -> None:
    with pytest.raises(PushRejected, match=reason):
        crypto.decrypt(encrypt)


@pytest.mark.parametrize(
    "body",
    [
        b"<xml><Encrypt>abc",
        b"<xml><ToUserName>gh</ToUserName></xml>",
        b'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY a "b">]><xml><Encrypt>&a;</Encrypt></xml>',
        b"<!doctype xml><xml><Encrypt>x</Encrypt></xml>",
    ],
)
def test_malformed_envelope_rejected(crypto: WeChatCrypto, body: bytes) -> None:
    with pytest.raises(PushRejected):
        crypto.decrypt_push(body, msg_signature="x", timestamp="1", nonce="2")


def test_round_trip_random_data(crypto: WeChatCrypto) -> None:
    for size in (0, 1, 11, 12, 43, 44, 76, 1000):
        msg = os.urandom(size)
        assert crypto.decrypt(crypto.encrypt(msg)) == msg
    first, second = crypto.encrypt(b"same"), crypto.encrypt(b"same")
    assert first != second  # fresh random prefix each time


def test_round_trip_ticket_push_with_appid_envelope(crypto: WeChatCrypto) -> None:
    query, body = crypto.encrypt_push(
        TICKET_XML, timestamp="1413192605", nonce="42", to_user="some_appid", envelope_key="AppId"
    )
    assert b"<AppId><![CDATA[some_appid]]></AppId>" in body
    fields = crypto.decrypt_push(
        body, msg_signature=query["msg_signature"], timestamp="1413192605", nonce="42"
    )
    (event,) = wechat_events(fields)
    assert event.kind == "verify_ticket"
    assert event.ticket == "ticket@@@secret-value"


def test_repr_hides_secrets(crypto: WeChatCrypto) -> None:
    assert TOKEN not in repr(crypto)
    assert COMPONENT_APPID in repr(crypto)


# =========================================================================== WeChat events


def test_wechat_audit_fail_event() -> None:
    (event,) = wechat_events(parse_xml(AUDIT_FAIL_XML))
    assert event == PushEvent(
        platform="wechat",
        kind="rejected",
        mini_program="gh_fb9688c2a4b2",
        version=None,
        reason=(
            "1:账号信息不符合规范:\n(1):包含色情因素\n"
            '2:服务类目"金融业-保险_"与你提交代码审核时设置的功能页面内容不一致:'
        ),
        at=datetime.fromtimestamp(1488856591, UTC),
    )


def test_wechat_audit_delay_event() -> None:
    (event,) = wechat_events(parse_xml(AUDIT_DELAY_XML))
    assert event.kind == "delayed"
    assert event.reason == AUDIT_DELAY_REASON
    assert event.at == datetime.fromtimestamp(1488856591, UTC)
    assert event.at is not None and event.at.tzinfo is UTC


def test_wechat_path_appid_names_the_mini_program() -> None:
    (event,) = wechat_events(parse_xml(AUDIT_SUCCESS_XML), appid="wxba5fad812f8e6fb9")
    assert event.mini_program == "wxba5fad812f8e6fb9"


def test_wechat_verify_ticket_event_hides_ticket() -> None:
    (event,) = wechat_events(parse_xml(TICKET_XML))
    assert event == PushEvent(
        platform="wechat",
        kind="verify_ticket",
        mini_program="some_appid",
        version=None,
        at=datetime.fromtimestamp(1413192605, UTC),
        ticket="ticket@@@secret-value",
    )
    assert "secret-value" not in repr(event)
    assert "secret-value" not in str(event)


def test_wechat_time_falls_back_to_create_time() -> None:
    fields = parse_xml(AUDIT_SUCCESS_XML)
    del fields["SuccTime"]
    fields["CreateTime"] = "1488856000"
    (event,) = wechat_events(fields)
    assert event.at == datetime.fromtimestamp(1488856000, UTC)


@pytest.mark.parametrize(
    "fields",
    [
        {"MsgType": "event", "Event": "weapp_audit_something_new"},
        {"MsgType": "text", "Event": "weapp_audit_success", "ToUserName": "gh_x"},
        {"InfoType": "notify_third_fasteregister", "AppId": "some_appid"},
        {},
    ],
)
def test_wechat_unknown_events_ignored(fields: dict[str, str]) -> None:
    assert wechat_events(fields) == []


@pytest.mark.parametrize(
    ("info", "kind"),
    [
        ("authorized", "authorized"),
        ("updateauthorized", "authorized"),
        ("unauthorized", "unauthorized"),
    ],
)
def test_wechat_authorization_events(info: str, kind: str) -> None:
    fields = {"AppId": "wxcomponent", "CreateTime": "1488856000", "InfoType": info}
    with pytest.raises(PushRejected, match="without AuthorizerAppid"):
        wechat_events(fields)
    (event,) = wechat_events({**fields, "AuthorizerAppid": "wx1234567890abcdef"})
    assert (event.kind, event.mini_program) == (kind, "wx1234567890abcdef")
    assert event.at == datetime.fromtimestamp(1488856000, UTC)


@pytest.mark.parametrize(
    "fields",
    [
        {"InfoType": "component_verify_ticket", "AppId": "a", "ComponentVerifyTicket": ""},
        {"MsgType": "event", "Event": "weapp_audit_success", "SuccTime": "1"},
        {"MsgType": "event", "Event": "weapp_audit_fail", "ToUserName": "gh", "FailTime": "x"},
    ],
)
def test_wechat_malformed_events_rejected(fields: dict[str, str]) -> None:
    with pytest.raises(PushRejected):
        wechat_events(fields)


# =========================================================================== Alipay

ALIPAY_REJECTED_FORM = (
    'app_id=2021000000000001&biz_content={"mini_app_id":"2021000000000002",'
    '"mini_app_version":"0.0.3","bundle_id":"com.alipay.alipaywallet",'
    '"audit_reason":"…"}&charset=utf-8&msg_method=alipay.open.mini.version.audit.rejected'
    "&notify_id=2024050100222&sign_type=RSA2&utc_timestamp=1714540000000&version=1.1"
)


def _rejected_params() -> dict[str, str]:
    """The §4 example as received form fields (its ``&``-free JSON splits cleanly)."""
    return dict(parse_qsl(ALIPAY_REJECTED_FORM, keep_blank_values=True))


@pytest.fixture(scope="module")
def alipay_keys() -> tuple[str, str]:
    return alipay_sign.generate_key_pair()


def test_notify_content_v1_keeps_empty_values_drops_sign_fields() -> None:
    params = {"b": "2", "a": "1", "sign": "s", "sign_type": "RSA2", "empty": ""}
    assert alipay_sign.notify_content(params) == "a=1&b=2&empty="


def test_notify_sign_verify_round_trip(alipay_keys: tuple[str, str]) -> None:
    private = alipay_sign.load_private_key(alipay_keys[0])
    public = alipay_sign.load_public_key(alipay_keys[1])
    params = _rejected_params()
    del params["sign_type"]
    signed = alipay_sign.sign_notify(params, private)
    assert signed["sign_type"] == "RSA2"
    assert len(signed["sign"]) == 344
    assert alipay_sign.verify_notify(signed, public)
    # the V1 content leaves sign_type out, so a notification without it verifies too
    assert alipay_sign.verify_notify({k: v for k, v in signed.items() if k != "sign_type"}, public)


def test_notify_tampered_or_unsigned_fails(alipay_keys: tuple[str, str]) -> None:
    private = alipay_sign.load_private_key(alipay_keys[0])
    public = alipay_sign.load_public_key(alipay_keys[1])
    signed = alipay_sign.sign_notify(_rejected_params(), private)
    tampered = dict(signed, biz_content=signed["biz_content"].replace("0.0.3", "0.0.4"))
    assert not alipay_sign.verify_notify(tampered, public)
    assert not alipay_sign.verify_notify(dict(signed, extra=""), public)  # empty values count
    assert not alipay_sign.verify_notify({k: v for k, v in signed.items() if k != "sign"}, public)
    assert not alipay_sign.verify_notify(dict(signed, sign=""), public)
    assert not alipay_sign.verify_notify(dict(signed, sign="not base64"), public)
    assert not alipay_sign.verify_notify(dict(signed, sign_type="RSA"), public)
    other = alipay_sign.load_public_key(alipay_sign.generate_key_pair()[1])
    assert not alipay_sign.verify_notify(signed, other)


def test_alipay_rejected_event_from_sheet_example() -> None:
    assert alipay_events(_rejected_params()) == [
        PushEvent(
            platform="alipay",
            kind="rejected",
            mini_program="2021000000000002",
            version="0.0.3",
            reason="…",
            at=datetime(2024, 5, 1, 5, 6, 40, tzinfo=UTC),
        )
    ]


def test_alipay_rejected_reason_from_audit_memos() -> None:
    # UNCERTAIN reading: no audit_reason, only base/promote audit memos (object or JSON text).
    biz = {
        "mini_app_id": "2021000000000002",
        "mini_app_version": "0.0.3",
        "base_audit": "REJECT",
        "promote_audit": "REJECT",
        "base_audit_reason": {"audit_images": [], "memos": [{"memo": "隐私协议缺失"}]},
        "promote_audit_reason": json.dumps(
            {"memos": [{"memo": "营销信息违规", "memo_image_list": []}]}
        ),
    }
    params = dict(_rejected_params(), biz_content=json.dumps(biz, ensure_ascii=False))
    (event,) = alipay_events(params)
    assert event.reason == "隐私协议缺失\n营销信息违规"


@pytest.mark.parametrize("with_bundle_id", [True, False])
def test_alipay_passed_event(with_bundle_id: bool) -> None:
    # UNCERTAIN reading: passed carries mini_app_id + mini_app_version, "probably" bundle_id.
    biz: dict[str, str] = {"mini_app_id": "2021000000000002", "mini_app_version": "0.0.3"}
    if with_bundle_id:
        biz["bundle_id"] = "com.alipay.alipaywallet"
    params = dict(
        _rejected_params(),
        msg_method="alipay.open.mini.version.audit.passed",
        biz_content=json.dumps(biz),
    )
    assert alipay_events(params) == [
        PushEvent(
            platform="alipay",
            kind="approved",
            mini_program="2021000000000002",
            version="0.0.3",
            at=datetime(2024, 5, 1, 5, 6, 40, tzinfo=UTC),
        )
    ]


def test_alipay_missing_timestamp_and_version() -> None:
    params = {
        "msg_method": "alipay.open.mini.version.audit.passed",
        "biz_content": '{"mini_app_id":"2021000000000002"}',
    }
    (event,) = alipay_events(params)
    assert event.at is None
    assert event.version is None


@pytest.mark.parametrize(
    "method", ["alipay.open.mini.version.audit.unknown", "alipay.trade.pay", ""]
)
def test_alipay_unknown_messages_ignored(method: str) -> None:
    assert alipay_events(dict(_rejected_params(), msg_method=method)) == []
    assert alipay_events({"biz_content": "{"}) == []


@pytest.mark.parametrize(
    "changes",
    [
        {"biz_content": "{not json"},
        {"biz_content": "[1, 2]"},
        {"biz_content": ""},
        {"biz_content": '{"mini_app_version":"0.0.3"}'},
        {"utc_timestamp": "2024-05-01"},
    ],
)
def test_alipay_malformed_messages_rejected(changes: dict[str, str]) -> None:
    with pytest.raises(PushRejected):
        alipay_events(dict(_rejected_params(), **changes))


# =========================================================================== hardened inputs

BOUNDED = settings(max_examples=300, deadline=None, derandomize=True, database=None)

ENTITY_BOMB = (
    '<?xml version="1.0" encoding="{encoding}"?>'
    '<!DOCTYPE xml [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
    "<xml><Encrypt>&b;</Encrypt></xml>"
)


@pytest.mark.parametrize(
    ("declared", "codec", "bom"),
    [
        ("UTF-8", "utf-8", b""),
        ("UTF-16", "utf-16", b""),  # Python's BOM, in this machine's byte order
        ("UTF-16", "utf-16-le", b"\xff\xfe"),
        ("UTF-16", "utf-16-be", b"\xfe\xff"),
        ("ISO-8859-1", "latin-1", b""),
    ],
    ids=["utf-8", "utf-16", "utf-16-le", "utf-16-be", "latin-1"],
)
def test_a_dtd_is_refused_in_any_encoding(
    crypto: WeChatCrypto, declared: str, codec: str, bom: bytes
) -> None:
    """The byte pattern looked for before did not see ``<!DOCTYPE`` written in UTF-16."""
    body = bom + ENTITY_BOMB.format(encoding=declared).encode(codec)
    with pytest.raises(PushRejected, match="DOCTYPE or ENTITY"):
        parse_xml(body)
    with pytest.raises(PushRejected, match="DOCTYPE or ENTITY"):
        crypto.decrypt_push(body, msg_signature="x", timestamp="1", nonce="2")


def test_a_dtd_inside_the_encrypted_message_is_refused(crypto: WeChatCrypto) -> None:
    """The decrypted inner XML is parsed the same careful way as the envelope."""
    inner = ENTITY_BOMB.format(encoding="UTF-16").encode("utf-16")
    encrypt = crypto.encrypt(inner)
    body = f"<xml><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>".encode()
    signature = crypto.signature("1700000000", "7", encrypt)
    with pytest.raises(PushRejected, match="DOCTYPE or ENTITY"):
        crypto.decrypt_push(body, msg_signature=signature, timestamp="1700000000", nonce="7")


def test_an_envelope_in_utf16_without_a_dtd_is_still_read() -> None:
    body = '<?xml version="1.0" encoding="UTF-16"?><xml><Encrypt>abc</Encrypt></xml>'
    assert parse_xml(body.encode("utf-16")) == {"Encrypt": "abc"}


@pytest.mark.parametrize(
    "body",
    [
        b'<?xml version="1.0" encoding="no-such-encoding"?><xml/>',
        b"",
        b"\x00\x00\x00",
        "<xml><a>é</a></xml>".encode("utf-32"),
    ],
    ids=["unknown-encoding", "empty", "nul-bytes", "utf-32"],
)
def test_unreadable_xml_is_refused_not_raised(body: bytes) -> None:
    with pytest.raises(PushRejected):
        parse_xml(body)


_XML_TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)


@BOUNDED
@given(st.binary(max_size=400))
def test_parse_xml_takes_any_bytes(body: bytes) -> None:
    """Whatever is posted, reading it gives fields or PushRejected, nothing else."""
    try:
        fields = parse_xml(body)
    except PushRejected:
        return
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in fields.items())


@BOUNDED
@given(
    st.sampled_from(["UTF-8", "UTF-16", "UTF-16-LE", "UTF-16-BE", "ISO-8859-1", "UTF-32"]),
    st.sampled_from(
        [
            "<!DOCTYPE xml>",
            '<!DOCTYPE xml [<!ENTITY e "x">]>',
            '<!DOCTYPE x SYSTEM "file:///etc/passwd">',
        ]
    ),
    st.text(alphabet=" \t\r\n", max_size=3),
    _XML_TEXT.filter(lambda t: "]]>" not in t),
)
def test_no_dtd_gets_through_whatever_its_dress(
    encoding: str, doctype: str, space: str, text: str
) -> None:
    document = (
        f'<?xml version="1.0" encoding="{encoding}"?>{space}{doctype}{space}'
        f"<xml><Encrypt><![CDATA[{text}]]></Encrypt></xml>"
    )
    try:
        body = document.encode(encoding)
    except UnicodeEncodeError:
        body = document.encode("utf-8")  # a declaration that lies about the bytes
    with pytest.raises(PushRejected):
        parse_xml(body)


NOW = 1_790_000_000.0


@pytest.mark.parametrize(
    ("offset", "fresh"),
    [(0, True), (-3599, True), (-3601, False), (299, True), (301, False), (-86400, False)],
)
def test_a_push_is_taken_only_near_the_time_it_carries(offset: int, fresh: bool) -> None:
    stamp = str(int(NOW) + offset)
    if fresh:
        check_fresh(stamp, "timestamp", NOW)
        check_fresh(stamp + "000", "utc_timestamp", NOW, millis=True)
        return
    with pytest.raises(PushStale, match=r"ago|ahead"):
        check_fresh(stamp, "timestamp", NOW)
    with pytest.raises(PushStale):
        check_fresh(stamp + "000", "utc_timestamp", NOW, millis=True)


def test_a_push_without_a_time_passes_and_a_bad_time_is_refused() -> None:
    check_fresh(None, "timestamp", NOW)
    check_fresh("", "timestamp", NOW)
    with pytest.raises(PushRejected, match="not a unix time") as err:
        check_fresh("yesterday", "timestamp", NOW)
    assert not isinstance(err.value, PushStale)  # refused (401), not taken for a replay


@BOUNDED
@given(st.integers(min_value=-10 * 86400, max_value=10 * 86400))
def test_freshness_is_exactly_the_window(offset: int) -> None:
    stamp = str(int(NOW) + offset)
    inside = -PUSH_WINDOW.total_seconds() <= offset <= PUSH_SKEW.total_seconds()
    try:
        check_fresh(stamp, "timestamp", NOW)
    except PushStale:
        assert not inside
    else:
        assert inside


def test_a_push_name_is_a_digest_of_its_signed_parts() -> None:
    one = push_digest("wechat", "1700000000", "7", "abc")
    assert one == push_digest("wechat", "1700000000", "7", "abc")
    assert len(one) == 64
    assert one != push_digest("alipay", "1700000000", "7", "abc")
    assert one != push_digest("wechat", "1700000000", "8", "abc")
    # parts never run together
    assert push_digest("wechat", "ab", "c") != push_digest("wechat", "a", "bc")
