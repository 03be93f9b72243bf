"""What Alipay's failure answers mean: the typed error and the plain explanation for
each gateway code and sub_code.

:func:`error_for` is the one place an answer becomes a
:class:`~platforms.errors.PlatformError`; a refusal that carried no signature is marked
(:class:`_Unsigned`) so nothing is done on its word.
"""

from __future__ import annotations

import re

from platforms.errors import (
    AlreadyInReview,
    AuthError,
    InvalidInput,
    InvalidState,
    NotFound,
    PlatformError,
    PlatformUnavailable,
    QuotaExceeded,
)

__all__ = ["error_for"]


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
        AuthError,
        "Alipay refused the authorisation code (app_auth_code): it was used already, has "
        "expired (a day after the merchant authorised) or was never issued. Nothing was "
        "kept; ask for a new link (`connect alipay`) and authorise again.",
        "isv.code-invalid",
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
