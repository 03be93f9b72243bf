"""Reading and changing one version: what every operation is built from.

A change is sent once and, after an unclear answer, confirmed by reading the version's
status again; :data:`GATES` says which statuses allow the changes that only need that.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, NamedTuple, TypeVar

from platforms.alipay.api import (
    AUDITED_CANCEL,
    DETAIL_QUERY,
    GRAY_CANCEL,
    LIST_QUERY,
    OFFLINE,
    ONLINE,
)
from platforms.alipay.reading import (
    APPROVED,
    PROMOTE_REJECT,
    REVIEW_STATUSES,
    _decided_at,
    _gray_percent,
    _publishable,
    _status_words,
    version_key,
)
from platforms.alipay.wire import AlipayWire
from platforms.base import GrayPlan
from platforms.errors import (
    InvalidInput,
    InvalidState,
    NotFound,
    OutcomeUnknown,
    PlatformError,
    PlatformUnavailable,
)

__all__ = ["BUILD_FAILED", "CONFIRMED", "GATES", "SUPERSEDED", "AlipayVersions"]

_T = TypeVar("_T")


CONFIRMED = "confirmed with Alipay after an unclear answer"

CLOCK_SKEW_SECONDS = 300.0
"""How far Alipay's clock (``gmt_*`` fields) may be from ours when telling a submission just
sent from an older one of the same version."""

BUILD_FAILED = {"3": "failed", "5": "timed out"}  # build_status / create_status codes

SUPERSEDED = {
    "AUDIT_REJECT": "rejected",
    **dict.fromkeys(APPROVED, "approved but not published"),
}
"""Decided reviews that block every submission (fact sheet §2.2) and that a new submission
of *another* version supersedes: their version goes back to development
(``audited.cancel``) first. An approved version itself is never submitted again that way."""


class _Gate(NamedTuple):
    """A change only some states allow (see ``AlipayPlatform._gated_change``)."""

    allowed: Callable[[str, Mapping[str, Any]], bool]  # (status, detail.query's answer)
    why: str  # for people, when the state does not allow it
    what: str  # the change, for people
    shows: tuple[str, ...]  # the statuses that show it happened


GATES = {
    ONLINE: _Gate(
        _publishable,
        "only an approved version that Alipay allows to go online can be published.",
        "release",
        ("RELEASE",),
    ),
    GRAY_CANCEL: _Gate(
        lambda status, _: status == "GRAY",
        "there is no gray release to end.",
        "end of the gray release",
        APPROVED,
    ),
    OFFLINE: _Gate(
        lambda status, _: status == "RELEASE",
        "only the live version can be taken offline.",
        "offline",
        ("OFFLINE",),
    ),
}


class AlipayVersions(AlipayWire):
    """Reads and changes of versions, shared by the operations. The state below is set by
    :class:`AlipayPlatform`'s constructor."""

    _gray_shares: dict[tuple[str, str], int]  # the share gray() last set
    _lists_promote_reject: bool  # list.query takes PROMOTE_AUDIT_REJECT (UNCERTAIN)

    def _version_params(self, app: str, version: str) -> dict[str, str]:
        """What almost every version method takes: the version and the app's bundle."""
        return {"app_version": version, "bundle_id": self._config(app).bundle_id}

    async def _detail(self, app: str, version: str) -> dict[str, Any]:
        return await self._call(app, DETAIL_QUERY, self._version_params(app, version), read=True)

    async def _listed(self, app: str, statuses: str) -> list[dict[str, Any]]:
        """``list.query`` for ``statuses`` (comma-separated): version infos, newest first.

        PROMOTE_AUDIT_REJECT may not be a status Alipay knows (UNCERTAIN): when Alipay
        refuses a list that names it, the list is asked again (and from then on) without.
        """
        cfg = self._config(app)

        async def ask(wanted: str) -> dict[str, Any]:
            params = {"bundle_id": cfg.bundle_id, "version_status": wanted}
            return await self._call(app, LIST_QUERY, params, read=True)

        plain = ",".join(s for s in statuses.split(",") if s != PROMOTE_REJECT)
        if not self._lists_promote_reject or plain == statuses:
            answer = await ask(plain)
        else:
            try:
                answer = await ask(statuses)
            except InvalidInput:
                self._lists_promote_reject = False
                answer = await ask(plain)
        infos = [i for i in answer.get("app_version_infos") or [] if isinstance(i, dict)]
        infos.sort(key=lambda i: version_key(str(i.get("app_version", ""))), reverse=True)
        return infos

    def _shows(self, app: str, version: str, *statuses: str) -> Callable[[], Awaitable[bool]]:
        """A check for :meth:`confirm_change`: ``version`` now has one of ``statuses``."""

        async def check() -> bool:
            return str((await self._detail(app, version)).get("status", "")) in statuses

        return check

    def _submitted(self, app: str, version: str, sent: float) -> Callable[[], Awaitable[bool]]:
        """A check for :meth:`confirm_change` after a submission sent at ``sent``.

        Any status but development counts, as the review may already be decided (Alipay's
        machine checks reject fast). When Alipay says when the version was submitted
        (``gmt_apply_audit``), an older submission of the same version does not count.
        """

        async def check() -> bool:
            detail = await self._detail(app, version)
            if str(detail.get("status", "")) in ("", "INIT"):
                return False
            applied = _decided_at(detail.get("gmt_apply_audit"))
            return applied is None or applied.timestamp() >= sent - CLOCK_SKEW_SECONDS

        return check

    async def _exists(self, read: Callable[[], Awaitable[object]], wait: float) -> bool:
        """Whether ``read`` finds what it asks for. A version Alipay does not know may still
        be queued or building, so NotFound is asked again for up to ``wait`` seconds."""

        async def found(_: float) -> bool | None:
            try:
                await read()
            except NotFound:
                return None
            return True

        seen, _ = await self._poll(found, wait)
        return bool(seen)

    async def _poll(
        self, check: Callable[[float], Awaitable[_T | None]], limit: float
    ) -> tuple[_T | None, float]:
        """Run ``check(seconds waited)`` every ``poll_seconds`` until it returns something
        other than ``None``, for at most ``limit`` seconds: ``(what it returned, or None
        when the time ran out; seconds waited)``."""
        waited = 0.0
        while True:
            result = await check(waited)
            if result is not None or waited >= limit:
                return result, waited
            pause = min(self.settings.poll_seconds, limit - waited)
            await self.sleep(pause)
            waited += pause

    async def _change(
        self,
        app: str,
        method: str,
        params: Mapping[str, str],
        what: str,
        done: Callable[[], Awaitable[bool]],
        **options: Any,
    ) -> dict[str, Any] | None:
        """Send one change; when its answer is unclear, ask Alipay whether it happened.

        ``done`` asks Alipay whether the change (``what``, for people) shows. Returns the
        answer, or ``None`` when the answer was lost but Alipay shows the change; raises as
        :meth:`confirm_change` does when it does not show or Alipay could not be asked.
        """
        try:
            return await self._call(app, method, params, **options)
        except OutcomeUnknown as unclear:
            await self.confirm_change(unclear, what, done)
            return None

    @staticmethod
    def _said(text: str, answer: Mapping[str, Any] | None) -> str:
        """``text`` for people, saying so when the change was confirmed after a lost answer."""
        return f"{text} ({CONFIRMED})" if answer is None else text

    async def _gated_change(self, app: str, version: str, method: str, text: str) -> str:
        """Read ``version``'s status, refuse unless its :data:`GATES` entry allows
        ``method``, send it and confirm it when the answer is lost; ``text`` for people."""
        gate = GATES[method]
        status, detail = await self._status(app, version)
        if not gate.allowed(status, detail):
            raise self._refuse(version, status, gate.why)
        params = self._version_params(app, version)
        shows = self._shows(app, version, *gate.shows)
        return self._said(text, await self._change(app, method, params, gate.what, shows))

    async def _status(self, app: str, version: str) -> tuple[str, dict[str, Any]]:
        detail = await self._detail(app, version)
        return str(detail.get("status", "")), detail

    def _refuse(self, version: str, status: str, why: str) -> InvalidState:
        return InvalidState(
            self.name, status, "", f"version {version} is {_status_words(status)}; {why}"
        )

    async def _back_to_development(self, app: str, version: str) -> dict[str, Any] | None:
        """Send a rejected or approved ``version`` back to development (``audited.cancel``).

        Returns Alipay's answer, ``None`` when that was confirmed after an unclear one.
        """
        what = f"return of {version} to development"
        params = self._version_params(app, version)
        return await self._change(
            app, AUDITED_CANCEL, params, what, self._shows(app, version, "INIT")
        )

    async def _clear_the_way(self, app: str, version: str, refused: PlatformError) -> list[str]:
        """Send back to development the decided versions that keep ``version`` from review.

        Alipay refuses every submission while a version is rejected or approved but not
        published (fact sheet §2.2), and submits only versions in development. A new
        submission supersedes such a decision of *another* version, as on WeChat: that
        version goes back to development. ``version`` itself, when approved, is refused
        (publish it, or withdraw it first); when rejected, it goes back too. Raises
        ``refused`` when a version in review or gray release blocks, when ``version``
        cannot be submitted anyway, or when nothing can be cleared. Returns a line per
        version sent back.
        """
        infos = await self._listed(app, ",".join(REVIEW_STATUSES))
        statuses = {
            str(info.get("app_version", "")): str(info.get("version_status", "")) for info in infos
        }
        own = statuses.get(version)
        if own in APPROVED:
            raise self._refuse(
                version, own, "it is already approved; publish it, or withdraw it first."
            )
        blocking = {v: s for v, s in statuses.items() if s in SUPERSEDED}
        if not blocking or any(s not in SUPERSEDED for s in statuses.values()):
            raise refused  # nothing to clear, or a review or gray release is running
        if own is None:  # then it must be in development to be submitted
            status, _ = await self._status(app, version)
            if status != "INIT":
                raise refused  # live, offline …: clearing the way would not help
        lines = []
        for other in sorted(blocking, key=version_key):
            try:
                await self._back_to_development(app, other)
            except OutcomeUnknown as still:  # the submission itself was never sent
                raise PlatformUnavailable(
                    still.platform,
                    still.code,
                    still.platform_message,
                    f"{still.explanation} Nothing was submitted for review.",
                ) from None
            lines.append(f"{other} ({SUPERSEDED[blocking[other]]}) went back to development")
        return lines

    def _gray_plan(self, app: str, version: str, detail: Mapping[str, Any]) -> GrayPlan:
        """The gray release of ``version`` as ``detail.query`` shows it. When Alipay leaves
        the share out, it is the one this adapter set (while it runs), else unknown."""
        percent = _gray_percent(detail.get("gray_strategy"))
        if percent is not None:
            return GrayPlan(percent=percent, version=version)
        remembered = self._gray_shares.get((app, version))
        if remembered is None:
            return GrayPlan(percent=None, version=version)
        return GrayPlan(
            percent=remembered,
            version=version,
            state="running; Alipay does not report the share, this is the one miniship set",
        )

    @staticmethod
    def _build_failure(state: Mapping[str, Any]) -> str | None:
        """``"failed"`` or ``"timed out"`` when Alipay says the build did, else ``None``."""
        return BUILD_FAILED.get(str(state.get("build_status", ""))) or BUILD_FAILED.get(
            str(state.get("create_status", ""))
        )
