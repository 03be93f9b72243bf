"""Alipay (支付宝) mini programs through the open platform v2 gateway (``gateway.do``).

Credentials. miniship calls Alipay as a third-party app (ISV, 第三方应用) on behalf of each
merchant mini program, or as the mini program itself (self-owned, 自调用):

- ISV mode: in the Alipay open platform console (https://open.alipay.com) create a
  third-party app, add the "小程序开发管理" permission set, upload the public half of an RSA2
  key you generate, and note the Alipay public key (支付宝公钥) shown there. Set
  ``ALIPAY_APP_ID``, ``ALIPAY_PRIVATE_KEY`` (or ``ALIPAY_PRIVATE_KEY_FILE``) and
  ``ALIPAY_PUBLIC_KEY`` (or ``ALIPAY_PUBLIC_KEY_FILE``). Each merchant authorises the app;
  the ``app_auth_token`` and ``app_refresh_token`` from ``alipay.open.auth.token.app`` go into
  the app's ``[apps.<key>.alipay]`` section as ``env:``/``file:`` references. When
  miniship renews them it keeps the new pair in its credential vault and uses that pair
  first after a restart (Alipay may retire the configured ones).
- Self-owned mode: set ``private_key`` and ``alipay_public_key`` in the app's section; the
  mini program's own APPID (``app_id``) then signs its calls.

Uploading. An app with ``template_id`` is built from that template
(``alipay.open.mini.version.upload``, an ISV API) and miniship waits for the build
(``build.query``). An app owned directly instead gives ``project_path`` (its built code),
``tool_id`` and ``tool_private_key`` (a "工具密钥" from
https://openhome.alipay.com/dev/workspace/key-manage/tool), and is uploaded with the
``minidev`` CLI (``make clis`` installs it).

API docs: https://opendocs.alipay.com/mini/03l8bz (upload), https://opendocs.alipay.com/mini/03l9bq
(audit.apply), https://opendocs.alipay.com/mini/03l9bu (detail.query),
https://opendocs.alipay.com/mini/03l21p (online), https://opendocs.alipay.com/mini/03l3ev (gray),
https://opendocs.alipay.com/mini/03l21q (rollback), https://opendocs.alipay.com/mini/03l9bw
(experience), https://opendocs.alipay.com/mini/02q17h (minidev).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import logging
import re
import time
import unicodedata
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Literal, NamedTuple, TypeVar
from urllib.parse import parse_qsl

import httpx
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from platforms import alipay_sign, cli
from platforms.alipay_api import (
    AUDIT_APPLY,
    AUDIT_CANCEL,
    AUDITED_CANCEL,
    AUTH_GRANT,
    BUILD_QUERY,
    DETAIL_QUERY,
    EXPERIENCE_CREATE,
    EXPERIENCE_QUERY,
    GRAY_CANCEL,
    GRAY_ONLINE,
    LIST_QUERY,
    OFFLINE,
    ONLINE,
    ROLLBACK,
    SCREENSHOT_PARTS,
    UPLOAD,
)
from platforms.base import (
    GrayPlan,
    Overview,
    Platform,
    ReviewState,
    ReviewStatus,
    SecretRef,
    SubmitResult,
    TrialCode,
    UploadResult,
    VersionInfo,
    scrub_answer,
    scrub_message,
    url_problem,
)
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
from platforms.push import PushEvent, PushRejected, PushRequest, alipay_events

__all__ = [  # the method names too, from platforms.alipay_api, for callers of the adapter
    "AUDITED_CANCEL",
    "AUDIT_APPLY",
    "AUDIT_CANCEL",
    "AUTH_GRANT",
    "BUILD_QUERY",
    "DETAIL_QUERY",
    "EXPERIENCE_CREATE",
    "EXPERIENCE_QUERY",
    "GRAY_CANCEL",
    "GRAY_ONLINE",
    "LIST_QUERY",
    "OFFLINE",
    "ONLINE",
    "ROLLBACK",
    "UPLOAD",
    "AlipayAppConfig",
    "AlipayPlatform",
    "AlipaySettings",
    "error_for",
    "version_desc_length",
    "version_key",
]

log = logging.getLogger(__name__)

_T = TypeVar("_T")

SUCCESS = "10000"
PROMOTE_REJECT = "PROMOTE_AUDIT_REJECT"
"""UNCERTAIN (fact sheet §2.1, §7.8): a status named only in the ``can_release`` field doc;
read like ``BASE_AUDIT_PASS`` (approved, publishable unless ``can_release`` is false)."""
PASSED_FOR_RELEASE = ("BASE_AUDIT_PASS", PROMOTE_REJECT)  # admission passed, marketing not
APPROVED = ("WAIT_RELEASE", *PASSED_FOR_RELEASE)
REVIEW_STATUSES = ("AUDITING", "AUDIT_REJECT", *APPROVED, "GRAY")
LISTED_STATUSES = ",".join(("INIT", *REVIEW_STATUSES, "RELEASE"))
ALL_STATUSES = LISTED_STATUSES + ",OFFLINE,AUDIT_OFFLINE"
VERSION_DESC_MIN, VERSION_DESC_MAX = 30, 500
BUILD_FAILED = {"3": "failed", "5": "timed out"}  # build_status / create_status codes
EXP_PACKAGED = frozenset({"expVersionPackged", "expVersionPackaged"})  # sic, and as spelt right
EXP_NONE = "notExpVersion"
CLOCK_SKEW_SECONDS = 300.0
"""How far Alipay's clock (``gmt_*`` fields) may be from ours when telling a submission just
sent from an older one of the same version."""
LIST_CAP = 20  # list.query returns at most the latest 20 versions (fact sheet §3.12)

SCREENSHOT_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}
SCREENSHOT_MAX_BYTES = 4 * 1024 * 1024  # the adapter's own check; the emulator has its own
IMAGE_MAGIC = {
    b"\x89PNG\r\n\x1a\n": "image/png",
    b"\xff\xd8\xff": "image/jpeg",
    b"GIF8": "image/gif",
}

MINIDEV_CLIENTS = {
    "com.alipay.alipaywallet": "alipay",
    "com.alipay.iot.xpaas": "alipayiot",
    "com.amap.app": "amap",
    "com.alibaba.ailabs.genie.webapps": "genie",
}
"""minidev ``--client-type`` per bundle_id (DingTalk has none in minidev's table)."""
MINIDEV_DESCRIPTION_MAX = 200

SUPERSEDED = {
    "AUDIT_REJECT": "rejected",
    **dict.fromkeys(APPROVED, "approved but not published"),
}
"""Decided reviews that block every submission (fact sheet §2.2) and that a new submission
of *another* version supersedes: their version goes back to development
(``audited.cancel``) first. An approved version itself is never submitted again that way."""

SUBMIT_BLOCKED = frozenset(
    {"CAN_NOT_SUBMIT_WITH_AUDIT_GRAY", "CAN_NOT_SUBMIT_WITH_AUDIT", "CAN_NOT_SUBMIT_WITHOUT_INIT"}
)
"""audit.apply refusals that sending a decided version back to development may clear."""

CONFIRMED = "confirmed with Alipay after an unclear answer"

TOKEN_NAMES = ("app_auth_token", "app_refresh_token")  # vault names: "<name>:<mini app_id>"
GRANT_EXPIRED = "aop.app-auth-token-time-out"
GRANT_REFUSED = "aop.invalid-app-auth-token"
REFRESH_REFUSED = frozenset({"isv.refresh-token-invalid", "isv.refresh-token-time-out"})

UNSIGNED_GATEWAY_CODES = frozenset({"20000", "40001", "40002"})
"""Refusals Alipay may send without a signature (fact sheet §1.6: the gateway cannot sign
before it knows the caller, or is down). Other unsigned refusals are reported as they
are but never acted on (:class:`_Unsigned`)."""

STATUS_WORDS = {
    "INIT": "in development (INIT)",
    "AUDITING": "in review (AUDITING)",
    "AUDIT_REJECT": "rejected (AUDIT_REJECT)",
    "WAIT_RELEASE": "approved and waiting to be published (WAIT_RELEASE)",
    "BASE_AUDIT_PASS": "approved for release but not for promotion (BASE_AUDIT_PASS)",
    PROMOTE_REJECT: f"approved for release but refused for promotion ({PROMOTE_REJECT})",
    "GRAY": "in gray release (GRAY)",
    "RELEASE": "live (RELEASE)",
    "OFFLINE": "taken offline (OFFLINE)",
    "AUDIT_OFFLINE": "forcibly taken offline by Alipay (AUDIT_OFFLINE)",
}

VERSION_STATES = {
    "INIT": "development",
    "AUDITING": "in review",
    "AUDIT_REJECT": "rejected",
    "WAIT_RELEASE": "approved",
    "BASE_AUDIT_PASS": "approved",
    PROMOTE_REJECT: "approved",
    "GRAY": "gray",
    "RELEASE": "live",
    "OFFLINE": "offline",
    "AUDIT_OFFLINE": "offline",
}
"""``VersionInfo.state`` per status; an OFFLINE version below the live one is an
"earlier release"."""


def _status_words(status: str) -> str:
    return STATUS_WORDS.get(status, status or "in an unknown state")


def version_desc_length(text: str) -> int:
    """Length of ``version_desc`` as Alipay counts it: Chinese (wide) characters count 2."""
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def version_key(version: str) -> tuple[int, ...]:
    """``"1.2.10"`` → ``(1, 2, 10)``; anything unparsable sorts first (shared with the emulator)."""
    try:
        return tuple(int(part) for part in version.split("."))
    except ValueError:
        return ()


def _decided_at(text: object) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        return alipay_sign.parse_timestamp(text)
    except ValueError:
        return None


def _gray_percent(strategy: object) -> int | None:
    """``"p30"`` → 30; ``None`` when Alipay does not say (or says something else)."""
    match = re.fullmatch(r"[pP](\d{1,3})", strategy) if isinstance(strategy, str) else None
    return int(match.group(1)) if match else None


def _memos(record: object) -> list[str]:
    """The memo texts of a ``base_audit_record``/``promote_audit_record`` (an object
    ``{audit_images, memos: [{memo, …}]}``, or the same as JSON text)."""
    if isinstance(record, str):
        given = record.strip()
        try:
            record = json.loads(given)
        except ValueError:
            return [given] if given else []
    memos = record.get("memos") if isinstance(record, dict) else None
    texts: list[str] = []
    for memo in memos if isinstance(memos, list) else ():
        text = memo.get("memo") if isinstance(memo, dict) else None
        if isinstance(text, str) and text.strip():
            texts.append(text.strip())
    return texts


def _rejection(detail: Mapping[str, Any]) -> str:
    """Why Alipay rejected a version: ``reject_reason``; else (``audit_rule=BASE_PROMOTE``)
    the memos of the admission and marketing reviews; else which of them refused."""
    reason = str(detail.get("reject_reason") or "").strip()
    if reason:
        return reason
    memos = _memos(detail.get("base_audit_record")) + _memos(detail.get("promote_audit_record"))
    if memos:
        return "\n".join(memos)
    refused = [
        review
        for field_name, review in (("base_audit", "admission"), ("promote_audit", "marketing"))
        if detail.get(field_name) == "REJECT"
    ]
    return f"Alipay's {' and '.join(refused)} review refused it" if refused else ""


class _Rollback(NamedTuple):
    """What a rollback of the live version would do, as far as miniship can tell."""

    target: str | None  # the version it would bring back (INFERRED, see _rollback_target)
    blocked: tuple[str, str] | None  # (Alipay's sub_code, why) when it cannot happen now
    certain: bool  # False when the target rests on missing facts


def _publishable(status: str, detail: Mapping[str, Any]) -> bool:
    """Approved (or gray), and under BASE_PROMOTE allowed online (``can_release``)."""
    return status in ("WAIT_RELEASE", "GRAY") or (
        status in PASSED_FOR_RELEASE and detail.get("can_release") != "false"
    )


class _Gate(NamedTuple):
    """A change only some states allow (see ``AlipayPlatform._gated_change``)."""

    allowed: Callable[[str, Mapping[str, Any]], bool]  # (status, detail.query's answer)
    why: str  # for people, when the state does not allow it
    what: str  # the change, for people
    shows: tuple[str, ...]  # the statuses that show it happened


GATES = {
    ONLINE: _Gate(
        _publishable,
        "only an approved version that Alipay allows to go online can be published.",
        "release",
        ("RELEASE",),
    ),
    GRAY_CANCEL: _Gate(
        lambda status, _: status == "GRAY",
        "there is no gray release to end.",
        "end of the gray release",
        APPROVED,
    ),
    OFFLINE: _Gate(
        lambda status, _: status == "RELEASE",
        "only the live version can be taken offline.",
        "offline",
        ("OFFLINE",),
    ),
}


def _image_type(data: bytes, content_type: str) -> str | None:
    """The MIME type of an image, from its first bytes (else a declared ``image/*`` type)."""
    for magic, mime in IMAGE_MAGIC.items():
        if data.startswith(magic):
            return mime
    declared = content_type.split(";")[0].strip().lower()
    return declared if declared.startswith("image/") and data else None


# --------------------------------------------------------------------------- errors

_ErrorRule = tuple[type[PlatformError], str]

_CONSOLE = "in the Alipay console (小程序详情 → 基础信息), then submit again"

_GROUPS: tuple[tuple[type[PlatformError], str, str], ...] = (
    (
        PlatformUnavailable,
        "Alipay is busy or had an internal error; try again in a minute.",
        "isp.unknow-error SYSTEM_ERROR aop.SYSTEM_ERROR APPSTORE_RPC_INVOKE_ERROR",
    ),
    (
        PlatformUnavailable,
        "the Alipay gateway had an internal error; try again in a minute.",
        "aop.unknow-error",
    ),
    (
        PlatformUnavailable,
        "Alipay failed while carrying out the step; try again in a minute.",
        "APP_OPERATOR_QUERY_ERROR CREATE_GRAY_RULE_ERROR EXECUTE_GRAY_FAILED "
        "UPDATE_PLUGIN_SERVICE_FAIL BUILD_VERSION_COMPARE_ERROR POLLING_BUILDING_ERROR",
    ),
    (
        InvalidState,
        "another operation on this mini program is still in progress; try again later.",
        "MINI_APP_VERSION_ITERATION_EXIST",
    ),
    (
        QuotaExceeded,
        "Alipay is limiting calls or submissions (SYSTEM_LIMIT); wait a few minutes and try again.",
        "SYSTEM_LIMIT",
    ),
    (
        QuotaExceeded,
        "the mini program has too many versions in development; delete old ones in the Alipay "
        "console.",
        "DEV_VERSION_EXCEED_MAX_COUNT",
    ),
    (
        QuotaExceeded,
        "Alipay limits submissions for this mini program because of a penalty; see the Alipay "
        "console.",
        "CAN_NOT_SUBMIT_WITH_PUNISH_ORDER_LIMIT",
    ),
    (
        QuotaExceeded,
        "the account has as many online mini programs as Alipay allows; take one offline first.",
        "CAN_NOT_SUBMIT_WITH_ONLINE_MINI_APP_EXCEED_LIMIT",
    ),
    (
        QuotaExceeded,
        "the mini program's base information (slogan, categories, description) may not be "
        "changed that often; submit without changing it, or wait.",
        "MODIFY_SLOGAN_EXCEED_COUNT MODIFY_CATEGORY_ID_EXCEED_COUNT MODIFY_DESC_EXCEED_COUNT "
        "HAS_NO_MODIFY_CNT",
    ),
    (
        AuthError,
        "Alipay does not accept the merchant's app_auth_token; have the merchant authorise the "
        "third-party app again and update app_auth_token for this app.",
        "aop.invalid-app-auth-token",
    ),
    (
        AuthError,
        "the merchant's app_auth_token has expired; set app_refresh_token for this app so "
        "miniship can renew it, or have the merchant authorise the app again.",
        "aop.app-auth-token-time-out",
    ),
    (
        AuthError,
        "the merchant did not authorise this API for the third-party app; ask them to grant the "
        "小程序开发管理 permissions again.",
        "aop.invalid-app-auth-token-no-api",
    ),
    (
        AuthError,
        "the merchant has not signed the product this API needs (or the mini program was "
        "punished or taken down); check the merchant's account in the Alipay console.",
        "aop.no-product-reg-by-partner",
    ),
    (
        AuthError,
        "Alipay does not accept the user auth_token.",
        "aop.invalid-auth-token",
    ),
    (
        AuthError,
        "the user auth_token has expired.",
        "aop.auth-token-time-out",
    ),
    (
        AuthError,
        "Alipay could not verify the request signature; the private key does not match the "
        "public key uploaded for this app id in the Alipay console.",
        "isv.invalid-signature",
    ),
    (
        AuthError,
        "Alipay does not know this app id; check ALIPAY_APP_ID (or the app's app_id in "
        "self-owned mode).",
        "isv.invalid-app-id",
    ),
    (
        AuthError,
        "no RSA2 public key is set up for this app in the Alipay console; upload the public half "
        "of the app key there.",
        "isv.missing-signature-config",
    ),
    (
        AuthError,
        "Alipay refused the signature type; the app must use RSA2 keys.",
        "isv.invalid-signature-type",
    ),
    (
        AuthError,
        "a third-party app cannot call this API for itself; set app_auth_token for the app (the "
        "merchant's authorisation).",
        "isv.self-invoke-forbidden",
    ),
    (
        AuthError,
        "this API cannot be called by a third-party app on a merchant's behalf.",
        "isv.not-support-app-auth",
    ),
    (
        AuthError,
        "the third-party app lacks permission for this API; add the 小程序开发管理 "
        "permission set to it in the Alipay console.",
        "isv.insufficient-isv-permissions",
    ),
    (
        AuthError,
        "the merchant lacks permission for this API.",
        "isv.insufficient-user-permissions",
    ),
    (
        AuthError,
        "Alipay refused app_refresh_token; have the merchant authorise the third-party app again "
        "and update app_auth_token and app_refresh_token.",
        "isv.refresh-token-invalid",
    ),
    (
        AuthError,
        "app_refresh_token has expired; have the merchant authorise the third-party app again.",
        "isv.refresh-token-time-out",
    ),
    (
        InvalidInput,
        "Alipay refused the request time; check that this server's clock is right.",
        "isv.invalid-timestamp",
    ),
    (
        AuthError,
        "the app_auth_token belongs to the template mini program; it must be the merchant mini "
        "program's token.",
        "TEMPLATE_MINIAPP_NOT_ALLOWED",
    ),
    (
        AuthError,
        "only ordinary or store mini programs can be built from a template; check that "
        "app_auth_token belongs to the merchant mini program.",
        "APP_TYPE_ERROR",
    ),
    (
        AuthError,
        "the merchant mini program has not authorised the third-party app that owns the "
        "template; have the merchant authorise it.",
        "NO_AUTH_RELATION NO_TEMPLATE_INSTANTIATE_RELATION APP_TO_APP_AUTH_FAIL",
    ),
    (
        AuthError,
        "the template belongs to another third-party app; use a template of ALIPAY_APP_ID.",
        "TEMPLATE_ID_ISVAPPID_NOT_MATCH",
    ),
    (
        AuthError,
        "template builds are made by the third-party app for a merchant: call through "
        "ALIPAY_APP_ID with the app's app_auth_token, or upload with minidev instead "
        "(project_path, tool_id, tool_private_key).",
        "ISV_APP_ID_IS_BLANK",
    ),
    (
        AuthError,
        "Alipay has no developer or merchant record behind this mini program; check the account "
        "in the Alipay console.",
        "USER_NOT_EXIST DEVELOPER_INFO_NOT_EXIST MERCHANT_NOT_EXESIT",
    ),
    (
        InvalidInput,
        "the app_id is not a mini program's APPID (or not one these APIs serve); check app_id.",
        "APPLICATION_TYPE_NOT_MINIAPP APPLICATION_TYPE_ILLEGAL SUB_APPLICATION_TYPE_ERROR",
    ),
    (
        NotFound,
        "Alipay does not know the mini program; check app_id, template_id and app_auth_token.",
        "APP_INFO_NOT_EXIST",
    ),
    (
        NotFound,
        "Alipay finds no active mini program for this APPID; check app_id and that the mini "
        "program exists in the Alipay console.",
        "MINI_APP_NOT_ONLINE",
    ),
    (
        NotFound,
        "Alipay does not know this version; if it was just uploaded, its build may still be "
        "running — try again in a minute.",
        "MINI_APP_PACKAGE_INFO_NOT_EXIST",
    ),
    (
        NotFound,
        "Alipay does not know this version.",
        "MINIAPP_VERSION_NOT_EXSIT MINI_APP_VERSION_NOT_EXIST",
    ),
    (
        NotFound,
        "Alipay has no build of this version; upload it again.",
        "BUILD_VERSION_NOT_EXISTED POLLING_BUILD_VERSION_NOT_EXIST",
    ),
    (
        NotFound,
        "Alipay does not know the template; check template_id (the template mini program's APPID).",
        "CODE_TEMPLATE_NOT_EXIST",
    ),
    (
        NotFound,
        "the template was deleted; set another template_id.",
        "CODE_TEMPLATE_DELETED",
    ),
    (
        NotFound,
        "the template version is not released (or was taken offline); set template_version to a "
        "released one, or leave it out for the latest.",
        "TEMPLATE_NOT_ONLINE_OR_OFFLINE",
    ),
    (
        InvalidInput,
        "Alipay does not know this bundle_id; the usual one is com.alipay.alipaywallet.",
        "BUNDLE_ID_NOT_EXIST",
    ),
    (
        InvalidInput,
        "a field miniship sends is missing (a miniship bug; please report it).",
        "APP_VERSION_IS_BLANK VERSION_IS_BLANK APPID_IS_BLANK PACKAGE_ID_IS_BLANK "
        "GRAY_STRATEGY_IS_BLANK CLIENT_TYPE_REQUIRED PAGE_SIZE_LESS_ZERO",
    ),
    (
        InvalidInput,
        "Alipay refused a parameter of the request.",
        "INVALID_PARAMS INVALID_PARAMETER isv.invalid-parameter",
    ),
    (
        InvalidInput,
        "template_id is missing; set it for the app.",
        "TEMPLATE_ID_IS_BLANK",
    ),
    (
        InvalidInput,
        "this version number was already uploaded; upload a higher version.",
        "VERSION_HAS_EXISTED",
    ),
    (
        InvalidInput,
        "a higher version already exists; Alipay versions must always increase.",
        "LARGER_VERSION_HAS_EXISTED",
    ),
    (
        InvalidInput,
        "Alipay versions look like 1.2.3 (digits only) and must be higher than every earlier "
        "version.",
        "INVALID_VERSION",
    ),
    (
        InvalidInput,
        "each part of the version must be at most 2147483647.",
        "VERSION_EXCEEDED_LENGTH",
    ),
    (
        InvalidInput,
        "the app's ext settings are not valid for ext.json; fix ext in [apps.<key>.alipay].",
        "INVALID_EXT_JSON TEMPLATE_EXTRA_INFO_INVALID",
    ),
    (
        InvalidInput,
        "Alipay needs review notes (version_desc) of 30–500 characters, Chinese characters "
        "counting 2; add detail or set review_notes for the app.",
        "VERSION_DESC_IS_BLANK INVALID_VERSION_DESC_LENGTH",
    ),
    (
        InvalidInput,
        "Alipay refused the review notes (illegal or sensitive words); reword notes or "
        "review_notes.",
        "INVALID_MINI_APP_VERSION_DESC MINI_APP_VERSION_DESC_SENSITIVE",
    ),
    (
        InvalidInput,
        "the service region is missing or wrong; set region_type to CHINA, GLOBAL or LOCATION "
        "(LOCATION with service_region_info entries that have province_code and province_name).",
        "REGION_TYPE_IS_BLANK REGION_TYPE_IS_INVALID REGION_CODE_IS_BLANK REGION_CODE_IS_INVALID "
        "INVALID_REGION",
    ),
    (
        InvalidInput,
        "Alipay refused the screenshots; give 2–5 PNG or JPEG files of at most 4 MB and "
        "2160×3840 pixels in screenshots for the app.",
        "SCREEN_SHOTS_ARE_BLANK SCREEN_SHOT_NUM_IS_INVALID INVALID_SCREEN_SHOT_EXT "
        "SCREEN_SHOT_EXCEED_MAX_SIZE",
    ),
    (
        InvalidInput,
        "Alipay refused the memo for reviewers (at most 500 characters, no sensitive words, a "
        "valid trade number if it quotes one); fix memo for the app.",
        "INVALID_MINI_APP_MEMO_LENGTH MINI_APP_MEMO_SENSITIVE INVALIID_MEMO_TRADENO "
        "MEMO_TRADENO_CHECK_FAIL",
    ),
    (
        InvalidInput,
        "the test account or password for reviewers is too long or too short; fix test_account "
        "or test_password for the app.",
        "INVALID_TEST_ACCOUNT_LENGTH INVALID_TEST_PWD_LENGTH",
    ),
    (
        InvalidInput,
        "Alipay refused an uploaded file; screenshots must be PNG or JPEG files of at most 4 MB.",
        "isv.upload-fail isv.invalid-file-extension isv.invalid-file-size",
    ),
    (
        InvalidInput,
        f"the mini program's name is missing, malformed, taken or refused; set it {_CONSOLE}.",
        "APP_NAME_IS_BLANK INVALID_MINI_APP_NAME_LENGTH INVALID_MINI_APP_NAME "
        "INVALID_MINI_APP_NAME_PREFIX MINI_APP_NAME_DUPLICATE MINI_VERSION_NAME_DUPLICATE "
        "MINI_APP_NAME_SENSITIVE",
    ),
    (
        InvalidInput,
        "the mini program's English name is missing, malformed, taken or refused; set it "
        f"{_CONSOLE}.",
        "ENGLISH_NAME_IS_BLANK INVALID_MINI_APP_EN_NAME INVALID_MINI_APP_EN_NAME_LENGTH "
        "MINI_APP_EN_NAME_DUPLICATE MINI_APP_EN_NAME_SENSITIVE",
    ),
    (
        InvalidInput,
        f"the mini program's slogan (10–32 characters) is missing or refused; set it {_CONSOLE}.",
        "SLOGAN_IS_BLANK INVALID_MINI_APP_SLOGAN_LENGTH INVALID_MINI_APP_SLOGAN "
        "MINI_APP_SLOGAN_SENSITIVE",
    ),
    (
        InvalidInput,
        "the mini program's description (20–400 characters) is missing or refused; set it "
        f"{_CONSOLE}.",
        "APP_DESC_IS_BLANK INVALID_MINI_APP_DESC_LENGTH INVALID_MINI_APP_DESC "
        "MINI_APP_DESC_SENSITIVE",
    ),
    (
        InvalidInput,
        f"the service phone or e-mail is missing or refused; set one {_CONSOLE}.",
        "SERVICE_TEL_AND_MAIL_BOTH_BLANK SERVICE_TEL_IS_BLANK INVALID_MINI_APP_SERVICE_TEL "
        "INVALID_MINI_APP_SERVICE_MAIL MINI_APP_SERVICE_MAIL_SENSITIVE",
    ),
    (
        InvalidInput,
        f"the mini program's categories are missing or not allowed; choose them {_CONSOLE}.",
        "CATEGORY_IS_BLANK CATEGORY_NUM_IS_INVALID INVALID_CATEGORY",
    ),
    (
        InvalidState,
        "this kind of mini program may not use the chosen category; choose another in the Alipay "
        "console.",
        "PRIVATE_NOT_ALLOW_CATEGORY",
    ),
    (
        InvalidInput,
        "the logo is missing, the default one, not square, not JPG/PNG or over 2 MB; upload it "
        f"{_CONSOLE}.",
        "LOGO_IS_BLANK DEFAULT_LOGO INVALID_LOGO INVALID_LOGO_EXT LOGO_HEIGHT_NOT_EQUAL_WIDTH "
        "LOGO_EXCEED_MAX_SIZE LOGO_SIZE_EXCEED",
    ),
    (
        InvalidInput,
        "the chosen category needs licences (number, name, validity, photos); add them to the "
        "submission in the Alipay console.",
        "LICENSE_NO_IS_BLANK LICENSE_NAME_IS_BLANK LICENSE_VALID_DATE_IS_BLANK "
        "LICENSE_VALID_DATE_IS_INVALID LICENSE_PICS_ARE_BLANK LICENSE_PIC_NUM_IS_INVALID "
        "LICENSE_CHECK_FAIL SPECIAL_LICENSE_PICS_ARE_BLANK INVALID_SPECIAL_LICENSE_NUM "
        "OUT_DOOR_PIC_IS_BLANK FILE_IS_BLANK INVALID_FILE_EXT FILE_SIZE_EXCEED",
    ),
    (
        InvalidInput,
        "a server domain of the mini program is not allowed; fix the safe domains in the Alipay "
        "console.",
        "INVALID_MINI_APP_SAFE_DOMAIN",
    ),
    (
        InvalidState,
        "a mini program's name cannot change once it was online; keep the current name.",
        "CAN_NOT_MODIFY_NAME_ONCE_ONLINE CAN_NOT_MODIFY_EN_ONCE_ONLINE",
    ),
    (
        InvalidState,
        "Alipay's risk control or a brand or infringement case blocks this mini program; see the "
        "messages in the Alipay console.",
        "RISK_DECISION_CHECK_FAIL RISK_DECISION_HIT_BRAND RISK_DECISION_HIT_BROAD "
        "BRAND_TORT_NOT_END MINI_APP_RESTRICTED_AUDIT_CONTROL TINY_APP_AUDIT_NOT_PERMIT "
        "CAN_NOT_ROLLBACK_PUNISH",
    ),
    (
        InvalidState,
        "mini programs on Alibaba Cloud hosting are submitted from the cloud console, not here.",
        "CAN_NOT_SUBMIT_WITH_ALI_CLOUD",
    ),
    (
        AlreadyInReview,
        "another version of this mini program is in review, approved, rejected or in gray "
        "release; wait for it, publish it, or send it back to development before submitting.",
        "CAN_NOT_SUBMIT_WITH_AUDIT_GRAY",
    ),
    (
        AlreadyInReview,
        "another version of this mini program is already in review; wait for the result or "
        "withdraw it first.",
        "CAN_NOT_SUBMIT_WITH_AUDIT",
    ),
    (
        AlreadyInReview,
        "this version was just submitted already.",
        "SUBMIT_REPEAT",
    ),
    (
        InvalidState,
        "the mini program's base information is itself under review; wait for that review to "
        "end, then submit.",
        "MINI_APP_INFO_AUDIT_CONTAINS",
    ),
    (
        InvalidState,
        "only a version in development (INIT) can be submitted for review.",
        "CAN_NOT_SUBMIT_WITHOUT_INIT",
    ),
    (
        InvalidState,
        "a higher version is already live; upload a version above it.",
        "EXIST_LARGER_ONLINED_VERSION",
    ),
    (
        InvalidState,
        "the version has not passed Alipay's security scan yet; try again later.",
        "CAN_NOT_SUBMIT_WITHOUT_SCAN_PASS CAN_NOT_SET_WITHOUT_SCAN_PASS",
    ),
    (
        InvalidState,
        "the template has not passed Alipay's security scan yet; try again later.",
        "CODE_TEMPLATE_NOT_SAFE",
    ),
    (
        InvalidState,
        "the template is punished or cannot be built from now; use another template version.",
        "TEMPLATE_STATUS_PUNISHED TEMPLATE_STATUS_CAN_NOT_BUILD",
    ),
    (
        InvalidState,
        "no version is in review, so there is nothing to withdraw.",
        "AUDITING_VERSION_NOT_EXIST",
    ),
    (
        InvalidState,
        "the version is not in a state this step allows; look at `status` and try again.",
        "INVALID_VERSION_STATUS TINYAPP_STATUS_INVALID MULTI_CLIENT_NOT_PACKAGED_STATUS "
        "MINI_APP_VERSION_STATUS_ILLEGAL",
    ),
    (
        InvalidState,
        "only an approved or rejected version can be sent back to development.",
        "CAN_NOT_BACK_DEV_WITHOUT_AUDIT",
    ),
    (
        InvalidState,
        "only an approved (WAIT_RELEASE) or gray version can be published.",
        "CAN_NOT_ONLINE_NOT_GRAY_OR_WAITRELEASE",
    ),
    (
        InvalidState,
        "the version has not passed review, so it cannot be published.",
        "CAN_NOT_ONLINE_WITHOUT_AUDIT",
    ),
    (
        InvalidState,
        "the version must be in gray release before it can be published.",
        "CAN_NOT_ONLINE_WITHOUT_GRAY",
    ),
    (
        InvalidState,
        "the version has not passed the marketing review, so it cannot be published.",
        "CAN_NOT_ONLINE_NO_PROMOTE",
    ),
    (
        InvalidState,
        "the mini program has no ICP filing (备案); finish the filing in the Alipay console before "
        "the first release.",
        "CAN_NOT_ONLINE_WITHOUT_REGISTRATION",
    ),
    (
        InvalidState,
        "only the live version can be taken offline.",
        "CAN_NOT_OFFLINE_WITHOUT_ONLINE",
    ),
    (
        InvalidState,
        "a version is in gray release; end it (`gray … stop`) or publish it first.",
        "CAN_NOT_OFFLINE_WITH_GRAY CAN_NOT_ROLLBACK_WITH_GRAY",
    ),
    (
        InvalidState,
        "a template mini program cannot be taken offline.",
        "TEMPLATE_NOT_ALLOWED_OFFLINE",
    ),
    (
        InvalidState,
        "only the live version can be rolled back, and nothing is live.",
        "CAN_NOT_ROLLBACK_WITHOUT_ONLINE",
    ),
    (
        InvalidState,
        "Alipay does not allow two rollbacks in a row; publish a new version instead.",
        "CAN_NOT_CONTINUOUS_ROLLBACK",
    ),
    (
        InvalidState,
        "there is no earlier release to roll back to.",
        "CAN_NOT_ROLLBACK_WITHOUT_OFFLINE",
    ),
    (
        InvalidInput,
        "Alipay releases to 10, 30 or 50 percent of users (p10, p30, p50).",
        "GRAY_STRATEGY_IS_INVALID",
    ),
    (
        InvalidState,
        "a gray release can only grow (p10 → p30 → p50); publish it to release it to everyone.",
        "GRAY_STRATEGY_NOT_ALLOW_REDUCE",
    ),
    (
        InvalidState,
        "only an approved version can be released to a share of users.",
        "CAN_NOT_GRAY_WITHOUT_AUDIT_PASS CAN_NOT_GRAY_WITHOUT_INNER_PASS",
    ),
    (
        InvalidState,
        "Alipay flags this version as risky and does not stage it; publish or withdraw it.",
        "CAN_NOT_GRAY_WITH_RISK_VERSION",
    ),
    (
        InvalidState,
        "the version is not in gray release, so there is none to end.",
        "CAN_NOT_END_GRAY_WITHOUT_GRAY",
    ),
    (
        InvalidState,
        "this gray release cannot be ended from here; end it in the Alipay console.",
        "CAN_NOT_CANCEL_GRAY_WITH_DIFF_DW",
    ),
    (
        InvalidState,
        "the version is already the trial version.",
        "CAN_NOT_SET_EXP_REPEAT",
    ),
    (
        InvalidState,
        "the version is live or offline; only a version not yet released can be the trial version.",
        "CAN_NOT_SET_EXP_WITH_ONLINED_STATUS CAN_NOT_SET_EXP_INVALID_STATUS",
    ),
    (
        InvalidState,
        "the trial version is not packaged (or not in a state that can be cancelled) yet.",
        "CAN_NOT_CANCEL_WITHOUT_PACKAGED CAN_NOT_CANCEL_EXP_WITH_INVALID_STATUS",
    ),
)
"""Plain words for every sub_code the fact sheet lists for the methods miniship calls,
grouped by what they mean for people; the platform's own sub_msg is shown alongside."""

_RULES: dict[str, _ErrorRule] = {
    code: (cls, text) for cls, text, codes in _GROUPS for code in codes.split()
}

_GATEWAY_CODES: dict[str, _ErrorRule] = {
    "20000": (PlatformUnavailable, "Alipay is busy; try again in a minute."),
    "20001": (AuthError, "Alipay refused the authorisation token."),
    "40001": (
        InvalidInput,
        "Alipay says a required gateway parameter is missing (a miniship bug; please report it).",
    ),
    "40002": (InvalidInput, "Alipay refused a gateway parameter."),
    "40006": (
        AuthError,
        "the app lacks the permission or product this API needs; check it in the Alipay console.",
    ),
}


def error_for(code: str, sub_code: str, sub_msg: str, msg: str = "") -> PlatformError:
    """The typed error for an Alipay failure answer (``code`` != 10000).

    ``code`` is the gateway code (``"40004"``), ``sub_code``/``sub_msg`` the detail. The
    error's ``code`` is the sub_code (or the gateway code when there is none).
    """
    rule = _RULES.get(sub_code)
    if rule is None and "不允许自调用" in sub_msg:  # the code itself is UNCERTAIN (§1.4)
        rule = _RULES["isv.self-invoke-forbidden"]
    if rule is None and sub_code.startswith("isv.missing-"):
        rule = _GATEWAY_CODES["40001"]
    if rule is None and code in _GATEWAY_CODES and code != "40004":
        rule = _GATEWAY_CODES[code]
    if rule is None and code == "40004":
        if sub_code.endswith("_IS_BLANK") or sub_code.startswith("INVALID_"):
            rule = (InvalidInput, "Alipay refused a field of the request.")
        elif re.search(r"NOT_EXI?ST|NOT_EXSIT|NOT_EXISTED", sub_code):
            rule = (NotFound, "Alipay does not know what the request names.")
        elif sub_code.startswith("CAN_NOT_"):
            rule = (InvalidState, "Alipay does not allow this step in the version's current state.")
    cls, explanation = rule or (PlatformError, sub_msg or msg or f"Alipay failed with code {code}")
    return cls("alipay", sub_code or code, sub_msg or msg, explanation)


class _Unsigned:
    """Marks an error read from a refusal that carried no signature: it is reported as it
    is, but nothing is done on its word (such as sending a version back to development)."""


_UNSIGNED_KINDS: dict[type[PlatformError], type[PlatformError]] = {}


def _unsigned_kind(cls: type[PlatformError]) -> type[PlatformError]:
    if cls not in _UNSIGNED_KINDS:
        _UNSIGNED_KINDS[cls] = type(cls.__name__, (cls, _Unsigned), {"__module__": cls.__module__})
    return _UNSIGNED_KINDS[cls]


def _unsigned(error: PlatformError) -> PlatformError:
    """``error`` as the same kind of error, marked :class:`_Unsigned`."""
    return _unsigned_kind(type(error))(
        error.platform, error.code, error.platform_message, error.explanation
    )


# --------------------------------------------------------------------------- configuration


class AlipaySettings(BaseSettings):
    """Adapter settings, from ``ALIPAY_*`` environment variables (or ``.env``).

    Waiting: ``upload`` waits up to ``ALIPAY_BUILD_WAIT_SECONDS`` for a template build and
    ``trial_code`` up to ``ALIPAY_TRIAL_WAIT_SECONDS`` for the trial package, asking Alipay
    every ``ALIPAY_POLL_SECONDS``; ``ALIPAY_MINIDEV_TIMEOUT_SECONDS`` bounds a minidev upload.
    """

    model_config = SettingsConfigDict(
        env_prefix="ALIPAY_", env_file=".env", extra="ignore", populate_by_name=True
    )

    gateway: str = "https://openapi.alipay.com/gateway.do"
    app_id: str = ""
    private_key: SecretStr | None = None
    private_key_file: Path | None = None
    # ALIPAY_PUBLIC_KEY reads better than the field's own ALIPAY_ALIPAY_PUBLIC_KEY; both work
    alipay_public_key: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices(
            "ALIPAY_PUBLIC_KEY", "ALIPAY_ALIPAY_PUBLIC_KEY", "alipay_public_key"
        ),
    )
    alipay_public_key_file: Path | None = Field(
        None,
        validation_alias=AliasChoices(
            "ALIPAY_PUBLIC_KEY_FILE", "ALIPAY_ALIPAY_PUBLIC_KEY_FILE", "alipay_public_key_file"
        ),
    )
    max_retries: int = Field(default=2, ge=0, le=10)
    retry_backoff_seconds: float = Field(default=0.5, ge=0.0)
    build_wait_seconds: float = Field(default=120.0, ge=0.0)
    trial_wait_seconds: float = Field(default=60.0, ge=0.0)
    poll_seconds: float = Field(default=3.0, gt=0.0)
    minidev_timeout_seconds: float = Field(default=600.0, gt=0.0)


