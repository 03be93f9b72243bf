"""Releasing an approved version: publish, gray (staged) release and its end, rollback."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable

from platforms.errors import InvalidInput, InvalidState
from platforms.wechat.api import GRAY_RELEASE, RELEASE, REVERT_GRAY, REVERT_RELEASE
from platforms.wechat.reading import APPROVED, _Audit, _rollback_targets, _status_words
from platforms.wechat.versions import CONFIRMED, WeChatVersions

__all__ = ["WeChatRelease"]


class WeChatRelease(WeChatVersions):
    """``publish``, ``gray``, ``stop_gray`` and ``rollback``."""

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

        During a gray release of the version this releases it to everyone (and ends the
        plan). What ``release`` does to a running plan is UNCERTAIN (fact sheet §2.4): it
        finishes it, as the console's 全量发布 does (reading A), or it answers 85052 because
        the gray version already counts as released (reading B) — then the plan is raised
        to 100 %, which is the full release under that reading.
        """
        self._platform_app(app)
        _, gray = await asyncio.gather(  # both read before the release, side by side
            self._approved(app, version, ref, "published"),
            self._quietly(self._gray_plan(app, version), None),
        )
        done = f" (the gray release at {gray.percent}% is complete)" if gray is not None else ""

        async def live() -> bool:
            return await self._live(app) == version

        release = functools.partial(self._call, app, "POST", RELEASE, {}, read=False)
        try:
            answer = await self._change(release, "release", live)
        except InvalidState as exc:
            if exc.code != "85052":
                raise
            if await self._quietly(live(), False):
                return f"{version} is already live"
            if gray is None:
                raise
            return await self._gray_to_everyone(app, version, gray.percent or 0, live)
        if answer is None:
            return f"published {version}{done} ({CONFIRMED})"
        return f"published {version}: it is live now{done}"

    async def _gray_to_everyone(
        self, app: str, version: str, percent: int, live: Callable[[], Awaitable[bool]]
    ) -> str:
        """Reading B of §2.4: ``release`` refused (85052) a version in gray; raising its
        plan to 100 % is the full release, if WeChat then shows it live."""
        if percent < 100:
            await self.gray(app, version, 100)
        if await live():
            return f"published {version}: its gray release was raised to 100 %, and it is live now"
        raise self._refused(
            f"WeChat refused the full release of {version} (85052: it counts the version in "
            f"gray as released) and, its gray release at 100 %, still does not show it live. "
            "Release it to everyone in WeChat's console (全量发布), or wait for WeChat's own "
            "full release on the plan's 15th day.",
            InvalidState,
        )

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
