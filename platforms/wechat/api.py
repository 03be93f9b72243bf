"""WeChat's API paths, and how request bodies are written.

The adapter's operations name an API by its path; :data:`NO_ERRCODE` says which of them
answer without ``errcode`` on success (the wire reads their answers differently).
"""

from __future__ import annotations

import json
from typing import Any

__all__ = [
    "ADD_TO_TEMPLATE",
    "AUTHORIZER_INFO",
    "AUTHORIZER_LIST",
    "COMMIT",
    "CREATE_PREAUTHCODE",
    "DELETE_TEMPLATE",
    "DRAFT_LIST",
    "GET_AUDITSTATUS",
    "GET_AUTHORIZER_ACCESS",
    "GET_CATEGORY",
    "GET_COMPONENT_ACCESS",
    "GET_LATEST_AUDITSTATUS",
    "GET_MATERIAL",
    "GET_PAGE",
    "GET_QRCODE",
    "GRAY_PLAN",
    "GRAY_RELEASE",
    "JSERR_LIST",
    "LOGIN_PAGE",
    "NO_ERRCODE",
    "QUERY_AUTH",
    "QUERY_QUOTA",
    "RELEASE",
    "REVERT_GRAY",
    "REVERT_RELEASE",
    "SPEEDUP_AUDIT",
    "SUBMIT_AUDIT",
    "TEMPLATE_LIST",
    "UNDO_AUDIT",
    "VERSION_INFO",
]


GET_COMPONENT_ACCESS = "/cgi-bin/component/api_component_token"
GET_AUTHORIZER_ACCESS = "/cgi-bin/component/api_authorizer_token"
CREATE_PREAUTHCODE = "/cgi-bin/component/api_create_preauthcode"
QUERY_AUTH = "/cgi-bin/component/api_query_auth"
AUTHORIZER_INFO = "/cgi-bin/component/api_get_authorizer_info"
AUTHORIZER_LIST = "/cgi-bin/component/api_get_authorizer_list"
"""Every account that authorized the platform (POST ``{component_appid, offset, count}``,
count at most 500) → ``{total_count, list: [{authorizer_appid, refresh_token,
auth_time}]}`` (open docs getAuthorizerList; WxJava's WxOpenAuthorizerListResult)."""
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
JSERR_LIST = "/wxaapi/log/jserr_list"
"""A version's JavaScript errors, aggregated per message and stack (POST, 30 rows a page;
release-health fact sheet §1.1)."""
GET_MATERIAL = "/cgi-bin/material/get_material"
"""Get permanent material (POST ``{"media_id"}``, the authorizer token; permission sets 3,
11, 18, 30, 31 or 100): how an audit's rejection screenshots are fetched (fact sheet §4.8,
"get-permanent-material with ATOK"). An image comes back as the file itself, an error as
JSON with errcode (official page api_getmaterial)."""
QUERY_QUOTA = "/wxa/queryquota"
TEMPLATE_LIST = "/wxa/gettemplatelist"
DRAFT_LIST = "/wxa/gettemplatedraftlist"
ADD_TO_TEMPLATE = "/wxa/addtotemplate"
DELETE_TEMPLATE = "/wxa/deletetemplate"

NO_ERRCODE = frozenset(
    {
        GET_COMPONENT_ACCESS,
        GET_AUTHORIZER_ACCESS,
        CREATE_PREAUTHCODE,
        QUERY_AUTH,
        AUTHORIZER_INFO,
        AUTHORIZER_LIST,
    }
)
"""The token and authorization APIs, which answer without errcode on success (fact sheet §1).
Every other API's answer without one is malformed: a change it answered is then unclear."""


def _json(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))