class AlipayAppConfig(BaseModel):
    """One app's ``[apps.<key>.alipay]`` section.

    A merchant mini program built from a third-party template::

        [apps.shop.alipay]
        app_id = "2021004100000001"
        template_id = "2021004100009999"
        app_auth_token = "env:SHOP_ALIPAY_APP_AUTH_TOKEN"
        app_refresh_token = "env:SHOP_ALIPAY_APP_REFRESH_TOKEN"
        review_notes = "测试账号见下；主要改动：……"
        region_type = "LOCATION"          # CHINA (default), GLOBAL or LOCATION
        service_region_info = [{province_code = "310000", province_name = "上海市"}]
        memo = "Log in with the test account; the order pages need a paid order."
        test_account = "reviewer@example.com"
        test_password = "env:SHOP_ALIPAY_TEST_PASSWORD"
        screenshots = ["shots/home.png", "shots/cart.png"]   # 2–5 PNG/JPEG files ≤ 4 MB

    A mini program owned directly, uploaded with minidev (its own keys sign the gateway
    calls)::

        [apps.own.alipay]
        app_id = "2021004100000002"
        private_key = "file:/etc/miniship/own-app-private-key.txt"
        alipay_public_key = "file:/etc/miniship/own-alipay-public-key.txt"
        project_path = "../own-mini-program/dist"
        tool_id = "TOOL2021…"
        tool_private_key = "file:/etc/miniship/own-tool-private-key.txt"
    """

    model_config = ConfigDict(extra="forbid")

    app_id: str = Field(pattern=r"^\d+$", description="the merchant mini program's APPID")
    template_id: str | None = None
    template_version: str | None = None
    ext: dict[str, Any] = Field(default_factory=dict)
    bundle_id: str = "com.alipay.alipaywallet"
    app_auth_token: SecretRef | None = None
    app_refresh_token: SecretRef | None = None
    private_key: SecretRef | None = None
    alipay_public_key: SecretRef | None = None
    region_type: Literal["CHINA", "GLOBAL", "LOCATION"] = "CHINA"
    service_region_info: list[dict[str, str]] = Field(default_factory=list)
    review_notes: str = ""
    memo: str = Field(default="", max_length=500)
    test_account: str | None = None
    test_password: SecretRef | None = None
    screenshots: list[Path] = Field(default_factory=list, max_length=len(SCREENSHOT_PARTS))
    project_path: Path | None = None
    tool_id: str | None = None
    tool_private_key: SecretRef | None = None

    @model_validator(mode="after")
    def _consistent(self) -> AlipayAppConfig:
        if self.region_type == "LOCATION" and not self.service_region_info:
            raise ValueError('region_type "LOCATION" needs service_region_info entries')
        for region in self.service_region_info:
            if not (region.get("province_code") and region.get("province_name")):
                raise ValueError("each service_region_info entry needs province_code and name")
            if region.get("area_code") and not region.get("city_code"):
                raise ValueError("a service_region_info entry with area_code needs city_code")
        minidev = (self.project_path, self.tool_id, self.tool_private_key)
        if any(v is not None for v in minidev) and not all(v is not None for v in minidev):
            raise ValueError(
                "project_path, tool_id and tool_private_key go together (minidev upload)"
            )
        if len(self.screenshots) == 1:
            raise ValueError("Alipay takes 2–5 screenshots; give none to keep those it has")
        return self

    @property
    def uses_minidev(self) -> bool:
        return self.project_path is not None


