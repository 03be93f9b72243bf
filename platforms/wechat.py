"""WeChat (微信) mini programs through a third-party platform (第三方平台): code management.

Credentials. miniship calls WeChat as a third-party platform on behalf of each merchant
mini program that authorized it:

- In the WeChat open platform console (https://open.weixin.qq.com) create a third-party
  platform, note its AppID and AppSecret (``WECHAT_COMPONENT_APPID``,
  ``WECHAT_COMPONENT_SECRET``) and put this server's outgoing IP on its IP whitelist
  (otherwise every call fails with 61004).
- WeChat pushes a ``component_verify_ticket`` to the platform's authorization-event URL
  (``/push/wechat/auth``) every 10 minutes (valid 12 h). miniship keeps the newest one in
  its credential vault (``MINISHIP_SECRET_KEY``); ``WECHAT_COMPONENT_VERIFY_TICKET`` gives
  one to start with. ``WECHAT_COMPONENT_TOKEN`` and ``WECHAT_ENCODING_AES_KEY`` (message
  verification token and key) are for reading pushes.
- Each mini program authorizes the platform with the code-management permission set (18):
  ``connect <app> wechat`` makes the link its admin opens; the ``authorizer_refresh_token``
  WeChat returns goes into the vault. A token obtained elsewhere can instead be given in
  the app's ``[apps.<key>.wechat]`` section as ``refresh_token = "env:NAME"`` (or ``file:``).

Mini programs owned directly (not authorized to a platform) give ``project_path`` and
``private_key`` (the code-upload key from mp.weixin.qq.com) instead of ``template_id``:
upload then runs ``miniprogram-ci``; WeChat has no API to submit or publish them.

Calls: ``api_component_token`` → ``component_access_token``; ``api_authorizer_token`` →
the mini program's ``authorizer_access_token``; then the ``/wxa`` code-management APIs
(commit, get_page, get_category, get_qrcode, submit_audit, get_auditstatus,
get_latest_auditstatus, undocodeaudit, speedupaudit, queryquota, release, grayrelease,
getgrayreleaseplan, revertgrayrelease, revertcoderelease, getversioninfo), the template
library (gettemplatelist, gettemplatedraftlist, addtotemplate, deletetemplate) and the
authorization APIs (api_create_preauthcode, api_query_auth, api_get_authorizer_info).
API docs:
https://developers.weixin.qq.com/doc/oplatform/openApi/miniprogram-management/code-management/api_commit.html
(and the pages next to it).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

import httpx
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from platforms import cli
from platforms.base import (
    Authorization,
    GrayPlan,
    Overview,
    Platform,
    Quota,
    ReviewState,
    ReviewStatus,
    SecretRef,
    SubmitResult,
    Template,
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
    Unsupported,
)
from platforms.push import PushEvent, PushRejected, PushRequest, wechat_events
from platforms.wechat_crypto import WeChatCrypto

__all__ = [
    "PERMISSION_NAMES",
    "NotConnected",
    "WeChatPlatform",
    "error_for",
    "ext_json_problems",
]

log = logging.getLogger(__name__)

GET_COMPONENT_ACCESS = "/cgi-bin/component/api_component_token"
GET_AUTHORIZER_ACCESS = "/cgi-bin/component/api_authorizer_token"
CREATE_PREAUTHCODE = "/cgi-bin/component/api_create_preauthcode"
QUERY_AUTH = "/cgi-bin/component/api_query_auth"
AUTHORIZER_INFO = "/cgi-bin/component/api_get_authorizer_info"
LOGIN_PAGE = "/cgi-bin/componentloginpage"
COMMIT = "/wxa/commit"
GET_PAGE = "/wxa/get_page"
GET_CATEGORY = "/wxa/get_category"
GET_QRCODE = "/wxa/get_qrcode"
SUBMIT_AUDIT = "/wxa/submit_audit"
GET_AUDITSTATUS = "/wxa/get_auditstatus"
GET_LATEST_AUDITSTATUS = "/wxa/get_latest_auditstatus"
UNDO_AUDIT = "/wxa/undocodeaudit"
SPEEDUP_AUDIT = "/wxa/speedupaudit"
RELEASE = "/wxa/release"
GRAY_RELEASE = "/wxa/grayrelease"
GRAY_PLAN = "/wxa/getgrayreleaseplan"
REVERT_GRAY = "/wxa/revertgrayrelease"
REVERT_RELEASE = "/wxa/revertcoderelease"
VERSION_INFO = "/wxa/getversioninfo"
QUERY_QUOTA = "/wxa/queryquota"
TEMPLATE_LIST = "/wxa/gettemplatelist"
DRAFT_LIST = "/wxa/gettemplatedraftlist"
ADD_TO_TEMPLATE = "/wxa/addtotemplate"
DELETE_TEMPLATE = "/wxa/deletetemplate"

NO_ERRCODE = frozenset(
    {GET_COMPONENT_ACCESS, GET_AUTHORIZER_ACCESS, CREATE_PREAUTHCODE, QUERY_AUTH, AUTHORIZER_INFO}
)
"""The token and authorization APIs, which answer without errcode on success (fact sheet §1).
Every other API's answer without one is malformed: a change it answered is then unclear."""

TOKEN_CODES = frozenset({"40001", "40014", "42001", "42006"})
"""errcodes that mean "this access token is refused": renew it and try once more.

42006 (component_access_token expired) comes from the calls that carry the component
token, such as api_authorizer_token."""

TICKET_REFUSED = frozenset({"61005", "61006"})
REFRESH_REFUSED = frozenset({"61023"})

REFRESH_EARLY_SECONDS = 600.0
"""Tokens are renewed at least this long before WeChat says they expire."""

DEFAULT_EXPIRES_IN = 7200

MAX_USER_VERSION = 64  # characters of user_version (fact sheet §4.1)
WITHDRAWALS_PER_DAY, WITHDRAWALS_PER_MONTH = 5, 10  # per mini program (§4.10)
CODE_MANAGEMENT = 18  # the permission set all /wxa code-management APIs belong to (§2)

PERMISSION_NAMES: dict[int, str] = {
    CODE_MANAGEMENT: "code management (mini program development and data analysis)",
    30: "categories (mini program settings)",
    86: "trial QR codes",
}
"""Plain names of the permission sets (权限集) the fact sheet names (§2); others show as
"permission set N"."""

VAULT_TICKET = "component_verify_ticket"

CONFIRMED = "confirmed with WeChat after an unclear answer"

APPROVED, REJECTED, IN_REVIEW, WITHDRAWN, DELAYED = 0, 1, 2, 3, 4

_STATES: dict[int, ReviewState] = {
    APPROVED: ReviewState.APPROVED,
    REJECTED: ReviewState.REJECTED,
    IN_REVIEW: ReviewState.IN_REVIEW,
    WITHDRAWN: ReviewState.WITHDRAWN,
    DELAYED: ReviewState.DELAYED,
}

_STATUS_WORDS: dict[int, str] = {
    APPROVED: "approved (status 0)",
    REJECTED: "rejected (status 1)",
    IN_REVIEW: "under review (status 2)",
    WITHDRAWN: "withdrawn (status 3)",
    DELAYED: "under review, delayed (status 4)",
}

_VERSION_STATES: dict[int, str] = {
    APPROVED: "approved",
    REJECTED: "rejected",
    IN_REVIEW: "in review",
    WITHDRAWN: "development",  # pulled out of review: the trial version again
    DELAYED: "in review",
}

_GRAY_STATES = {0: "running", 1: "running", 2: "paused"}
"""getgrayreleaseplan's status: 0 is "initial", not running; it counts as running only when
something was released (a percentage, or members first), which _gray_from checks. 3 finished
and 4 deleted are over."""


def _status_words(status: int) -> str:
    return _STATUS_WORDS.get(status, f"in an unknown state (status {status})")


def permission_name(permission: int) -> str:
    return PERMISSION_NAMES.get(permission, f"permission set {permission}")


# --------------------------------------------------------------------------- errors

_ErrorRule = tuple[type[PlatformError], str]

_REAUTHORIZE = (
    "the mini program's admin must authorize the third-party platform again (with the "
    "code-management permission set 18 ticked): run `connect <app> wechat` and have them "
    "open the link."
)

_OPEN_CONSOLE_IP = (
    "on open.weixin.qq.com → 管理中心 (management center) → 第三方平台 (third-party "
    "platform) → your platform → 开发资料 (development settings) → 白名单IP地址 (IP whitelist)"
)

