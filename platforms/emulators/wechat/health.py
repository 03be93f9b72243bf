"""JavaScript error reports per version (运维中心, permission set 18): jserr_list and
jserr_detail, as the release-health fact sheet §1.1–1.2 describes their wire format.

The figures are made up, but deterministically from the emulator's clock and state: a
mini program has :attr:`HealthApis.daily_users` users a day, spread evenly over the day
(Beijing time), and each user is on the version the share they fall in had then
(``_Program.exposure``: the live version, and the gray one for its percentage). Every
version hits the same few everyday errors at low rates; a version whose notes contain
``#crashy`` also crashes on the cart page for a large share of its users, so a staged
release of it can be seen to regress.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from platforms.base import BEIJING
from platforms.emulators.wechat.errors import _Fail, _ok
from platforms.emulators.wechat.state import WeChatState, _Call, _Exposure, _Program

__all__ = ["CRASH_MARK", "HealthApis"]


CRASH_MARK = "#crashy"
DAILY_USERS = 80_000_000
"""Users a day of an emulated mini program: one of the busiest, so that a minute at a 5 %
gray share gives enough error users to compare (≈10: the console can rehearse a rollout
with steps a minute apart)."""
LIST_LIMIT = 30  # jserr_list's documented maximum page size
DETAIL_LIMIT = 100  # jserr_detail documents none; the emulator keeps pages bounded
DAY = 86400.0


@dataclass(frozen=True)
class _Signature:
    message: str
    stack: str
    rate: float  # the share of a version's users who hit it in a day
    route: str

    @property
    def msg_md5(self) -> str:
        return hashlib.md5(self.message.encode(), usedforsecurity=False).hexdigest()

    @property
    def stack_md5(self) -> str:
        return hashlib.md5(self.stack.encode(), usedforsecurity=False).hexdigest()


EVERYDAY = (
    _Signature(
        "TypeError: Cannot read property 'length' of undefined",
        "TypeError: Cannot read property 'length' of undefined\n"
        "    at pages/index/index.js:12:7\n    at Array.map (<anonymous>)",
        0.0020,
        "pages/index/index",
    ),
    _Signature(
        "Error: request:fail timeout",
        "Error: request:fail timeout\n    at utils/request.js:40:11",
        0.0015,
        "pages/list/list",
    ),
    _Signature(
        "ReferenceError: price is not defined",
        "ReferenceError: price is not defined\n    at pages/detail/detail.js:88:3",
        0.0005,
        "pages/detail/detail",
    ),
)
CRASH = _Signature(
    "TypeError: Cannot read property 'id' of undefined",
    "TypeError: Cannot read property 'id' of undefined\n"
    "    at pages/cart/cart.js:3:120\n    at Object.onLoad (pages/cart/cart.js:1:40)",
    0.30,
    "pages/cart/cart",
)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class HealthApis(WeChatState):
    """``/wxaapi/log/jserr_list`` and ``/wxaapi/log/jserr_detail``."""

    daily_users: int = DAILY_USERS

    # -- the made-up figures -------------------------------------------------------------

    def _signatures(self, program: _Program, version: str) -> tuple[_Signature, ...]:
        notes = " ".join(
            f"{a.user_desc}\n{a.version_desc}" for a in program.audits if a.user_version == version
        )
        return (*EVERYDAY, CRASH) if CRASH_MARK in notes else EVERYDAY

    def _users(self, program: _Program, version: str, start: float, end: float) -> float:
        """How many users had ``version`` between ``start`` and ``end`` (unix seconds)."""
        end = min(end, self.clock())
        segments = program.exposure or [_Exposure(0.0, program.shares())]
        total = 0.0
        for n, (at, shares) in enumerate((e.at, e.shares) for e in segments):
            until = segments[n + 1].at if n + 1 < len(segments) else end
            lo, hi = max(at, start), min(until, end)
            if hi > lo:
                total += shares.get(version, 0.0) * (hi - lo)
        return total / DAY * self.daily_users

    def _rows(
        self, program: _Program, version: str, first: date, last: date
    ) -> list[dict[str, Any]]:
        """One aggregated row per error the version hit in the days ``first``…``last``."""
        versions = (
            sorted({v for e in program.exposure for v in e.shares} | set(program.shares()))
            if version == "0"
            else [version]
        )
        start = datetime.combine(first, time(), BEIJING).timestamp()
        end = datetime.combine(last + timedelta(days=1), time(), BEIJING).timestamp()
        found: dict[tuple[str, str], dict[str, Any]] = {}
        for v in versions:
            users = self._users(program, v, start, end)
            for sig in self._signatures(program, v):
                uv = int(users * sig.rate)
                if uv <= 0:
                    continue
                row = found.setdefault(
                    (sig.msg_md5, sig.stack_md5),
                    {
                        "errorMsgMd5": sig.msg_md5,
                        "errorMsg": sig.message,
                        "errorStackMd5": sig.stack_md5,
                        "errorStack": sig.stack,
                        "uv": 0,
                        "pv": 0,
                        "_users": 0.0,
                    },
                )
                row["uv"] += uv
                row["pv"] += uv + uv // 2
                row["_users"] += users
        rows = []
        for row in found.values():
            users = max(row.pop("_users"), 1.0)
            row["uvPercent"] = f"{100 * row['uv'] / users:.1f}%"  # reading A: of the users
            row["pvPercent"] = f"{100 * row['pv'] / (users * 3):.1f}%"
            rows.append(row)
        return rows

    # -- the APIs ------------------------------------------------------------------------

    @staticmethod
    def _days(body: dict[str, Any]) -> tuple[date, date]:
        first, last = body.get("startTime"), body.get("endTime")
        if not (isinstance(first, str) and isinstance(last, str)):
            raise _Fail(40097)
        if not (_DATE.match(first) and _DATE.match(last)):
            raise _Fail(40097)
        try:
            start, end = date.fromisoformat(first), date.fromisoformat(last)
        except ValueError:
            raise _Fail(40097) from None
        if end < start:
            raise _Fail(40097)
        return start, end

    @staticmethod
    def _paging(body: dict[str, Any], most: int) -> tuple[int, int]:
        offset, limit = body.get("offset"), body.get("limit")
        if isinstance(offset, bool) or isinstance(limit, bool):
            raise _Fail(40097)
        if not isinstance(offset, int) or not isinstance(limit, int):
            raise _Fail(40097)
        if offset < 0 or not 1 <= limit <= most:
            raise _Fail(40097)
        return offset, limit

    def _jserr_list(self, call: _Call) -> dict[str, Any]:
        program, body = self._program(call), call.body
        for name in ("appVersion", "errType", "keyword", "openid", "orderby", "desc"):
            if not isinstance(body.get(name), str):
                raise _Fail(40097)
        first, last = self._days(body)
        offset, limit = self._paging(body, LIST_LIMIT)
        order, desc = body["orderby"], body["desc"]
        if (
            order not in ("uv", "pv")
            or desc not in ("1", "2")
            or body["errType"]
            not in (
                "0",
                "1",
                "2",
                "3",
            )
        ):
            raise _Fail(40097)
        rows: list[dict[str, Any]] = []
        if body["errType"] in ("0", "1") and not body["openid"]:  # all business-code errors
            rows = self._rows(program, body["appVersion"], first, last)
        if body["keyword"]:
            rows = [r for r in rows if body["keyword"] in r["errorMsg"]]
        rows.sort(key=lambda r: (r[order], r["errorMsgMd5"]), reverse=desc == "1")
        return _ok(totalCount=len(rows), data=rows[offset : offset + limit])

    def _jserr_detail(self, call: _Call) -> dict[str, Any]:
        program, body = self._program(call), call.body
        names = ("errorMsgMd5", "errorStackMd5", "appVersion", "sdkVersion", "osName")
        for name in (*names, "clientVersion", "openid", "desc"):
            if not isinstance(body.get(name), str):
                raise _Fail(40097)
        if body["desc"] not in ("0", "1"):  # jserr_detail: 0 ascending, 1 descending
            raise _Fail(40097)
        first, last = self._days(body)
        offset, limit = self._paging(body, DETAIL_LIMIT)
        versions = (
            [body["appVersion"]]
            if body["appVersion"] != "0"
            else sorted({v for e in program.exposure for v in e.shares} | set(program.shares()))
        )
        found: list[dict[str, Any]] = []
        for version in versions:
            for row in self._rows(program, version, first, last):
                if (row["errorMsgMd5"], row["errorStackMd5"]) != (
                    body["errorMsgMd5"],
                    body["errorStackMd5"],
                ):
                    continue
                found.extend(self._occurrences(program, version, row, last))
        if body["osName"] != "0":
            found = [f for f in found if f["OsName"] == body["osName"]]
        found.sort(key=lambda f: str(f["TimeStamp"]), reverse=body["desc"] == "1")
        return _ok(totalCount=len(found), data=found[offset : offset + limit])

    def _occurrences(
        self, program: _Program, version: str, row: dict[str, Any], day: date
    ) -> list[dict[str, Any]]:
        """Up to 50 single occurrences of an aggregated row (one per user), mixed case as
        WeChat writes them (``Count`` a string)."""
        out = []
        for n in range(min(int(row["uv"]), 50)):
            ios = n % 3 != 0
            moment = datetime.combine(day, time(hour=9), BEIJING) + timedelta(minutes=7 * n)
            out.append(
                {
                    "Count": str(1 + n % 2),
                    "appVersion": version,
                    "sdkVersion": "3.3.1",
                    "ClientVersion": "8.0.50",
                    "OsName": "2" if ios else "1",
                    "DeviceModel": "iPhone15,2" if ios else "Pixel 8",
                    "Ds": day.isoformat(),
                    "TimeStamp": moment.strftime("%Y-%m-%d %H:%M:%S"),
                    "errorMsgMd5": row["errorMsgMd5"],
                    "errorStackMd5": row["errorStackMd5"],
                    "errorMsg": row["errorMsg"],
                    "errorStack": row["errorStack"],
                    "openId": f"o-emu-{n:04d}",
                    "appId": program.appid,
                    "pluginversion": "0",
                    "route": next(
                        (s.route for s in (*EVERYDAY, CRASH) if s.msg_md5 == row["errorMsgMd5"]),
                        "",
                    ),
                    "source": "",
                    "nickname": "",
                }
            )
        return out