@dataclass
class _Caller:
    """Who signs an app's calls: the third-party app (with a token) or the mini program.

    ``token``/``refresh_token`` are the ones in use (renewed while running, or loaded from
    the vault); ``configured`` the pair from miniship.toml, tried when those fail.
    """

    app_id: str
    mini_app_id: str  # whose tokens these are (the names they are kept under in the vault)
    private_key: rsa.RSAPrivateKey = field(repr=False)
    alipay_public_key: rsa.RSAPublicKey = field(repr=False)
    token: str | None = field(default=None, repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    configured: tuple[str | None, str | None] = field(default=(None, None), repr=False)
    loaded: bool = False  # the vault was read
    lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)


_IsvKeys = tuple[rsa.RSAPrivateKey | None, rsa.RSAPublicKey | None]


def _without_input(exc: ValidationError) -> str:
    """pydantic's complaints without the values given, which may be secrets typed in."""
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or 'section'}: {error['msg']}"
        for error in exc.errors(include_input=False, include_url=False)
    )


def _masked(text: str, secret: str) -> str:
    """``text`` without ``secret``: whole, JSON-escaped, or any line of it (a PEM key's
    base64 lines, which a tool may print one by one)."""
    secret = secret.strip()
    lines = (line.strip() for line in secret.splitlines())
    pieces = {secret, json.dumps(secret)[1:-1], *(line for line in lines if len(line) >= 16)}
    for piece in sorted((p for p in pieces if p), key=len, reverse=True):
        text = text.replace(piece, "***")
    return text


