"""Going live: publish (all platforms or none, through the publish claim) and the staged
(gray) release."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Mapping, Sequence

from handlers import policy
from handlers.releases.core import Step, attempt, explain, join
from handlers.releases.known import VersionGuard
from handlers.releases.results import (
    ActionResult,
    Actor,
    CommandRefused,
    Outcome,
    PlatformResult,
)
from handlers.releases.watcher import Watcher
from platforms.errors import OutcomeUnknown
from storage import ReleaseState, StaleState
from storage.models import ReleaseTarget

__all__ = ["PublishActions"]


class PublishActions(Watcher, VersionGuard):
    async def publish(
        self,
        actor: Actor,
        app_key: str,
        chosen: Sequence[str],
        version: str,
        *,
        ready: Callable[[], Awaitable[None]] | None = None,
        rollout: int | None = None,
    ) -> ActionResult:
        """Publish on each chosen platform; with several, only if every one is approved.
        Refused on a platform where a staged rollout of the version is under way, unless
        this is that rollout's own step (``rollout``: its id).

        Every platform is claimed (approved → publishing, compare-and-set) before any is
        called, so a publish of several platforms is all or nothing up to the calls.
        ``ready`` is awaited once everything is checked and claimed, right before the
        platforms are called (a timed publish waits there for its time); when it raises
        (a refusal, a cancellation), the claims are given back and nothing is called.
        """
        step, names = await self.step(actor, "publish", app_key, chosen, version)
        rolling = await self._rolling(step, names, "publish", rollout)
        if rolling:
            return await step.refuse_all(rolling)
        async with self.hold(step.app.key, names):
            targets = await self._publishable(step, names)
            if isinstance(targets, ActionResult):
                return targets
            claims = await self._claim(targets)
            if isinstance(claims, str):
                return await step.refuse_all(claims)
            downgrade = await self._downgrade(step, claims)
            if downgrade:
                await self._unclaim(claims, targets)
                return await step.refuse_all(downgrade)
            if ready is not None:
                try:
                    await ready()
                except BaseException:
                    with contextlib.suppress(Exception):  # else settled by whoever takes it up
                        await self._unclaim(claims, targets)
                    raise
            return await self.fan_out(
                step,
                list(claims),
                lambda one: self._publish_claimed(
                    one, claims[one.platform], ReleaseState(targets[one.platform].state)
                ),
                locked=False,  # this method holds the locks already
            )

    async def _publishable(
        self, step: Step, names: Sequence[str]
    ) -> dict[str, ReleaseTarget] | ActionResult:
        """Every platform's release, freshly asked, if each may be published; else the
        refusal (of the whole command when it names several platforms)."""
        version = step.release.version
        targets: dict[str, ReleaseTarget] = {}
        for p in names:
            target = await step.on(p).uploaded()
            if isinstance(target, PlatformResult):
                if len(names) == 1:
                    return ActionResult("publish", step.app, version, [target])
                return await step.refuse_all(
                    f"Nothing published: {version} was never uploaded to "
                    f"{self.display(p)}. Name a platform to publish on one alone."
                )
            targets[p] = await self.fresh(step.release, target)  # decisions not yet seen
        not_ready = {p: t for p, t in targets.items() if not policy.allows("publish", t.state)}
        if not_ready and len(names) > 1:
            ready = [self.display(p) for p in targets if p not in not_ready]
            waiting = "; ".join(
                f"{self.display(p)} is {policy.words(t.state)}" for p, t in not_ready.items()
            )
            text = f"Nothing published: {waiting}."
            if ready:
                alone = " ".join(p for p in targets if p not in not_ready)
                text += (
                    f" {', '.join(ready)} is approved: `publish {step.app.key} {alone} "
                    f"{version}` publishes there alone."
                )
            return await step.refuse_all(text)
        if not_ready:
            ((p, t),) = not_ready.items()
            refused = await step.on(p).refuse(policy.refusal("publish", version, t.state))
            return ActionResult("publish", step.app, version, [refused])
        return targets

    async def _downgrade(self, step: Step, claims: Mapping[str, ReleaseTarget]) -> str:
        """Why publishing would go back to an older version ("" when it would not). Asked
        while holding the claims, so what is live cannot change through miniship meanwhile."""
        version = step.release.version
        for p in claims:
            live = await self.live_above(step.app, step.release, p)
            if live is not None:
                return (
                    f"Nothing published: {version} is older than {live}, which is live on "
                    f"{self.display(p)}; publishing it would go back to an older version. "
                    f"To go back on purpose: `rollback {step.app.key} {p} to {version}`."
                )
        return ""

    async def _unclaim(
        self, claims: Mapping[str, ReleaseTarget], targets: Mapping[str, ReleaseTarget]
    ) -> None:
        """Give the claims back: each release returns to the state it was in."""
        for p, taken in claims.items():
            with contextlib.suppress(StaleState):
                await self.store.transition(taken, ReleaseState(targets[p].state))

    async def _claim(self, targets: Mapping[str, ReleaseTarget]) -> dict[str, ReleaseTarget] | str:
        """Claim every target for publishing, or none (returns why not)."""
        claims: dict[str, ReleaseTarget] = {}
        for p, target in targets.items():
            try:
                claims[p] = await self.store.transition(target, policy.CLAIM)
            except StaleState as exc:
                await self._unclaim(claims, targets)
                return (
                    f"Nothing published: somebody else acted first on {self.display(p)}, "
                    f"where it is now {policy.words(exc.current.state)}."
                )
        return claims

    async def _publish_claimed(
        self, step: Step, claim: ReleaseTarget, before: ReleaseState
    ) -> PlatformResult:
        answer, exchanges = await attempt(
            step.adapter.publish(step.app.key, step.release.version, claim.platform_ref)
        )
        if isinstance(answer, OutcomeUnknown):
            # keep the claim: the watcher asks the platform and settles it
            return await step.record(
                Outcome.FAILED,
                f"{explain(answer)} — miniship could not tell whether it was published; "
                "it will ask the platform and report the outcome",
                exchanges,
            )
        if isinstance(answer, Exception):
            await self.settle(claim, before, detail=str(answer))
            return await step.failed(answer, exchanges)
        moved = await self.settle(claim, policy.AFTER["publish"], detail=answer)
        if isinstance(moved, Exception):
            return await step.failed(moved, exchanges)
        return await step.ok(join("published", answer), exchanges)

    # -- staged release -------------------------------------------------------------------

    async def gray(
        self,
        actor: Actor,
        app_key: str,
        platform: str,
        version: str | None,
        share: int | None,
        *,
        rollout: int | None = None,
    ) -> ActionResult:
        """Release ``version`` (default: the approved or staged one) to ``share`` percent
        of users, or stop its staged release when ``share`` is ``None``; refused while a
        staged rollout of it is under way there, unless this is its own step (``rollout``)."""
        action = "gray stop" if share is None else "gray"
        app = self.app(app_key)
        (p,) = self.platforms_for(app, [platform])
        if version is None:
            wanted = policy.candidates(action)
            views = [
                v
                for v in await self.store.latest(app.key)
                if v.target.platform == p and v.state in wanted
            ]
            if not views:
                what = "in a staged release" if share is None else "approved"
                raise CommandRefused(f"no version of {app.key} is {what} on {self.display(p)}")
            version = views[0].release.version
        step = Step(self, actor, "gray", app, await self.release_of(app, version))
        rolling = await self._rolling(step, [p], action, rollout)
        if rolling:
            return await step.refuse_all(rolling)
        return await self.fan_out(step, [p], lambda one: self._gray(one, action, share, rollout))

    async def _rolling(
        self, step: Step, names: Sequence[str], action: str, rollout: int | None
    ) -> str:
        """Why ``action`` is not a person's to take while a rollout of the release is under
        way on one of ``names`` ("" when it is)."""
        for p in names:
            found = await self.store.rollouts(
                apps=[step.app.key], platform=p, release_id=step.release.id
            )
            for r in found:
                why = policy.rollout_refusal(action, r.state, r.id, step.app.key)
                if why and r.id != rollout:
                    return f"{self.display(p)}: {why}"
        return ""

    async def _gray(
        self, step: Step, action: str, share: int | None, rollout: int | None = None
    ) -> PlatformResult:
        """``rollout``: the rollout whose step this is (it, not a person's `gray` or
        `publish`, takes the next one: its controls are the advice)."""
        target = await step.allowed(action)
        if isinstance(target, PlatformResult):
            return target
        adapter = step.adapter
        app, version = step.app.key, step.release.version
        if share is None:
            answer, exchanges = await attempt(adapter.stop_gray(app, version))
            said, after = "staged release stopped", ""
        else:
            steps = adapter.gray_steps
            if steps is not None and share not in steps:
                allowed = ", ".join(f"p{n}" for n in steps)
                return await step.refuse(f"{adapter.display_name} stages releases at {allowed}")
            answer, exchanges = await attempt(adapter.gray(app, version, share))
            said = f"released to {share}% of users"
            after = (
                f" — next: `publish {app} {step.platform} {version}` for everyone, or "
                f"`gray {app} {step.platform} stop`"
                if rollout is None
                else f" — rollout #{rollout} takes the next step; to steer it: "
                f"`rollout {app} pause`, `rollout {app} advance` or `rollout {app} abort`"
            )
        if isinstance(answer, Exception):
            return await step.failed(answer, exchanges)
        said = answer or said  # the platform's adapter says what happened in its terms
        moved = await self.settle(target, policy.AFTER[action], detail=said)
        if isinstance(moved, Exception):
            return await step.failed(moved, exchanges)
        return await step.ok(said + after, exchanges)