_RULES: dict[int, _ErrorRule] = {
    # The codes of the fact sheet that the APIs miniship calls can answer. Left out: those
    # only of APIs it never calls or fields it never sends (/cgi-bin/token 61024,
    # uploadmedia 40005/40006/41005, preview_info 85092/85093, setweappsupportversion
    # 89014); they get error_for's plain explanation with WeChat's own words.
    -1: (PlatformUnavailable, "WeChat is busy (system error); try again in a minute."),
    # tokens and credentials
    40001: (
        AuthError,
        "WeChat refused the access token (invalid or not the latest). miniship renews tokens "
        "itself, so if this persists check WECHAT_COMPONENT_SECRET, and that no other system "
        "renews the same platform's tokens.",
    ),
    40013: (
        AuthError,
        "WeChat does not know the AppID; check WECHAT_COMPONENT_APPID and the app's appid.",
    ),
    40014: (AuthError, "WeChat says the access token is invalid; miniship could not renew it."),
    40125: (
        AuthError,
        "WeChat refused the platform's AppSecret; check WECHAT_COMPONENT_SECRET (reset it on "
        "open.weixin.qq.com if it was changed there).",
    ),
    41001: (AuthError, "the access token was missing from the request (a miniship bug)."),
    41004: (AuthError, "the platform's AppSecret is missing; set WECHAT_COMPONENT_SECRET."),
    41018: (AuthError, "the platform's AppID is missing; set WECHAT_COMPONENT_APPID."),
    42001: (AuthError, "the access token expired and miniship could not renew it."),
    42006: (AuthError, "the component_access_token expired and miniship could not renew it."),
    42007: (
        AuthError,
        "the mini program's authorization broke (e.g. its admin changed the password); "
        + _REAUTHORIZE,
    ),
    48001: (
        AuthError,
        "this API is not authorized for the mini program (or was called with the wrong kind of "
        "token); check the permission sets the merchant granted (`access`).",
    ),
    48004: (
        AuthError,
        "WeChat has banned this API for the account because of irregularities; see the "
        "notices in the open platform console.",
    ),
    61003: (
        AuthError,
        "the mini program has not authorized (or no longer authorizes) this third-party "
        "platform; " + _REAUTHORIZE,
    ),
    61004: (  # the explanation is completed with the IP from errmsg (error_for)
        AuthError,
        "this server's IP is not on the third-party platform's IP whitelist; add it "
        + _OPEN_CONSOLE_IP
        + ".",
    ),
    61005: (
        AuthError,
        "the component_verify_ticket has expired (tickets live 12 h). WeChat pushes a new "
        "one every 10 minutes to the authorization-event URL (/push/wechat/auth): check it "
        "is set and reachable, or set WECHAT_COMPONENT_VERIFY_TICKET to a recent ticket.",
    ),
    61006: (
        AuthError,
        "WeChat refused the component_verify_ticket. The newest one arrives at the "
        "authorization-event URL (/push/wechat/auth) within 10 minutes; check that URL is "
        "set and reachable, or set WECHAT_COMPONENT_VERIFY_TICKET to a recent ticket.",
    ),
    61007: (
        AuthError,
        "the merchant did not grant this platform the code-management permission set (18); "
        + _REAUTHORIZE,
    ),
    61009: (
        AuthError,
        "WeChat refused the authorization code (invalid or already used); run `connect <app> "
        "wechat` again for a new link.",
    ),
    61010: (
        AuthError,
        "the authorization code expired (it lives 10 minutes); run `connect <app> wechat` "
        "again and finish the authorization right away.",
    ),
    61011: (
        AuthError,
        "WeChat does not accept this third-party platform (invalid component); check "
        "WECHAT_COMPONENT_APPID and that the platform is approved on open.weixin.qq.com.",
    ),
    61014: (AuthError, "a component API was called with a mini program token (a miniship bug)."),
    61023: (
        AuthError,
        "WeChat refused the app's authorizer refresh token; " + _REAUTHORIZE,
    ),
    86000: (
        AuthError,
        "WeChat expects this API to be called by the third-party platform on behalf of the "
        "mini program; check the app is authorized to this platform (`access`).",
    ),
    # rate limits and quotas
    45009: (
        QuotaExceeded,
        "the daily API call quota is spent; try again tomorrow or reset it in the open platform "
        "console (clear_quota, at most 10 times a month).",
    ),
    45011: (QuotaExceeded, "too many calls this minute; try again in a minute."),
    48006: (
        QuotaExceeded,
        "the API quota cannot be reset again this month (clear_quota is allowed 10 times a "
        "month); wait for the daily quota to renew.",
    ),
    85085: (
        QuotaExceeded,
        "the platform's monthly review quota is spent (it is shared by every mini program "
        "authorized to the platform; `quotas` shows it). It resets on the 1st of next month "
        "(Beijing time); for more now, ask for a temporary increase in the WeChat "
        "小程序服务商助手 (service provider assistant) mini program.",
    ),
    87013: (
        QuotaExceeded,
        "the withdraw quota is spent: WeChat allows 5 withdrawals a day and 10 a month per mini "
        "program; wait for the review decision or withdraw tomorrow (after 00:00 Beijing time).",
    ),
    89401: (
        PlatformUnavailable,
        "WeChat's review system is unstable right now; ask for the expedited review again later.",
    ),
    89405: (
        QuotaExceeded,
        "the platform's monthly quota of expedited reviews is spent (`quotas` shows it); it "
        "renews on the 1st of next month (Beijing time). The review goes on at normal speed.",
    ),
    # review flow
    85009: (
        AlreadyInReview,
        "a version is already under review; withdraw it or wait for the decision.",
    ),
    61039: (
        InvalidState,
        "WeChat's privacy-API scan of the uploaded code has not finished; submit again in a "
        "minute (do not upload again: every upload restarts the scan).",
    ),
    85019: (InvalidState, "no version is under review or approved, so there is nothing to do."),
    85020: (
        InvalidState,
        "the latest review is not approved, so it cannot be published yet.",
    ),
    85021: (InvalidState, "the visit status cannot be changed in the current state."),
    85052: (InvalidState, "the approved version is already live."),
    85079: (
        InvalidState,
        "the mini program has no live version yet: a gray (staged) release only exists for "
        "updates; publish the first version to everyone.",
    ),
    85080: (
        InvalidState,
        "the latest review is not approved, so there is nothing to release gradually; wait "
        "for the approval.",
    ),
    86002: (
        InvalidState,
        "the mini program has not finished its setup (name, avatar, introduction); complete "
        "it in mp.weixin.qq.com first.",
    ),
    86007: (
        InvalidState,
        "WeChat does not allow this mini program to submit code for review; see the notices "
        "in mp.weixin.qq.com.",
    ),
    86008: (
        InvalidState,
        "WeChat has restricted all submissions of this third-party platform (a penalty); see "
        "the notices on open.weixin.qq.com.",
    ),
    86009: (
        InvalidState,
        "WeChat restricts submissions of new mini programs by this platform (a penalty); see "
        "the notices on open.weixin.qq.com.",
    ),
    86010: (
        InvalidState,
        "WeChat restricts this platform's update submissions (a penalty); see the notices on "
        "open.weixin.qq.com.",
    ),
    87011: (
        InvalidState,
        "a gray (staged) release is running; publish it to everyone or stop it first.",
    ),
    87012: (
        InvalidState,
        "WeChat does not allow this on the version in its current state: no earlier version "
        "is kept, the live version already is a rollback (no second rollback until a new "
        "version is published), or the review was already decided (nothing to withdraw).",
    ),
    89402: (
        InvalidState,
        "the review is not waiting in WeChat's queue (already decided or withdrawn), so it "
        "cannot be expedited.",
    ),
    89403: (
        InvalidState,
        "WeChat does not expedite this kind of review; it goes on at normal speed.",
    ),
    89404: (InvalidState, "this review has already been expedited."),
    9400001: (
        InvalidState,
        "the platform's development mini program has live-streaming permission, so WeChat "
        "does not allow the release; remove that permission in mp.weixin.qq.com.",
    ),
    9402202: (
        InvalidState,
        "another operation on this mini program is still in progress; try again in a minute.",
    ),
    # unknown things
    85012: (NotFound, "WeChat does not know this audit id."),
    85014: (
        NotFound,
        "WeChat does not know the template; check template_id against the platform's template "
        "library (`templates`).",
    ),
    85058: (NotFound, "nothing has ever been submitted for review for this mini program."),
    85064: (
        NotFound,
        "WeChat does not know the template or draft; `templates` lists what the library holds.",
    ),
    85086: (NotFound, "nothing is uploaded (committed) yet; upload the version first."),
    86001: (NotFound, "the mini program has no trial version; upload the version first."),
    80067: (
        NotFound,
        "a plugin named in ext_json does not exist; check ext_json.plugins.",
    ),
    # refused input
    -60005: (
        InvalidInput,
        "WeChat refused the upload without saying why (-60005); check the template and "
        "ext_json, then upload again.",
    ),
    40097: (InvalidInput, "WeChat refused an argument (e.g. a version over 64 characters)."),
    43001: (InvalidInput, "WeChat wanted a GET request (a miniship bug)."),
    43002: (InvalidInput, "WeChat wanted a POST request (a miniship bug)."),
    43003: (InvalidInput, "WeChat needs HTTPS; check WECHAT_API_BASE."),
    44002: (InvalidInput, "WeChat got an empty request body (a miniship bug)."),
    47001: (InvalidInput, "WeChat could not parse the request (data format error)."),
    61040: (
        InvalidInput,
        "WeChat's privacy-API scan found privacy APIs (e.g. wx.getLocation) that the code uses "
        "but ext_json does not configure, or that the mini program has no permission for. "
        "Either declare them in the app's ext_json.requiredPrivateInfos (and apply for them "
        "in mp.weixin.qq.com → 开发管理 → 接口设置) and upload again, or, if the code does "
        "not really use them, set privacy_api_not_use = true in [apps.<app>.wechat] and "
        "submit again.",
    ),
    80066: (InvalidInput, "a plugin version in ext_json.plugins is invalid."),
    80082: (
        InvalidInput,
        "the mini program may not use a plugin named in ext_json; add the plugin in "
        "mp.weixin.qq.com first.",
    ),
    85006: (InvalidInput, "a tag in item_list is malformed (space separated, ≤ 10, ≤ 20 chars)."),
    85007: (InvalidInput, "a page path in item_list is not a page of the uploaded code."),
    85008: (
        InvalidInput,
        "the category is invalid: the mini program has no approved category, or item_list names "
        "one it does not have; set a category in mp.weixin.qq.com.",
    ),
    85010: (InvalidInput, "an item_list entry is missing a required field."),
    85011: (InvalidInput, "a page title in item_list is invalid (at most 32 characters)."),
    85013: (
        InvalidInput,
        "ext_json is invalid (or names a page the template does not have); fix the app's ext_json.",
    ),
    85022: (InvalidInput, "the visit status action is invalid (a miniship bug)."),
    85023: (InvalidInput, "item_list must have 1 to 5 entries."),
    85043: (InvalidInput, "the template is broken; upload a new one to the template library."),
    85044: (
        InvalidInput,
        "the code package is too large; make the template smaller (subpackages) and add it "
        "to the library again.",
    ),
    85045: (InvalidInput, "a path in ext_json does not exist in the template."),
    85046: (InvalidInput, "a tabBar item in ext_json has no page path."),
    85047: (InvalidInput, "ext_json gives an empty page list."),
    85048: (InvalidInput, "WeChat could not parse ext_json."),
    85051: (InvalidInput, "the review notes (version_desc) or preview material are too large."),
    85077: (
        InvalidInput,
        "a category was withdrawn by WeChat; update the mini program's categories in "
        "mp.weixin.qq.com.",
    ),
    85081: (
        InvalidInput,
        "WeChat refused the gray percentage: it takes a whole number from 1 to 100.",
    ),
    85082: (
        InvalidInput,
        "the gray percentage must be higher than the current one; raise it, or publish to "
        "everyone.",
    ),
    85087: (
        InvalidInput,
        "the code uses navigateToMiniProgram; declare the target AppIDs in "
        "ext_json.navigateToMiniProgramAppIdList first.",
    ),
    85094: (
        InvalidInput,
        "WeChat needs a UGC declaration (ugc_declare) for these categories; add it in "
        "mp.weixin.qq.com or choose other categories.",
    ),
    85310: (
        InvalidInput,
        "ext_json.requiredPrivateInfos names an API that does not exist; check the spelling "
        "(e.g. getLocation, chooseAddress).",
    ),
    85311: (
        InvalidInput,
        "ext_json.requiredPrivateInfos names APIs that exclude each other (e.g. getLocation "
        "and getFuzzyLocation); keep one.",
    ),
    85312: (
        InvalidInput,
        "ext_json.requiredPrivateInfos names an API the mini program has no permission for; "
        "apply for it in mp.weixin.qq.com → 开发管理 → 接口设置.",
    ),
    85065: (
        InvalidState,
        "the template library is full (200 templates); delete templates no app uses any more "
        "(`templates delete <id>`).",
    ),
    87006: (InvalidInput, "mini games cannot be submitted through this API."),
    9402203: (
        InvalidInput,
        "a standard template only accepts extAppid, ext and window in ext_json.",
    ),
}

_IP = re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b|\b[0-9a-fA-F:]*:[0-9a-fA-F:.]+\b")


def _ip_in(errmsg: str) -> str | None:
    """The caller IP WeChat names in a 61004 errmsg (``invalid ip 1.2.3.4 ipv6 ::ffff:1.2.3.4,
    not in whitelist``), IPv4 preferred."""
    text = errmsg.split(" rid:")[0].split(" hint:")[0]
    found: list[str] = [str(ip) for ip in _IP.findall(text)]
    v4 = [ip for ip in found if "." in ip and ":" not in ip]
    return next(iter(v4 or found), None)


def error_for(errcode: int, errmsg: str) -> PlatformError:
    """The typed error for a WeChat answer with a non-zero ``errcode``.

    The error's ``code`` is the errcode as text and ``platform_message`` the errmsg as
    returned; the explanation says what it means and what to do.
    """
    cls, explanation = _RULES.get(
        errcode, (PlatformError, f"WeChat refused the request ({errmsg or 'no message'}).")
    )
    if errcode == 61004 and (ip := _ip_in(errmsg)):
        explanation = (
            f"this server's IP {ip} is not on the third-party platform's IP whitelist; add "
            f"{ip} {_OPEN_CONSOLE_IP}."
        )
    if cls is QuotaExceeded:
        retry_after = 60.0 if errcode == 45011 else None
        return QuotaExceeded("wechat", str(errcode), errmsg, explanation, retry_after=retry_after)
    return cls("wechat", str(errcode), errmsg, explanation)


class NotConnected(AuthError, ConfigError):
    """No authorization is known for a mini program: no refresh token in the vault or in
    its ``[apps.<key>.wechat]`` section. Both an authorization problem (run ``connect``)
    and a configuration one (``refresh_token``), so callers handling either see it."""


# --------------------------------------------------------------------------- ext_json

EXT_JSON_KEYS = frozenset(
    {
        "extEnable",
        "extAppid",
        "directCommit",
        "ext",
        "extPages",
        "pages",
        "window",
        "tabBar",
        "networkTimeout",
        "subPackages",
        "subpackages",
        "plugins",
        "navigateToMiniProgramAppIdList",
        "requiredPrivateInfos",
        "sitemap",
        "customOpen",
        "functionPages",
    }
)
"""What ext.json may hold (fact sheet §4.1), plus ``extEnable``/``directCommit`` that the
developer tools write into every ext.json and ``subpackages`` (app.json's other spelling)."""

_OBJECT_KEYS = ("ext", "extPages", "window", "tabBar", "networkTimeout", "plugins")
_STRING_LIST_KEYS = ("pages", "navigateToMiniProgramAppIdList", "requiredPrivateInfos")