def _secret(value: SecretStr | None, path: Path | None, what: str) -> str | None:
    """The text of a key given inline or as a file; ``ConfigError`` if both or unreadable."""
    if value is not None and path is not None:
        raise ConfigError(f"set {what} or {what}_FILE, not both")
    if path is not None:
        try:
            return path.expanduser().read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read {what}_FILE {path}: {exc.strerror}") from None
    return value.get_secret_value() if value is not None else None


def _private_key(text: str, what: str) -> rsa.RSAPrivateKey:
    try:
        return alipay_sign.load_private_key(text)
    except ValueError as exc:
        raise ConfigError(
            f"{what} is not a usable RSA private key: {exc}. Give the app private key as PEM "
            "or as the bare base64 the Alipay key tool shows (PKCS#1 or PKCS#8)."
        ) from None


def _public_key(text: str, what: str, own: rsa.RSAPrivateKey | None) -> rsa.RSAPublicKey:
    try:
        key = alipay_sign.load_public_key(text)
    except ValueError as exc:
        raise ConfigError(
            f"{what} is not a usable RSA public key: {exc}. Give the Alipay public key "
            "(支付宝公钥) as PEM or bare base64."
        ) from None
    if own is not None and key.public_numbers() == own.public_key().public_numbers():
        raise ConfigError(
            f"{what} is the public half of your own app key; it must be the Alipay public key "
            "(支付宝公钥) shown next to it in the Alipay console."
        )
    return key


# --------------------------------------------------------------------------- the adapter


