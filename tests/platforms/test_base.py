"""The shared pieces of platforms.base: message scrubbing, redaction, retries, confirmation."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from platforms.base import _error_code, redact, scrub_answer, scrub_message
from platforms.errors import BadResponse, OutcomeUnknown, PlatformUnavailable
from platforms.wechat import WeChatPlatform


def test_scrub_message_cuts_the_signed_string() -> None:
    sub_msg = (
        "验签出错，建议检查签名字符串或签名私钥与应用公钥是否匹配，网关生成的验签字符串为："
        'app_auth_token=202609BBtok&biz_content={"refresh_token":"rt"}&test_password=pw'
    )
    assert scrub_message(sub_msg) == (
        "验签出错，建议检查签名字符串或签名私钥与应用公钥是否匹配，[signed string removed]"
    )


def test_scrub_message_masks_secret_pairs() -> None:
    text = 'x access_token=abc&app_id=1 {"refresh_token": "rt\\"1"} sign_type=RSA2'
    assert (
        scrub_message(text) == 'x access_token=***&app_id=1 {"refresh_token": "***"} sign_type=RSA2'
    )
    # a value runs to the next & or the end: a password with spaces leaves nothing behind
    assert scrub_message("Secret=s3 cr3t&x=1, test_password=pass word") == (
        "Secret=***&x=1, test_password=***"
    )
    assert scrub_message("access_token expired rid: 1-2-3") == "access_token expired rid: 1-2-3"


def test_scrub_answer_touches_only_messages() -> None:
    answer = {"code": "40002", "sub_msg": "password=pw", "nested": [{"errmsg": "sign=x"}]}
    assert scrub_answer(answer) == {
        "code": "40002",
        "sub_msg": "password=***",
        "nested": [{"errmsg": "sign=***"}],
    }


def test_secret_is_a_secret_key() -> None:
    assert redact({"secret": "s", "component_secret": "c", "other": "o"}) == {
        "secret": "***",
        "component_secret": "***",
        "other": "o",
    }


def adapter() -> WeChatPlatform:
    settings = WeChatPlatform.Settings(api_base="https://api.weixin.qq.com", max_retries=2)
    return WeChatPlatform(settings, {})


async def test_read_with_retries_backs_off_through_sleep() -> None:
    a = adapter()
    waited: list[float] = []

    async def no_wait(seconds: float) -> None:
        waited.append(seconds)

    a.sleep = no_wait
    calls = 0

    async def read() -> str:
        nonlocal calls
        calls += 1
        raise PlatformUnavailable("wechat", "-1")

    with pytest.raises(PlatformUnavailable):
        await a.read_with_retries(read)
    assert calls == 3 and waited == [0.5, 1.0]
    await a.aclose()


async def test_confirm_change_says_what_is_known() -> None:
    a = adapter()
    unclear = OutcomeUnknown.after(BadResponse("wechat", "", "", "the answer was malformed."))

    async def yes() -> bool:
        return True

    async def no() -> bool:
        return False

    async def cannot() -> bool:
        raise PlatformUnavailable("wechat", "-1")

    await a.confirm_change(unclear, "release", yes)
    with pytest.raises(BadResponse) as err:
        await a.confirm_change(unclear, "release", no)
    assert not isinstance(err.value, OutcomeUnknown) and "did not happen" in str(err.value)
    with pytest.raises(OutcomeUnknown) as unknown:
        await a.confirm_change(unclear, "release", cannot)
    assert "could not check whether the release happened" in unknown.value.explanation
    assert isinstance(unknown.value.original, BadResponse)

    async def lost() -> Any:
        raise PlatformUnavailable("wechat", "", "", "timed out.")

    with pytest.raises(OutcomeUnknown):
        await a.send_change(lost)
    await a.aclose()


@given(st.text(max_size=200))
def test_a_calls_error_label_comes_from_a_small_set(error: str) -> None:
    """Each label value is a time series of its own: free text (an answer's message, an
    exception's text) never becomes one."""
    label = _error_code(error)
    assert (
        label in {"timeout", "bad answer"}
        or (label.isidentifier() and len(label) <= 40)
        or re.fullmatch(r"HTTP \dxx", label)
    ), label


def test_a_calls_error_label_says_what_kind_of_failure() -> None:
    assert _error_code("timed out") == "timeout"
    assert _error_code("HTTP 503, the answer is not JSON") == "HTTP 5xx"
    assert _error_code("ConnectError") == "ConnectError"
    assert _error_code("response signature did not verify") == "bad answer"
