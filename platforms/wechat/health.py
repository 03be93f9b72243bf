"""What WeChat reports about a version's health: its JavaScript errors (运维中心
``jserr_list``, permission set 18), the figures a staged rollout is gated on.

Fact sheet: ``release-health.md`` §1.1. Dates are whole days (``YYYY-MM-DD``, WeChat's
Beijing calendar); a page holds at most 30 rows, so a version's totals are the sum over
every page. The ``uvPercent`` / ``pvPercent`` strings have no stated denominator
(UNCERTAIN), so they are not used; only the counts are.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from platforms.base import ErrorReport, JsError
from platforms.errors import InvalidInput
from platforms.wechat.api import JSERR_LIST
from platforms.wechat.reading import _bad, _text, as_int
from platforms.wechat.versions import WeChatVersions

__all__ = ["PAGE", "WeChatHealth"]

PAGE = 30  # jserr_list's documented maximum limit


class WeChatHealth(WeChatVersions):
    """``js_errors``."""

    async def js_errors(
        self, app: str, version: str, start: date, end: date, *, pages: int = 10
    ) -> ErrorReport:
        """The JS errors (business code, every kind) of ``version`` over the days
        ``start``…``end``, most users first; at most ``pages`` pages of 30 rows are read
        (``complete`` says whether that was all)."""
        self._platform_app(app)
        if end < start:
            raise self._refused(f"the days {start}…{end} run backwards.", InvalidInput)
        if not version or version == "0":
            raise self._refused('name one version (WeChat\'s "0" means all).', InvalidInput)
        api = f"POST {JSERR_LIST}"
        rows: list[JsError] = []
        total: int | None = None
        for page in range(max(1, pages)):
            body = {
                "appVersion": version,
                "errType": "0",
                "startTime": start.isoformat(),
                "endTime": end.isoformat(),
                "keyword": "",
                "openid": "",
                "orderby": "uv",
                "desc": "1",
                "offset": page * PAGE,
                "limit": PAGE,
            }
            data = await self._call(app, "POST", JSERR_LIST, body, read=True)
            total = as_int(data.get("totalCount"))
            items = data.get("data") or []
            if total is None or not isinstance(items, list):
                raise _bad(api, "no totalCount or data list")
            rows.extend(_error_from(item, api) for item in items)
            if not items or len(rows) >= total:
                break
        seen = {r.key: r for r in rows}  # a row moving between pages is counted once
        errors = tuple(sorted(seen.values(), key=lambda r: (-r.users, -r.count, r.key)))
        return ErrorReport(
            version=version,
            start=start,
            end=end,
            users=sum(e.users for e in errors),
            count=sum(e.count for e in errors),
            errors=errors,
            complete=total is not None and len(seen) >= total,
        )


def _error_from(item: object, api: str) -> JsError:
    if not isinstance(item, Mapping):
        raise _bad(api, "a data row is not an object")
    row: Mapping[str, Any] = item
    users, count = as_int(row.get("uv")), as_int(row.get("pv"))
    if users is None or count is None:
        raise _bad(api, "a data row has no uv or pv count")
    message = _text(row.get("errorMsg")) or ""
    msg_md5 = _text(row.get("errorMsgMd5")) or ""
    return JsError(
        message=message,
        stack=_text(row.get("errorStack")) or "",
        users=max(users, 0),
        count=max(count, 0),
        key=f"{msg_md5}:{_text(row.get('errorStackMd5')) or ''}",
        signature=msg_md5,  # not the stack's md5: line:column move with every build
    )