class AlipayPlatform(Platform):
    """Alipay mini programs through the v2 gateway: template builds (or minidev uploads),
    review, gray release, publish, rollback, offline and trial QR codes."""

    name = "alipay"
    display_name = "Alipay"
    docs_url = "https://opendocs.alipay.com/isv/03kqzl"

    Settings = AlipaySettings
    AppConfig = AlipayAppConfig
    single_trial_version = False  # development versions coexist; each can be submitted
    gray_steps: ClassVar[tuple[int, ...] | None] = (10, 30, 50)  # gray_strategy p10/p30/p50
    rollback_to_any = False  # rollback returns to the previous online version only
    # quotas: the base's none: the fact sheet documents no submit, expedite or withdraw
    # limit an API reports (only 5 template-built mini programs per template per day)

    def __init__(
        self,
        settings: Any,
        apps: Mapping[str, Any],
        *,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not isinstance(settings, AlipaySettings):
            raise ConfigError("AlipayPlatform needs AlipayPlatform.Settings")
        problem = url_problem(settings.gateway)
        if problem is not None:
            raise ConfigError(
                f"ALIPAY_GATEWAY must be an http(s) URL such as "
                f"https://openapi.alipay.com/gateway.do, not {settings.gateway!r} ({problem})"
            )
        try:
            configs = {
                key: cfg
                if isinstance(cfg, AlipayAppConfig)
                else AlipayAppConfig.model_validate(cfg)
                for key, cfg in apps.items()
            }
        except ValidationError as exc:
            raise ConfigError(
                f"an [apps.*.alipay] section is invalid: {_without_input(exc)}"
            ) from None
        isv = self._isv_keys(settings)
        callers = {key: self._caller_for(key, cfg, settings, isv) for key, cfg in configs.items()}
        super().__init__(settings, configs, client=client, clock=clock)
        self.settings: AlipaySettings = settings
        self._callers = callers
        self._isv_public = isv[1]
        self._gray_shares: dict[tuple[str, str], int] = {}  # the share gray() last set
        self._lists_promote_reject = True  # list.query takes PROMOTE_AUDIT_REJECT (UNCERTAIN)

    @classmethod
    def is_configured(cls, settings: Any) -> bool:
        return bool(
            getattr(settings, "app_id", "")
            and (settings.private_key or settings.private_key_file)
            and (settings.alipay_public_key or settings.alipay_public_key_file)
        )

    @classmethod
    def describe_app(cls, config: Any) -> str:
        """``mini program 2021… from template 2021… (via the third-party app)``."""
        cfg = (
            config
            if isinstance(config, AlipayAppConfig)
            else AlipayAppConfig.model_validate(config)
        )
        text = f"mini program {cfg.app_id}"
        if cfg.template_id:
            version = f" {cfg.template_version}" if cfg.template_version else ""
            text += f" from template {cfg.template_id}{version}"
        elif cfg.project_path is not None:
            text += f" uploaded with minidev from {cfg.project_path}"
        if cfg.private_key is not None:
            return text + " (self-owned keys)"
        return text + " (via the third-party app)"

    @staticmethod
    def _isv_keys(settings: AlipaySettings) -> _IsvKeys:
        """The third-party app's private key and the Alipay public key, each loaded once
        (``None`` when not set); ConfigError when set but unusable."""
        private = _secret(settings.private_key, settings.private_key_file, "ALIPAY_PRIVATE_KEY")
        public = _secret(
            settings.alipay_public_key, settings.alipay_public_key_file, "ALIPAY_PUBLIC_KEY"
        )
        own = _private_key(private, "ALIPAY_PRIVATE_KEY") if private else None
        return own, (_public_key(public, "ALIPAY_PUBLIC_KEY", own) if public else None)

    @staticmethod
    def _caller_for(
        key: str, cfg: AlipayAppConfig, settings: AlipaySettings, isv: _IsvKeys
    ) -> _Caller:
        """Load the keys that will sign this app's calls (ConfigError when unusable)."""
        where = f"[apps.{key}.alipay]"
        if (cfg.private_key is None) != (cfg.alipay_public_key is None):
            raise ConfigError(
                f"{where}: self-owned mode needs both private_key and alipay_public_key"
            )
        if cfg.private_key is not None and cfg.alipay_public_key is not None:
            own = _private_key(cfg.private_key.get_secret_value(), f"{where} private_key")
            return _Caller(
                app_id=cfg.app_id,
                mini_app_id=cfg.app_id,
                private_key=own,
                alipay_public_key=_public_key(
                    cfg.alipay_public_key.get_secret_value(), f"{where} alipay_public_key", own
                ),
            )
        isv_private, isv_public = isv
        if not (settings.app_id and isv_private and isv_public):
            raise ConfigError(
                f"{where}: no keys to call Alipay with; set ALIPAY_APP_ID, ALIPAY_PRIVATE_KEY and "
                "ALIPAY_PUBLIC_KEY (third-party app), or private_key and alipay_public_key in "
                f"{where} (self-owned mini program)"
            )
        if cfg.app_auth_token is None:
            raise ConfigError(
                f"{where}: app_auth_token is needed to call for mini program {cfg.app_id} "
                f"through the third-party app {settings.app_id}"
            )
        token = cfg.app_auth_token.get_secret_value()
        refresh = cfg.app_refresh_token.get_secret_value() if cfg.app_refresh_token else None
        return _Caller(
            app_id=settings.app_id,
            mini_app_id=cfg.app_id,
            private_key=isv_private,
            alipay_public_key=isv_public,
            token=token,
            refresh_token=refresh,
            configured=(token, refresh),
        )

    def _config(self, app: str) -> AlipayAppConfig:
        cfg: AlipayAppConfig = self.app(app)
        return cfg

    # -- the vault ---------------------------------------------------------------------

    async def _keep_tokens(self, caller: _Caller) -> None:
        """Keep ``caller``'s tokens in the vault, so a restart uses them rather than the
        configured ones (Alipay may have retired those). A vault that fails is logged: the
        tokens still work until miniship restarts."""
        if self.vault is None:
            return
        for name, value in zip(TOKEN_NAMES, (caller.token, caller.refresh_token), strict=True):
            if not value:
                continue
            try:
                await self.vault.save(self.name, f"{name}:{caller.mini_app_id}", SecretStr(value))
            except Exception as exc:
                log.error("could not keep the Alipay %s in the vault: %s", name, type(exc).__name__)

    async def _load_tokens(self, caller: _Caller) -> None:
        """Once per caller: use the tokens the vault keeps for its mini program (renewed
        before a restart) in place of the configured ones."""
        async with caller.lock:
            if caller.loaded or self.vault is None:
                caller.loaded = True
                return
            names = [f"{name}:{caller.mini_app_id}" for name in TOKEN_NAMES]
            try:
                kept = [await self.vault.load(self.name, name) for name in names]
            except Exception as exc:  # the vault's own errors name no secret
                problem = f"{type(exc).__name__}: {exc}"
                where = f"the Alipay tokens of mini program {caller.mini_app_id}"
                raise ConfigError(
                    f"miniship's credential vault could not give {where} ({problem}); check "
                    "MINISHIP_SECRET_KEY"
                ) from None
            token, refresh = (value.get_secret_value() if value else None for value in kept)
            caller.token = token or caller.token
            caller.refresh_token = refresh or caller.refresh_token
            caller.loaded = True

    # -- the wire ----------------------------------------------------------------------

    def _http_failure(
        self,
        exc: httpx.HTTPError | httpx.InvalidURL,
        api: str,
        request: Mapping[str, Any],
        what: str,
        *,
        bad_url: Exception,
    ) -> Exception:
        """The error for a request to ``what`` that got no answer. Only the exception's
        type is recorded or shown: its text may carry the URL, token and all."""
        timed_out = isinstance(exc, httpx.TimeoutException)
        self.record_exchange(api, request, error="timed out" if timed_out else type(exc).__name__)
        if isinstance(exc, httpx.InvalidURL):
            return bad_url
        if timed_out:
            return PlatformUnavailable(
                self.name, "", "", f"{what} did not answer in time; try again later."
            )
        return PlatformUnavailable(
            self.name, "", "", f"could not reach {what} ({type(exc).__name__}); try again later."
        )

    def _http_status(
        self, response: httpx.Response, api: str, request: Mapping[str, Any], what: str
    ) -> PlatformUnavailable | None:
        """The error for an answer other than HTTP 200, or ``None``."""
        status = response.status_code
        if status == 200:
            return None
        self.record_exchange(api, request, error=f"HTTP {status}")
        return PlatformUnavailable(
            self.name, f"HTTP {status}", "", f"{what} answered HTTP {status}; try again later."
        )

    async def _send(
        self,
        caller: _Caller,
        method: str,
        params: Mapping[str, str],
        *,
        multipart: bool = False,
        files: Mapping[str, tuple[str, bytes, str]] | None = None,
        token: str | None = None,
        shown: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """One signed gateway request; returns the verified response node (code 10000).

        ``files`` (multipart only) are ``part → (file name, content, MIME type)``: sent, but
        not signed. ``shown`` is what the event log may see of ``params`` (defaults to
        ``params``). A refusal without a signature is raised all the same, but marked
        (:class:`_Unsigned`) unless it is a gateway-level one, so nothing acts on it.
        """
        common = {
            "app_id": caller.app_id,
            "method": method,
            "format": "JSON",
            "charset": "utf-8",
            "sign_type": "RSA2",
            "timestamp": alipay_sign.format_timestamp(self.clock()),
            "version": "1.0",
        }
        if token:
            common["app_auth_token"] = token
        if multipart:
            body = {k: v for k, v in params.items() if v}
        else:
            biz = json.dumps(dict(params), ensure_ascii=False, separators=(",", ":"))
            body = {"biz_content": biz}
        common["sign"] = alipay_sign.sign(
            alipay_sign.sign_content({**common, **body}), caller.private_key
        )
        request_log = {"app_id": caller.app_id, "method": method, **(shown or params)}

        def log(answer: Mapping[str, Any] | None = None, error: str = "") -> None:
            self.record_exchange(method, request_log, answer, error)

        try:
            if multipart:
                parts: list[tuple[str, tuple[str | None, str | bytes, str]]] = [
                    (k, (None, v, "text/plain; charset=utf-8")) for k, v in body.items()
                ]
                parts += [(k, file) for k, file in (files or {}).items()]
                response = await self.client.post(self.settings.gateway, params=common, files=parts)
            else:
                response = await self.client.post(self.settings.gateway, params=common, data=body)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            bad_url = ConfigError(
                f"ALIPAY_GATEWAY {self.settings.gateway!r} does not make a valid URL for "
                f"{method}; set it to an http(s) URL such as "
                "https://openapi.alipay.com/gateway.do"
            )
            raise self._http_failure(
                exc, method, request_log, f"Alipay ({method})", bad_url=bad_url
            ) from None
        refused = self._http_status(response, method, request_log, "the Alipay gateway")
        if refused is not None:
            raise refused
        try:
            node = alipay_sign.read_response(response.content.decode("utf-8"), method)
        except (UnicodeDecodeError, ValueError):
            log(error="the answer is not JSON")
            raise PlatformUnavailable(
                self.name,
                "",
                "",
                "the Alipay gateway answered with something that is not JSON (or cut short).",
            ) from None
        except LookupError as exc:
            log(error=str(exc))
            raise BadResponse(
                self.name, "", "", f"Alipay's answer to {method} is malformed: {exc}."
            ) from None

        # sub_msg may echo the signed request, tokens and all
        data: dict[str, Any] = scrub_answer(node.data)
        code = str(data.get("code", ""))
        if node.sign is not None:
            if not alipay_sign.verify_node(node, caller.alipay_public_key):
                log(error="response signature did not verify")
                raise BadResponse(
                    self.name,
                    "",
                    "",
                    f"the signature of Alipay's answer to {method} did not verify; check "
                    "ALIPAY_PUBLIC_KEY (the Alipay public key, not your app's), or someone "
                    "altered the answer on the way.",
                )
        elif code == SUCCESS:
            log(error="successful answer without a signature")
            raise BadResponse(
                self.name,
                "",
                "",
                f"Alipay's successful answer to {method} carries no signature, so it cannot be "
                "trusted.",
            )
        log(data)
        if code == SUCCESS:
            return data
        error = error_for(
            code,
            str(data.get("sub_code", "")),
            str(data.get("sub_msg", "")),
            str(data.get("msg", "")),
        )
        if node.sign is None and code not in UNSIGNED_GATEWAY_CODES:
            error = _unsigned(error)
        raise error

    async def _call(
        self,
        app: str,
        method: str,
        params: Mapping[str, str],
        *,
        read: bool = False,
        multipart: bool = False,
        files: Mapping[str, tuple[str, bytes, str]] | None = None,
        shown: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Call ``method`` for ``app``: renews an expired token once; retries only reads.

        A change (``read=False``) whose answer is lost or unusable raises
        :class:`OutcomeUnknown`, so the operation can ask Alipay what happened; a failed
        token renewal (nothing was changed) does not.
        """
        self.app(app)  # ConfigError for an app without an [apps.<key>.alipay] section
        caller = self._callers[app]
        if caller.token is not None and not caller.loaded:
            await self._load_tokens(caller)

        async def attempt(token: str | None) -> dict[str, Any]:
            once = functools.partial(
                self._send,
                caller,
                method,
                params,
                multipart=multipart,
                files=files,
                token=token,
                shown=shown,
            )
            if read:
                return await self.read_with_retries(once)
            return await self.send_change(once)

        token = caller.token
        try:
            return await attempt(token)
        except AuthError as exc:
            # acting on an unsigned refusal here is harmless: a renewal changes nothing on
            # the mini program, and whether Alipay signs 20001 answers is not documented
            if not await self._recover(caller, token, exc.code):
                raise
        return await attempt(caller.token)

    async def _recover(self, caller: _Caller, used: str | None, code: str) -> bool:
        """After Alipay refused the token ``used`` with ``code``: renew it when it expired,
        or go back to the configured token when one kept in the vault is no longer valid
        (the merchant authorised the app again). True when there is a token to try."""
        if code == GRANT_EXPIRED:
            return await self._renew(caller, used)
        configured, configured_refresh = caller.configured
        if code != GRANT_REFUSED or not configured or used == configured:
            return False
        async with caller.lock:
            if caller.token == used:
                caller.token, caller.refresh_token = configured, configured_refresh
                await self._keep_tokens(caller)
        return True

    async def _renew(self, caller: _Caller, expired: str | None) -> bool:
        """Trade a refresh token (the one in use, else the configured one) for a new
        app_auth_token; both new tokens go into the vault. False when there is none."""
        async with caller.lock:
            if caller.token != expired:
                return True  # another call renewed it meanwhile
            candidates = [
                t for t in dict.fromkeys((caller.refresh_token, caller.configured[1])) if t
            ]
            answer: dict[str, Any] = {}
            for refresh in candidates:
                params = {"grant_type": "refresh_token", "refresh_token": refresh}
                try:
                    answer = await self._send(caller, AUTH_GRANT, params)
                except AuthError as exc:
                    if exc.code in REFRESH_REFUSED and refresh != candidates[-1]:
                        continue
                    raise
                break
            else:
                return False
            tokens = answer.get("tokens")
            if not answer.get("app_auth_token") and isinstance(tokens, list) and tokens:
                answer = tokens[0] if isinstance(tokens[0], dict) else answer
            new_token = answer.get("app_auth_token")
            if not isinstance(new_token, str) or not new_token:
                raise BadResponse(
                    self.name,
                    "",
                    "",
                    "Alipay renewed the token but the answer has no app_auth_token.",
                )
            caller.token = new_token
            new_refresh = answer.get("app_refresh_token")
            caller.refresh_token = (
                new_refresh if isinstance(new_refresh, str) and new_refresh else refresh
            )
            await self._keep_tokens(caller)
            return True

    # -- reading and changing versions -------------------------------------------------

    def _version_params(self, app: str, version: str) -> dict[str, str]:
        """What almost every version method takes: the version and the app's bundle."""
        return {"app_version": version, "bundle_id": self._config(app).bundle_id}

    async def _detail(self, app: str, version: str) -> dict[str, Any]:
        return await self._call(app, DETAIL_QUERY, self._version_params(app, version), read=True)

    async def _listed(self, app: str, statuses: str) -> list[dict[str, Any]]:
        """``list.query`` for ``statuses`` (comma-separated): version infos, newest first.

        PROMOTE_AUDIT_REJECT may not be a status Alipay knows (UNCERTAIN): when Alipay
        refuses a list that names it, the list is asked again (and from then on) without.
        """
        cfg = self._config(app)

        async def ask(wanted: str) -> dict[str, Any]:
            params = {"bundle_id": cfg.bundle_id, "version_status": wanted}
            return await self._call(app, LIST_QUERY, params, read=True)

        plain = ",".join(s for s in statuses.split(",") if s != PROMOTE_REJECT)
        if not self._lists_promote_reject or plain == statuses:
            answer = await ask(plain)
        else:
            try:
                answer = await ask(statuses)
            except InvalidInput:
                self._lists_promote_reject = False
                answer = await ask(plain)
        infos = [i for i in answer.get("app_version_infos") or [] if isinstance(i, dict)]
        infos.sort(key=lambda i: version_key(str(i.get("app_version", ""))), reverse=True)
        return infos

    def _shows(self, app: str, version: str, *statuses: str) -> Callable[[], Awaitable[bool]]:
        """A check for :meth:`confirm_change`: ``version`` now has one of ``statuses``."""

        async def check() -> bool:
            return str((await self._detail(app, version)).get("status", "")) in statuses

        return check

    def _submitted(self, app: str, version: str, sent: float) -> Callable[[], Awaitable[bool]]:
        """A check for :meth:`confirm_change` after a submission sent at ``sent``.

        Any status but development counts, as the review may already be decided (Alipay's
        machine checks reject fast). When Alipay says when the version was submitted
        (``gmt_apply_audit``), an older submission of the same version does not count.
        """

        async def check() -> bool:
            detail = await self._detail(app, version)
            if str(detail.get("status", "")) in ("", "INIT"):
                return False
            applied = _decided_at(detail.get("gmt_apply_audit"))
            return applied is None or applied.timestamp() >= sent - CLOCK_SKEW_SECONDS

        return check

    async def _exists(self, read: Callable[[], Awaitable[object]], wait: float) -> bool:
        """Whether ``read`` finds what it asks for. A version Alipay does not know may still
        be queued or building, so NotFound is asked again for up to ``wait`` seconds."""

        async def found(_: float) -> bool | None:
            try:
                await read()
            except NotFound:
                return None
            return True

        seen, _ = await self._poll(found, wait)
        return bool(seen)

    async def _poll(
        self, check: Callable[[float], Awaitable[_T | None]], limit: float
    ) -> tuple[_T | None, float]:
        """Run ``check(seconds waited)`` every ``poll_seconds`` until it returns something
        other than ``None``, for at most ``limit`` seconds: ``(what it returned, or None
        when the time ran out; seconds waited)``."""
        waited = 0.0
        while True:
            result = await check(waited)
            if result is not None or waited >= limit:
                return result, waited
            pause = min(self.settings.poll_seconds, limit - waited)
            await self.sleep(pause)
            waited += pause

    async def _change(
        self,
        app: str,
        method: str,
        params: Mapping[str, str],
        what: str,
        done: Callable[[], Awaitable[bool]],
        **options: Any,
    ) -> dict[str, Any] | None:
        """Send one change; when its answer is unclear, ask Alipay whether it happened.

        ``done`` asks Alipay whether the change (``what``, for people) shows. Returns the
        answer, or ``None`` when the answer was lost but Alipay shows the change; raises as
        :meth:`confirm_change` does when it does not show or Alipay could not be asked.
        """
        try:
            return await self._call(app, method, params, **options)
        except OutcomeUnknown as unclear:
            await self.confirm_change(unclear, what, done)
            return None

    @staticmethod
    def _said(text: str, answer: Mapping[str, Any] | None) -> str:
        """``text`` for people, saying so when the change was confirmed after a lost answer."""
        return f"{text} ({CONFIRMED})" if answer is None else text

    async def _gated_change(self, app: str, version: str, method: str, text: str) -> str:
        """Read ``version``'s status, refuse unless its :data:`GATES` entry allows
        ``method``, send it and confirm it when the answer is lost; ``text`` for people."""
        gate = GATES[method]
        status, detail = await self._status(app, version)
        if not gate.allowed(status, detail):
            raise self._refuse(version, status, gate.why)
        params = self._version_params(app, version)
        shows = self._shows(app, version, *gate.shows)
        return self._said(text, await self._change(app, method, params, gate.what, shows))

    async def _status(self, app: str, version: str) -> tuple[str, dict[str, Any]]:
        detail = await self._detail(app, version)
        return str(detail.get("status", "")), detail

    def _refuse(self, version: str, status: str, why: str) -> InvalidState:
        return InvalidState(
            self.name, status, "", f"version {version} is {_status_words(status)}; {why}"
        )

    async def _back_to_development(self, app: str, version: str) -> dict[str, Any] | None:
        """Send a rejected or approved ``version`` back to development (``audited.cancel``).

        Returns Alipay's answer, ``None`` when that was confirmed after an unclear one.
        """
        what = f"return of {version} to development"
        params = self._version_params(app, version)
        return await self._change(
            app, AUDITED_CANCEL, params, what, self._shows(app, version, "INIT")
        )

    async def _clear_the_way(self, app: str, version: str, refused: PlatformError) -> list[str]:
        """Send back to development the decided versions that keep ``version`` from review.

        Alipay refuses every submission while a version is rejected or approved but not
        published (fact sheet §2.2), and submits only versions in development. A new
        submission supersedes such a decision of *another* version, as on WeChat: that
        version goes back to development. ``version`` itself, when approved, is refused
        (publish it, or withdraw it first); when rejected, it goes back too. Raises
        ``refused`` when a version in review or gray release blocks, when ``version``
        cannot be submitted anyway, or when nothing can be cleared. Returns a line per
        version sent back.
        """
        infos = await self._listed(app, ",".join(REVIEW_STATUSES))
        statuses = {
            str(info.get("app_version", "")): str(info.get("version_status", "")) for info in infos
        }
        own = statuses.get(version)
        if own in APPROVED:
            raise self._refuse(
                version, own, "it is already approved; publish it, or withdraw it first."
            )
        blocking = {v: s for v, s in statuses.items() if s in SUPERSEDED}
        if not blocking or any(s not in SUPERSEDED for s in statuses.values()):
            raise refused  # nothing to clear, or a review or gray release is running
        if own is None:  # then it must be in development to be submitted
            status, _ = await self._status(app, version)
            if status != "INIT":
                raise refused  # live, offline …: clearing the way would not help
        lines = []
        for other in sorted(blocking, key=version_key):
            try:
                await self._back_to_development(app, other)
            except OutcomeUnknown as still:  # the submission itself was never sent
                raise PlatformUnavailable(
                    still.platform,
                    still.code,
                    still.platform_message,
                    f"{still.explanation} Nothing was submitted for review.",
                ) from None
            lines.append(f"{other} ({SUPERSEDED[blocking[other]]}) went back to development")
        return lines

    # -- uploading ---------------------------------------------------------------------

    async def upload(
        self, app: str, version: str, notes: str, *, template: str | None = None
    ) -> UploadResult:
        """Upload ``version`` and return once Alipay has built it (or the wait ran out).

        An app with a template (``template`` overrides ``template_id``) is built from it
        (``version.upload``, then ``build.query`` every ``poll_seconds`` for at most
        ``build_wait_seconds``); an app owned directly is uploaded with minidev.
        """
        cfg = self._config(app)
        chosen = template or cfg.template_id
        if chosen:
            return await self._template_upload(app, cfg, version, chosen)
        if cfg.uses_minidev:
            return await self._minidev_upload(app, cfg, version, notes)
        raise ConfigError(
            f"[apps.{app}.alipay] says neither how to build nor how to upload the code: set "
            "template_id (the template mini program's APPID) for a template build, or "
            "project_path, tool_id and tool_private_key to upload with minidev."
        )

    async def _template_upload(
        self, app: str, cfg: AlipayAppConfig, version: str, template: str
    ) -> UploadResult:
        ext = dict(cfg.ext)
        ext.setdefault("extEnable", True)
        params = {
            "template_id": template,
            "app_version": version,
            "ext": json.dumps(ext, ensure_ascii=False, separators=(",", ":")),
            "bundle_id": cfg.bundle_id,
        }
        if cfg.template_version and template == cfg.template_id:
            params["template_version"] = cfg.template_version
        query = self._version_params(app, version)
        seen: list[dict[str, Any]] = []

        async def build_state() -> None:
            seen.append(await self._call(app, BUILD_QUERY, query, read=True))

        async def uploaded() -> bool:
            return await self._exists(build_state, self.settings.build_wait_seconds)

        answer = await self._change(app, UPLOAD, params, "upload", uploaded)
        state = seen[-1] if answer is None else answer
        detail = await self._await_build(app, version, template, state, query)
        return UploadResult(version, self._said(detail, answer))

    @staticmethod
    def _build_failure(state: Mapping[str, Any]) -> str | None:
        """``"failed"`` or ``"timed out"`` when Alipay says the build did, else ``None``."""
        return BUILD_FAILED.get(str(state.get("build_status", ""))) or BUILD_FAILED.get(
            str(state.get("create_status", ""))
        )

    @staticmethod
    def _built(state: Mapping[str, Any]) -> bool:
        """Whether the build is done, by the INFERRED rule (fact sheet §3.2) read strictly:
        the version was created (``create_status`` 6, ``version_created``), or Alipay
        stops asking to poll (``need_rotation`` false) after a good build (``build_status``
        2). Anything else (a field missing, still queued or building) is asked again."""
        return (
            state.get("version_created") == "true"
            or str(state.get("create_status", "")) == "6"
            or (state.get("need_rotation") == "false" and str(state.get("build_status")) == "2")
        )

    def _build_error(
        self, version: str, template: str, state: Mapping[str, Any], failed: str
    ) -> PlatformError:
        said = (
            f"Alipay's build of version {version} from template {template} {failed} "
            f"(build_status {state.get('build_status', '?')}, create_status "
            f"{state.get('create_status', '?')}); "
        )
        if failed == "timed out":
            return InvalidState(
                self.name,
                "BUILD_TIMEOUT",
                "",
                said + "Alipay does not build that version again: upload a higher version, "
                "and if it times out again, try another template version.",
            )
        return InvalidInput(
            self.name,
            "BUILD_FAILED",
            "",
            said + "check the template version and the app's ext settings, then upload a "
            "higher version.",
        )

    async def _await_build(
        self,
        app: str,
        version: str,
        template: str,
        state: Mapping[str, Any],
        query: Mapping[str, str],
    ) -> str:
        """Poll ``build.query`` every ``poll_seconds`` until the build is done; the line
        for people. A failed build raises :meth:`_build_error`. The upload itself
        happened, so when Alipay cannot say how the build is going (any error while
        asking) the line says so instead of failing."""
        given = iter([state])
        last = [state]
        later = "`status` will show when it is ready to submit"

        async def check(waited: float) -> str | None:
            now = next(given, None)
            if now is None:
                try:
                    now = await self._call(app, BUILD_QUERY, query, read=True)
                except PlatformError as exc:
                    why = exc.code or exc.kind
                    return (
                        f"uploaded; Alipay could not say how the build is going ({why}) — {later}"
                    )
            last.append(now)
            failed = self._build_failure(now)
            if failed:
                raise self._build_error(version, template, now, failed)
            return f"built in {waited:.0f} s" if self._built(now) else None

        line, waited = await self._poll(check, self.settings.build_wait_seconds)
        if line is not None:
            return line
        build = str(last[-1].get("build_status") or "?")
        return (
            f"uploaded; Alipay is still building it after {waited:.0f} s (build_status "
            f"{build}) — {later}"
        )

    async def _minidev_upload(
        self, app: str, cfg: AlipayAppConfig, version: str, notes: str
    ) -> UploadResult:
        """``minidev upload`` of the built code at ``project_path``; the key goes in a file
        and never into what is recorded or raised, even when minidev prints it."""
        where = f"[apps.{app}.alipay]"
        assert cfg.project_path is not None and cfg.tool_private_key is not None  # validated
        project = cfg.project_path.expanduser()
        if not project.is_dir():
            raise ConfigError(f"{where} project_path {project} is not a directory")
        client = MINIDEV_CLIENTS.get(cfg.bundle_id)
        if client is None:
            raise ConfigError(f"{where}: minidev cannot upload for bundle_id {cfg.bundle_id}")
        args = ["upload", "--app-id", cfg.app_id, "--project", str(project), "--version", version]
        description = " ".join(notes.split())[:MINIDEV_DESCRIPTION_MAX]
        if description:
            args += ["--version-description", description]
        if client != "alipay":
            args += ["--client-type", client]
        key = cfg.tool_private_key.get_secret_value()
        identity = json.dumps(
            {"alipay": {"authentication": {"privateKey": key, "toolId": cfg.tool_id}}}
        )
        shown = {"app_id": cfg.app_id, "version": version, "project": str(project)}

        async def run() -> str:
            with cli.key_file(identity, suffix=".json") as path:
                try:
                    out = await cli.run(
                        cli.MINIDEV,
                        [*args, "--identity-key-path", str(path)],
                        limit=self.settings.minidev_timeout_seconds,
                    )
                except cli.CliFailed as exc:
                    failed = cli.CliFailed(
                        exc.platform, _masked(exc.explanation, key), _masked(exc.output, key)
                    )
                    self.record_exchange("minidev upload", shown, error=failed.explanation)
                    raise failed from None
                except PlatformError as exc:
                    self.record_exchange("minidev upload", shown, error=exc.explanation)
                    raise
            said = scrub_message(_masked(out, key))[-500:]
            self.record_exchange("minidev upload", shown, {"output": said})
            return said

        started = self.clock()
        try:
            await self.send_change(run)
        except OutcomeUnknown as unclear:
            # minidev may have been stopped while Alipay was still building the version
            wait = self.settings.build_wait_seconds
            await self.confirm_change(
                unclear, "upload", lambda: self._exists(lambda: self._detail(app, version), wait)
            )
            return UploadResult(version, f"uploaded with minidev ({CONFIRMED})")
        took = max(0.0, self.clock() - started)
        return UploadResult(version, f"uploaded and built with minidev in {took:.0f} s")

    # -- review ------------------------------------------------------------------------

    def _screenshots(self, app: str, cfg: AlipayAppConfig) -> dict[str, tuple[str, bytes, str]]:
        """The configured screenshots as multipart file parts, checked before sending."""
        where = f"[apps.{app}.alipay] screenshots"
        parts: dict[str, tuple[str, bytes, str]] = {}
        for part, given in zip(SCREENSHOT_PARTS, cfg.screenshots, strict=False):
            path = given.expanduser()
            mime = SCREENSHOT_TYPES.get(path.suffix.lower())
            if mime is None:
                raise ConfigError(f"{where}: {path} is not a .png, .jpg or .jpeg file")
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                raise ConfigError(f"{where}: {path} does not exist") from None
            except OSError as exc:
                raise ConfigError(f"{where}: cannot read {path}: {exc.strerror}") from None
            if not data:
                raise ConfigError(f"{where}: {path} is empty")
            if len(data) > SCREENSHOT_MAX_BYTES:
                raise ConfigError(
                    f"{where}: {path} has {len(data) / 1024 / 1024:.1f} MB; Alipay takes "
                    "screenshots of at most 4 MB"
                )
            parts[part] = (path.name, data, mime)
        return parts

    async def submit(
        self, app: str, version: str, notes: str, *, expedite: bool = False
    ) -> SubmitResult:
        """Submit ``version`` for review (multipart ``audit.apply``); ref is the version.

        Sends the app's review details from its config (region, memo, test account,
        screenshots) and ``speed_up`` from ``expedite``; Alipay's word on expediting
        (``speed_up_memo``) ends up in the detail. A rejected or approved-but-unpublished
        version blocks every submission on Alipay. Another such version, and this one when
        rejected, is superseded by the new submission: it is sent back to development first
        and the detail says so. This version when already approved is refused (InvalidState:
        publish it, or withdraw it first), and a version in review or gray release still
        blocks (AlreadyInReview).
        """
        cfg = self._config(app)
        desc = "\n".join(part for part in (notes.strip(), cfg.review_notes.strip()) if part)
        length = version_desc_length(desc)
        if not VERSION_DESC_MIN <= length <= VERSION_DESC_MAX:
            advice = (
                "add detail or set review_notes for the app"
                if length < VERSION_DESC_MIN
                else "shorten the notes or review_notes"
            )
            raise InvalidInput(
                self.name,
                "",
                "",
                f"Alipay needs review notes of {VERSION_DESC_MIN}–{VERSION_DESC_MAX} characters "
                f"(Chinese characters count 2); these have {length} — {advice}.",
            )
        files = await asyncio.to_thread(self._screenshots, app, cfg)  # up to 5 × 4 MB
        fields = {
            "app_version": version,
            "version_desc": desc,
            "region_type": cfg.region_type,
            "speed_up": "true" if expedite else "false",  # Alipay's default is "true"
            "bundle_id": cfg.bundle_id,
        }
        if cfg.region_type == "LOCATION":
            fields["service_region_info"] = json.dumps(
                cfg.service_region_info, ensure_ascii=False, sort_keys=True, separators=(",", ":")
            )
        if cfg.memo:
            fields["memo"] = cfg.memo
        if cfg.test_account:
            fields["test_accout"] = cfg.test_account  # sic: the API's spelling
        if cfg.test_password is not None:
            fields["test_password"] = cfg.test_password.get_secret_value()
        shown = {k: ("***" if k == "test_password" else v) for k, v in fields.items()}
        shown.update({part: name for part, (name, _, _) in files.items()})

        async def apply() -> str:
            sent = self.clock()
            answer = await self._change(
                app,
                AUDIT_APPLY,
                fields,
                "submission",
                self._submitted(app, version, sent),
                multipart=True,
                files=files,
                shown=shown,
            )
            if answer is None:
                return f"submitted for review ({CONFIRMED})"
            detail = "submitted for review"
            if answer.get("speed_up") == "true":
                detail += " (expedited)"
            memo = str(answer.get("speed_up_memo") or "").strip()
            return f"{detail}; Alipay on expediting: {memo}" if memo else detail

        try:
            return SubmitResult(version, await apply())
        except (AlreadyInReview, InvalidState) as refused:
            if refused.code not in SUBMIT_BLOCKED:
                raise
            if isinstance(refused, _Unsigned):
                raise type(refused)(
                    refused.platform,
                    refused.code,
                    refused.platform_message,
                    f"{refused.explanation} (Alipay's refusal carried no signature, so miniship "
                    "sent no version back to development on its word.)",
                ) from None
            cleared = await self._clear_the_way(app, version, refused)
        return SubmitResult(version, f"{await apply()}; {', '.join(cleared)} first")

    def _review(self, app: str, version: str, ref: str, detail: Mapping[str, Any]) -> ReviewStatus:
        """Map ``detail.query``'s answer for ``version`` to a :class:`ReviewStatus`."""
        status = str(detail.get("status", ""))
        decided = _decided_at(detail.get("gmt_audit_end"))
        words = _status_words(status)
        if status == "INIT":
            state = ReviewState.WITHDRAWN if ref else ReviewState.NOT_SUBMITTED
            return ReviewStatus(state, version, ref, detail=words)
        if status == "AUDITING":
            return ReviewStatus(ReviewState.IN_REVIEW, version, ref, detail=words)
        if status == "AUDIT_REJECT":
            reason = _rejection(detail)
            return ReviewStatus(ReviewState.REJECTED, version, ref, reason, decided, words)
        if status == "GRAY":
            percent = self._gray_plan(app, version, detail).percent
            if percent is not None:
                words = f"{words}, {percent}% of users"
            return ReviewStatus(ReviewState.GRAY, version, ref, decided_at=decided, detail=words)
        if status in APPROVED:
            promotion = "; ".join(_memos(detail.get("promote_audit_record")))
            if promotion:
                words = f"{words}; the marketing review says: {promotion}"
            if detail.get("can_release") == "false":
                words = f"{words}; Alipay does not allow publishing it (can_release false)"
            return ReviewStatus(
                ReviewState.APPROVED, version, ref, decided_at=decided, detail=words
            )
        if status == "RELEASE":
            return ReviewStatus(
                ReviewState.RELEASED, version, ref, decided_at=decided, detail=words
            )
        return ReviewStatus(ReviewState.UNKNOWN, version, ref, decided_at=decided, detail=words)

    async def review_status(self, app: str, version: str, ref: str) -> ReviewStatus:
        """Where ``version`` stands (``detail.query``); a version Alipay does not know yet may
        still be building (``build.query``)."""
        try:
            detail = await self._detail(app, version)
        except NotFound:
            return await self._unlisted(app, version, ref)
        return self._review(app, version, ref, detail)

    async def _unlisted(self, app: str, version: str, ref: str) -> ReviewStatus:
        """The status of a version ``detail.query`` does not know: building, failed or unknown."""
        unknown = ReviewStatus(
            ReviewState.UNKNOWN, version, ref, detail="Alipay does not know this version"
        )
        try:
            build = await self._call(
                app, BUILD_QUERY, self._version_params(app, version), read=True
            )
        except PlatformError:
            return unknown
        code = str(build.get("build_status", ""))
        failed = self._build_failure(build)
        if failed:
            return ReviewStatus(
                ReviewState.UNKNOWN,
                version,
                ref,
                detail=f"Alipay's build of it {failed} (build_status {code}); upload a higher "
                "version",
            )
        if build.get("need_rotation") == "true":
            return ReviewStatus(
                ReviewState.NOT_SUBMITTED,
                version,
                ref,
                detail=f"Alipay is still building it (build_status {code or '?'})",
            )
        return unknown

    async def withdraw(self, app: str, version: str, ref: str) -> str:
        """Pull ``version`` back: out of review (``audit.cancel``), or, when it was already
        approved or rejected, back to development (``audited.cancel``)."""
        status, _ = await self._status(app, version)
        if status == "AUDITING":
            params = self._version_params(app, version)
            shows = self._shows(app, version, "INIT")
            answer = await self._change(app, AUDIT_CANCEL, params, "withdrawal", shows)
            return self._said(f"withdrew {version} from review; it is back in development", answer)
        if status in SUPERSEDED:
            answer = await self._back_to_development(app, version)
            return self._said(f"sent {version} ({SUPERSEDED[status]}) back to development", answer)
        why = (
            "end the gray release first (`gray … stop`)"
            if status == "GRAY"
            else "only a version in review, approved or rejected can be withdrawn"
        )
        raise self._refuse(version, status, why + ".")

    # -- releasing ---------------------------------------------------------------------

    def _gray_plan(self, app: str, version: str, detail: Mapping[str, Any]) -> GrayPlan:
        """The gray release of ``version`` as ``detail.query`` shows it. When Alipay leaves
        the share out, it is the one this adapter set (while it runs), else unknown."""
        percent = _gray_percent(detail.get("gray_strategy"))
        if percent is not None:
            return GrayPlan(percent=percent, version=version)
        remembered = self._gray_shares.get((app, version))
        if remembered is None:
            return GrayPlan(percent=None, version=version)
        return GrayPlan(
            percent=remembered,
            version=version,
            state="running; Alipay does not report the share, this is the one miniship set",
        )

    async def publish(self, app: str, version: str, ref: str) -> str:
        """Put the approved (or gray) ``version`` online for everyone; a lost answer is
        checked, never repeated."""
        said = await self._gated_change(app, version, ONLINE, f"published {version}; it is live")
        self._gray_shares.pop((app, version), None)
        return said

    async def gray(self, app: str, version: str, percent: int) -> str:
        """Release the approved ``version`` to 10, 30 or 50 % of users (``gray.online``).

        The share can only grow; ``publish`` then releases it to everyone. A smaller share
        than the current one is refused, and the same share is not sent again.
        """
        if percent not in (self.gray_steps or ()):
            raise InvalidInput(
                self.name,
                "",
                "",
                f"Alipay releases to 10, 30 or 50 percent of users (p10, p30, p50), not {percent}.",
            )
        status, detail = await self._status(app, version)
        if not _publishable(status, detail):
            raise self._refuse(
                version, status, "only an approved version can be released to a share of users."
            )
        strategy = f"p{percent}"
        before = self._gray_plan(app, version, detail).percent if status == "GRAY" else None
        if before is not None and percent < before:
            raise InvalidState(
                self.name,
                "GRAY_STRATEGY_NOT_ALLOW_REDUCE",
                "",
                f"{version} is released to {before}% of users (p{before}), and a gray release "
                "can only grow (p10 → p30 → p50): choose a larger share, or publish it to "
                "release it to everyone.",
            )
        if before == percent:
            return f"{version} is already released to {percent}% of users ({strategy})"

        async def staged() -> bool:
            now = await self._detail(app, version)
            if now.get("status") != "GRAY":
                return False
            shown = _gray_percent(now.get("gray_strategy"))
            if shown is None and status == "GRAY":  # it was gray before: the share tells
                raise BadResponse(self.name, "", "", "Alipay does not say the gray share.")
            return shown in (None, percent)

        params = {**self._version_params(app, version), "gray_strategy": strategy}
        answer = await self._change(app, GRAY_ONLINE, params, f"gray release at {strategy}", staged)
        self._gray_shares[app, version] = percent
        return self._said(f"{version} is released to {percent}% of users ({strategy})", answer)

    async def stop_gray(self, app: str, version: str) -> str:
        """End the gray release of ``version`` (``gray.cancel``): it is approved again."""
        text = (
            f"ended the gray release of {version}; everyone has the live version again and "
            f"{version} waits to be published"
        )
        said = await self._gated_change(app, version, GRAY_CANCEL, text)
        self._gray_shares.pop((app, version), None)
        return said

    async def _rollback_target(
        self, app: str, infos: list[dict[str, Any]], live: str | None
    ) -> _Rollback:
        """The version a rollback of ``live`` would bring back, and whether it cannot now.

        Alipay goes back to the previous online version (fact sheet §3.8). INFERRED from
        §2.2: a release or rollback takes the version it replaces offline, so that is the
        OFFLINE version below ``live`` that went offline last (``gmt_offline``); an OFFLINE
        version above ``live`` means ``live`` came back by a rollback, and Alipay refuses
        two rollbacks in a row. Not ``certain`` when ``gmt_offline`` is missing or the list
        may be cut short (list.query gives at most 20 versions).
        """
        if live is None:
            return _Rollback(None, ("CAN_NOT_ROLLBACK_WITHOUT_ONLINE", "nothing is live"), True)
        key = version_key(live)
        offline = [str(i.get("app_version")) for i in infos if i.get("version_status") == "OFFLINE"]
        below = [v for v in offline if version_key(v) < key]
        blocked: tuple[str, str] | None = None
        if any(i.get("version_status") == "GRAY" for i in infos):
            blocked = (
                "CAN_NOT_ROLLBACK_WITH_GRAY",
                "a version is in gray release; end it (`gray … stop`) or publish it first",
            )
        elif any(version_key(v) > key for v in offline):
            blocked = (
                "CAN_NOT_CONTINUOUS_ROLLBACK",
                f"{live} came back by a rollback, and Alipay does not roll back twice in a row; "
                "publish a new version instead",
            )
        whole = len(infos) < LIST_CAP
        if len(below) <= 1:
            return _Rollback(below[0] if below else None, blocked, whole)
        details = await asyncio.gather(*(self._detail(app, v) for v in below))
        went = [_decided_at(detail.get("gmt_offline")) for detail in details]
        floor = datetime.min.replace(tzinfo=UTC)
        latest, _ = max(
            zip(below, went, strict=True),
            key=lambda pair: (pair[1] or floor, version_key(pair[0])),
        )
        return _Rollback(latest, blocked, whole and None not in went)

    async def rollback(self, app: str, live: str, to: str | None) -> str:
        """Take the app from ``live`` back to the previous online version (``rollback``).

        Alipay picks the version itself; a ``to`` that is surely not it is refused, naming
        it (when miniship cannot be sure, the rollback is sent and Alipay decides). Never
        retried blindly: after an unclear answer Alipay is asked which version is live.
        """
        status, _ = await self._status(app, live)
        if status != "RELEASE":
            raise self._refuse(live, status, "only the live version can be rolled back.")
        infos = await self._listed(app, ALL_STATUSES)
        plan = await self._rollback_target(app, infos, live)
        if plan.blocked is not None:
            code, why = plan.blocked
            raise InvalidState(self.name, code, "", f"{live} cannot be rolled back now: {why}.")
        if to is not None and to != plan.target and plan.certain:
            back = f"the previous release, {plan.target}" if plan.target else "no earlier release"
            raise InvalidInput(
                self.name,
                "",
                "",
                f"Alipay rolls {live} back to the version that was live before it, and only "
                f"that; here that is {back}, not {to}.",
            )

        async def moved() -> bool:
            online = await self._listed(app, "RELEASE")
            return bool(online) and all(i.get("app_version") != live for i in online)

        params = self._version_params(app, live)
        answer = await self._change(app, ROLLBACK, params, f"rollback of {live}", moved)
        back = (
            plan.target
            if plan.certain and plan.target
            else "the version live before it (Alipay picks it; `versions` shows which)"
        )
        return self._said(f"rolled back from {live} to {back}; {live} is offline", answer)

    async def offline(self, app: str, version: str) -> str:
        """Take the live ``version`` off the shelves (``version.offline``)."""
        text = f"{version} taken offline: users can no longer open the mini program"
        return await self._gated_change(app, version, OFFLINE, text)

    # -- reading -----------------------------------------------------------------------

    async def overview(self, app: str) -> Overview:
        """Live, newest development and latest reviewed versions, from ``list.query``; the
        gray release, if any, from ``detail.query``."""
        infos = await self._listed(app, LISTED_STATUSES)

        def newest(*statuses: str) -> str | None:
            for info in infos:
                if info.get("version_status") in statuses:
                    return str(info.get("app_version"))
            return None

        live, trial, reviewed = newest("RELEASE"), newest("INIT"), newest(*REVIEW_STATUSES)
        review: ReviewStatus | None = None
        gray: GrayPlan | None = None
        if reviewed:
            try:
                detail = await self._detail(app, reviewed)
            except NotFound:
                review = ReviewStatus(ReviewState.UNKNOWN, reviewed, reviewed)
            else:
                review = self._review(app, reviewed, reviewed, detail)
                if detail.get("status") == "GRAY":
                    gray = self._gray_plan(app, reviewed, detail)
        lines = tuple(
            f"{info.get('app_version')}: {_status_words(str(info.get('version_status')))}"
            for info in infos[:5]
        )
        return Overview(
            live_version=live, trial_version=trial, review=review, gray=gray, lines=lines
        )

    async def versions(self, app: str) -> list[VersionInfo]:
        """Every version Alipay lists (at most the latest 20), newest first; ``rollback``
        marks the one a rollback would bring back."""
        infos = await self._listed(app, ALL_STATUSES)
        live = next(
            (str(i.get("app_version")) for i in infos if i.get("version_status") == "RELEASE"),
            None,
        )
        plan = await self._rollback_target(app, infos, live)
        out = []
        for info in infos:
            name, status = str(info.get("app_version", "")), str(info.get("version_status", ""))
            state = VERSION_STATES.get(status, status.lower() or "unknown")
            if status == "OFFLINE" and live and version_key(name) < version_key(live):
                state = "earlier release"
            out.append(
                VersionInfo(
                    version=name,
                    state=state,
                    created_at=_decided_at(info.get("create_time")),
                    description=str(info.get("version_description") or ""),
                    rollback=name == plan.target and plan.blocked is None,
                )
            )
        return out

    # -- trial version -----------------------------------------------------------------

    async def trial_code(self, app: str, version: str | None) -> TrialCode:
        """Make ``version`` (default: the newest in development) the trial (experience)
        version, wait for Alipay to package it and fetch its QR code image."""
        if version is None:
            dev = await self._listed(app, "INIT")
            if not dev:
                raise NotFound(self.name, "", "", "no version is in development; upload one first.")
            version = str(dev[0].get("app_version"))
        params = self._version_params(app, version)

        async def set_up() -> bool:
            answer = await self._call(app, EXPERIENCE_QUERY, params, read=True)
            return str(answer.get("status", EXP_NONE)) != EXP_NONE

        detail = f"{version} is now the trial version"
        try:
            answer = await self._change(app, EXPERIENCE_CREATE, params, "trial version", set_up)
            detail = self._said(detail, answer)
        except PlatformError as exc:
            if exc.code != "CAN_NOT_SET_EXP_REPEAT":
                raise
            detail = f"{version} already was the trial version"
        packaged = await self._await_packaging(app, version, params)
        url = str(packaged["exp_qr_code_url"])
        image, mime = await self._fetch_image(url)
        return TrialCode(image, mime, version=version, url=url, detail=detail)

    async def _await_packaging(
        self, app: str, version: str, params: Mapping[str, str]
    ) -> dict[str, Any]:
        """Poll ``experience.query`` until packaged; the answer (with ``exp_qr_code_url``)."""

        async def check(_: float) -> dict[str, Any] | None:
            answer = await self._call(app, EXPERIENCE_QUERY, params, read=True)
            status = str(answer.get("status", ""))
            if status in EXP_PACKAGED:
                if not answer.get("exp_qr_code_url"):
                    raise BadResponse(
                        self.name,
                        status,
                        "",
                        "Alipay says the trial version is packaged but gives no QR code URL.",
                    )
                return answer
            if status == EXP_NONE:
                raise InvalidState(
                    self.name,
                    status,
                    "",
                    f"Alipay says {version} is not the trial version (another version may be); "
                    "cancel that one in the Alipay console and try again.",
                )
            return None

        packaged, waited = await self._poll(check, self.settings.trial_wait_seconds)
        if packaged is None:
            raise PlatformUnavailable(
                self.name,
                "expVersionPackaging",
                "",
                f"Alipay is still packaging trial version {version} after {waited:.0f} s; "
                "ask for the QR code again in a minute.",
            )
        return packaged

    async def _fetch_image(self, url: str) -> tuple[bytes, str]:
        """GET the trial QR code Alipay serves at ``url``; ``(image, MIME type)``."""
        api, request = "GET exp_qr_code_url", {"url": url}

        async def get() -> httpx.Response:
            try:
                response = await self.client.get(url)
            except (httpx.HTTPError, httpx.InvalidURL) as exc:
                bad_url = BadResponse(
                    self.name, "", "", f"Alipay's trial QR code URL {url!r} is not usable."
                )
                raise self._http_failure(
                    exc, api, request, "the trial QR code URL", bad_url=bad_url
                ) from None
            refused = self._http_status(response, api, request, "the trial QR code URL")
            if refused is not None:
                raise refused
            return response

        response = await self.read_with_retries(get)
        mime = _image_type(response.content, response.headers.get("content-type", ""))
        self.record_exchange(
            api, request, {"content_type": mime or "", "bytes": len(response.content)}
        )
        if mime is None:
            raise BadResponse(
                self.name, "", "", "the trial QR code URL did not give an image; try again later."
            )
        return response.content, mime

    # -- pushes ------------------------------------------------------------------------

    def _notify_key(self, app_id: str) -> rsa.RSAPublicKey:
        """The Alipay public key a push to ``app_id`` is verified with.

        A self-owned mini program (its own keys in miniship.toml) receives pushes signed for
        it; everything else arrives at the third-party app, verified with ALIPAY_PUBLIC_KEY.
        """
        for caller in self._callers.values():
            if caller.token is None and caller.app_id == app_id:
                return caller.alipay_public_key
        if self._isv_public is None:
            raise ConfigError(
                "reading Alipay pushes needs ALIPAY_PUBLIC_KEY (the Alipay public key of the "
                "third-party app)"
            )
        return self._isv_public

    @staticmethod
    def _push_params(request: PushRequest) -> dict[str, str]:
        """The query and urlencoded form fields of a push as one flat dict."""
        try:
            text = request.body.decode("utf-8")
        except UnicodeDecodeError:
            raise PushRejected("the push body is not UTF-8") from None
        try:
            pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text.strip()))
        except ValueError:
            raise PushRejected("the push body is not a urlencoded form") from None
        params: dict[str, str] = {}
        for key, value in [*request.query.items(), *pairs]:
            if key in params and params[key] != value:
                raise PushRejected(f"the push gives {key} twice")
            params[key] = value
        return params

    async def read_push(self, request: PushRequest) -> list[PushEvent]:
        """Verify and read an Alipay message-service push (audit passed / rejected).

        The signature is checked with the Alipay public key of the receiving app (``app_id``
        of the push): a self-owned mini program's own, else the third-party app's. Events
        get ``app`` from the configured app whose ``app_id`` is the push's ``mini_app_id``.
        Reply ``success`` to Alipay afterwards.

        Raises:
            PushRejected: bad or missing signature, or a malformed body.
        """
        params = self._push_params(request)
        if not params.get("sign"):
            raise PushRejected("the push carries no sign")
        key = self._notify_key(params.get("app_id", ""))
        if not alipay_sign.verify_notify(params, key):
            raise PushRejected("bad sign: the push was not signed by Alipay")
        events = alipay_events(params)
        return [
            dataclasses.replace(
                event,
                app=next(
                    (k for k, cfg in self.apps.items() if cfg.app_id == event.mini_program), None
                ),
            )
            for event in events
        ]
