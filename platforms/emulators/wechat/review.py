"""The review: the privacy scan, submit_audit with its item_list checks, the audit
status, withdrawals, expedites and the provider's quotas.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from aiohttp import web

from platforms.base import BEIJING  # WeChat's daily and monthly limits reset here
from platforms.emulators.images import evidence_png
from platforms.emulators.wechat.errors import _Fail, _ok
from platforms.emulators.wechat.state import WeChatState, _Audit, _Call, _Program
from platforms.wechat.reading import as_int

__all__ = ["ReviewApis"]


UNDO_PER_DAY, UNDO_PER_MONTH = 5, 10

MAX_ITEMS = 5
SCREENSHOT_ID = re.compile(r"emu_(\d+)_(\d+)")  # the media ids State._screenshots hands out
REQUIRED_ITEM_FIELDS = ("first_class", "second_class", "first_id", "second_id")


class ReviewApis(WeChatState):
    """get_code_privacy_info, submit_audit, get_auditstatus, get_latest_auditstatus,
    undocodeaudit, speedupaudit, queryquota, and get_material for the screenshots of a
    rejected audit."""

    def _scanning(self, program: _Program) -> bool:
        commit = program.commit
        return commit is not None and self.clock() < commit.committed_at + self.privacy_scan_seconds

    @staticmethod
    def _undeclared(program: _Program) -> list[str]:
        """Privacy APIs the code uses that ext_json.requiredPrivateInfos does not declare."""
        ext = program.commit.ext_json if program.commit else {}
        declared = ext.get("requiredPrivateInfos")
        names = (
            {str(d).removeprefix("wx.") for d in declared} if isinstance(declared, list) else set()
        )
        return [api for api in program.privacy_apis if api.removeprefix("wx.") not in names]

    def _privacy_info(self, call: _Call) -> dict[str, Any]:
        program = self._program(call)
        if program.commit is None:
            raise _Fail(86001)
        if self._scanning(program):
            raise _Fail(61039)
        return _ok(without_auth_list=[], without_conf_list=self._undeclared(program))

    def _quota_rest(self) -> int:
        return max(0, self.quota_limit - self.quota_used.get(self._month(self.clock()), 0))

    def _speedup_rest(self) -> int:
        return max(0, self.speedup_limit - self.speedup_used.get(self._month(self.clock()), 0))

    def _check_items(self, program: _Program, items: object) -> list[dict[str, Any]]:
        if not isinstance(items, list) or not 1 <= len(items) <= MAX_ITEMS:
            raise _Fail(85023)
        known = {(c["first_id"], c["second_id"]) for c in program.categories}
        pages = set(self._pages(program))
        for item in items:
            if not isinstance(item, dict):
                raise _Fail(85010)
            if any(item.get(k) in (None, "") for k in REQUIRED_ITEM_FIELDS):
                raise _Fail(85010)
            ids = (as_int(item["first_id"]), as_int(item["second_id"]))
            if ids not in known:
                raise _Fail(85008)
            if item.get("address") and str(item["address"]) not in pages:
                raise _Fail(85007)
        return items

    def _submit_audit(self, call: _Call) -> dict[str, Any]:
        program, body = self._program(call), call.body
        commit = program.commit
        if commit is None:
            raise _Fail(85086)
        if any(self._status(a)[0] in (2, 4) for a in program.audits):
            raise _Fail(85009)
        items = body.get("item_list")
        if items is not None:
            items = self._check_items(program, items)
        desc = body.get("version_desc", "")
        if not isinstance(desc, str):
            raise _Fail(47001)
        if self._scanning(program):
            raise _Fail(61039)
        undeclared = self._undeclared(program)
        if undeclared and body.get("privacy_api_not_use") is not True:
            raise _Fail(61040, f"privacy api {undeclared[0]} is used but not configured")
        if self._quota_rest() <= 0:
            raise _Fail(85085)
        now = self.clock()
        month = self._month(now)
        self.quota_used[month] = self.quota_used.get(month, 0) + 1
        auditid = self.next_auditid
        self.next_auditid += 1
        program.audits.append(
            _Audit(auditid, commit.user_version, commit.user_desc, desc, now, items)
        )
        return _ok(auditid=auditid)

    def _get_auditstatus(self, call: _Call) -> dict[str, Any]:
        program = self._program(call)
        if "auditid" not in call.body:
            raise _Fail(47001)
        auditid = as_int(call.body["auditid"])
        audit = program.audit(auditid) if auditid is not None else None
        if audit is None:
            raise _Fail(85012)
        status, reason = self._status(audit)
        answer = _ok(status=status)
        if status in (1, 4):
            answer["reason"] = reason
        if status == 1:
            answer["screenshot"] = self._screenshots(audit)
        return answer

    def _get_latest_auditstatus(self, call: _Call) -> dict[str, Any]:
        program = self._program(call)
        if not program.audits:
            raise _Fail(85058)
        audit = program.audits[-1]
        status, reason = self._status(audit)
        answer = _ok(auditid=audit.auditid, status=status)
        if status in (1, 4):
            answer["reason"] = reason
        if status == 1:
            answer["ScreenShot"] = self._screenshots(audit)  # the official example's casing
        answer.update(
            user_version=audit.user_version,
            user_desc=audit.user_desc,
            submit_audit_time=int(audit.submitted_at),
        )
        return answer

    def _get_material(self, call: _Call) -> web.Response:
        """A rejected audit's screenshot by its media id (permanent material): a PNG that
        says the rejection reason; 40007 for a media id the mini program does not have."""
        program = self._program(call)
        if "media_id" not in call.body:
            raise _Fail(47001)
        media_id = str(call.body["media_id"]).strip()
        match = SCREENSHOT_ID.fullmatch(media_id)
        audit = program.audit(int(match.group(1))) if match else None
        if match is None or audit is None or media_id not in self._screenshots(audit).split("|"):
            raise _Fail(40007)
        status, reason = self._status(audit)
        if status != 1:
            raise _Fail(40007)  # handed out with a rejection only
        image = self._media_cache.get(media_id)
        if image is None:
            heading = f"WeChat review screenshot {match.group(2)} of 2 (emulated)"
            text = f"Audit {audit.auditid} of version {audit.user_version} was rejected.\n{reason}"
            image = self._media_cache[media_id] = evidence_png(heading, text)
        return web.Response(
            body=image,
            headers={
                "Content-Type": "image/png",
                "Content-disposition": f'attachment; filename="{media_id}.png"',
                "Cache-Control": "no-cache, must-revalidate",
            },
        )

    def _undocodeaudit(self, call: _Call) -> dict[str, Any]:
        program = self._program(call)
        audit = program.audits[-1] if program.audits else None
        status = self._status(audit)[0] if audit is not None else 3
        if audit is None or status == 3:
            raise _Fail(85019)
        if status in (0, 1):
            raise _Fail(87012)
        now = self.clock()
        day = datetime.fromtimestamp(now, BEIJING).date()
        month = self._month(now)
        today = sum(1 for t in program.undos if datetime.fromtimestamp(t, BEIJING).date() == day)
        this_month = sum(1 for t in program.undos if self._month(t) == month)
        if today >= UNDO_PER_DAY or this_month >= UNDO_PER_MONTH:
            raise _Fail(87013)
        audit.withdrawn_at = now
        program.undos = [t for t in program.undos if self._month(t) == month] + [now]
        return _ok()

    def _speedupaudit(self, call: _Call) -> dict[str, Any]:
        program = self._program(call)
        if "auditid" not in call.body:
            raise _Fail(47001)
        auditid = as_int(call.body["auditid"])
        audit = program.audit(auditid) if auditid is not None else None
        if audit is None or self._status(audit)[0] not in (2, 4):
            raise _Fail(89402)
        if audit.expedited:
            raise _Fail(89404)
        if self._speedup_rest() <= 0:
            raise _Fail(89405)
        month = self._month(self.clock())
        self.speedup_used[month] = self.speedup_used.get(month, 0) + 1
        audit.expedited = True
        return _ok()

    def _queryquota(self, call: _Call) -> dict[str, Any]:
        return _ok(
            rest=self._quota_rest(),
            limit=self.quota_limit,
            speedup_rest=self._speedup_rest(),
            speedup_limit=self.speedup_limit,
        )
