"""Releases: release, gray release and its plan, rollback to a kept release, and the
version info that shows the live and trial versions.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from platforms.emulators.wechat.errors import _Fail, _ok
from platforms.emulators.wechat.state import WeChatState, _Call, _Gray, _Program
from platforms.wechat.reading import as_int

__all__ = ["ReleaseApis"]


class ReleaseApis(WeChatState):
    """release, grayrelease, getgrayreleaseplan, revertgrayrelease, revertcoderelease,
    getversioninfo."""

    def _release(self, call: _Call) -> dict[str, Any]:
        program = self._program(call)
        if not program.audits:
            raise _Fail(85019)
        audit = program.audits[-1]
        if self._status(audit)[0] != 0:
            raise _Fail(85020)
        if audit.released or (self.release_refused_while_gray and program.gray_running()):
            raise _Fail(85052)
        # released to everyone: a running staged release is finished
        program.make_live(audit, self.clock(), self.next_app_version)
        self.next_app_version += 1
        return _ok()

    def _grayrelease(self, call: _Call) -> dict[str, Any]:
        program, body = self._program(call), call.body
        percent = body.get("gray_percentage")
        if isinstance(percent, bool) or not isinstance(percent, int) or not 0 <= percent <= 100:
            raise _Fail(85081)
        first = bool(body.get("support_debuger_first")) or bool(
            body.get("support_experiencer_first")
        )
        if percent == 0 and not first:
            raise _Fail(85081)
        if program.release is None:
            raise _Fail(85079)
        audit = program.audits[-1] if program.audits else None
        if audit is None or audit.released or self._status(audit)[0] != 0:
            raise _Fail(85080)
        gray = program.gray
        if gray is not None and gray.status == 1 and gray.auditid == audit.auditid:
            if percent <= gray.percentage:
                raise _Fail(85082)
            gray.percentage = percent
            gray.debuger_first = gray.debuger_first or bool(body.get("support_debuger_first"))
            gray.experiencer_first = gray.experiencer_first or bool(
                body.get("support_experiencer_first")
            )
            if percent == 100 and self.release_refused_while_gray:  # reading B: that is all
                program.make_live(audit, self.clock(), self.next_app_version)
                self.next_app_version += 1
                return _ok()
            program.exposed(self.clock())
            return _ok()
        program.gray = _Gray(
            auditid=audit.auditid,
            percentage=percent,
            created_at=self.clock(),
            debuger_first=bool(body.get("support_debuger_first")),
            experiencer_first=bool(body.get("support_experiencer_first")),
        )
        program.exposed(self.clock())
        return _ok()

    def _getgrayreleaseplan(self, call: _Call) -> dict[str, Any]:
        gray = self._program(call).gray
        if gray is None:
            plan: dict[str, Any] = {"status": 0, "create_timestamp": 0, "gray_percentage": 0}
        else:
            plan = {
                "status": gray.status,
                "create_timestamp": int(gray.created_at),
                "gray_percentage": gray.percentage,
                "support_experiencer_first": gray.experiencer_first,
                "support_debuger_first": gray.debuger_first,
            }
        return _ok(gray_release_plan=plan)

    def _revertgrayrelease(self, call: _Call) -> dict[str, Any]:
        program = self._program(call)
        if program.gray is not None and program.gray.status == 1:
            program.gray.status = 4  # deleted: its users go back to the live version
            program.exposed(self.clock())
        return _ok()

    def _revertcoderelease(self, call: _Call) -> dict[str, Any]:
        program = self._program(call)
        if call.query.get("action") == "get_history_version":
            return self._history_version(program)
        if "action" in call.query:
            raise _Fail(40097)
        if program.gray_running():
            raise _Fail(87011)
        live = program.release
        if live is None or program.rolled_back:
            raise _Fail(87012)
        earlier = [r for r in program.history if r.app_version < live.app_version]
        wanted = call.query.get("app_version")
        if wanted is None:
            target = earlier[-1] if earlier else None
        else:
            number = as_int(wanted)
            if number is None:
                raise _Fail(40097)
            target = next((r for r in earlier if r.app_version == number), None)
        if target is None:
            raise _Fail(87012)
        program.release = replace(target, released_at=self.clock())
        program.rolled_back = True
        program.exposed(self.clock())
        return _ok()

    def _history_version(self, program: _Program) -> dict[str, Any]:
        """get_history_version: the kept releases, oldest first; none while the live version
        is a rollback, unless :attr:`rollback_keeps_history` (the two readings, see there)."""
        if program.rolled_back and not self.rollback_keeps_history:
            return _ok(version_list=[])
        return _ok(
            version_list=[
                {
                    "commit_time": int(r.commit_time),
                    "user_version": r.version,
                    "user_desc": r.desc,
                    "app_version": r.app_version,
                }
                for r in program.history
            ]
        )

    def _getversioninfo(self, call: _Call) -> dict[str, Any]:
        program = self._program(call)
        answer = _ok()
        if program.commit is not None:
            answer["exp_info"] = {
                "exp_time": int(program.commit.committed_at),
                "exp_version": program.commit.user_version,
                "exp_desc": program.commit.user_desc,
            }
        if program.release is not None:
            answer["release_info"] = {
                "release_time": int(program.release.released_at),
                "release_version": program.release.version,
                "release_desc": program.release.desc,
            }
        return answer
