"""Getting a version reviewed: upload, the trial QR code, submit, expedite, withdraw, and
the platform quotas those spend."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

from handlers import policy
from handlers.config import AppEntry
from handlers.releases.core import Step, attempt, explain, join
from handlers.releases.known import VersionCheck, VersionGuard
from handlers.releases.results import ActionResult, Actor, CommandRefused, PlatformResult
from platforms.base import BEIJING, Quota
from platforms.errors import ConfigError, PlatformError, Unsupported
from storage import ActionTaken, TargetExists, TimedState
from storage.models import ReleaseTarget, utcnow

__all__ = ["ReviewActions"]

log = logging.getLogger(__name__)

QUOTA_FRESH = timedelta(minutes=1)
"""How long a card trusts a quota it read (a spent quota is refused at use anyway)."""

_QUOTA_NEXT = {
    "submit": "the quota is the third-party platform's, shared by every mini program it "
    "runs; it renews on the 1st (Beijing time) — ask WeChat for more in the "
    "“小程序服务商助手” mini program.",
    "expedite": "submit without expediting, or wait for next month's allocation.",
    "withdraw": "the version stays in review; WeChat allows 5 withdrawals a day and 10 a "
    "month per mini program.",
}


class ReviewActions(VersionGuard):
    async def upload(
        self,
        actor: Actor,
        app_key: str,
        chosen: Sequence[str],
        version: str,
        notes: str,
        template: str | None = None,
        checked: VersionCheck | None = None,
        trial_code: bool = True,
        code: Path | None = None,
    ) -> ActionResult:
        """Upload ``version``; ``checked``: the version check made for this very command a
        moment ago (its question), so the platforms are not asked twice; ``trial_code``:
        fetch the trial version's QR code (a fleet run over hundreds of apps does not);
        ``code``: the build to upload for an app owned directly (a CI job's archive)."""
        app = self.app(app_key)
        names = self.platforms_for(app, chosen)
        check = checked or await self.check_upload(app, names, version)
        if check.refusal:
            return await self.refuse(actor, "upload", app, version, check.refusal)
        release = await self.store.ensure_release(app.key, version, notes, actor.id)
        step = Step(self, actor, "upload", app, release)
        result = await self.fan_out(
            step, names, lambda one: self._upload(one, template, trial_code, code)
        )
        return dataclasses.replace(result, notes=(*result.notes, *check.notes()))

    async def submit(
        self,
        actor: Actor,
        app_key: str,
        chosen: Sequence[str],
        version: str,
        expedite: bool = False,
    ) -> ActionResult:
        step, names = await self.step(actor, "submit", app_key, chosen, version)
        return await self.fan_out(step, names, lambda one: self._submit(one, expedite))

    async def expedite(
        self, actor: Actor, app_key: str, chosen: Sequence[str], version: str
    ) -> ActionResult:
        step, names = await self.step(actor, "expedite", app_key, chosen, version)
        return await self.fan_out(step, names, self._expedite)

    async def withdraw(
        self, actor: Actor, app_key: str, chosen: Sequence[str], version: str
    ) -> ActionResult:
        step, names = await self.step(actor, "withdraw", app_key, chosen, version)
        return await self.fan_out(step, names, self._withdraw)

    async def trial_code(
        self, actor: Actor, app_key: str, chosen: Sequence[str], version: str | None
    ) -> ActionResult:
        """The trial version's QR code on each platform (default: the newest upload)."""
        app = self.app(app_key)
        names = self.platforms_for(app, chosen)
        if version is None:
            views = [v for v in await self.store.latest(app.key, 1) if v.target.platform in names]
            if not views:
                raise CommandRefused(f"nothing of {app.key} was uploaded yet")
            version = views[0].release.version
        step = Step(self, actor, "qr", app, await self.release_of(app, version))
        return await self.fan_out(step, names, self._qr)

    async def _upload(
        self, step: Step, template: str | None, trial_code: bool, build: Path | None = None
    ) -> PlatformResult:
        release = step.release
        existing = await step.target()
        if existing is not None:
            now = policy.words(existing.state)
            state = "" if now == "uploaded" else f" (now {now})"
            return await step.refuse(
                f"{release.version} is already uploaded{state}; upload a new version instead"
            )
        adapter = step.adapter
        answer, exchanges = await attempt(
            adapter.upload(
                step.app.key, release.version, release.notes, template=template, code=build
            )
        )
        if isinstance(answer, Exception):
            return await step.failed(answer, exchanges)
        try:
            await self.store.add_target(release, step.platform, detail=answer.detail)
        except TargetExists as exc:
            return await step.refuse(
                f"{release.version} was uploaded meanwhile and is {policy.words(exc.current.state)}"
            )
        message = join("uploaded", answer.detail)
        if adapter.single_trial_version:  # the platform no longer holds older uploads
            message += await self.supersede(step)
        if not trial_code:
            return await step.ok(message, exchanges)
        code, more = await attempt(adapter.trial_code(step.app.key, release.version))
        if isinstance(code, Unsupported):
            return await step.ok(message, exchanges + more)
        if isinstance(code, Exception):
            message += f"; no trial QR code: {explain(code)} (try `qr {step.app.key}` later)"
            return await step.ok(message, exchanges + more)
        return dataclasses.replace(await step.ok(message, exchanges + more), image=code)

    async def _qr(self, step: Step) -> PlatformResult:
        target = await step.uploaded()
        if isinstance(target, PlatformResult):
            return target
        code, exchanges = await attempt(step.adapter.trial_code(step.app.key, step.release.version))
        if isinstance(code, Exception):
            return await step.failed(code, exchanges)
        result = await step.ok(join("trial version QR code", code.detail), exchanges)
        return dataclasses.replace(result, image=code)

    async def _submit(self, step: Step, expedite: bool) -> PlatformResult:
        ready = await self._ready(step)
        if isinstance(ready, PlatformResult):
            return ready
        target, left = ready
        answer, exchanges = await attempt(
            step.adapter.submit(
                step.app.key, step.release.version, step.release.notes, expedite=expedite
            )
        )
        if isinstance(answer, Exception):
            return await step.failed(answer, exchanges)
        moved = await self.settle(
            target, policy.AFTER["submit"], platform_ref=answer.ref, detail=answer.detail
        )
        if isinstance(moved, Exception):
            return await step.failed(moved, exchanges)
        message = join("submitted for review", answer.detail) + left
        message += await self.supersede(step)
        return await step.ok(message, exchanges)

    async def _expedite(self, step: Step) -> PlatformResult:
        if not step.adapter.offers("expedite"):  # only with the submission
            app, version = step.app.key, step.release.version
            return await step.refuse(
                f"{step.adapter.display_name} speeds a review up only when it is submitted: "
                f"`submit {app} {step.platform} {version} --expedite` (withdraw it first if "
                "it is in review)"
            )
        ready = await self._ready(step)
        if isinstance(ready, PlatformResult):
            return ready
        target, left = ready
        answer, exchanges = await attempt(
            step.adapter.expedite(step.app.key, step.release.version, target.platform_ref)
        )
        if isinstance(answer, Exception):
            return await step.failed(answer, exchanges)
        return await step.ok(join("expedited review requested", answer) + left, exchanges)

    async def _withdraw(self, step: Step) -> PlatformResult:
        ready = await self._ready(step)
        if isinstance(ready, PlatformResult):
            return ready
        target, left = ready
        answer, exchanges = await attempt(
            step.adapter.withdraw(step.app.key, step.release.version, target.platform_ref)
        )
        if isinstance(answer, Exception):
            return await step.failed(answer, exchanges)
        moved = await self.settle(target, policy.AFTER["withdraw"], detail=answer)
        if isinstance(moved, Exception):
            return await step.failed(moved, exchanges)
        pending = policy.pending_review(target.state)
        head = "withdrawn from review" if pending else "back to development"
        cancelled = await self._cancel_timed(step, f"{step.release.version} was withdrawn")
        return await step.ok(join(head, answer) + left + cancelled, exchanges)

    async def _cancel_timed(self, step: Step, why: str) -> str:
        """Cancel the pending timed releases of ``step``'s release on its platform; the
        words for the reply."""
        assert step.release.id is not None
        done: list[str] = []
        for action in await self.store.timed_actions(release_id=step.release.id):
            if step.platform not in action.platforms:
                continue
            with contextlib.suppress(ActionTaken):  # it fired or was cancelled meanwhile
                await self.store.move_timed(action, TimedState.CANCELLED, f"cancelled: {why}")
                done.append(f"#{action.id}")
                for hear in self.timed_cancelled:
                    hear(action.id or 0)
                await self.store.record(
                    actor=step.actor.id,
                    action="schedule",
                    outcome="ok",
                    app=step.app.key,
                    release=step.release,
                    platform=step.platform,
                    message=f"timed release #{action.id} cancelled: {why}",
                )
        if not done:
            return ""
        return f"; timed release {', '.join(done)} cancelled (nothing will be published then)"

    async def _ready(self, step: Step) -> tuple[ReleaseTarget, str] | PlatformResult:
        """The release on this platform, if the policy lets ``step.action`` start from its
        state, and the words on the quota it uses — or the refusal."""
        target = await step.allowed()
        if isinstance(target, PlatformResult):
            return target
        left = await self._within_quota(step)
        if isinstance(left, PlatformResult):
            return left
        return target, left

    # -- quotas ---------------------------------------------------------------------------

    async def quotas(self, app: AppEntry, platform: str) -> list[Quota]:
        """The platform's limits for ``app``, with the ones it cannot report counted here
        (successful actions in miniship's event log since the period began, Beijing time)."""
        found = await self.adapters[platform].quotas(app.key)
        out: list[Quota] = []
        for q in found:
            if q.counted_here and q.limit is not None:
                used = await self.store.count_events(
                    app.key, platform, q.action, _period_start(q.period, utcnow())
                )
                q = dataclasses.replace(q, remaining=max(q.limit - used, 0))
            out.append(q)
        return out

    def quota_actions(self, platform: str) -> frozenset[str]:
        """The actions ``platform`` limits (a card asks about those before offering them)."""
        adapter = self.adapters.get(platform)
        return adapter.quota_actions if adapter is not None else frozenset()

    async def spent_quotas(self, app: AppEntry, platform: str) -> list[Quota]:
        """The quotas of ``app`` on ``platform`` that are spent, for a card deciding what to
        offer: read at most once per :data:`QUOTA_FRESH`; a platform that cannot be asked
        spends nothing (the action itself still checks before it calls)."""
        if not self.quota_actions(platform):
            return []
        now = utcnow()
        seen = self._quotas_seen.get((app.key, platform))
        if seen is None or now - seen[0] >= QUOTA_FRESH:
            try:
                found = await self.quotas(app, platform)
            except (PlatformError, ConfigError) as exc:
                log.warning("quotas of %s on %s unknown: %s", app.key, platform, exc)
                found = []
            seen = (now, found)
            self._quotas_seen[(app.key, platform)] = seen
        return [q for q in seen[1] if q.spent]

    async def _within_quota(self, step: Step) -> str | PlatformResult:
        """Words on what is left of ``step.action``'s quotas, or the refusal when one is
        spent.

        A platform that cannot be asked does not stop the action: the platform itself
        still refuses it when its quota is spent.
        """
        action = step.action
        try:
            quotas = [q for q in await self.quotas(step.app, step.platform) if q.action == action]
        except (PlatformError, ConfigError) as exc:
            log.warning("quotas of %s on %s unknown: %s", step.app.key, step.platform, exc)
            return ""
        spent = [q for q in quotas if q.spent]
        if spent:
            return await step.refuse(f"{spent_words(spent[0])}; " + _QUOTA_NEXT.get(action, ""))
        # said once the action succeeded, so what is left after it
        after = [
            dataclasses.replace(q, remaining=q.remaining - 1)
            for q in quotas
            if q.remaining is not None
        ]
        return f" ({'; '.join(map(_quota_words, after))})" if after else ""


def spent_words(q: Quota) -> str:
    """ "no expedited reviews this month left (0 of 10 …)": a spent quota, for people."""
    return f"no {q.what} left ({_quota_words(q)})"


def _quota_words(q: Quota) -> str:
    if q.limit is None:
        return f"{q.remaining} {q.what} left"
    return f"{q.remaining} of {q.limit} {q.what} left"


def _period_start(period: str, now: datetime) -> datetime:
    """The start (aware UTC) of the Beijing day or month ``now`` falls in."""
    local = now.astimezone(BEIJING).replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "month":
        local = local.replace(day=1)
    return local.astimezone(now.tzinfo)
