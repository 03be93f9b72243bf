"""What WeChat's errcodes mean: the typed error and the plain explanation for each.

:func:`error_for` is the one place an errcode becomes a
:class:`~platforms.errors.PlatformError`; :class:`NotConnected` is the error for a mini
program miniship holds no authorization for.
"""

from __future__ import annotations

import re

from platforms.errors import (
    AlreadyInReview,
    AuthError,
    ConfigError,
    InvalidInput,
    InvalidState,
    NotFound,
    PlatformError,
    PlatformUnavailable,
    QuotaExceeded,
)

__all__ = ["NotConnected", "error_for"]


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
    40007: (  # get_material's (official page api_getmaterial; not in the fact sheet)
        NotFound,
        "WeChat does not know this media id (invalid media_id): the material is gone or "
        "belongs to another account.",
    ),
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
        "WeChat refused ext_json as invalid (a value it cannot use, a malformed path, or an "
        "extAppid other than the app's appid); fix ext_json in [apps.<app>.wechat] and upload "
        "again.",
    ),
    85022: (InvalidInput, "the visit status action is invalid (a miniship bug)."),
    85023: (InvalidInput, "item_list must have 1 to 5 entries."),
    85043: (InvalidInput, "the template is broken; upload a new one to the template library."),
    85044: (
        InvalidInput,
        "the code package is too large; make the template smaller (subpackages) and add it "
        "to the library again.",
    ),
    85045: (
        InvalidInput,
        "ext_json names a page the template does not have (in pages, extPages, tabBar or "
        "subPackages; WeChat only takes pages of the template). Remove that page from ext_json "
        "in [apps.<app>.wechat], or upload from a template that has it (`templates` lists the "
        "library; a new page needs a new template from the draft box).",
    ),
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