def ext_json_problems(ext: Any, appid: str) -> list[str]:
    """What is wrong with an app's ext_json before it is sent to ``/wxa/commit``.

    The checks are the fact sheet's (§4.1 and the commit errors 85013/85045–85048): a JSON
    object of the known keys, ``extAppid`` the app's appid, objects and lists where WeChat
    expects them, a non-empty ``pages`` list, tabBar items with a ``pagePath`` among the
    pages. (The sheet gives no size limit for ext_json; none is imposed here.)
    """
    if not isinstance(ext, Mapping):
        return ["it must be a table (a JSON object)"]
    problems: list[str] = []
    unknown = sorted(str(k) for k in ext if k not in EXT_JSON_KEYS)
    if unknown:
        problems.append(
            f"unknown key(s) {', '.join(unknown)}; ext.json takes "
            f"{', '.join(sorted(EXT_JSON_KEYS))}"
        )
    given = ext.get("extAppid")
    if given is not None and given != appid:
        problems.append(f"extAppid must be the app's appid {appid}, not {given!r}")
    for key in _OBJECT_KEYS:
        if key in ext and not isinstance(ext[key], Mapping):
            problems.append(f"{key} must be a table (a JSON object)")
    for key in _STRING_LIST_KEYS:
        value = ext.get(key)
        if key in ext and not (
            isinstance(value, list) and all(isinstance(v, str) and v for v in value)
        ):
            problems.append(f"{key} must be a list of non-empty strings")
    pages = ext.get("pages")
    if isinstance(pages, list) and not pages:
        problems.append("pages must not be empty (WeChat answers 85047)")
    ext_pages = ext.get("extPages")
    if isinstance(ext_pages, Mapping):
        bad = [str(k) for k, v in ext_pages.items() if not isinstance(v, Mapping)]
        if bad:
            problems.append(f"extPages entries must be tables: {', '.join(bad)}")
    tab_bar = ext.get("tabBar")
    if isinstance(tab_bar, Mapping) and "list" in tab_bar:
        items = tab_bar["list"]
        if not isinstance(items, list):
            problems.append("tabBar.list must be a list")
        else:
            for n, item in enumerate(items, 1):
                path = item.get("pagePath") if isinstance(item, Mapping) else None
                if not isinstance(path, str) or not path:
                    problems.append(f"tabBar.list item {n} has no pagePath (WeChat answers 85046)")
                elif isinstance(pages, list) and pages and path not in pages:
                    problems.append(f"tabBar.list item {n}: {path} is not one of pages")
    for key in ("subPackages", "subpackages"):
        if key not in ext:
            continue
        subs = ext[key]
        if not isinstance(subs, list) or not all(
            isinstance(s, Mapping) and isinstance(s.get("root"), str) for s in subs
        ):
            problems.append(f"{key} must be a list of tables with a root")
    try:
        _json(ext)
    except (TypeError, ValueError) as exc:
        problems.append(f"it cannot be written as JSON ({exc})")
    return problems


# --------------------------------------------------------------------------- configuration


_URL_EXAMPLES = {
    "api_base": "https://api.weixin.qq.com",
    "authorize_page_base": "https://mp.weixin.qq.com",
}


class _Settings(BaseSettings):
    """Adapter settings, from ``WECHAT_*`` environment variables (or ``.env``)."""

    model_config = SettingsConfigDict(env_prefix="WECHAT_", env_file=".env", extra="ignore")

    api_base: str = "https://api.weixin.qq.com"
    authorize_page_base: str = "https://mp.weixin.qq.com"
    """Where the authorization page (componentloginpage) is served."""
    component_appid: str = ""
    component_secret: SecretStr | None = None
    component_verify_ticket: SecretStr | None = None
    component_token: SecretStr | None = None
    encoding_aes_key: SecretStr | None = None
    max_retries: int = Field(default=2, ge=0, le=10)
    retry_backoff_seconds: float = Field(default=0.5, ge=0.0)
    privacy_scan_retries: int = Field(default=6, ge=0, le=60)
    """How many times submit waits for WeChat's privacy-API scan (61039) before giving up."""
    privacy_scan_wait_seconds: float = Field(default=10.0, ge=0.0)
    """How long each of those waits is."""
    miniprogram_ci_robot: int = Field(default=1, ge=1, le=30)
    """The miniprogram-ci robot (1–30) that uploads the code of apps owned directly."""
    miniprogram_ci_timeout_seconds: float = Field(default=600.0, gt=0.0)

    @field_validator("api_base", "authorize_page_base")
    @classmethod
    def _http_url(cls, value: str, info: ValidationInfo) -> str:
        problem = url_problem(value)
        if problem is not None:
            name = f"WECHAT_{(info.field_name or '').upper()}"
            example = _URL_EXAMPLES.get(info.field_name or "", "https://api.weixin.qq.com")
            raise ValueError(f"{name} must be an http(s) URL such as {example} ({problem})")
        return value.rstrip("/")


class _AppConfig(BaseModel):
    """One app's ``[apps.<key>.wechat]`` section.

    Through the third-party platform::

        [apps.shop.wechat]
        appid = "wx3a5f9c2e1b7d4f60"
        original_id = "gh_3a5f9c2e1b7d"
        template_id = 12
        ext_json = { ext = { shop = "demo" } }
        review_notes = "Test account: demo / demo1234."
        # refresh_token = "env:SHOP_WECHAT_REFRESH_TOKEN"   # else `connect shop wechat`

    Owned directly (upload only, with miniprogram-ci)::

        [apps.shop.wechat]
        appid = "wx3a5f9c2e1b7d4f60"
        project_path = "../shop-miniprogram"      # holds project.config.json
        private_key = "file:/etc/miniship/shop-upload.key"
    """

    model_config = ConfigDict(extra="forbid")

    appid: str = Field(description="the mini program's AppID (wx…)")
    original_id: str | None = Field(default=None, description="the original id (gh_…)")
    template_id: int | None = Field(
        default=None, ge=0, description="template in the platform's template library"
    )
    ext_json: dict[str, Any] = Field(default_factory=dict)
    refresh_token: SecretRef | None = None
    item_list: list[dict[str, Any]] | None = Field(default=None, min_length=1, max_length=5)
    review_notes: str = ""
    privacy_api_not_use: bool = False
    """Declare at submit that privacy APIs WeChat's scan found are not used (avoids 61040)."""
    project_path: Path | None = None
    """Owned directly: the code directory (with project.config.json) miniprogram-ci uploads."""
    private_key: SecretRef | None = None
    """Owned directly: the code-upload key from mp.weixin.qq.com (开发管理 → 开发设置)."""

    @field_validator("appid")
    @classmethod
    def _appid(cls, value: str) -> str:
        if not re.fullmatch(r"wx[0-9A-Za-z]{16}", value):
            raise ValueError(
                "a WeChat AppID is wx followed by 16 letters or digits (see the mini program's "
                "development settings)"
            )
        return value

    @field_validator("original_id")
    @classmethod
    def _original_id(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"gh_[0-9A-Za-z]{4,32}", value):
            raise ValueError("an original id looks like gh_ followed by letters and digits")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> _AppConfig:
        if self.project_path is not None:
            if self.template_id is not None:
                raise ValueError(
                    "give either template_id (through the third-party platform) or "
                    "project_path and private_key (owned directly, uploaded with "
                    "miniprogram-ci), not both"
                )
            if self.private_key is None:
                raise ValueError(
                    "project_path needs private_key: the code-upload key from "
                    "mp.weixin.qq.com → 开发管理 → 开发设置 → 小程序代码上传, as "
                    '"file:/path" or "env:NAME"'
                )
        elif self.private_key is not None:
            raise ValueError("private_key is only for apps owned directly: add project_path")
        problems = ext_json_problems(self.ext_json, self.appid)
        if problems:
            raise ValueError("ext_json: " + "; ".join(problems))
        return self

    @property
    def direct(self) -> bool:
        """True for a mini program owned directly (uploaded with miniprogram-ci)."""
        return self.project_path is not None


T = TypeVar("T")


@dataclass(frozen=True)
class _Token:
    value: str = field(repr=False)  # a secret: kept out of repr (debuggers, error reports)
    renew_at: float  # unix seconds; renewed from then on, before WeChat's expiry


@dataclass(frozen=True)
class _Audit:
    """One review as get_auditstatus / get_latest_auditstatus describe it."""

    auditid: int
    status: int
    reason: str = ""
    screenshot: str = ""
    user_version: str | None = None


@dataclass(frozen=True)
class _Kept:
    """One version in get_history_version's version_list."""

    version: str
    app_version: int | None
    description: str = ""
    commit_time: int | None = None


@dataclass(frozen=True)
class _Info:
    """getversioninfo: the live and the trial version."""

    live: str | None = None
    live_at: int | None = None
    live_desc: str = ""
    trial: str | None = None
    trial_at: int | None = None
    trial_desc: str = ""


# --------------------------------------------------------------------------- answer parsing


