"""What WeChat shows about a mini program's versions: the reads every operation starts
from (live and trial version, latest review, gray plan, kept releases, quotas) and the
operations that only read (``overview``, ``versions``, ``trial_code``).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Any, TypeVar

from platforms.base import GrayPlan, Overview, ReviewState, ReviewStatus, TrialCode, VersionInfo
from platforms.errors import InvalidInput, NotFound, PlatformError
from platforms.wechat.api import (
    GET_LATEST_AUDITSTATUS,
    GET_QRCODE,
    GRAY_PLAN,
    QUERY_QUOTA,
    REVERT_RELEASE,
    VERSION_INFO,
)
from platforms.wechat.reading import (
    _STATES,
    _VERSION_STATES,
    APPROVED,
    DELAYED,
    REJECTED,
    _Audit,
    _audit_from,
    _gray_from,
    _Info,
    _info_from,
    _Kept,
    _kept_from,
    _rollback_targets,
    _status_words,
    _when,
    as_int,
)
from platforms.wechat.tokens import WeChatTokens

__all__ = ["CONFIRMED", "WeChatVersions"]

T = TypeVar("T")


CONFIRMED = "confirmed with WeChat after an unclear answer"

LISTS_NONE = "WeChat lists no versions to roll back to"
"""Said of the live version when get_history_version lists none (as after a rollback)."""


class WeChatVersions(WeChatTokens):
    """Reads of the versions, shared by the operations. ``_decided`` is set by
    :class:`WeChatPlatform`'s constructor."""

    _decided: dict[int, datetime]  # auditid → when first seen decided

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
        if audit.screenshots:
            detail += f"; screenshots (media ids): {'|'.join(audit.screenshots)}"
        return ReviewStatus(
            state=state,
            version=version or audit.user_version,
            ref=str(audit.auditid),
            reason=audit.reason if audit.status in (REJECTED, DELAYED) else "",
            decided_at=self._decided_at(audit.auditid) if decided else None,
            detail=detail,
            screenshots=audit.screenshots,
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

    def _number(self, what: str, value: str) -> int:
        if not re.fullmatch(r"\d{1,18}", value.strip()):
            raise self._refused(
                f"{value!r} is not a WeChat {what} (a number, as `templates` lists).", InvalidInput
            )
        return int(value)

    # -- what WeChat shows -------------------------------------------------------------

    async def live_version(self, app: str) -> str | None:
        """The live version alone: one call (getversioninfo), not overview's four."""
        return None if self._config(app).direct else await self._live(app)

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
            desc = info.live_desc
            if not kept:  # say so, rather than let the list read as "there are none"
                desc = " · ".join(filter(None, (LISTS_NONE, desc)))
            out.append(VersionInfo(info.live, "live", _when(info.live_at), desc))
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
