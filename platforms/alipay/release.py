"""Releasing an approved version: publish, gray release and its end, rollback and
offline.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any, NamedTuple

from platforms.alipay.api import GRAY_CANCEL, GRAY_ONLINE, OFFLINE, ONLINE, ROLLBACK
from platforms.alipay.reading import (
    ALL_STATUSES,
    _decided_at,
    _gray_percent,
    _publishable,
    version_key,
)
from platforms.alipay.versions import AlipayVersions
from platforms.errors import BadResponse, InvalidInput, InvalidState

__all__ = ["AlipayRelease"]


LIST_CAP = 20  # list.query returns at most the latest 20 versions (fact sheet §3.12)


class _Rollback(NamedTuple):
    """What a rollback of the live version would do, as far as miniship can tell."""

    target: str | None  # the version it would bring back (INFERRED, see _rollback_target)
    blocked: tuple[str, str] | None  # (Alipay's sub_code, why) when it cannot happen now
    certain: bool  # False when the target rests on missing facts


class AlipayRelease(AlipayVersions):
    """``publish``, ``gray``, ``stop_gray``, ``rollback`` and ``offline``."""

    async def publish(self, app: str, version: str, ref: str) -> str:
        """Put the approved (or gray) ``version`` online for everyone; a lost answer is
        checked, never repeated."""
        said = await self._gated_change(app, version, ONLINE, f"published {version}; it is live")
        self._gray_shares.pop((app, version), None)
        return said

    async def gray(self, app: str, version: str, percent: int) -> str:
        """Release the approved ``version`` to 10, 30 or 50 % of users (``gray.online``).

        The share can only grow; ``publish`` then releases it to everyone. A smaller share
        than the current one is refused, and the same share is not sent again.
        """
        if percent not in (self.gray_steps or ()):
            raise InvalidInput(
                self.name,
                "",
                "",
                f"Alipay releases to 10, 30 or 50 percent of users (p10, p30, p50), not {percent}.",
            )
        status, detail = await self._status(app, version)
        if not _publishable(status, detail):
            raise self._refuse(
                version, status, "only an approved version can be released to a share of users."
            )
        strategy = f"p{percent}"
        before = self._gray_plan(app, version, detail).percent if status == "GRAY" else None
        if before is not None and percent < before:
            raise InvalidState(
                self.name,
                "GRAY_STRATEGY_NOT_ALLOW_REDUCE",
                "",
                f"{version} is released to {before}% of users (p{before}), and a gray release "
                "can only grow (p10 → p30 → p50): choose a larger share, or publish it to "
                "release it to everyone.",
            )
        if before == percent:
            return f"{version} is already released to {percent}% of users ({strategy})"

        async def staged() -> bool:
            now = await self._detail(app, version)
            if now.get("status") != "GRAY":
                return False
            shown = _gray_percent(now.get("gray_strategy"))
            if shown is None and status == "GRAY":  # it was gray before: the share tells
                raise BadResponse(self.name, "", "", "Alipay does not say the gray share.")
            return shown in (None, percent)

        params = {**self._version_params(app, version), "gray_strategy": strategy}
        answer = await self._change(app, GRAY_ONLINE, params, f"gray release at {strategy}", staged)
        self._gray_shares[app, version] = percent
        return self._said(f"{version} is released to {percent}% of users ({strategy})", answer)

    async def stop_gray(self, app: str, version: str) -> str:
        """End the gray release of ``version`` (``gray.cancel``): it is approved again."""
        text = (
            f"ended the gray release of {version}; everyone has the live version again and "
            f"{version} waits to be published"
        )
        said = await self._gated_change(app, version, GRAY_CANCEL, text)
        self._gray_shares.pop((app, version), None)
        return said

    async def _rollback_target(
        self, app: str, infos: list[dict[str, Any]], live: str | None
    ) -> _Rollback:
        """The version a rollback of ``live`` would bring back, and whether it cannot now.

        Alipay goes back to the previous online version (fact sheet §3.8). INFERRED from
        §2.2: a release or rollback takes the version it replaces offline, so that is the
        OFFLINE version below ``live`` that went offline last (``gmt_offline``); an OFFLINE
        version above ``live`` means ``live`` came back by a rollback, and Alipay refuses
        two rollbacks in a row. Not ``certain`` when ``gmt_offline`` is missing or the list
        may be cut short (list.query gives at most 20 versions).
        """
        if live is None:
            return _Rollback(None, ("CAN_NOT_ROLLBACK_WITHOUT_ONLINE", "nothing is live"), True)
        key = version_key(live)
        offline = [str(i.get("app_version")) for i in infos if i.get("version_status") == "OFFLINE"]
        below = [v for v in offline if version_key(v) < key]
        blocked: tuple[str, str] | None = None
        if any(i.get("version_status") == "GRAY" for i in infos):
            blocked = (
                "CAN_NOT_ROLLBACK_WITH_GRAY",
                "a version is in gray release; end it (`gray … stop`) or publish it first",
            )
        elif any(version_key(v) > key for v in offline):
            blocked = (
                "CAN_NOT_CONTINUOUS_ROLLBACK",
                f"{live} came back by a rollback, and Alipay does not roll back twice in a row; "
                "publish a new version instead",
            )
        whole = len(infos) < LIST_CAP
        if len(below) <= 1:
            return _Rollback(below[0] if below else None, blocked, whole)
        details = await asyncio.gather(*(self._detail(app, v) for v in below))
        went = [_decided_at(detail.get("gmt_offline")) for detail in details]
        floor = datetime.min.replace(tzinfo=UTC)
        latest, _ = max(
            zip(below, went, strict=True),
            key=lambda pair: (pair[1] or floor, version_key(pair[0])),
        )
        return _Rollback(latest, blocked, whole and None not in went)

    async def rollback(self, app: str, live: str, to: str | None) -> str:
        """Take the app from ``live`` back to the previous online version (``rollback``).

        Alipay picks the version itself; a ``to`` that is surely not it is refused, naming
        it (when miniship cannot be sure, the rollback is sent and Alipay decides). Never
        retried blindly: after an unclear answer Alipay is asked which version is live.
        """
        status, _ = await self._status(app, live)
        if status != "RELEASE":
            raise self._refuse(live, status, "only the live version can be rolled back.")
        infos = await self._listed(app, ALL_STATUSES)
        plan = await self._rollback_target(app, infos, live)
        if plan.blocked is not None:
            code, why = plan.blocked
            raise InvalidState(self.name, code, "", f"{live} cannot be rolled back now: {why}.")
        if to is not None and to != plan.target and plan.certain:
            back = f"the previous release, {plan.target}" if plan.target else "no earlier release"
            raise InvalidInput(
                self.name,
                "",
                "",
                f"Alipay rolls {live} back to the version that was live before it, and only "
                f"that; here that is {back}, not {to}.",
            )

        async def moved() -> bool:
            online = await self._listed(app, "RELEASE")
            return bool(online) and all(i.get("app_version") != live for i in online)

        params = self._version_params(app, live)
        answer = await self._change(app, ROLLBACK, params, f"rollback of {live}", moved)
        back = (
            plan.target
            if plan.certain and plan.target
            else "the version live before it (Alipay picks it; `versions` shows which)"
        )
        return self._said(f"rolled back from {live} to {back}; {live} is offline", answer)

    async def offline(self, app: str, version: str) -> str:
        """Take the live ``version`` off the shelves (``version.offline``)."""
        text = f"{version} taken offline: users can no longer open the mini program"
        return await self._gated_change(app, version, OFFLINE, text)