def _json(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def _bad(api: str, what: str) -> BadResponse:
    return BadResponse("wechat", "", "", f"WeChat's answer to {api} is malformed: {what}.")


def _cannot_tell(why: str) -> PlatformError:
    """Raised by a confirmation check when WeChat's answers cannot say whether a change
    happened: :meth:`Platform.confirm_change` then leaves the outcome unknown."""
    return PlatformError("wechat", "", "", f"WeChat's answers cannot tell: {why}.")


def _reveal(secret: SecretStr | None) -> str | None:
    return secret.get_secret_value() if secret is not None else None


def _candidates(*values: str | None) -> list[str]:
    """Credentials to try, in the order given, without empty ones and repeats."""
    return list(dict.fromkeys(v for v in values if v))


def as_int(value: object) -> int | None:
    """An id or code given as a number or as a string of digits (both are seen).

    Shared with the emulator, which reads the same ids from requests.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        return int(value)
    return None


def _int_field(data: Mapping[str, Any], key: str, api: str) -> int:
    value = as_int(data.get(key))
    if value is None:
        raise _bad(api, f"no usable {key}")
    return value


def _text(value: object) -> str | None:
    """A version or message given as a string or number; ``None`` when absent or empty."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float | str):
        return str(value) or None
    return None


def _field(data: Mapping[str, Any], key: str) -> Any:
    """``data[key]`` matching the key case-insensitively (``screenshot`` / ``ScreenShot``)."""
    if key in data:
        return data[key]
    lowered = key.lower()
    for k, v in data.items():
        if isinstance(k, str) and k.lower() == lowered:
            return v
    return None


def _when(value: object) -> datetime | None:
    """Unix seconds (number or digits) as aware UTC; ``None`` when absent or zero."""
    seconds = as_int(value)
    if not seconds or seconds < 0:
        return None
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _audit_from(data: Mapping[str, Any], api: str, auditid: int | None = None) -> _Audit:
    found = auditid if auditid is not None else _int_field(data, "auditid", api)
    return _Audit(
        auditid=found,
        status=_int_field(data, "status", api),
        reason=_text(_field(data, "reason")) or "",
        screenshot=_text(_field(data, "screenshot")) or "",
        user_version=_text(data.get("user_version")),
    )


def _section(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    part = data.get(key)
    return part if isinstance(part, Mapping) else {}


def _info_from(data: Mapping[str, Any]) -> _Info:
    live, trial = _section(data, "release_info"), _section(data, "exp_info")
    return _Info(
        live=_text(live.get("release_version")),
        live_at=as_int(live.get("release_time")),
        live_desc=_text(live.get("release_desc")) or "",
        trial=_text(trial.get("exp_version")),
        trial_at=as_int(trial.get("exp_time")),
        trial_desc=_text(trial.get("exp_desc")) or "",
    )


def _kept_from(data: Mapping[str, Any]) -> list[_Kept]:
    """get_history_version's entries, newest first (by app_version, then commit time)."""
    found: list[_Kept] = []
    entries = data.get("version_list")
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, Mapping):
            continue
        version = _text(entry.get("user_version"))
        if version is None:
            continue
        found.append(
            _Kept(
                version=version,
                app_version=as_int(entry.get("app_version")),
                description=_text(entry.get("user_desc")) or "",
                commit_time=as_int(entry.get("commit_time")),
            )
        )
    found.sort(key=lambda k: (k.app_version or 0, k.commit_time or 0), reverse=True)
    return found


def _recommitted(before: _Info, now: _Info, version: str) -> bool:
    """Whether getversioninfo shows a commit of ``version`` made after ``before`` was read.

    A re-upload of the trial version itself shows by exp_time (it changes with every commit)
    or exp_desc moving. When WeChat gives neither, nothing tells: the upload's outcome then
    stays unknown rather than being confirmed by the older commit.
    """
    if now.trial != version:
        return False
    if before.trial != version:
        return True
    if (before.trial_at, before.trial_desc) != (now.trial_at, now.trial_desc):
        return True
    if now.trial_at is None:
        raise _cannot_tell(f"{version} was the trial version already, and no exp_time shows")
    return False


def _new_review(before: _Audit | None, latest: _Audit | None, version: str) -> bool:
    """Whether ``latest`` is a review submitted after ``before`` was read: another auditid,
    pending, and of ``version`` (when WeChat says which version; it may not)."""
    return (
        latest is not None
        and (before is None or latest.auditid != before.auditid)
        and latest.status in (IN_REVIEW, DELAYED)
        and latest.user_version in (None, version)
    )


def _rollback_targets(kept: Sequence[_Kept], live: str | None) -> tuple[list[_Kept], str]:
    """The kept versions a rollback can go to (newest first), and why there is none.

    The sheet does not say whether version_list holds the live version too: when it does,
    only versions older than the live one count, and none when the live one is not the
    newest (it is itself a rollback: WeChat allows no second one, 87012).
    """
    if live is None:
        return [], "nothing is live on WeChat"
    position = next((n for n, k in enumerate(kept) if k.version == live), None)
    if position is not None and position > 0:
        return [], (
            f"the live version {live} is itself a rollback; WeChat allows no second rollback "
            "until a new version is published"
        )
    older = kept[position + 1 :] if position is not None else list(kept)
    targets: list[_Kept] = []
    for k in older:
        if k.version != live and k.version not in {t.version for t in targets}:
            targets.append(k)
    return targets, "" if targets else "WeChat keeps no earlier version of this mini program"


def _gray_from(data: Mapping[str, Any], version: str | None) -> GrayPlan | None:
    """The staged release getgrayreleaseplan describes, when one is running or paused."""
    plan = _section(data, "gray_release_plan")
    status, percent = as_int(plan.get("status")), as_int(plan.get("gray_percentage"))
    if status not in _GRAY_STATES or percent is None:
        return None
    if percent <= 0 and not (
        plan.get("support_debuger_first") or plan.get("support_experiencer_first")
    ):
        return None  # status 0 "initial" with nothing released: no plan
    return GrayPlan(
        percent=percent,
        version=version,
        state=_GRAY_STATES[status],
        since=_when(plan.get("create_timestamp")),
    )


def _image_type(content_type: str, content: bytes) -> str | None:
    """The image's MIME type: from Content-Type when it names an image, else the magic bytes."""
    given = content_type.split(";")[0].strip().lower()
    if given.startswith("image/"):
        return given
    if content.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if content.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if content.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    return None


def _image_complete(mime: str, content: bytes) -> bool:
    """False for a JPEG or PNG cut short (its end marker missing)."""
    if mime == "image/jpeg":
        return content.rstrip(b"\x00").endswith(b"\xff\xd9")
    if mime == "image/png":
        return b"IEND" in content[-16:]
    return bool(content)


def _template_from(entry: Mapping[str, Any], *, draft: bool) -> Template | None:
    ident = as_int(entry.get("draft_id" if draft else "template_id"))
    if ident is None:
        return None
    return Template(
        id=str(ident),
        version=_text(entry.get("user_version")) or "",
        description=_text(entry.get("user_desc")) or "",
        created_at=_when(entry.get("create_time")),
        source=_text(entry.get("source_miniprogram"))
        or _text(entry.get("source_miniprogram_appid"))
        or "",
        developer=_text(entry.get("developer")) or "",
        draft=draft,
    )


def _granted(authorization: Mapping[str, Any]) -> tuple[int, ...]:
    """The permission-set ids in ``func_info[].funcscope_category.id``."""
    ids: list[int] = []
    entries = authorization.get("func_info")
    for entry in entries if isinstance(entries, list) else []:
        scope = entry.get("funcscope_category") if isinstance(entry, Mapping) else None
        ident = as_int(scope.get("id")) if isinstance(scope, Mapping) else None
        if ident is not None and ident not in ids:
            ids.append(ident)
    return tuple(ids)


_EPOCH = datetime.fromtimestamp(0, UTC)

_CI_WHITELIST = re.compile(r"whitelist|白名单|invalid ip", re.IGNORECASE)


# --------------------------------------------------------------------------- the adapter


class WeChatPlatform(Platform):
    """WeChat mini programs: template commit, review, publish via a third-party platform."""

    name = "wechat"
    display_name = "WeChat"
    docs_url = (
        "https://developers.weixin.qq.com/doc/oplatform/openApi/miniprogram-management/"
        "code-management/api_commit.html"
    )

    Settings = _Settings
    AppConfig = _AppConfig
    single_trial_version = True  # /wxa/commit overwrites the one trial version
    gray_steps = None  # any whole percentage 1–100, rising
    rollback_to_any = True  # revertcoderelease takes an app_version from the history

    def __init__(
        self,
        settings: Any,
        apps: Mapping[str, Any],
        *,
        client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not isinstance(settings, _Settings):
            raise ConfigError("WeChatPlatform needs WeChatPlatform.Settings")
        try:
            configs = {
                key: cfg if isinstance(cfg, _AppConfig) else _AppConfig.model_validate(cfg)
                for key, cfg in apps.items()
            }
        except ValidationError as exc:
            raise ConfigError(f"an [apps.*.wechat] section is invalid: {exc}") from None
        super().__init__(settings, configs, client=client, clock=clock)
        self.settings: _Settings = settings
        self._component: _Token | None = None
        self._authorizers: dict[str, _Token] = {}
        self._refresh_tokens: dict[str, SecretStr] = {}  # obtained while running
        self._locks: dict[str, asyncio.Lock] = {}
        self._pushed_ticket: SecretStr | None = None
        self._pushed_ticket_at: datetime | None = None  # its CreateTime
        self._decided: dict[int, datetime] = {}  # auditid → when first seen decided

    @property
    def verify_ticket(self) -> SecretStr | None:
        """The newest component_verify_ticket known in memory: the latest pushed one, else
        the configured one (the vault may hold a newer one after a restart)."""
        return self._pushed_ticket or self.settings.component_verify_ticket

    @classmethod
    def is_configured(cls, settings: Any) -> bool:
        """AppID and AppSecret given: the verify ticket may come by push (kept in the vault)."""

        def given(secret: SecretStr | None) -> bool:
            return secret is not None and bool(secret.get_secret_value())

        return bool(
            getattr(settings, "component_appid", "")
            and given(getattr(settings, "component_secret", None))
        )

    @classmethod
    def describe_app(cls, config: Any) -> str:
        original = f" ({config.original_id})" if config.original_id else ""
        if config.direct:
            return (
                f"AppID {config.appid}{original}, owned directly "
                f"(miniprogram-ci upload from {config.project_path})"
            )
        if config.template_id is None:
            return f"AppID {config.appid}{original}, template given per upload"
        return f"AppID {config.appid}{original}, template {config.template_id}"

    def _config(self, app: str) -> _AppConfig:
        cfg: _AppConfig = self.app(app)
        return cfg

    def _platform_app(self, app: str) -> _AppConfig:
        """The config of an app released through the third-party platform; apps owned
        directly get :class:`Unsupported` saying where to do it instead."""
        cfg = self._config(app)
        if cfg.direct:
            raise Unsupported(
                self.name,
                "",
                "",
                f"{app} is owned directly (its code is uploaded with miniprogram-ci), and "
                "WeChat offers no API to submit, review, publish or roll back such a mini "
                "program: do it in mp.weixin.qq.com → 管理 → 版本管理 (version management), "
                f"or authorize the mini program to miniship's third-party platform with "
                f"`connect {app} wechat` and give it a template_id instead of project_path.",
            )
        return cfg

    def _refused(
        self, text: str, kind: type[PlatformError] = InvalidState, code: str = ""
    ) -> PlatformError:
        """The error for a step miniship refuses before asking WeChat to do it; ``text``
        says why and what to do instead."""
        return kind(self.name, code, "", text)

    # -- the vault ---------------------------------------------------------------------

    async def _vault_load(self, name: str) -> str | None:
        if self.vault is None:
            return None
        try:
            value = await self.vault.load(self.name, name)
        except ConfigError:
            raise
        except Exception as exc:  # the vault's own errors name no secret
            raise ConfigError(
                f"miniship's credential vault could not give the WeChat {name.split(':')[0]} "
                f"({type(exc).__name__}: {exc}); check MINISHIP_SECRET_KEY"
            ) from None
        return value.get_secret_value() if value is not None else None

    @staticmethod
    def _no_vault() -> ConfigError:
        return ConfigError(
            "miniship needs its secret key setting (MINISHIP_SECRET_KEY or "
            "MINISHIP_SECRET_KEY_FILE) to keep the authorization WeChat returns; set it and "
            "run `connect` again"
        )

    async def _vault_save(self, name: str, value: str, *, required: bool = False) -> None:
        if self.vault is None:
            if required:
                raise self._no_vault()
            return
        try:
            await self.vault.save(self.name, name, SecretStr(value))
        except Exception as exc:
            if required:
                raise ConfigError(
                    f"miniship's credential vault could not keep the WeChat "
                    f"{name.split(':')[0]} ({type(exc).__name__}); check MINISHIP_SECRET_KEY"
                ) from None
            log.error("could not keep the WeChat %s in the vault: %s", name.split(":")[0], exc)

    # -- the wire ----------------------------------------------------------------------

    async def _http(
        self,
        method: str,
        path: str,
        query: Mapping[str, str] | None,
        body: Mapping[str, Any] | None,
        note: Callable[..., None],
    ) -> httpx.Response:
        """One HTTP request; transport failures become platform errors (no URL, no token)."""
        api = f"{method} {path}"
        headers: dict[str, str] = {}
        content: bytes | None = None
        if body is not None:
            content = _json(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        try:
            return await self.client.request(
                method,
                self.settings.api_base + path,
                params=dict(query or {}),
                content=content,
                headers=headers,
            )
        except httpx.TimeoutException:
            note(error="timed out")
            raise PlatformUnavailable(
                self.name, "", "", f"WeChat did not answer {api} in time; try again later."
            ) from None
        except httpx.InvalidURL:
            # the exception text may carry the URL with its token: only its type is shown
            note(error="InvalidURL")
            raise ConfigError(
                f"WECHAT_API_BASE {self.settings.api_base!r} does not make a valid URL for "
                f"{api}; set it to an http(s) URL such as https://api.weixin.qq.com"
            ) from None
        except httpx.HTTPError as exc:
            # the exception text may carry the URL with its token: only its type is shown
            note(error=type(exc).__name__)
            raise PlatformUnavailable(
                self.name,
                "",
                "",
                f"could not reach WeChat ({type(exc).__name__}); try again later.",
            ) from None

    def _answer(
        self,
        api: str,
        response: httpx.Response,
        note: Callable[..., None],
        *,
        errcode_optional: bool = False,
    ) -> dict[str, Any]:
        """The answer object when its errcode is 0 (or absent, where ``errcode_optional``:
        the token APIs); the typed error otherwise."""
        status = response.status_code
        http = f"HTTP {status}"
        try:
            data = scrub_answer(response.json())  # errmsg may echo what was sent
        except ValueError:
            note(error=f"{http}, the answer is not JSON")
            raise PlatformUnavailable(
                self.name,
                http if status != 200 else "",
                "",
                f"WeChat answered {api} with something that is not JSON ({http}); try again later.",
            ) from None
        if status >= 500:
            note(data if isinstance(data, dict) else None, error=http)
            raise PlatformUnavailable(
                self.name, http, "", f"WeChat answered {api} with {http}; try again later."
            )
        if not isinstance(data, dict):
            note(error="the answer is not a JSON object")
            raise _bad(api, "not a JSON object")
        note(data)
        if "errcode" not in data:
            if status != 200:
                raise _bad(api, f"{http} without an errcode")
            if not errcode_optional:
                raise _bad(api, "no errcode")
            return data  # the token APIs answer without errcode on success
        errcode = as_int(data["errcode"])
        if errcode is None:
            raise _bad(api, f"errcode {data['errcode']!r} is not a number")
        if errcode != 0:
            raise error_for(errcode, _text(data.get("errmsg")) or "")
        return data

    async def _exchange(
        self,
        method: str,
        path: str,
        query: Mapping[str, str] | None,
        body: Mapping[str, Any] | None,
    ) -> tuple[str, Callable[..., None], httpx.Response]:
        """One request, and what reading its answer needs: the API's name and ``note``,
        which records the exchange (secrets masked) with the answer or error given."""
        api = f"{method} {path}"
        shown = {**(query or {}), **(body or {})}

        def note(answer: Mapping[str, Any] | None = None, error: str = "") -> None:
            self.record_exchange(api, shown, answer, error)

        return api, note, await self._http(method, path, query, body, note)

    async def _send(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """One JSON request; the answer object when its errcode is 0 (or absent, for the
        :data:`NO_ERRCODE` APIs).

        Every exchange is recorded with secrets masked; tokens only travel in the query.
        """
        api, note, response = await self._exchange(method, path, query, body)
        return self._answer(api, response, note, errcode_optional=path in NO_ERRCODE)

    async def _send_image(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A request answered with an image (get_qrcode): ``{"image": bytes, "mime": str}``.

        An answer starting with ``{`` is WeChat's JSON error, whatever its Content-Type
        (image/jpeg is documented; text/plain and application/json are both seen).
        """
        api, note, response = await self._exchange(method, path, query, body)
        content = response.content
        if content.lstrip()[:1] == b"{":
            self._answer(api, response, note)  # raises the errcode's error
            raise _bad(api, "a JSON answer instead of an image")
        if response.status_code >= 500:
            note(error=f"HTTP {response.status_code}")
            raise PlatformUnavailable(
                self.name,
                f"HTTP {response.status_code}",
                "",
                f"WeChat answered {api} with HTTP {response.status_code}; try again later.",
            )
        mime = _image_type(response.headers.get("content-type", ""), content)
        if mime is None or response.status_code != 200:
            note(error=f"HTTP {response.status_code}, not an image")
            raise _bad(api, "neither an image nor an error")
        if not _image_complete(mime, content):
            note(error="the image is cut short")
            raise PlatformUnavailable(
                self.name, "", "", f"WeChat's answer to {api} was cut short; try again later."
            )
        note({"content_type": mime, "bytes": len(content)})
        return {"image": content, "mime": mime}

    @staticmethod
    async def _renewing(
        token: Callable[[], Awaitable[str]],
        forget: Callable[[str], None],
        send: Callable[[str], Awaitable[dict[str, Any]]],
    ) -> dict[str, Any]:
        """``send(token)``; when WeChat refuses the token, forget it, renew, try once more."""
        value = await token()
        try:
            return await send(value)
        except PlatformError as exc:
            if exc.code not in TOKEN_CODES:
                raise
            log.info("WeChat refused a token (errcode %s); renewing it", exc.code)
        forget(value)
        return await send(await token())

    def _lock(self, key: str) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())

    def _renew_at(self, expires_in: int) -> float:
        return self.clock() + max(expires_in - REFRESH_EARLY_SECONDS, expires_in / 2)

    def _fresh(self, token: _Token | None) -> str | None:
        return token.value if token is not None and self.clock() < token.renew_at else None

    @staticmethod
    def _token_fields(data: Mapping[str, Any], key: str, api: str) -> tuple[str, int]:
        value = data.get(key)
        if not isinstance(value, str) or not value:
            raise _bad(api, f"no {key}")
        expires_in = as_int(data.get("expires_in"))
        return value, expires_in if expires_in and expires_in > 0 else DEFAULT_EXPIRES_IN

    def _component_credentials(self) -> tuple[str, str]:
        s = self.settings
        secret = s.component_secret
        if not (s.component_appid and secret is not None and secret.get_secret_value()):
            raise ConfigError(
                "WeChat needs WECHAT_COMPONENT_APPID and WECHAT_COMPONENT_SECRET (the "
                "third-party platform's credentials) and a component_verify_ticket "
                "(WECHAT_COMPONENT_VERIFY_TICKET, or the newest one WeChat pushes to "
                "/push/wechat/auth)"
            )
        return s.component_appid, secret.get_secret_value()

    async def _tickets(self) -> list[str]:
        """component_verify_tickets to try, newest first: pushed, kept in the vault, configured."""
        return _candidates(
            _reveal(self._pushed_ticket),
            await self._vault_load(VAULT_TICKET),
            _reveal(self.settings.component_verify_ticket),
        )

    async def _component_token(self) -> str:
        """The platform's component_access_token, cached; renewed by one caller at a time."""
        if value := self._fresh(self._component):
            return value
        async with self._lock("component"):
            if value := self._fresh(self._component):
                return value
            appid, secret = self._component_credentials()
            tickets = await self._tickets()
            if not tickets:
                raise ConfigError(
                    "WeChat has not pushed a component_verify_ticket yet (it does every 10 "
                    "minutes, to /push/wechat/auth); check that URL is set on open.weixin.qq.com "
                    "and reachable, or set WECHAT_COMPONENT_VERIFY_TICKET"
                )
            data = await self._first_accepted(
                tickets,
                TICKET_REFUSED,
                lambda ticket: self.read_with_retries(
                    functools.partial(
                        self._send,
                        "POST",
                        GET_COMPONENT_ACCESS,
                        body={
                            "component_appid": appid,
                            "component_appsecret": secret,
                            "component_verify_ticket": ticket,
                        },
                    )
                ),
            )
            value, expires_in = self._token_fields(
                data, "component_access_token", f"POST {GET_COMPONENT_ACCESS}"
            )
            self._component = _Token(value, self._renew_at(expires_in))
            return value

    @staticmethod
    async def _first_accepted(
        candidates: Sequence[str],
        refused: frozenset[str],
        send: Callable[[str], Awaitable[dict[str, Any]]],
    ) -> dict[str, Any]:
        """``send`` with each candidate credential in turn until WeChat accepts one; only an
        answer in ``refused`` (this credential is invalid) moves on to the next."""
        for candidate in candidates[:-1]:
            try:
                return await send(candidate)
            except AuthError as exc:
                if exc.code not in refused:
                    raise
                log.info("WeChat refused a stored credential (%s); trying the next one", exc.code)
        return await send(candidates[-1])

    def _forget_component(self, value: str) -> None:
        if self._component is not None and self._component.value == value:
            self._component = None

    def _sender(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None,
        *,
        read: bool,
        query: Mapping[str, str] | None,
        key: str,
        image: bool = False,
    ) -> Callable[[str], Awaitable[dict[str, Any]]]:
        """``send(token)``: the request with ``token`` under query ``key``. A read is asked
        again while WeChat is busy; a change is sent once, and an unclear answer to it
        raises :class:`OutcomeUnknown` (:meth:`send_change`)."""
        fetch = self._send_image if image else self._send

        async def send(token: str) -> dict[str, Any]:
            once = functools.partial(
                fetch, method, path, query={**(query or {}), key: token}, body=body
            )
            if read:
                return await self.read_with_retries(once)
            return await self.send_change(once)

        return send

    async def _component_call(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        *,
        read: bool,
        query: Mapping[str, str] | None = None,
        key: str = "component_access_token",
    ) -> dict[str, Any]:
        """Call a platform-level API with the component token under query ``key``
        (``access_token`` for the template library, as the sheet advises, §3.7)."""
        send = self._sender(method, path, body, read=read, query=query, key=key)
        return await self._renewing(self._component_token, self._forget_component, send)

    async def _refresh_tokens_for(self, app: str, cfg: _AppConfig) -> list[str]:
        """Refresh tokens to try, in order: obtained while running, the vault, miniship.toml."""
        return _candidates(
            _reveal(self._refresh_tokens.get(app)),
            await self._vault_load(f"refresh_token:{cfg.appid}"),
            _reveal(cfg.refresh_token),
        )

    async def _keep_refresh(self, appid: str, value: str, *, required: bool = False) -> None:
        """Use ``value`` as the refresh token of mini program ``appid`` from now on: in
        memory first (a failing vault then does not lose it for this process), then in the
        vault, for the next start."""
        for key in self._keys_for(appid):
            self._refresh_tokens[key] = SecretStr(value)
        await self._vault_save(f"refresh_token:{appid}", value, required=required)

    async def _authorizer_token(self, app: str) -> str:
        """The mini program's authorizer_access_token, cached; one renewal at a time."""
        cfg = self._platform_app(app)
        if value := self._fresh(self._authorizers.get(app)):
            return value
        async with self._lock(f"authorizer:{app}"):
            if value := self._fresh(self._authorizers.get(app)):
                return value
            candidates = await self._refresh_tokens_for(app, cfg)
            if not candidates:
                raise NotConnected(
                    self.name,
                    "",
                    "",
                    f"miniship has no authorization for mini program {cfg.appid} ({app}): run "
                    f"`connect {app} wechat` and have its admin open the link, or give "
                    f"refresh_token (its authorizer_refresh_token) in [apps.{app}.wechat].",
                )
            used: list[str] = []

            async def renew(refresh: str) -> dict[str, Any]:
                used.append(refresh)
                return await self._renew_authorizer(cfg, refresh)

            try:
                data = await self._first_accepted(candidates, REFRESH_REFUSED, renew)
            except AuthError as refused:
                if refused.code not in REFRESH_REFUSED:
                    raise
                data = await renew(await self._recover_refresh(cfg, candidates, refused))
            value, expires_in = self._token_fields(
                data, "authorizer_access_token", f"POST {GET_AUTHORIZER_ACCESS}"
            )
            newest = data.get("authorizer_refresh_token")
            if isinstance(newest, str) and newest and newest != used[-1]:
                # rotated (whether WeChat does is UNCERTAIN, §3.6): the new one is the one
                # to use from now on, here and after a restart
                await self._keep_refresh(cfg.appid, newest)
            self._authorizers[app] = _Token(value, self._renew_at(expires_in))
            return value

    async def _recover_refresh(
        self, cfg: _AppConfig, tried: Sequence[str], refused: AuthError
    ) -> str:
        """The current refresh token of a mini program whose known ones WeChat refused
        (61023), as api_get_authorizer_info names it, kept for later renewals.

        This covers a rotated token whose answer was lost (api_authorizer_token is asked
        again as a read, with the old one). ``refused`` is raised again when WeChat names
        no other token; a mini program that no longer authorizes the platform gets 61003.
        """
        try:
            info = _section(await self._authorizer_info(cfg.appid), "authorization_info")
        except AuthError:
            raise
        except PlatformError as exc:
            log.info("could not ask WeChat for the current refresh token (%s)", exc.code or "-")
            raise refused from None
        current = info.get("authorizer_refresh_token")
        if not isinstance(current, str) or not current or current in tried:
            raise refused
        log.info("WeChat named a newer refresh token for %s; using it", cfg.appid)
        await self._keep_refresh(cfg.appid, current)
        return current

    async def _renew_authorizer(self, cfg: _AppConfig, refresh: str) -> dict[str, Any]:
        body = {
            "component_appid": self.settings.component_appid,
            "authorizer_appid": cfg.appid,
            "authorizer_refresh_token": refresh,
        }
        return await self._component_call("POST", GET_AUTHORIZER_ACCESS, body, read=True)

    def _forget_authorizer(self, app: str, value: str) -> None:
        token = self._authorizers.get(app)
        if token is not None and token.value == value:
            del self._authorizers[app]

    async def _call(
        self,
        app: str,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        *,
        read: bool,
        query: Mapping[str, str] | None = None,
        image: bool = False,
    ) -> dict[str, Any]:
        """Call a ``/wxa`` API for ``app``: renews a refused token once; retries only reads.

        A write whose answer is lost or unusable raises :class:`OutcomeUnknown`, so the
        operation can ask WeChat what happened; failures before the write was sent (tokens)
        do not.
        """
        send = self._sender(
            method, path, body, read=read, query=query, key="access_token", image=image
        )
        return await self._renewing(
            functools.partial(self._authorizer_token, app),
            functools.partial(self._forget_authorizer, app),
            send,
        )

    async def _change(
        self,
        send: Callable[[], Awaitable[T]],
        what: str,
        check: Callable[[], Awaitable[bool]],
    ) -> T | None:
        """``send`` the one request that carries a change: its answer when clear. After an
        unclear answer ``check`` asks WeChat whether the ``what`` shows: ``None`` when it
        does (confirmed); :meth:`confirm_change` raises when it does not or cannot tell."""
        try:
            return await send()
        except OutcomeUnknown as unclear:
            await self.confirm_change(unclear, what, check)
            return None

    # -- reads -------------------------------------------------------------------------

    async def _info(self, app: str) -> _Info:
        """The live and trial versions (getversioninfo)."""
        return _info_from(await self._call(app, "POST", VERSION_INFO, {}, read=True))

    async def _live(self, app: str) -> str | None:
        """The live version (getversioninfo)."""
        return (await self._info(app)).live

    async def _latest(self, app: str) -> _Audit | None:
        """The latest review (get_latest_auditstatus); ``None`` when never submitted."""
        try:
            data = await self._call(app, "GET", GET_LATEST_AUDITSTATUS, read=True)
        except NotFound as exc:
            if exc.code in ("85058", "85012"):
                return None
            raise
        return _audit_from(data, f"GET {GET_LATEST_AUDITSTATUS}")

    async def _gray_plan(self, app: str, version: str | None = None) -> GrayPlan | None:
        """The staged release running now (getgrayreleaseplan), if any."""
        return _gray_from(await self._call(app, "GET", GRAY_PLAN, read=True), version)

    async def _kept(self, app: str) -> list[_Kept]:
        """The versions WeChat keeps for rollback (get_history_version), newest first."""
        data = await self._call(
            app, "GET", REVERT_RELEASE, read=True, query={"action": "get_history_version"}
        )
        return _kept_from(data)

    async def _quota(self, app: str) -> dict[str, Any]:
        """The provider's monthly quotas (queryquota): rest, limit, speedup_rest, speedup_limit."""
        return await self._call(app, "GET", QUERY_QUOTA, read=True)

    @staticmethod
    async def _quietly(read: Awaitable[T], default: T) -> T:
        """What ``read`` gives, or ``default`` when WeChat could not be asked."""
        try:
            return await read
        except PlatformError:
            return default

    def _review(
        self,
        audit: _Audit,
        version: str | None,
        live: str | None,
        gray: GrayPlan | None = None,
    ) -> ReviewStatus:
        """A :class:`ReviewStatus` in shared words for one WeChat audit (``gray``: the staged
        release running for it)."""
        state = _STATES.get(audit.status, ReviewState.UNKNOWN)
        if state is ReviewState.APPROVED and version is not None and live == version:
            state = ReviewState.RELEASED
        elif state is ReviewState.APPROVED and gray is not None:
            state = ReviewState.GRAY
        decided = state in (
            ReviewState.APPROVED,
            ReviewState.GRAY,
            ReviewState.REJECTED,
            ReviewState.RELEASED,
        )
        detail = f"audit {audit.auditid}: {_status_words(audit.status)}"
        if state is ReviewState.RELEASED:
            detail += ", live"
        if state is ReviewState.GRAY and gray is not None:
            detail += f", live for {gray.percent}% of users (gray release)"
        if audit.user_version and version and audit.user_version != version:
            detail += f"; WeChat says this audit is of version {audit.user_version}"
        if audit.screenshot:
            detail += f"; screenshots (media ids): {audit.screenshot}"
        return ReviewStatus(
            state=state,
            version=version or audit.user_version,
            ref=str(audit.auditid),
            reason=audit.reason if audit.status in (REJECTED, DELAYED) else "",
            decided_at=self._decided_at(audit.auditid) if decided else None,
            detail=detail,
        )

    def _decided_at(self, auditid: int) -> datetime:
        """When this adapter first saw audit ``auditid`` decided.

        WeChat's audit APIs say no decision time (only the push does, SuccTime/FailTime), so
        this is the moment of detection, kept: later polls do not move it to "now".
        """
        return self._decided.setdefault(auditid, datetime.fromtimestamp(self.clock(), UTC))

    def _auditid(self, ref: str) -> int:
        auditid = as_int(ref)
        if auditid is None:
            raise self._refused(f"{ref!r} is not a WeChat audit id (a number).", InvalidInput)
        return auditid

    async def _trial_is(self, app: str, version: str | None, risk: str) -> str:
        """The trial version, after checking it is ``version`` (when given); ``risk`` says
        what going on with another one would do (``{trial}`` names it)."""
        trial = (await self._info(app)).trial
        if trial is None:
            raise self._refused(
                "WeChat has no trial version for this mini program; upload "
                f"{version or 'a version'} first."
            )
        if version is not None and trial != version:
            raise self._refused(
                f"WeChat's trial version is {trial}, not {version}: "
                f"{risk.format(trial=trial)}. Upload {version} again first."
            )
        return trial

    # -- upload ------------------------------------------------------------------------

    def _check_version(self, version: str) -> None:
        if not version or len(version) > MAX_USER_VERSION:
            raise self._refused(
                f"WeChat takes a version of 1 to {MAX_USER_VERSION} characters; {version!r} "
                f"has {len(version)}.",
                InvalidInput,
            )

    def _template_id(self, app: str, cfg: _AppConfig, template: str | None) -> int:
        if template is not None:
            return self._number("template id", template)
        if cfg.template_id is None:
            raise ConfigError(
                f"[apps.{app}.wechat] has no template_id: set it to a template of the platform's "
                "library (`templates` lists them), or name one when uploading"
            )
        return cfg.template_id

    def _ext_json(self, app: str, cfg: _AppConfig) -> dict[str, Any]:
        """The app's ext_json with extAppid, checked before it is sent (also after a config
        was changed without validation)."""
        ext = dict(cfg.ext_json)
        ext.setdefault("extAppid", cfg.appid)
        problems = ext_json_problems(ext, cfg.appid)
        if problems:
            raise ConfigError(f"[apps.{app}.wechat] ext_json: " + "; ".join(problems))
        return ext

    async def upload(
        self, app: str, version: str, notes: str, *, template: str | None = None
    ) -> UploadResult:
        """Commit ``version`` from a template (``template`` or the app's); it becomes the
        trial version. Apps owned directly upload their code with miniprogram-ci."""
        cfg = self._config(app)
        self._check_version(version)
        if cfg.direct:
            if template is not None:
                raise self._refused(
                    f"{app} is owned directly: its code comes from project_path, not from a "
                    "template of the third-party platform.",
                    InvalidInput,
                )
            return await self._upload_with_ci(app, cfg, version, notes)
        template_id = self._template_id(app, cfg, template)
        body = {
            "template_id": template_id,
            "ext_json": _json(self._ext_json(app, cfg)),
            "user_version": version,
            "user_desc": notes,
        }
        before = await self._info(app)  # to tell a new commit from the one already there

        async def committed() -> bool:
            return _recommitted(before, await self._info(app), version)

        commit = functools.partial(self._call, app, "POST", COMMIT, body, read=False)
        if await self._change(commit, "upload", committed) is None:
            return UploadResult(version, f"trial version updated ({CONFIRMED})")
        return UploadResult(version, f"trial version updated (template {template_id})")

    async def _upload_with_ci(
        self, app: str, cfg: _AppConfig, version: str, notes: str
    ) -> UploadResult:
        """``miniprogram-ci upload`` of the app's code directory, the key in a private file."""
        assert cfg.project_path is not None and cfg.private_key is not None  # validated
        project = cfg.project_path.expanduser()
        if not (project / "project.config.json").is_file():
            raise ConfigError(
                f"[apps.{app}.wechat] project_path {project} is not a mini program project: it "
                "has no project.config.json"
            )
        robot = self.settings.miniprogram_ci_robot
        shown = {"appid": cfg.appid, "version": version, "desc": notes, "robot": robot}
        api = "miniprogram-ci upload"
        with cli.key_file(cfg.private_key.get_secret_value()) as key:
            args = [
                "upload",
                "--pp",
                str(project),
                "--pkp",
                str(key),
                "--appid",
                cfg.appid,
                "--uv",
                version,
                "--ud",
                notes,
                "-r",
                str(robot),
            ]
            try:
                out = await cli.run(
                    cli.MINIPROGRAM_CI, args, limit=self.settings.miniprogram_ci_timeout_seconds
                )
            except cli.CliFailed as exc:
                self.record_exchange(api, shown, {"output": exc.output[-1000:]}, "failed")
                said = next(
                    (line for line in exc.output.splitlines() if _CI_WHITELIST.search(line)), None
                )
                if said is not None:
                    ip = _ip_in(said)
                    raise AuthError(
                        self.name,
                        "",
                        said.strip()[:300],
                        f"WeChat refused the upload from this server's IP{f' {ip}' if ip else ''}: "
                        "add it in mp.weixin.qq.com → 开发管理 → 开发设置 → 小程序代码上传 "
                        "(IP whitelist), or switch the IP restriction off there.",
                    ) from None
                raise
            except PlatformUnavailable as exc:
                # stopped after its time limit: the upload may have reached WeChat, and no
                # API can tell for an app owned directly
                self.record_exchange(api, shown, error=exc.explanation)
                raise OutcomeUnknown.after(exc) from None
        tail = scrub_message(out.strip())[-1000:]
        self.record_exchange(api, shown, {"output": tail})
        return UploadResult(
            version,
            f"uploaded by miniprogram-ci robot {robot} as a development version; make it the "
            "trial version and submit it in mp.weixin.qq.com → 管理 → 版本管理",
        )

    # -- review ------------------------------------------------------------------------

    async def _item_list(self, app: str, cfg: _AppConfig) -> list[dict[str, Any]] | None:
        """item_list for submit_audit: the app's, else the first page of the code in the
        first category of the mini program (``None`` when it has no category)."""
        if cfg.item_list:
            return cfg.item_list
        pages = await self._call(app, "GET", GET_PAGE, read=True)
        categories = await self._call(app, "GET", GET_CATEGORY, read=True)
        page_list = pages.get("page_list")
        category_list = categories.get("category_list")
        if not isinstance(category_list, list) or not category_list:
            return None
        first = category_list[0]
        if not isinstance(first, Mapping):
            raise _bad(f"GET {GET_CATEGORY}", "a category is not an object")
        item: dict[str, Any] = {
            k: first[k]
            for k in (
                "first_class",
                "second_class",
                "third_class",
                "first_id",
                "second_id",
                "third_id",
            )
            if first.get(k) not in (None, "")
        }
        if isinstance(page_list, list) and page_list and isinstance(page_list[0], str):
            item = {"address": page_list[0], **item}
        return [item]

    async def submit(
        self, app: str, version: str, notes: str, *, expedite: bool = False
    ) -> SubmitResult:
        """Submit the trial version for review, after checking it is ``version``.

        ``expedite`` asks for an expedited review right after the submission succeeded
        (WeChat expedites separately, speedupaudit); a refused expedite does not undo it.
        After an unclear answer the submission is confirmed only by a review newer than the
        one WeChat showed before sending.
        """
        cfg = self._platform_app(app)
        await self._trial_is(app, version, "submitting now would send {trial}'s code for review")
        body: dict[str, Any] = {}
        items = await self._item_list(app, cfg)
        if items:
            body["item_list"] = items
        body["version_desc"] = "\n".join(
            part for part in (notes.strip(), cfg.review_notes.strip()) if part
        )
        if cfg.privacy_api_not_use:
            body["privacy_api_not_use"] = True
        before = await self._latest(app)
        found: list[_Audit] = []

        async def submitted() -> bool:
            latest = await self._latest(app)
            if latest is not None and _new_review(before, latest, version):
                found.append(latest)
            return bool(found)

        auditid = await self._change(
            functools.partial(self._submit_once, app, body), "submission", submitted
        )
        if auditid is None:
            sent = SubmitResult(str(found[-1].auditid), f"audit {found[-1].auditid} ({CONFIRMED})")
        else:
            sent = SubmitResult(str(auditid), f"audit {auditid}")
        if not expedite:
            return sent
        try:
            said = await self.expedite(app, version, sent.ref)
        except PlatformError as exc:
            return dataclasses.replace(sent, detail=f"{sent.detail}; not expedited: {exc}")
        return dataclasses.replace(sent, detail=f"{sent.detail}; {said}")

    async def _submit_once(self, app: str, body: Mapping[str, Any]) -> int:
        """submit_audit, waiting out the privacy scan (61039): the new auditid.

        Raises :class:`OutcomeUnknown` when the answer was unclear or named no auditid.
        """
        s = self.settings
        waited = 0.0
        attempt = 0
        while True:
            try:
                data = await self._call(app, "POST", SUBMIT_AUDIT, body, read=False)
                break
            except InvalidState as exc:
                if exc.code != "61039":
                    raise
                if attempt >= s.privacy_scan_retries:
                    raise InvalidState(
                        self.name,
                        exc.code,
                        exc.platform_message,
                        "WeChat's privacy-API scan of the uploaded code had not finished after "
                        f"{waited:g} s of waiting; submit again in a few minutes (do not upload "
                        "again: every upload restarts the scan).",
                    ) from None
                attempt += 1
                log.info(
                    "WeChat's privacy scan is not finished; submitting again in %g s",
                    s.privacy_scan_wait_seconds,
                )
                await self.sleep(s.privacy_scan_wait_seconds)
                waited += s.privacy_scan_wait_seconds
        try:
            return _int_field(data, "auditid", f"POST {SUBMIT_AUDIT}")
        except BadResponse as exc:  # accepted, but the answer does not say which audit
            raise OutcomeUnknown.after(exc) from None

    async def review_status(self, app: str, version: str, ref: str) -> ReviewStatus:
        """Where audit ``ref`` stands (get_auditstatus); approved and live means released."""
        self._platform_app(app)
        auditid = self._auditid(ref)
        api = f"POST {GET_AUDITSTATUS}"
        try:
            data = await self._call(app, "POST", GET_AUDITSTATUS, {"auditid": auditid}, read=True)
        except NotFound as exc:
            if exc.code != "85012":
                raise
            return ReviewStatus(
                ReviewState.UNKNOWN, version, ref, detail=f"WeChat does not know audit {ref}"
            )
        audit = _audit_from(data, api, auditid)
        if audit.status != APPROVED:
            return self._review(audit, version, None)
        live = await self._live(app)
        gray = None
        if live != version:
            gray = await self._gray_plan(app, version)
            if gray is not None:  # the plan is of the latest approved audit: is it this one?
                latest = await self._latest(app)
                if latest is None or latest.auditid != auditid:
                    gray = None
        return self._review(audit, version, live, gray)

    async def withdraw(self, app: str, version: str, ref: str) -> str:
        """Withdraw audit ``ref`` (undocodeaudit), only if it is the one under review."""
        self._platform_app(app)
        latest = await self._latest(app)
        if latest is None:
            raise self._refused(
                "nothing has been submitted for review on WeChat, so there is nothing to withdraw."
            )
        pending = latest.status in (IN_REVIEW, DELAYED)
        if str(latest.auditid) == ref and not pending:
            raise self._refused(
                f"audit {ref} of {version} is {_status_words(latest.status)}, not under review; "
                "there is nothing to withdraw."
            )
        if str(latest.auditid) != ref:
            what = "is under review" if pending else f"is {_status_words(latest.status)}"
            raise self._refused(
                f"on WeChat audit {latest.auditid} (version {latest.user_version or '?'}) {what}, "
                f"not audit {ref} of {version}; withdrawing now would not pull {version}."
            )

        async def withdrawn() -> bool:
            now = await self._latest(app)
            return now is not None and str(now.auditid) == ref and now.status == WITHDRAWN

        undo = functools.partial(self._call, app, "GET", UNDO_AUDIT, read=False)
        if await self._change(undo, "withdrawal", withdrawn) is None:
            return f"withdrawn from review (audit {ref}; {CONFIRMED})"
        return f"withdrawn from review (audit {ref})"

    async def expedite(self, app: str, version: str, ref: str) -> str:
        """Ask WeChat to expedite audit ``ref`` (speedupaudit; the provider's monthly quota).

        Refused without asking when queryquota shows no expedite left. WeChat shows no
        per-audit trace of an expedite, so after an unclear answer it is confirmed by the
        expedite quota (``speedup_rest``) read just before: one less means it was spent on
        this request; more (a new month's quota) cannot tell. (The quota is provider-wide;
        another expedite at the same moment could mislead this check.)
        """
        self._platform_app(app)
        body = {"auditid": self._auditid(ref)}
        before = as_int((await self._quota(app)).get("speedup_rest"))
        if before == 0:
            raise self._refused(_RULES[89405][1], QuotaExceeded)

        async def expedited() -> bool:
            now = as_int((await self._quota(app)).get("speedup_rest"))
            if before is None or now is None:
                raise _cannot_tell("queryquota gives no speedup_rest")
            if now > before:
                raise _cannot_tell("the expedite quota was renewed (a new month)")
            return now < before

        speedup = functools.partial(self._call, app, "POST", SPEEDUP_AUDIT, body, read=False)
        if await self._change(speedup, "expedite request", expedited) is None:
            return f"expedited review requested (audit {ref}; {CONFIRMED})"
        return f"expedited review requested (audit {ref}; WeChat aims at 2–12 hours)"

    async def quotas(self, app: str) -> list[Quota]:
        """The provider's monthly audit and expedite quotas (queryquota), and the withdraw
        limits WeChat enforces per mini program but cannot report (counted here)."""
        cfg = self._config(app)
        if cfg.direct:
            return []
        data = await self._quota(app)
        return [
            Quota(
                "submit",
                "audit submissions this month (shared by the platform's mini programs)",
                as_int(data.get("rest")),
                as_int(data.get("limit")),
                "month",
            ),
            Quota(
                "expedite",
                "expedited reviews this month",
                as_int(data.get("speedup_rest")),
                as_int(data.get("speedup_limit")),
                "month",
            ),
            Quota(
                "withdraw", "withdrawals today", None, WITHDRAWALS_PER_DAY, "day", counted_here=True
            ),
            Quota(
                "withdraw",
                "withdrawals this month",
                None,
                WITHDRAWALS_PER_MONTH,
                "month",
                counted_here=True,
            ),
        ]

    # -- release -----------------------------------------------------------------------

    async def _approved(self, app: str, version: str, ref: str | None, what: str) -> _Audit:
        """The latest audit, when it is the approved review of ``version`` (and ``ref``):
        what release, gray release and their undoing act on."""
        latest = await self._latest(app)
        if latest is None:
            raise self._refused(
                f"nothing has been submitted for review on WeChat, so nothing can be {what}."
            )
        wrong_ref = ref is not None and str(latest.auditid) != ref
        if wrong_ref or latest.user_version not in (None, version):
            asked = f"audit {ref} of {version}" if ref is not None else version
            raise self._refused(
                f"WeChat's latest review is audit {latest.auditid} (version "
                f"{latest.user_version or '?'}, {_status_words(latest.status)}), not {asked}: "
                f"what would be {what} now is different code. Look at the status and name the "
                "version WeChat has."
            )
        if latest.status != APPROVED:
            raise self._refused(
                f"audit {latest.auditid} of {version} is {_status_words(latest.status)}; only an "
                f"approved version can be {what}."
            )
        return latest

    async def publish(self, app: str, version: str, ref: str) -> str:
        """Release the approved audit ``ref``; never repeated blindly after a lost answer.

        During a gray release this releases the version to everyone (and ends the plan).
        """
        self._platform_app(app)
        await self._approved(app, version, ref, "published")
        gray = await self._quietly(self._gray_plan(app, version), None)
        done = f" (the gray release at {gray.percent}% is complete)" if gray is not None else ""

        async def live() -> bool:
            return await self._live(app) == version

        release = functools.partial(self._call, app, "POST", RELEASE, {}, read=False)
        try:
            answer = await self._change(release, "release", live)
        except InvalidState as exc:
            if exc.code == "85052" and await self._quietly(live(), False):
                return f"{version} is already live"
            raise
        if answer is None:
            return f"published {version}{done} ({CONFIRMED})"
        return f"published {version}: it is live now{done}"

    async def gray(self, app: str, version: str, percent: int) -> str:
        """Release the approved ``version`` to ``percent`` % of users (grayrelease); call again
        with a higher percentage to widen it, :meth:`publish` to release it to everyone."""
        self._platform_app(app)
        if isinstance(percent, bool) or not isinstance(percent, int) or not 1 <= percent <= 100:
            raise self._refused(
                f"WeChat takes a whole gray percentage from 1 to 100, not {percent!r}.",
                InvalidInput,
            )
        await self._approved(app, version, None, "released gradually")

        async def reached() -> bool:
            plan = await self._gray_plan(app, version)
            return plan is not None and plan.percent == percent

        body = {"gray_percentage": percent}
        widen = functools.partial(self._call, app, "POST", GRAY_RELEASE, body, read=False)
        if await self._change(widen, "gray release", reached) is None:
            return f"{version} is released to {percent}% of users (gray release; {CONFIRMED})"
        return f"{version} is released to {percent}% of users (gray release)"

    async def stop_gray(self, app: str, version: str) -> str:
        """Cancel the staged release of ``version`` (revertgrayrelease): its users go back to
        the live version. Refused when the version in gray is another one."""
        self._platform_app(app)
        plan = await self._gray_plan(app, version)
        if plan is None:
            raise self._refused(f"no gray release of {version} is running on WeChat.")
        await self._approved(app, version, None, "stopped")  # the plan is of this version

        async def stopped() -> bool:
            return await self._gray_plan(app, version) is None

        revert = functools.partial(self._call, app, "GET", REVERT_GRAY, read=False)
        if await self._change(revert, "end of the gray release", stopped) is None:
            return f"gray release of {version} stopped ({CONFIRMED})"
        live = await self._quietly(self._live(app), None)
        back = f"; its {plan.percent}% of users are back on {live}" if live else ""
        return f"gray release of {version} stopped{back}"

    async def rollback(self, app: str, live: str, to: str | None) -> str:
        """Take the app from ``live`` back to ``to`` (default: the version before it) with
        revertcoderelease; ``to`` is mapped to WeChat's app_version from the history.

        Never retried blindly: after an unclear answer WeChat is asked which version is live.
        """
        self._platform_app(app)
        now = await self._live(app)
        if now is None:
            raise self._refused("nothing is live on WeChat to roll back.")
        if now != live:
            raise self._refused(
                f"WeChat's live version is {now}, not {live}; look at the status before rolling "
                "back."
            )
        if await self._gray_plan(app) is not None:
            raise self._refused(
                "a gray (staged) release is running; WeChat rolls back only after it is "
                "published to everyone or stopped.",
                code="87011",
            )
        targets, why = _rollback_targets(await self._kept(app), live)
        if to is None:
            if not targets:
                raise self._refused(f"cannot roll back: {why}.")
            target = targets[0]
        else:
            chosen = next((k for k in targets if k.version == to), None)
            if chosen is None:
                offered = ", ".join(k.version for k in targets)
                raise self._refused(
                    f"WeChat cannot roll back {live} to {to}: "
                    + (
                        f"the versions you can roll back to are {offered}."
                        if offered
                        else f"{why}."
                    ),
                    InvalidInput,
                )
            if chosen is not targets[0] and chosen.app_version is None:
                # without app_version WeChat goes to the previous version, not the one chosen
                raise self._refused(
                    f"WeChat's version history gives no app_version for {to}, and without one "
                    f"WeChat rolls back to {targets[0].version}. Roll back to "
                    f"{targets[0].version} instead, or choose {to} in mp.weixin.qq.com → 管理 → "
                    "版本管理."
                )
            target = chosen
        query = {"app_version": str(target.app_version)} if target.app_version is not None else {}

        async def back() -> bool:
            return await self._live(app) == target.version

        revert = functools.partial(self._call, app, "GET", REVERT_RELEASE, read=False, query=query)
        if await self._change(revert, "rollback", back) is None:
            return f"rolled back from {live} to {target.version} ({CONFIRMED})"
        shown = await self._quietly(self._live(app), None)
        if shown is not None and shown != target.version:
            return (
                f"WeChat accepted the rollback from {live}, but shows {shown} live, not "
                f"{target.version}; look at the versions before going on"
            )
        return f"rolled back from {live} to {target.version}: {target.version} is live now"

    # -- what WeChat shows -------------------------------------------------------------

    async def overview(self, app: str) -> Overview:
        """Live and trial versions (getversioninfo), the latest review, a gray release."""
        cfg = self._config(app)
        if cfg.direct:
            return Overview(
                lines=(
                    "owned directly: uploads go through miniprogram-ci; versions, reviews and "
                    "releases are in mp.weixin.qq.com → 管理 → 版本管理",
                )
            )
        info = await self._info(app)
        live, trial = info.live, info.trial
        latest = await self._latest(app)
        lines: list[str] = []
        candidate = latest.user_version if latest and latest.status == APPROVED else None
        gray = await self._quietly(
            self._gray_plan(app, candidate if candidate != live else None), None
        )
        review = None
        if latest is not None:
            review = self._review(latest, latest.user_version, live, gray)
        quota = await self._quietly(self._quota(app), {})
        rest, limit = as_int(quota.get("rest")), as_int(quota.get("limit"))
        if rest is not None and limit is not None:
            lines.append(f"review quota: {rest} of {limit} submissions left this month")
        return Overview(
            live_version=live, trial_version=trial, review=review, gray=gray, lines=tuple(lines)
        )

    async def versions(self, app: str) -> list[VersionInfo]:
        """The review (or trial) version, the live one and the kept earlier releases, newest
        first; the ones ``rollback`` can go to are flagged."""
        cfg = self._config(app)
        if cfg.direct:
            return []
        info = await self._info(app)
        latest = await self._latest(app)
        kept = await self._kept(app)
        candidate = latest.user_version if latest and latest.status == APPROVED else None
        gray = await self._gray_plan(app, candidate)
        out: list[VersionInfo] = []
        shown: set[str] = set()
        if latest is not None and latest.user_version and latest.user_version != info.live:
            state = _VERSION_STATES.get(latest.status, "development")
            words = _status_words(latest.status)
            if gray is not None and latest.status == APPROVED:
                state, words = "gray", f"live for {gray.percent}% of users (gray release)"
            at = info.trial_at if latest.user_version == info.trial else None
            out.append(
                VersionInfo(
                    latest.user_version, state, _when(at), f"audit {latest.auditid}: {words}"
                )
            )
            shown.add(latest.user_version)
        if info.trial and info.trial not in shown and info.trial != info.live:
            # the trial (体验) version: uploaded, not submitted
            out.append(
                VersionInfo(info.trial, "development", _when(info.trial_at), info.trial_desc)
            )
            shown.add(info.trial)
        if info.live:
            out.append(VersionInfo(info.live, "live", _when(info.live_at), info.live_desc))
            shown.add(info.live)
        targets, _ = _rollback_targets(kept, info.live)
        allowed = {t.version for t in targets} if gray is None else set()
        for k in kept:
            if k.version in shown:
                continue
            shown.add(k.version)
            out.append(
                VersionInfo(
                    k.version,
                    "earlier release",
                    _when(k.commit_time),
                    k.description,
                    rollback=k.version in allowed,
                )
            )
        return out

    async def trial_code(self, app: str, version: str | None) -> TrialCode:
        """The trial version's QR code (get_qrcode, a JPEG), after checking the trial
        version is ``version`` when one is given."""
        self._platform_app(app)
        trial = await self._trial_is(app, version, "the QR code would open {trial}")
        data = await self._call(app, "GET", GET_QRCODE, read=True, image=True)
        return TrialCode(
            image=data["image"],
            mime=data["mime"],
            version=trial,
            detail=f"scan with WeChat to open trial version {trial} (trial members only)",
        )

    # -- template library --------------------------------------------------------------

    async def _library(
        self, path: str = TEMPLATE_LIST, key: str = "template_list"
    ) -> list[Mapping[str, Any]]:
        """The entries of a template-library list (gettemplatelist, or gettemplatedraftlist
        with its key). 85064, which the sheet lists for these lists too (§5.1, §5.3), is read
        as an empty list."""
        try:
            data = await self._component_call("GET", path, read=True, key="access_token")
        except NotFound as exc:
            if exc.code == "85064":
                return []
            raise
        entries = data.get(key)
        return [e for e in (entries if isinstance(entries, list) else []) if isinstance(e, Mapping)]

    async def _templates(self, *, draft: bool) -> list[Template]:
        """The template library or the draft box, newest first."""
        path, key = (DRAFT_LIST, "draft_list") if draft else (TEMPLATE_LIST, "template_list")
        found = [t for e in await self._library(path, key) if (t := _template_from(e, draft=draft))]
        return sorted(found, key=lambda t: t.created_at or _EPOCH, reverse=True)

    async def templates(self) -> list[Template]:
        """The template library (gettemplatelist), then the draft box (gettemplatedraftlist)."""
        self._component_credentials()
        return await self._templates(draft=False) + await self._templates(draft=True)

    def _number(self, what: str, value: str) -> int:
        if not re.fullmatch(r"\d{1,18}", value.strip()):
            raise self._refused(
                f"{value!r} is not a WeChat {what} (a number, as `templates` lists).", InvalidInput
            )
        return int(value)

    async def add_template(self, draft_id: str) -> str:
        """Turn draft ``draft_id`` into a normal template (addtotemplate); says which
        template_id it became (WeChat does not answer it: the library is listed again)."""
        self._component_credentials()
        draft = self._number("draft id", draft_id)
        before = {as_int(e.get("template_id")) for e in await self._library()}

        async def new_template() -> int | None:
            for entry in await self._library():
                ident = as_int(entry.get("template_id"))
                if ident not in before and as_int(entry.get("draft_id")) in (draft, None):
                    return ident
            return None

        async def added() -> bool:
            return await new_template() is not None

        body = {"draft_id": draft, "template_type": 0}
        add = functools.partial(
            self._component_call, "POST", ADD_TO_TEMPLATE, body, read=False, key="access_token"
        )
        await self._change(add, "new template", added)
        made = await self._quietly(new_template(), None)
        if made is None:
            return f"draft {draft} added to the template library"
        return f"draft {draft} is now template {made}"

    async def delete_template(self, template_id: str) -> str:
        """Delete template ``template_id`` from the library (deletetemplate).

        Refused, before asking WeChat, while a configured app names it as template_id: the
        deletion cannot be undone, and those apps could no longer upload.
        """
        self._component_credentials()
        ident = self._number("template id", template_id)
        users = sorted(k for k, cfg in self.apps.items() if cfg.template_id == ident)
        if users:
            sections = ", ".join(f"[apps.{k}.wechat]" for k in users)
            raise self._refused(
                f"template {ident} is the template_id of {', '.join(users)} in miniship.toml, "
                "and a deleted template cannot be brought back. Give "
                f"{'it' if len(users) == 1 else 'them'} another template_id first "
                f"({sections}; `templates` lists the library), then delete template {ident}."
            )

        async def gone() -> bool:
            return all(as_int(e.get("template_id")) != ident for e in await self._library())

        body = {"template_id": ident}
        delete = functools.partial(
            self._component_call, "POST", DELETE_TEMPLATE, body, read=False, key="access_token"
        )
        if await self._change(delete, "deletion", gone) is None:
            return f"template {ident} deleted ({CONFIRMED})"
        return f"template {ident} deleted"

    # -- authorization -----------------------------------------------------------------

    async def connect_link(self, app: str, redirect_uri: str) -> str:
        """The componentloginpage link the mini program's admin opens to authorize the
        platform (mini programs only, this app's appid); WeChat then sends the browser to
        ``redirect_uri`` with ``auth_code`` (see :meth:`complete_connect`)."""
        cfg = self._config(app)
        appid, _ = self._component_credentials()
        data = await self._component_call(
            "POST", CREATE_PREAUTHCODE, {"component_appid": appid}, read=True
        )
        code = data.get("pre_auth_code")
        if not isinstance(code, str) or not code:
            raise _bad(f"POST {CREATE_PREAUTHCODE}", "no pre_auth_code")
        params = {
            "component_appid": appid,
            "pre_auth_code": code,
            "redirect_uri": redirect_uri,
            "auth_type": "2",  # mini programs only
            "biz_appid": cfg.appid,
        }
        return f"{self.settings.authorize_page_base}{LOGIN_PAGE}?{urlencode(params)}"

    def _keys_for(self, appid: str) -> list[str]:
        """The configured apps of mini program ``appid``."""
        return [k for k, cfg in self.apps.items() if cfg.appid == appid]

    def _grant(
        self, appid: str, permissions: tuple[int, ...], key: str | None, *, authorized: bool = True
    ) -> Authorization:
        names = tuple(permission_name(p) for p in permissions)
        if not authorized:
            detail = f"{appid} has not authorized this third-party platform"
        elif CODE_MANAGEMENT in permissions:
            detail = "code management (permission set 18) granted"
        else:
            detail = (
                "code management (permission set 18) was NOT granted: miniship cannot upload, "
                "submit or publish; authorize again with it ticked (`connect`)"
            )
        return Authorization(
            platform_app_id=appid,
            app=key,
            authorized=authorized,
            permissions=permissions,
            permission_names=names,
            detail=detail,
            platform=self.name,
        )

    async def complete_connect(self, app: str, query: Mapping[str, str]) -> Authorization:
        """Exchange the ``auth_code`` WeChat sent the browser back with (api_query_auth),
        keep the authorizer_refresh_token in the vault, say what was granted.

        Refused, with nothing kept, when the mini program that authorized is not ``app``'s.
        """
        target = self._config(app).appid
        code = (query.get("auth_code") or "").strip()
        if not code:
            raise self._refused(
                "WeChat's authorization page sent no auth_code back (the admin may have "
                "cancelled); run `connect <app> wechat` again.",
                InvalidInput,
            )
        if self.vault is None:
            raise self._no_vault()
        appid, _ = self._component_credentials()
        body = {"component_appid": appid, "authorization_code": code}
        # the code is used once: after an unclear answer, WeChat is asked about the app the
        # link was made for instead
        found: list[Mapping[str, Any]] = []

        async def authorized() -> bool:
            try:
                granted = _section(await self._authorizer_info(target), "authorization_info")
            except AuthError as exc:
                if exc.code in ("61003", "61007"):  # not authorized: it did not happen
                    return False
                raise
            if granted.get("authorizer_refresh_token"):
                found.append(granted)
            return bool(found)

        exchange = functools.partial(self._component_call, "POST", QUERY_AUTH, body, read=False)
        data = await self._change(exchange, "authorization", authorized)
        info = _section(data, "authorization_info") if data is not None else found[-1]
        authorizer = _text(info.get("authorizer_appid"))
        refresh = info.get("authorizer_refresh_token")
        if authorizer is None or not isinstance(refresh, str) or not refresh:
            raise _bad(f"POST {QUERY_AUTH}", "no authorizer_appid or authorizer_refresh_token")
        if authorizer != target:
            raise AuthError(
                self.name,
                "",
                "",
                f"the mini program that authorized miniship is {authorizer}, not {app} "
                f"({target}), so nothing was kept. Run `connect {app} wechat` again and have "
                f"the admin of {target} authorize with that mini program.",
            )
        access = info.get("authorizer_access_token")
        expires_in = as_int(info.get("expires_in")) or DEFAULT_EXPIRES_IN
        for key in self._keys_for(authorizer):
            self._authorizers.pop(key, None)
            if isinstance(access, str) and access:
                self._authorizers[key] = _Token(access, self._renew_at(expires_in))
        await self._keep_refresh(authorizer, refresh, required=True)
        return self._grant(authorizer, _granted(info), app)

    async def _authorizer_info(self, appid: str) -> dict[str, Any]:
        # Not in the fact sheet: the documented component API
        # POST /cgi-bin/component/api_get_authorizer_info {component_appid, authorizer_appid}
        # → {"authorizer_info": {...}, "authorization_info": {"authorizer_appid",
        #    "authorizer_refresh_token", "func_info": [{"funcscope_category": {"id": 18}}]}}
        component, _ = self._component_credentials()
        body = {"component_appid": component, "authorizer_appid": appid}
        return await self._component_call("POST", AUTHORIZER_INFO, body, read=True)

    async def authorization(self, app: str) -> Authorization | None:
        """Whether the mini program authorized the platform, and which permission sets
        (api_get_authorizer_info); ``None`` for an app owned directly."""
        cfg = self._config(app)
        if cfg.direct:
            return None
        try:
            data = await self._authorizer_info(cfg.appid)
        except AuthError as exc:
            if exc.code in ("61003", "61007"):
                return self._grant(cfg.appid, (), app, authorized=False)
            raise
        info = _section(data, "authorization_info")
        return self._grant(cfg.appid, _granted(info), app)

    # -- pushes ------------------------------------------------------------------------

    def _crypto(self) -> WeChatCrypto:
        s = self.settings
        token, key = s.component_token, s.encoding_aes_key
        if token is None or not token.get_secret_value():
            raise ConfigError(
                "reading WeChat pushes needs WECHAT_COMPONENT_TOKEN (the third-party platform's "
                "message verification token)"
            )
        if key is None or not key.get_secret_value():
            raise ConfigError(
                "reading WeChat pushes needs WECHAT_ENCODING_AES_KEY (the third-party "
                "platform's message encryption key)"
            )
        if not s.component_appid:
            raise ConfigError("reading WeChat pushes needs WECHAT_COMPONENT_APPID")
        try:
            return WeChatCrypto(token.get_secret_value(), key.get_secret_value(), s.component_appid)
        except PushRejected as exc:
            raise ConfigError(f"WECHAT_ENCODING_AES_KEY is unusable: {exc.reason}") from None

    async def _take_ticket(self, ticket: str, at: datetime | None) -> None:
        """Use a pushed component_verify_ticket from now on (and keep it in the vault),
        unless its CreateTime is older than the newest one seen (a replayed push)."""
        newest = self._pushed_ticket_at
        if at is not None and newest is not None and at < newest:
            log.info("ignored a component_verify_ticket push older than the newest one")
            return
        self._pushed_ticket = SecretStr(ticket)
        self._pushed_ticket_at = at or newest
        await self._vault_save(VAULT_TICKET, ticket)
        log.info("WeChat pushed a new component_verify_ticket")

    def _app_for(self, mini_program: str) -> str | None:
        for key, cfg in self.apps.items():
            if mini_program in (cfg.appid, cfg.original_id):
                return str(key)
        return None

    async def read_push(self, request: PushRequest) -> list[PushEvent]:
        """Verify, decrypt and read a push (audit result or component_verify_ticket).

        A ``verify_ticket`` event also becomes the ticket this adapter uses for
        ``api_component_token`` (see :attr:`verify_ticket`) and is kept in the vault for
        the next start, unless it is older than the newest ticket pushed before. Audit
        events get ``app`` from the configured app whose appid (the ``$APPID$`` path
        segment) or original id (``ToUserName``) they name. Reply ``success`` to WeChat
        afterwards.

        Raises:
            PushRejected: bad signature, undecryptable or malformed payload, or a path
                appid that contradicts the push's ``ToUserName``.
            ConfigError: WECHAT_COMPONENT_TOKEN or WECHAT_ENCODING_AES_KEY is not set.
        """
        crypto = self._crypto()
        query = request.query
        fields = crypto.decrypt_push(
            request.body,
            msg_signature=query.get("msg_signature", ""),
            timestamp=query.get("timestamp", ""),
            nonce=query.get("nonce", ""),
        )
        appid = (request.path.get("appid") or "").strip() or None
        events = wechat_events(fields, appid=appid)
        resolved: list[PushEvent] = []
        for event in events:
            if event.kind == "verify_ticket":
                if event.ticket:
                    await self._take_ticket(event.ticket, event.at)
                resolved.append(event)
                continue
            app = self._app_for(event.mini_program)
            to_user = (fields.get("ToUserName") or "").strip()
            if app is not None and appid is not None and to_user:
                original = self._config(app).original_id
                if original and original != to_user:
                    raise PushRejected(
                        f"the push for {appid} is addressed to {to_user}, not {original}"
                    )
            if app is None and to_user:
                app = self._app_for(to_user)
            resolved.append(dataclasses.replace(event, app=app))
        return resolved
