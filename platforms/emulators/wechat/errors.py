"""The emulated platform's answers: ``{"errcode", "errmsg"}`` with WeChat's own
messages, and the exception a handler raises to give one.
"""

from __future__ import annotations

import secrets
from typing import Any

__all__ = []


ERRMSG: dict[int, str] = {
    -1: "system error",
    40001: "invalid credential, access_token is invalid or not latest",
    40007: "invalid media_id",
    40013: "invalid appid",
    40014: "invalid access_token",
    40097: "invalid args",
    40125: "invalid appsecret",
    41001: "access_token missing",
    41004: "appsecret missing",
    41018: "missing component_appid",
    42001: "access_token expired",
    42006: "component_access_token expired",
    43001: "require GET method",
    43002: "require POST method",
    44002: "empty post data",
    45009: "reach max api daily quota limit",
    45011: "api minute-quota reach limit, must slower, retry next minute",
    47001: "data format error",
    48001: "api unauthorized",
    61003: "component is not authorized by this account",
    61004: "access clientip is not registered",
    61005: "component ticket is expired",
    61006: "component ticket is invalid",
    61007: "api is unauthorized to component",
    61009: "code is invalid",
    61010: "code is expired",
    61011: "invalid component",
    61014: "must use component token for component api",
    61023: "refresh_token is invalid",
    61039: "privacy api detection is not finished, please wait and retry",
    61040: "privacy api is used but not configured",
    85007: "page path error",
    85008: "category is in invalid format",
    85009: "already submit a version under auditing",
    85010: "missing required data",
    85012: "invalid audit id",
    85013: "invalid ext_json, parse fail or containing invalid path",
    85014: "template not exist",
    85019: "no version is under auditing",
    85020: "status not allowed",
    85023: "item size is not in valid range",
    85045: "some path in ext_json not exist",
    85046: "pagepath missing in tabbar list",
    85047: "pages are empty",
    85048: "parse ext_json fail",
    85052: "app is already released",
    85058: "no valid audit_id exist",
    85064: "template not found",
    85065: "template list is full",
    85079: "miniprogram has no online release",
    85080: "miniprogram commit not approved",
    85081: "invalid gray percentage",
    85082: "gray percentage too low",
    85085: "submit audit reach limit, please try later",
    85086: "must commit before submit audit",
    86001: "component experience version not exists",
    87011: "current version is in gray release, can not revert",
    87012: "forbid revert this version release",
    87013: "no quota to undo code",
    89402: "this audit is not in the audit queue",
    89404: "this audit has been speeded up",
    89405: "speed up audit quota is used up this month",
}


class _Fail(Exception):
    """An errcode answer (``message``: an errmsg other than the usual one)."""

    def __init__(self, errcode: int, message: str | None = None) -> None:
        super().__init__(errcode)
        self.errcode = errcode
        self.message = message


def _rid() -> str:
    return "-".join(secrets.token_hex(4) for _ in range(3))


def _error(errcode: int, message: str | None = None) -> dict[str, Any]:
    text = message or ERRMSG.get(errcode, "error")
    return {"errcode": errcode, "errmsg": f"{text} rid: {_rid()}"}


def _ok(**data: Any) -> dict[str, Any]:
    return {"errcode": 0, "errmsg": "ok", **data}
